import type { Duplex } from 'node:stream';
import type { ClusterBus, ClusterHandler } from '../cluster/types.js';
import type { Message, PublishInput } from '../model/message.js';
import { ReasonCode } from '../protocol/reason-codes.js';
import { validateTopicName } from '../protocol/topic.js';
import type { QoS, Will } from '../protocol/types.js';
import { Connection, type CloseReason, type ConnectionInfo } from './connection.js';
import type { BrokerContext } from './context.js';
import { Hooks, type BrokerPlugin } from './hooks.js';
import { fromStoredMessage, Journal } from './journal.js';
import type { StoredRetained, StoredState } from '../persistence/types.js';
import { silentLogger, type Logger } from './logger.js';
import { DEFAULT_BROKER_OPTIONS, type BrokerOptions } from './options.js';
import { RetainedMessages } from './retained.js';
import { Router } from './router.js';
import { NEVER_EXPIRES, type Session } from './session.js';
import { SessionMoves } from './session-moves.js';
import { SessionRegistry } from './sessions.js';
import { BrokerStats } from './stats.js';
import { WireCache } from './wire-cache.js';

/** How often connect timeouts and keep-alives are checked: the precision of both. */
const SWEEP_INTERVAL_MS = 250;
const NO_GROUPS: ReadonlySet<string> = new Set();

/** Options for `new Broker()`: any BrokerOptions field, plus a logger. */
export type BrokerInit = Partial<BrokerOptions> & { logger?: Logger };

/** A will waiting for its MQTT 5 Will Delay Interval. */
interface PendingWill {
  will: Will;
  clientId: string;
  at: number;
}

/**
 * The MQTT broker core: accepts any Duplex stream as a client connection and implements
 * MQTT semantics. It knows nothing of sockets, files or Redis.
 */
export class Broker implements BrokerContext, ClusterHandler {
  readonly options: BrokerOptions;
  readonly logger: Logger;
  readonly debugEnabled: boolean;
  readonly stats = new BrokerStats();
  readonly router: Router;
  readonly sessions: SessionRegistry;
  readonly retained = new RetainedMessages();
  readonly wire = new WireCache();
  readonly online = new Map<string, Connection>();
  readonly onlinePerListener = new Map<string, number>();
  readonly hooks: Hooks;
  readonly journal: Journal | undefined;
  readonly cluster: ClusterBus | undefined;
  committedGen = 0;
  private issuedGen = 0;
  private readonly ackWaiters = new Set<Connection>();
  private lastStoreFailureLog = 0;

  private readonly connections = new Set<Connection>();
  /** Offline sessions that expire, and wills waiting for their delay. */
  private readonly expiring = new Set<Session>();
  private readonly pendingWills = new Map<Session, PendingWill>();
  /** Cluster: sessions moving between nodes (stubs, arrivals, deliveries held during claims). */
  private readonly moves: SessionMoves;
  private flushList: Connection[] = [];
  private flushScheduled = false;
  private closed = false;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(init: BrokerInit = {}) {
    const { logger, ...options } = init;
    this.options = { ...DEFAULT_BROKER_OPTIONS, ...stripUndefined(options) };
    this.logger = logger ?? silentLogger;
    this.debugEnabled = this.logger.isLevelEnabled?.('debug') ?? this.logger !== silentLogger;
    this.router = new Router(this.options.sharedSubscriptionStrategy);
    const plugins: BrokerPlugin[] = [];
    const authenticate = this.options.authenticate;
    if (authenticate !== undefined) plugins.push({ name: 'authenticate-option', authenticate: (request) => authenticate(request) });
    if (this.options.plugins !== undefined) plugins.push(...this.options.plugins);
    this.hooks = new Hooks(plugins, this.options.allowAnonymous);
    this.sessions = new SessionRegistry(this.router, this.options.maxInflight, this.options.maxQueuedMessages, this.options.queueFullPolicy);
    this.journal = this.options.store === undefined ? undefined : new Journal(this.scheduleTurnEnd);
    this.cluster = this.options.cluster;
    this.moves = new SessionMoves(this.sessions, this.router);
    const cluster = this.cluster;
    if (cluster !== undefined) {
      if (this.options.store !== cluster.store) throw new Error('a cluster node uses the cluster\'s store');
      this.router.onInterest = (key, added) => {
        if (added) cluster.addInterest(key);
        else cluster.removeInterest(key);
      };
    }
    // One timer for every connection's connect timeout and keep-alive, session expiry and will delay.
    this.sweepTimer = setInterval(this.sweep, SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Takes a new client stream (TCP socket, TLS socket, WebSocket stream, in-memory pair). */
  accept(stream: Duplex, info: ConnectionInfo): Connection {
    const connection = new Connection(this, stream, info);
    if (this.closed) {
      connection.close('server-shutdown');
      return connection;
    }
    this.connections.add(connection);
    return connection;
  }

  /** Publishes a message from the broker itself (in-process API); retained if asked. */
  publish(input: PublishInput): void {
    validateTopicName(input.topic);
    const payload = input.payload === undefined ? Buffer.alloc(0) : typeof input.payload === 'string' ? Buffer.from(input.payload) : input.payload;
    const message: Message = {
      topic: input.topic,
      payload,
      qos: input.qos ?? 0,
      retain: input.retain ?? false,
      origin: '',
      receivedAt: Date.now(),
      clusterId: undefined,
    };
    if (input.properties !== undefined) {
      const { messageExpiryInterval, ...rest } = input.properties;
      if (Object.keys(rest).length > 0) message.properties = rest;
      if (messageExpiryInterval !== undefined) message.expiresAt = message.receivedAt + messageExpiryInterval * 1000;
    }
    this.dispatch(message);
  }

  /** Number of open connections (including ones not yet past CONNECT). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * BrokerContext: stores retained messages and routes to every matching session, here and (in a
   * cluster) on the other nodes that have matching subscriptions.
   */
  dispatch(message: Message): number {
    // [MQTT-3.3.1-5] a retained message is stored (or cleared by an empty payload) for future subscribers.
    if (message.retain && this.options.retainAvailable) this.retain(message);
    const served = this.cluster?.publish(message);
    return this.deliverLocally(message, served);
  }

  /** ClusterHandler: a message published on another node, for subscribers here. */
  deliverFromCluster(message: Message, groups: readonly string[]): void {
    this.deliverLocally(message, groups.length === 0 ? NO_GROUPS : new Set(groups));
  }

  /** Delivers to this broker's sessions; `served`: the shared groups served here (undefined: all). */
  private deliverLocally(message: Message, served: ReadonlySet<string> | undefined): number {
    const { targets, groups } = this.router.routes(message.topic);
    const messageQos = message.qos;
    const origin = message.origin;
    const checkReceive = this.hooks.checksReceive;
    let count = 0;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      if (checkReceive && !this.mayReceive(target.session, message.topic)) continue;
      let delivery = target.delivery;
      if (target.ownDelivery !== undefined && origin === target.session.clientId) {
        // [MQTT-3.8.3-3] No Local: not sent back to the client that published it.
        if (target.ownDelivery === null) continue;
        delivery = target.ownDelivery;
      }
      // [MQTT-3.3.5-1] delivered at the lower of the message QoS and the subscription QoS;
      // [MQTT-3.3.1-9] RETAIN=0 on live delivery unless Retain As Published (MQTT 5 [MQTT-3.3.1-12]).
      const qos = messageQos < delivery.qos ? messageQos : delivery.qos;
      const retain = delivery.retainAsPublished && message.retain;
      const session = target.session;
      if (session.movedTo !== undefined || session.recentIds !== undefined) {
        // Cluster, during a session's move: follow it, or drop a copy it already has.
        if (this.moving(session, message, qos, retain, delivery.subscriptionIds)) count++;
        continue;
      }
      const dropsBefore = session.droppedQueueFull;
      if (session.deliver(message, qos, retain, delivery.subscriptionIds)) count++;
      if (session.droppedQueueFull !== dropsBefore) this.stats.droppedQueueFull++;
    }
    for (let i = 0; i < groups.length; i++) {
      // MQTT 5 section 4.8.2: each shared group gets the message once, at one of its members (in a
      // cluster: on the node picked for it).
      if (served !== undefined && !served.has(groups[i]!.shareFilter)) continue;
      const picked = groups[i]!.pick();
      if (picked === undefined) continue;
      const { session, subscription } = picked;
      if (checkReceive && !this.mayReceive(session, message.topic)) continue;
      const qos = messageQos < subscription.qos ? messageQos : subscription.qos;
      const ids = subscription.subscriptionId === undefined ? undefined : [subscription.subscriptionId];
      if (session.movedTo !== undefined) {
        if (this.moving(session, message, qos, subscription.retainAsPublished && message.retain, ids)) count++;
        continue;
      }
      const dropsBefore = session.droppedQueueFull;
      if (session.deliver(message, qos, subscription.retainAsPublished && message.retain, ids, groups[i]!.key)) count++;
      if (session.droppedQueueFull !== dropsBefore) this.stats.droppedQueueFull++;
    }
    return count;
  }

  /**
   * A delivery to a session in the middle of a cluster move: a stub forwards it to the node the
   * session moved to; a session that just arrived takes it unless it already has this message (a
   * forwarded copy of one routed here directly, or the reverse). Returns true when delivered or sent on.
   */
  private moving(session: Session, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): boolean {
    if (session.movedTo !== undefined) {
      const held = this.moves.held(session.clientId);
      // The session is on its way back here: hold the delivery for it rather than send it away.
      if (held !== undefined) held.push({ message, qos, retain, subscriptionIds });
      else this.cluster?.forward(session.movedTo, session.clientId, message, qos, retain, subscriptionIds);
      return true;
    }
    const id = message.clusterId;
    const seen = session.recentIds;
    if (id !== undefined && seen !== undefined) {
      if (seen.has(id)) return false;
      seen.add(id);
    }
    const dropsBefore = session.droppedQueueFull;
    const delivered = session.deliver(message, qos, retain, subscriptionIds);
    if (session.droppedQueueFull !== dropsBefore) this.stats.droppedQueueFull++;
    return delivered;
  }

  /** ClusterHandler: a delivery forwarded by the node `clientId`'s session just left. */
  deliverTargeted(clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): void {
    const session = this.sessions.get(clientId);
    if (session === undefined) {
      // Forwarded before the session finished arriving: held for it.
      this.moves.held(clientId)?.push({ message, qos, retain, subscriptionIds });
      return;
    }
    if (this.hooks.checksReceive && !this.mayReceive(session, message.topic)) return;
    this.moving(session, message, qos, retain, subscriptionIds);
  }

  /** Stores or clears a retained message, within the retained limit, and journals the change. */
  private retain(message: Message): void {
    const retained = this.retained;
    if (message.payload.length > 0 && retained.size >= this.options.maxRetainedMessages && !retained.has(message.topic)) {
      this.stats.droppedRetainedFull++;
      const oldest = this.options.retainedFullPolicy === 'drop-oldest' ? retained.oldestTopic() : undefined;
      if (oldest === undefined) {
        this.logger.warn({ topic: message.topic, limit: this.options.maxRetainedMessages }, 'retained message not kept: retained limit reached');
        return;
      }
      retained.delete(oldest);
      this.journal?.push({ op: 'deleteRetained', topic: oldest });
    }
    retained.set(message);
    // $SYS topics describe this process; they are republished at start, never stored.
    if (!message.topic.startsWith('$SYS/')) this.journal?.retained(message);
  }

  private mayReceive(session: Session, topic: string): boolean {
    const identity = session.identity;
    return identity === undefined || this.hooks.authorizeReceive(identity, topic);
  }

  /** BrokerContext: flushes `connection` at the end of this event-loop turn, with all others. */
  scheduleFlush(connection: Connection): void {
    this.flushList.push(connection);
    this.scheduleTurnEnd();
  }

  /** Runs `endTurn` once at the end of this event-loop turn. */
  private readonly scheduleTurnEnd = (): void => {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.endTurn);
    }
  };

  /** End of a turn: commit this turn's store changes (group commit), then write to every connection. */
  private readonly endTurn = (): void => {
    this.flushScheduled = false;
    this.commit();
    const list = this.flushList;
    this.flushList = [];
    for (let i = 0; i < list.length; i++) list[i]!.flush();
    this.wire.reset();
  };

  /** BrokerContext: the commit that changes made now belong to. */
  get pendingCommitGen(): number {
    return this.issuedGen + 1;
  }

  /** BrokerContext: release this connection's acknowledgements as commits complete. */
  waitForCommit(connection: Connection): void {
    this.ackWaiters.add(connection);
  }

  private commit(): void {
    const journal = this.journal;
    const store = this.options.store;
    if (journal === undefined || store === undefined || journal.size === 0) return;
    const ops = journal.take();
    const gen = ++this.issuedGen;
    store.apply(ops).then(
      () => {
        this.committedGen = gen;
        for (const connection of this.ackWaiters) {
          if (connection.isClosed() || connection.releaseAcks(gen)) this.ackWaiters.delete(connection);
        }
      },
      (error: unknown) => {
        // Nothing in this commit is acknowledged: clients will resend. Loud, because durability is at stake.
        this.stats.storeFailures++;
        const now = Date.now();
        if (now - this.lastStoreFailureLog >= 10_000) {
          // Once per 10 s at most (a store outage fails every commit).
          this.lastStoreFailureLog = now;
          this.logger.error(
            { err: error, store: store.name, operations: ops.length, failures: this.stats.storeFailures },
            'store commit failed: closing the connections whose acknowledgements depended on it',
          );
        }
        // [MQTT-4.8.0-2] their messages were not stored: close those connections, never acknowledge.
        for (const connection of this.ackWaiters) {
          if (connection.isClosed()) this.ackWaiters.delete(connection);
          else if (connection.waitsForCommit(gen)) {
            this.ackWaiters.delete(connection);
            connection.close('store-failure', ReasonCode.unspecifiedError);
          }
        }
      },
    );
  }

  /** Waits until everything changed so far is durable (used at shutdown and after start-up). */
  async settle(): Promise<void> {
    this.commit();
    await this.options.store?.apply([]);
  }

  /**
   * Reads the store and rebuilds sessions (subscriptions, queued and inflight messages, QoS 2 ids,
   * pending wills, expiry) and retained messages. Call once, before accepting clients.
   */
  async restore(): Promise<{ sessions: number; messages: number; retained: number }> {
    const store = this.options.store;
    const journal = this.journal;
    if (store === undefined || journal === undefined) return { sessions: 0, messages: 0, retained: 0 };
    const state = await store.load();
    const now = Date.now();
    const messages = this.mergeState(state, now);
    for (const stored of [...state.retained].sort(bySetOrder)) {
      if (stored.seq !== undefined && stored.seq > journal.retainedSeq) journal.retainedSeq = stored.seq;
      if (stored.expiresAt !== undefined && now >= stored.expiresAt) journal.push({ op: 'deleteRetained', topic: stored.topic });
      else this.retained.set(fromStoredMessage(stored));
    }
    await this.settle();
    return { sessions: state.sessions.length, messages, retained: this.retained.size };
  }

  /**
   * Rebuilds stored sessions in memory (subscriptions, queued and inflight messages, QoS 2 ids,
   * pending wills, expiry): at start-up, and in a cluster when a session arrives from another node.
   * Returns the number of messages restored.
   */
  private mergeState(state: StoredState, now: number): number {
    const journal = this.journal;
    if (journal === undefined) return 0;
    const byId = new Map<number, Message>();
    const adopted: Message[] = [];
    for (const stored of state.messages) {
      const message = fromStoredMessage(stored);
      byId.set(stored.id, message);
      journal.adoptMessage(message, stored.id);
      adopted.push(message);
    }
    for (const record of state.sessions) {
      const session = this.sessions.create(record.clientId);
      session.expiryInterval = record.expiryInterval;
      session.journal = journal;
      if (record.identity !== undefined) session.identity = { ...record.identity, username: record.identity.username, remoteAddress: record.identity.remoteAddress };
      for (const subscription of record.subscriptions) {
        session.setSubscription(subscription);
        this.router.subscribe(session, subscription);
      }
      // After a crash there is no disconnect time: count the session's absence from now.
      const since = record.disconnectedAt ?? now;
      if (record.expiryInterval !== NEVER_EXPIRES) {
        session.expiresAt = since + record.expiryInterval * 1000;
        this.expiring.add(session);
      }
      if (record.pendingWill !== undefined) this.pendingWills.set(session, { will: record.pendingWill.will, clientId: record.clientId, at: record.pendingWill.at });
      if (record.disconnectedAt === undefined) journal.putSession(session, now, record.pendingWill);
    }
    let messages = 0;
    for (const delivery of state.deliveries) {
      const session = this.sessions.get(delivery.clientId);
      const message = byId.get(delivery.messageId);
      const expired = delivery.state === 'queued' && message?.expiresAt !== undefined && now >= message.expiresAt;
      if (session === undefined || message === undefined || expired) {
        journal.push({ op: 'deleteDelivery', clientId: delivery.clientId, seq: delivery.seq });
        continue;
      }
      journal.adoptRef(message);
      session.restoreDelivery(delivery, message);
      messages++;
    }
    for (const { clientId, packetId } of state.incomingQos2) this.sessions.get(clientId)?.beginIncomingQos2(packetId);
    journal.collectUnreferenced(adopted);
    return messages;
  }

  // ---- cluster (ClusterHandler) ----

  /**
   * Before a connection takes `clientId` over: in a cluster, the node that holds the client lets go
   * first, and its stored session is loaded here. Resolves at once on a single node.
   */
  async claimSession(clientId: string, clean: boolean): Promise<void> {
    const cluster = this.cluster;
    if (cluster === undefined) return;
    if (clean && !cluster.ready) {
      // Redis is away: a clean session has nothing stored, so it is served here, locally (its
      // ownership is not recorded: a connection with the same id on another node does not take it over).
      this.logger.warn({ clientId }, 'cluster: Redis unavailable; clean session accepted on this node only');
      return;
    }
    // Until the session has arrived, deliveries for it (routed here, or forwarded by the node it
    // leaves) are held, not lost.
    const held = this.moves.beginClaim(clientId);
    try {
      const state = await cluster.claimSession(clientId, this.sessions.get(clientId) === undefined);
      let arrived: Session | undefined;
      if (state !== undefined && state.sessions.length > 0 && this.sessions.get(clientId) === undefined) {
        this.mergeState(state, Date.now());
        arrived = this.sessions.get(clientId);
      }
      // A stub left here when the session last moved away is no longer needed.
      this.moves.removeStub(clientId);
      if (arrived !== undefined) {
        // Copies of messages routed both to the node it left and here are recognised by their ids.
        const seen = new Set<string>();
        for (const message of state!.messages) if (message.clusterId !== undefined) seen.add(message.clusterId);
        this.moves.arrived(arrived, seen);
      }
      const session = this.sessions.get(clientId);
      if (session !== undefined) for (const d of held) this.moving(session, d.message, d.qos, d.retain, d.subscriptionIds);
      // Its subscriptions are announced to the other nodes before CONNACK, so messages published
      // elsewhere after CONNACK reach the session.
      if (arrived !== undefined || held.length > 0) await this.settle();
    } finally {
      this.moves.endClaim(clientId);
    }
  }

  /** ClusterHandler: another node claims `clientId`: close it here, keep its stored state for that node. */
  async releaseSession(clientId: string, toNode: string): Promise<void> {
    const connection = this.online.get(clientId);
    // [MQTT-3.1.4-2] the existing connection of a client id connecting elsewhere is closed (0x8E).
    if (connection !== undefined) {
      this.logger.info({ clientId, remote: connection.info.remoteAddress }, 'session taken over by a connection on another node');
      connection.close('session-taken-over');
    }
    const session = this.sessions.get(clientId);
    if (session !== undefined) {
      // Messages routed here until every node knows the session moved follow it (the stub takes the
      // subscriptions over first, so this node's routes never lapse meanwhile).
      const subscriptions = [...session.subscriptions.values()];
      if (subscriptions.length > 0) this.moves.leaveStub(clientId, toNode, subscriptions, session.identity);
      this.pendingWills.delete(session);
      this.expiring.delete(session);
      this.moves.left(session);
      this.sessions.detach(session);
    }
    await this.settle();
  }

  /** ClusterHandler: a dead node's sessions, now held here. */
  adoptSessions(state: StoredState): void {
    this.mergeState(state, Date.now());
  }

  /**
   * ClusterHandler: the will of a client whose node died (or of this node's previous life). A client
   * whose persistent session is now held here gets its Will Delay Interval, counted from now: the will
   * waits, and is not sent if the client resumes in time [MQTT-3.1.3-9].
   */
  publishOrphanWill(clientId: string, will: Will): void {
    const delay = will.properties?.willDelayInterval ?? 0;
    const session = this.sessions.get(clientId);
    if (delay > 0 && session !== undefined && session.persistent && session.link === undefined) {
      const now = Date.now();
      const pending = { will, clientId, at: now + Math.min(delay, session.expiryInterval) * 1000 };
      this.pendingWills.set(session, pending);
      session.journal?.putSession(session, now, { will, at: pending.at });
      return;
    }
    this.publishWill(will, clientId);
  }

  /** ClusterHandler: a retained message set or cleared on another node. */
  retainedFromCluster(message: StoredRetained | { topic: string; cleared: true }): void {
    if ('cleared' in message) this.retained.delete(message.topic);
    else this.retained.set(fromStoredMessage(message));
  }

  /** ClusterHandler: the cluster's retained messages replace this node's copy ($SYS, this node's own, stays). */
  replaceRetained(messages: readonly StoredRetained[]): void {
    for (const message of this.retained.all()) if (!message.topic.startsWith('$SYS/')) this.retained.delete(message.topic);
    for (const stored of [...messages].sort(bySetOrder)) this.retained.set(fromStoredMessage(stored));
  }

  /** ClusterHandler: the cluster's writes join the next commit. */
  requestCommit(): void {
    this.journal?.markExternal();
  }

  /** ClusterHandler: declared dead while cut off; every client and session here is someone else's now. */
  fenced(): void {
    this.moves.clear();
    for (const session of [...this.sessions.values()]) {
      this.pendingWills.delete(session);
      this.expiring.delete(session);
      this.sessions.detach(session);
    }
    this.journal?.take();
    for (const connection of [...this.connections]) connection.close('server-shutdown');
  }

  /** BrokerContext: session and will handling when a connection ends. */
  connectionClosed(connection: Connection, reason: CloseReason, wasConnected: boolean): void {
    this.connections.delete(connection);
    if (!wasConnected) return;
    const clientId = connection.clientId;
    if (this.online.get(clientId) === connection) this.online.delete(clientId);
    const listener = connection.info.listener;
    this.onlinePerListener.set(listener, (this.onlinePerListener.get(listener) ?? 1) - 1);
    const session = connection.session;
    if (session === undefined || session.link !== connection) return;
    session.link = undefined;
    this.cluster?.clientOffline(clientId, session.persistent);
    if (this.debugEnabled) this.logger.debug({ clientId, reason }, 'client disconnected');
    if (connection.identity !== undefined) this.hooks.disconnected(connection.identity, reason, this.pluginFailed);
    const will = session.will;
    session.will = undefined;
    const now = Date.now();
    // [MQTT-3.1.2-8] the will is published when the connection closes without a normal DISCONNECT.
    // A server shutdown is no normal DISCONNECT either: the will goes out (to persistent sessions, which
    // keep it across the restart) [MQTT-3.1.2-8].
    if (will !== undefined && reason !== 'client-disconnect') {
      const delay = will.properties?.willDelayInterval ?? 0;
      if (delay === 0 || !session.persistent) this.publishWill(will, clientId);
      else {
        // MQTT 5 Will Delay Interval: sent at the earlier of the delay and the session's end [MQTT-3.1.3-9].
        this.pendingWills.set(session, { will, clientId, at: now + Math.min(delay, session.expiryInterval) * 1000 });
      }
    }
    // Messages this member of a shared group had not completed go to another member.
    this.handOnShared(session, false);
    if (!session.persistent) {
      // [MQTT-3.1.2-6] a clean session (Session Expiry 0) ends with its connection.
      this.sessions.discard(session);
      return;
    }
    const pending = this.pendingWills.get(session);
    session.journal?.putSession(session, now, pending === undefined ? undefined : { will: pending.will, at: pending.at });
    if (session.expiryInterval !== NEVER_EXPIRES) {
      session.expiresAt = now + session.expiryInterval * 1000;
      this.expiring.add(session);
    }
  }

  /** BrokerContext: an observer plugin threw; logged, never fatal. */
  readonly pluginFailed = (plugin: string, error: unknown): void => {
    this.logger.error({ plugin, err: error }, 'plugin hook failed');
  };

  /** BrokerContext: ends a session now; a pending will is published first. */
  sessionEnded(session: Session): void {
    const pending = this.pendingWills.get(session);
    if (pending !== undefined) {
      this.pendingWills.delete(session);
      this.publishWill(pending.will, pending.clientId);
    }
    this.expiring.delete(session);
    this.handOnShared(session, true);
    this.sessions.discard(session);
  }

  /** BrokerContext: the session resumed, so its delayed will is not sent. */
  cancelWill(session: Session): void {
    this.pendingWills.delete(session);
    this.expiring.delete(session);
  }

  private publishWill(will: Will, clientId: string): void {
    const message: Message = { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, origin: clientId, receivedAt: Date.now(), clusterId: undefined };
    const props = will.properties;
    if (props !== undefined) {
      const { willDelayInterval: _delay, messageExpiryInterval, ...forwarded } = props;
      if (Object.keys(forwarded).length > 0) message.properties = forwarded;
      if (messageExpiryInterval !== undefined) message.expiresAt = message.receivedAt + messageExpiryInterval * 1000;
    }
    this.dispatch(message);
  }

  private handOnShared(session: Session, ending: boolean): void {
    const taken = session.takeSharedDeliveries();
    for (const delivery of taken) {
      const group = delivery.shareKey === undefined ? undefined : this.router.group(delivery.shareKey);
      const picked = group?.pick(session);
      if (picked === undefined) {
        // No other member can take it: a session that lives on keeps it for when its client returns.
        if (!ending && session.persistent) session.deliver(delivery.message, delivery.qos, delivery.retain, delivery.subscriptionIds, delivery.shareKey);
        continue;
      }
      const qos = delivery.message.qos < picked.subscription.qos ? delivery.message.qos : picked.subscription.qos;
      picked.session.deliver(delivery.message, qos, delivery.retain, delivery.subscriptionIds, delivery.shareKey);
    }
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    this.moves.sweep(now);
    for (const connection of this.connections) connection.checkTimers(now);
    for (const [session, pending] of this.pendingWills) {
      if (now < pending.at) continue;
      this.pendingWills.delete(session);
      this.publishWill(pending.will, pending.clientId);
    }
    for (const session of this.expiring) {
      if (session.link !== undefined) {
        this.expiring.delete(session);
        continue;
      }
      if (now < session.expiresAt) continue;
      if (this.debugEnabled) this.logger.debug({ clientId: session.clientId }, 'session expired');
      this.sessionEnded(session);
    }
  };

  /** Closes every connection and waits for the store to hold everything; the broker accepts nothing afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const connection of [...this.connections]) connection.close('server-shutdown');
    await this.settle();
  }
}

/** Retained messages oldest first, so a drop-oldest retained limit keeps evicting in the order they were set. */
function bySetOrder(a: StoredRetained, b: StoredRetained): number {
  return (a.seq ?? a.receivedAt) - (b.seq ?? b.receivedAt);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] !== undefined) out[key] = value[key];
  }
  return out;
}
