/**
 * A bridge's topic mappings as Mosquitto's `topic PATTERN DIRECTION QOS LOCAL-PREFIX REMOTE-PREFIX`
 * lines work: the subscriptions to make on each side, and the translation of a topic from one side to
 * the other (the prefix of one side replaced by the prefix of the other).
 */
import { topicMatches } from '../protocol/topic.js';
import type { QoS } from '../protocol/types.js';
import type { BridgeTopicConfig } from '../config/schema.js';

/** One mapping, with the filter it subscribes to on each side. */
interface Mapping {
  readonly localPrefix: string;
  readonly remotePrefix: string;
  /** localPrefix + pattern: what the bridge subscribes to here (out, both). */
  readonly localFilter: string;
  /** remotePrefix + pattern: what the bridge subscribes to on the remote (in, both). */
  readonly remoteFilter: string;
  readonly qos: QoS;
}

/** A subscription one side of the bridge makes. */
export interface BridgeSubscription {
  filter: string;
  qos: QoS;
}

/** Where a message goes on the other side, and at what QoS at most. */
export interface Destination {
  topic: string;
  qos: QoS;
}

/** The topic mappings of one bridge, both ways. */
export class TopicMap {
  private readonly outgoing: Mapping[] = [];
  private readonly incoming: Mapping[] = [];

  constructor(topics: readonly BridgeTopicConfig[]) {
    for (const t of topics) {
      const mapping: Mapping = {
        localPrefix: t.localPrefix,
        remotePrefix: t.remotePrefix,
        localFilter: t.localPrefix + t.pattern,
        remoteFilter: t.remotePrefix + t.pattern,
        qos: t.qos,
      };
      if (t.direction !== 'in') this.outgoing.push(mapping);
      if (t.direction !== 'out') this.incoming.push(mapping);
    }
  }

  /** Subscriptions on this broker (out and both), one per filter at the highest QoS asked for it. */
  get localSubscriptions(): BridgeSubscription[] {
    return subscriptions(this.outgoing.map((m) => ({ filter: m.localFilter, qos: m.qos })));
  }

  /** Subscriptions on the remote broker (in and both). */
  get remoteSubscriptions(): BridgeSubscription[] {
    return subscriptions(this.incoming.map((m) => ({ filter: m.remoteFilter, qos: m.qos })));
  }

  /** Where a message published here on `topic` goes on the remote: one entry per distinct remote topic. */
  toRemote(topic: string): Destination[] {
    return translate(this.outgoing, topic, (m) => m.localFilter, (m) => m.localPrefix, (m) => m.remotePrefix);
  }

  /** Where a message from the remote on `topic` is published here. */
  toLocal(topic: string): Destination[] {
    return translate(this.incoming, topic, (m) => m.remoteFilter, (m) => m.remotePrefix, (m) => m.localPrefix);
  }
}

function subscriptions(list: BridgeSubscription[]): BridgeSubscription[] {
  const byFilter = new Map<string, QoS>();
  for (const { filter, qos } of list) byFilter.set(filter, Math.max(qos, byFilter.get(filter) ?? 0) as QoS);
  return [...byFilter].map(([filter, qos]) => ({ filter, qos }));
}

function translate(
  mappings: readonly Mapping[],
  topic: string,
  filterOf: (m: Mapping) => string,
  fromPrefix: (m: Mapping) => string,
  toPrefix: (m: Mapping) => string,
): Destination[] {
  const out: Destination[] = [];
  for (const m of mappings) {
    const from = fromPrefix(m);
    // "a/#" also matches "a", which does not carry the prefix "a/": Mosquitto skips it too.
    if (!topicMatches(filterOf(m), topic) || !topic.startsWith(from)) continue;
    const target = toPrefix(m) + topic.slice(from.length);
    if (target === '') continue;
    const seen = out.find((d) => d.topic === target);
    if (seen === undefined) out.push({ topic: target, qos: m.qos });
    else seen.qos = Math.max(seen.qos, m.qos) as QoS;
  }
  return out;
}
