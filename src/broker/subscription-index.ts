/** The subscription index: topic → the sessions and shared groups it reaches, cached per topic, and what this broker has interest in. */
import type { Subscription } from '../model/subscription.js';
import { aggregateRoute, type Route } from './delivery.js';
import type { Session } from './session.js';
import { SharedGroup } from './shared-group.js';
import { TopicTrie } from './topic-trie.js';

/** One session a topic routes to. */
export interface RouteTarget {
  session: Session;
  /** What its matching subscriptions grant. */
  route: Route;
  /**
   * The route for a message the session published itself: undefined when no matching subscription
   * has No Local (same as `route`), null when all do (not delivered) [MQTT-3.8.3-3].
   */
  ownRoute: Route | null | undefined;
}

/** Everything a topic routes to: sessions, and shared groups that pick one member per message. */
export interface Routes {
  targets: RouteTarget[];
  groups: SharedGroup[];
}

const MAX_CACHED_TOPICS = 10_000;
const NO_GROUPS: SharedGroup[] = [];

type Subscriber = Session | SharedGroup;

/**
 * Which sessions a topic reaches. Matches go through the subscription trie; the result per topic
 * is cached until the next subscription change, so steady traffic costs one map lookup.
 */
export class SubscriptionIndex {
  private readonly trie = new TopicTrie<Subscriber, Subscription>();
  private readonly groups = new Map<string, SharedGroup>();
  private cache = new Map<string, Routes>();
  /** Routes shared by every cached topic that only one subscription matches (see solo). */
  private readonly soloRoutes = new Map<Subscription, Routes>();
  private readonly collecting = new Map<Session, Subscription[]>();
  private collectingGroups: SharedGroup[] = [];
  private readonly collect = (subscriber: Subscriber, subscription: Subscription): void => {
    if (subscriber instanceof SharedGroup) {
      if (!this.collectingGroups.includes(subscriber)) this.collectingGroups.push(subscriber);
      return;
    }
    const list = this.collecting.get(subscriber);
    if (list === undefined) this.collecting.set(subscriber, [subscription]);
    else list.push(subscription);
  };

  /** Sessions per plain filter: a filter's first subscriber and its last are reported as interest. */
  private readonly filterHolders = new Map<string, number>();
  /**
   * Told when a plain filter gains its first subscriber or loses its last, and when a shared group
   * (`$share/{group}/{filter}`) is created or ends: what this broker has interest in (for a cluster).
   */
  onInterest: ((key: string, added: boolean) => void) | undefined;

  constructor(private readonly strategy: 'round-robin' | 'random' = 'round-robin') {}

  /** Number of (filter, session) subscriptions, shared members included. */
  get subscriptionCount(): number {
    let count = this.trie.size - this.groups.size;
    for (const group of this.groups.values()) count += group.size;
    return count;
  }

  /** Adds or replaces a session's subscription; returns true when it is new. */
  subscribe(session: Session, subscription: Subscription): boolean {
    this.invalidate();
    const group = subscription.shareGroup;
    if (group === undefined) {
      const filter = subscription.matchFilter;
      if (!this.trie.add(filter, session, subscription)) return false;
      if (this.onInterest === undefined) return true;
      const holders = this.filterHolders.get(filter) ?? 0;
      this.filterHolders.set(filter, holders + 1);
      if (holders === 0) this.onInterest?.(filter, true);
      return true;
    }
    const key = SharedGroup.key(group, subscription.matchFilter);
    let shared = this.groups.get(key);
    if (shared === undefined) {
      shared = new SharedGroup(group, subscription.matchFilter, this.strategy);
      this.groups.set(key, shared);
      this.trie.add(subscription.matchFilter, shared, subscription);
      this.onInterest?.(shared.shareFilter, true);
    }
    return shared.add(session, subscription);
  }

  /** Removes a session's subscription; returns true when it existed. */
  unsubscribe(session: Session, subscription: Subscription): boolean {
    this.invalidate();
    const group = subscription.shareGroup;
    if (group === undefined) {
      const filter = subscription.matchFilter;
      if (!this.trie.remove(filter, session)) return false;
      if (this.onInterest === undefined) return true;
      const holders = (this.filterHolders.get(filter) ?? 1) - 1;
      if (holders > 0) this.filterHolders.set(filter, holders);
      else {
        this.filterHolders.delete(filter);
        this.onInterest?.(filter, false);
      }
      return true;
    }
    const key = SharedGroup.key(group, subscription.matchFilter);
    const shared = this.groups.get(key);
    if (shared === undefined || !shared.remove(session)) return false;
    if (shared.size === 0) {
      this.groups.delete(key);
      this.trie.remove(subscription.matchFilter, shared);
      this.onInterest?.(shared.shareFilter, false);
    }
    return true;
  }

  /** The shared group with this key (see SharedGroup.key), if it still exists. */
  group(key: string): SharedGroup | undefined {
    return this.groups.get(key);
  }

  /** Everything a message on `topic` goes to. The result is shared: do not modify it. */
  routes(topic: string): Routes {
    const cached = this.cache.get(topic);
    if (cached !== undefined) return cached;
    this.trie.match(topic, this.collect);
    const routes = this.collectingGroups.length === 0 && this.collecting.size === 1 ? this.solo() : this.collected();
    if (this.cache.size >= MAX_CACHED_TOPICS) this.cache.clear();
    this.cache.set(topic, routes);
    return routes;
  }

  /**
   * The routes of a topic matched by one subscription of one session (a wildcard subscriber of many
   * devices' topics): one object shared by every such topic, so the cache costs a map entry per topic.
   */
  private solo(): Routes {
    const [session, subscriptions] = this.collecting.entries().next().value as [Session, Subscription[]];
    this.collecting.clear();
    const only = subscriptions.length === 1 ? subscriptions[0]! : undefined;
    const shared = only === undefined ? undefined : this.soloRoutes.get(only);
    if (shared !== undefined) return shared;
    const routes: Routes = { targets: [toTarget(session, subscriptions)], groups: NO_GROUPS };
    if (only !== undefined) this.soloRoutes.set(only, routes);
    return routes;
  }

  private collected(): Routes {
    const targets: RouteTarget[] = [];
    for (const [session, subscriptions] of this.collecting) targets.push(toTarget(session, subscriptions));
    this.collecting.clear();
    const groups = this.collectingGroups.length === 0 ? NO_GROUPS : this.collectingGroups;
    this.collectingGroups = [];
    return { targets, groups };
  }

  private invalidate(): void {
    if (this.cache.size > 0) this.cache = new Map();
    if (this.soloRoutes.size > 0) this.soloRoutes.clear();
  }
}

function toTarget(session: Session, subscriptions: Subscription[]): RouteTarget {
  const route = aggregateRoute(subscriptions);
  let ownRoute: Route | null | undefined;
  if (subscriptions.some((s) => s.noLocal)) {
    const others = subscriptions.filter((s) => !s.noLocal);
    ownRoute = others.length === 0 ? null : aggregateRoute(others);
  }
  return { session, route, ownRoute };
}
