/**
 * STUB: bridges to other MQTT brokers (issue 15). The configuration section is defined and checked
 * (src/config/schema.ts, src/config/bridges.ts); the bridge runtime replaces this function.
 */
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../broker/logger.js';
import type { BridgeConfig } from '../config/schema.js';

/** The running bridges. */
export interface RunningBridges {
  close(): Promise<void>;
}

/** What a bridge needs of the server. */
export interface BridgeContext {
  broker: Broker;
  logger: Logger;
}

/** Starts the configured bridges. For now: one warning per bridge saying it is not running yet. */
export function startBridges(bridges: readonly BridgeConfig[], context: BridgeContext): Promise<RunningBridges> {
  for (const bridge of bridges) {
    context.logger.warn({ bridge: bridge.name, url: bridge.url, topics: bridge.topics.length }, `bridge "${bridge.name}" to ${bridge.url}: bridges are not running yet (configuration checked only)`);
  }
  return Promise.resolve({ close: () => Promise.resolve() });
}
