/** The one owner of delivery: a routed message is stored if retained, matched, delivered to local sessions and shared groups, and sent to the other cluster nodes that want it. */
import type { ClusterBus } from '../cluster/types.js';
import type { Message } from '../model/message.js';
import type { Subscription } from '../model/subscription.js';
import { liveRetain, routeOf, type Route } from './delivery.js';
import type { ClientIdentity, Hooks } from './hooks.js';
import type { Journal } from './journal.js';
import type { Logger } from './logger.js';
import type { BrokerOptions } from './options.js';
import type { RetainedMessages } from './retained.js';
import type { Session } from './session.js';
import type { SessionMoves } from './session-moves.js';
import type { BrokerStats } from './stats.js';
import type { SubscriptionIndex } from './subscription-index.js';

const NO_GROUPS: ReadonlySet<string> = new Set();

/** Routes messages to sessions, here and (in a cluster) on the other nodes. */
export class Router {
  /** In a cluster: sessions moving between nodes (set by the cluster link). */
  moves: SessionMoves | undefined;

  constructor(
    private readonly index: SubscriptionIndex,
    private readonly retained: RetainedMessages,
    private readonly journal: Journal | undefined,
    private readonly options: BrokerOptions,
    private readonly stats: BrokerStats,
    private readonly hooks: Hooks,
    private readonly logger: Logger,
    private readonly bus: ClusterBus | undefined,
  ) {}

  /**
   * A message published here (by a client, a will or the API): stored if retained, sent to the other
   * nodes with matching subscriptions, delivered to the sessions here, then shown to the plugins that
   * observe messages (`publisher`: the client that sent it). Returns how many sessions here it went to.
   */
  route(message: Message, publisher?: ClientIdentity): number {
    // [MQTT-3.3.1-5] a retained message is stored (or cleared by an empty payload) for future subscribers.
    if (message.retain && this.options.retainAvailable) this.retain(message);
    const served = this.bus?.publish(message);
    const delivered = this.deliverLocally(message, served);
    // Without an observer this is one boolean read per message.
    if (this.hooks.observesPublish) this.hooks.published(message, publisher);
    return delivered;
  }

  /**
   * A message published on another node, for the sessions here; `groups`: the shared groups this
   * node serves for it; `only`: the client ids whose (non-shared) subscriptions get it, when not all.
   */
  fromCluster(message: Message, groups: readonly string[], only?: ReadonlySet<string>, except?: Pick<ReadonlySet<string>, 'has'>): void {
    this.deliverLocally(message, groups.length === 0 ? NO_GROUPS : new Set(groups), only, except);
  }

  /**
   * Delivers to one session through `route` (every delivery goes through here: live, shared,
   * retained, handed on, forwarded). Sessions in the middle of a cluster move are the moves' business.
   * Returns true when delivered (or sent on to the session's new node).
   */
  deliverTo(session: Session, message: Message, route: Route, retain = liveRetain(message, route)): boolean {
    if (session.movedTo !== undefined || session.recentIds !== undefined) {
      const moves = this.moves;
      if (moves !== undefined) return moves.deliver(session, message, route, retain);
    }
    return this.deliverNow(session, message, route, retain);
  }

  /** Delivers to a session here, counting what its full queue drops. */
  private deliverNow(session: Session, message: Message, route: Route, retain: boolean): boolean {
    const dropsBefore = session.droppedQueueFull;
    const delivered = session.deliver(message, route, retain);
    if (session.droppedQueueFull !== dropsBefore) this.stats.droppedQueueFull++;
    return delivered;
  }

  /** May this session's client receive messages on `topic` (ACL "read" rules)? */
  mayReceive(session: Session, topic: string): boolean {
    const identity = session.identity;
    return identity === undefined || !this.hooks.checksReceive || this.hooks.authorizeReceive(identity, topic);
  }

  /**
   * Sends the retained messages matching a new subscription, RETAIN=1 [MQTT-3.3.1-6] [MQTT-3.3.1-8];
   * an expired one is dropped from the store instead.
   */
  sendRetained(session: Session, subscription: Subscription, now: number): void {
    const matching = this.retained.match(subscription.matchFilter);
    if (matching.length === 0) return;
    const route = routeOf(subscription);
    for (const message of matching) {
      if (message.expiresAt !== undefined && now >= message.expiresAt) this.clearRetained(message.topic);
      else this.deliverNow(session, message, route, true);
    }
  }

  /** Clears the retained message of `topic` through the store (so it stays cleared after a restart); false when there was none. */
  clearRetained(topic: string): boolean {
    if (!this.retained.delete(topic)) return false;
    if (!topic.startsWith('$SYS/')) this.journal?.push({ op: 'deleteRetained', topic });
    return true;
  }

  /**
   * The shared-subscription deliveries `session` had not completed go to another member of their
   * group (the member went away); a session that lives on keeps those no one else can take.
   */
  handOn(session: Session, ending: boolean): void {
    for (const delivery of session.takeSharedDeliveries()) {
      const key = delivery.route.shareKey;
      const picked = key === undefined ? undefined : this.index.group(key)?.pick(session);
      if (picked !== undefined) this.deliverTo(picked.session, delivery.message, picked.route, delivery.retain);
      else if (!ending && session.persistent) session.deliver(delivery.message, delivery.route, delivery.retain);
    }
  }

  /** Delivers to this broker's sessions; `served`: the shared groups served here (undefined: all). */
  private deliverLocally(message: Message, served: ReadonlySet<string> | undefined, only?: ReadonlySet<string>, except?: Pick<ReadonlySet<string>, 'has'>): number {
    const { targets, groups } = this.index.routes(message.topic);
    const origin = message.origin;
    const topic = message.topic;
    const checkReceive = this.hooks.checksReceive;
    let count = 0;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      const session = target.session;
      if (only !== undefined && !only.has(session.clientId)) continue;
      if (except !== undefined && except.has(session.clientId)) continue;
      if (checkReceive && !this.mayReceive(session, topic)) continue;
      let route = target.route;
      if (target.ownRoute !== undefined && origin === session.clientId) {
        // [MQTT-3.8.3-3] No Local: not sent back to the client that published it.
        if (target.ownRoute === null) continue;
        route = target.ownRoute;
      }
      if (this.deliverTo(session, message, route)) count++;
    }
    for (let i = 0; i < groups.length; i++) {
      // MQTT 5 section 4.8.2: each shared group gets the message once, at one of its members (in a
      // cluster: on the node picked for it).
      const group = groups[i]!;
      if (served !== undefined && !served.has(group.shareFilter)) continue;
      const picked = group.pick();
      if (picked === undefined) continue;
      if (checkReceive && !this.mayReceive(picked.session, topic)) continue;
      if (this.deliverTo(picked.session, message, picked.route)) count++;
    }
    return count;
  }

  /** Stores or clears a retained message, within the retained limit, and journals the change. */
  private retain(message: Message): void {
    const retained = this.retained;
    const options = this.options;
    if (message.payload.length > 0 && retained.size >= options.maxRetainedMessages && !retained.has(message.topic)) {
      this.stats.droppedRetainedFull++;
      const oldest = options.retainedFullPolicy === 'drop-oldest' ? retained.oldestTopic() : undefined;
      if (oldest === undefined) {
        this.logger.warn({ topic: message.topic, limit: options.maxRetainedMessages }, 'retained message not kept: retained limit reached');
        return;
      }
      this.clearRetained(oldest);
    }
    retained.set(message);
    // $SYS topics describe this process; they are republished at start, never stored.
    if (!message.topic.startsWith('$SYS/')) this.journal?.retained(message);
  }
}
