import type { Subscription } from '../model/subscription.js';
import type { QoS } from '../protocol/types.js';
import type { Session } from './session.js';
import { TopicTrie } from './topic-trie.js';

/** One session a topic routes to, at the highest QoS of its matching subscriptions. */
export interface RouteTarget {
  session: Session;
  qos: QoS;
}

const MAX_CACHED_TOPICS = 10_000;

/**
 * Which sessions a topic reaches. Matches go through the subscription trie; the result per topic
 * is cached until the next subscription change, so steady traffic costs one map lookup.
 */
export class Router {
  private readonly trie = new TopicTrie<Session, Subscription>();
  private cache = new Map<string, RouteTarget[]>();
  private collecting = new Map<Session, RouteTarget>();

  /** Number of (filter, session) subscriptions. */
  get subscriptionCount(): number {
    return this.trie.size;
  }

  /** Adds or replaces a session's subscription; returns true when it is new. */
  subscribe(session: Session, subscription: Subscription): boolean {
    this.invalidate();
    return this.trie.add(subscription.topicFilter, session, subscription);
  }

  /** Removes a session's subscription; returns true when it existed. */
  unsubscribe(session: Session, topicFilter: string): boolean {
    this.invalidate();
    return this.trie.remove(topicFilter, session);
  }

  /**
   * Sessions that receive a message on `topic`, each once at the maximum QoS of its
   * overlapping subscriptions [MQTT-3.3.5-1]. The array is shared: do not modify it.
   */
  targets(topic: string): RouteTarget[] {
    const cached = this.cache.get(topic);
    if (cached !== undefined) return cached;
    const collecting = this.collecting;
    this.trie.match(topic, (session, subscription) => {
      const existing = collecting.get(session);
      if (existing === undefined) collecting.set(session, { session, qos: subscription.qos });
      else if (subscription.qos > existing.qos) existing.qos = subscription.qos;
    });
    const targets = [...collecting.values()];
    collecting.clear();
    if (this.cache.size >= MAX_CACHED_TOPICS) this.cache.clear();
    this.cache.set(topic, targets);
    return targets;
  }

  private invalidate(): void {
    if (this.cache.size > 0) this.cache = new Map();
  }
}
