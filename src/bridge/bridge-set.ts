/** The configured bridges of a server, started and stopped together, and what the HTTP API and $SYS see of them. */
import type { Broker } from '../broker/broker.js';
import type { BrokerPlugin } from '../broker/hooks.js';
import type { Logger } from '../broker/logger.js';
import type { ReconnectOptions } from '../client/index.js';
import type { BridgeConfig } from '../config/schema.js';
import type { BridgeControl, BridgeStatus } from '../model/bridge.js';
import { BRIDGE_CLIENT_PREFIX, BRIDGE_LISTENER, Bridge } from './bridge.js';

/** What the bridges need of the server. */
export interface BridgeContext {
  broker: Broker;
  logger: Logger;
  /** Back-off towards the remotes (default: 0.5 s doubling to 30 s, with jitter). */
  reconnect?: ReconnectOptions;
}

/** The running bridges. */
export class BridgeSet implements BridgeControl {
  private readonly bridges = new Map<string, Bridge>();

  constructor(configs: readonly BridgeConfig[], context: BridgeContext) {
    for (const config of configs) {
      const init = { config, broker: context.broker, logger: context.logger, ...(context.reconnect === undefined ? {} : { reconnect: context.reconnect }) };
      this.bridges.set(config.name, new Bridge(init));
    }
  }

  /** Number of configured bridges. */
  get size(): number {
    return this.bridges.size;
  }

  list(): BridgeStatus[] {
    return [...this.bridges.values()].map((b) => b.status());
  }

  get(name: string): BridgeStatus | undefined {
    return this.bridges.get(name)?.status();
  }

  start(name: string): Promise<boolean> {
    const bridge = this.bridges.get(name);
    bridge?.start();
    return Promise.resolve(bridge !== undefined);
  }

  async stop(name: string): Promise<boolean> {
    const bridge = this.bridges.get(name);
    await bridge?.stop();
    return bridge !== undefined;
  }

  /** Starts every bridge (each connects in the background). */
  startAll(): void {
    for (const bridge of this.bridges.values()) bridge.start();
  }

  /** Stops every bridge; their local sessions stay (stored, with what they hold for the remotes). */
  async close(): Promise<void> {
    await Promise.all([...this.bridges.values()].map((b) => b.stop()));
  }
}

/**
 * Lets the bridges' local sides in: a client on the internal `bridge` listener (only an in-memory
 * stream of this process reaches it) is accepted, and no other client may take a `$bridge/` client
 * id (it would take the bridge's session over). The other plugins abstain on that listener, as
 * Mosquitto does not apply ACLs to its bridges: the bridge's topics are its authorization.
 */
export function bridgeAccess(): BrokerPlugin {
  return {
    name: 'bridges',
    authenticate: (request) => {
      if (request.listener === BRIDGE_LISTENER) return request.clientId.startsWith(BRIDGE_CLIENT_PREFIX) ? 'accept' : 'not-authorized';
      return request.clientId.startsWith(BRIDGE_CLIENT_PREFIX) ? 'not-authorized' : undefined;
    },
  };
}

/** The internal listener's name, for scoping other plugins away from it. */
export { BRIDGE_LISTENER } from './bridge.js';

/** Builds and starts the configured bridges. */
export function startBridges(configs: readonly BridgeConfig[], context: BridgeContext): BridgeSet {
  const set = new BridgeSet(configs, context);
  set.startAll();
  return set;
}
