/** Bridge tests: waiting for a bridge's state, collecting what a client receives, probing that a path works. */
import type { MqttClient, Message } from '../../src/client/index.js';
import type { BridgeConfig } from '../../src/config/schema.js';
import type { BridgeControl, BridgeState } from '../../src/model/bridge.js';

/** A bridge configuration with the schema's defaults filled in. */
export function bridgeConfig(partial: Partial<BridgeConfig> & Pick<BridgeConfig, 'name' | 'url' | 'topics'>): BridgeConfig {
  return { protocolVersion: 4, keepalive: 60, cleanStart: true, tryPrivate: true, ...partial };
}

/** Resolves once `check()` holds (checked every 20 ms and at once); rejects after `timeoutMs` naming `what`. */
export function waitUntil(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

/** Waits until bridge `name` is in `state`. */
export function bridgeState(bridges: BridgeControl, name: string, state: BridgeState, timeoutMs = 15_000): Promise<void> {
  return waitUntil(() => bridges.get(name)?.state === state, `bridge "${name}" to be ${state} (it is ${bridges.get(name)?.state ?? 'missing'})`, timeoutMs);
}

/** Every message a client receives, in order, with a wait for a count. */
export interface Collected {
  readonly messages: Message[];
  /** Payloads (UTF-8) of the messages on topics matching `topicPrefix` (all when omitted). */
  payloads(topicPrefix?: string): string[];
  /** Resolves once `count` messages whose topic starts with `topicPrefix` have arrived. */
  count(count: number, topicPrefix?: string, timeoutMs?: number): Promise<void>;
}

/** Starts collecting `client`'s messages (copies: payloads outlive the chunk). */
export function collect(client: MqttClient): Collected {
  const messages: Message[] = [];
  client.on('message', (m) => messages.push({ ...m, payload: Buffer.from(m.payload) }));
  const matching = (prefix: string | undefined): Message[] => (prefix === undefined ? messages : messages.filter((m) => m.topic.startsWith(prefix)));
  return {
    messages,
    payloads: (prefix) => matching(prefix).map((m) => m.payload.toString()),
    count: (count, prefix, timeoutMs = 15_000) => waitUntil(() => matching(prefix).length >= count, `${count} messages on ${prefix ?? 'any topic'} (got ${matching(prefix).length})`, timeoutMs),
  };
}

/**
 * Publishes `topic` from `publisher` every 100 ms until `received` saw a message on `expectTopic`
 * (proves a bridge's subscriptions are in place on both ends); the probes are QoS 0.
 */
export async function probe(publisher: MqttClient, topic: string, received: Collected, expectTopic: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!received.messages.some((m) => m.topic === expectTopic)) {
    if (Date.now() > deadline) throw new Error(`probe on ${topic} never arrived as ${expectTopic}`);
    await publisher.publish(topic, 'probe');
    await waitUntil(() => received.messages.some((m) => m.topic === expectTopic), 'probe', 100).catch(() => undefined);
  }
}
