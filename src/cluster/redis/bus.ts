/**
 * The cluster bus on Redis (`ClusterBus`): a façade over the pieces in this folder — connections,
 * membership and adoption, routes, ownership, the outbox and the stream reader, retained changes —
 * and the node's store (`persistence/redis`), whose per-turn transaction every piece's writes join.
 * docs/clustering.md describes the design and its guarantees.
 */
import type { Message } from '../../model/message.js';
import { RedisKeys } from '../../persistence/redis/keys.js';
import { RedisStore } from '../../persistence/redis/redis-store.js';
import { execOrThrow } from '../../persistence/redis/transaction.js';
import type { StoredState } from '../../persistence/types.js';
import type { QoS, Will } from '../../protocol/types.js';
import { isValidNodeId } from '../node-id.js';
import type { ClusterBus, ClusterHandler, ClusterStats } from '../types.js';
import { Adoption } from './adoption.js';
import { ArrivalMarks } from './arrival-marks.js';
import { deliverArrivals } from '../arrivals.js';
import { RedisConnections, type ClusterLogger } from './connections.js';
import { Membership } from './membership.js';
import { Outbox } from './outbox.js';
import { CONTROL, Ownership } from './ownership.js';
import { RetainedChannel } from './retained-channel.js';
import { Routes } from './routes.js';
import { StreamReader } from './stream-reader.js';

/** Options of `new RedisBus`. */
export interface RedisBusOptions {
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  url: string;
  nodeId: string;
  /** Prefix of every key and channel (default "starling"): several clusters can share one Redis. */
  prefix?: string;
  logger: ClusterLogger;
  /** Heartbeat period (default 1000 ms). */
  heartbeatMs?: number;
  /** Expiry of the heartbeat key (default 4000 ms). */
  heartbeatTtlMs?: number;
  /** A node whose heartbeat key has been gone this long is declared dead (default 3000 ms). */
  deadAfterMs?: number;
  /** How long a claim waits for the previous node to let go of a session (default 5000 ms). */
  claimTimeoutMs?: number;
}

/** One node of a cluster on Redis. */
export class RedisBus implements ClusterBus {
  readonly nodeId: string;
  /** The node's store: Redis, in one transaction with the bus's writes of each turn. */
  readonly store: RedisStore;
  /** Messages sent to and received from other nodes, and QoS 0 ones dropped while Redis was away. */
  readonly stats: ClusterStats = { sent: 0, received: 0, droppedQos0: 0 };
  /** The Redis URL without its password, for messages and logs. */
  readonly url: string;
  private readonly log: ClusterLogger;
  private readonly keys: RedisKeys;
  private readonly connections: RedisConnections;
  private readonly routes: Routes;
  private readonly outbox: Outbox;
  private readonly reader: StreamReader;
  private readonly ownership: Ownership;
  private readonly retained: RetainedChannel;
  private readonly membership: Membership;
  private readonly adoption: Adoption;
  private readonly ownChannel: string;
  private handler: ClusterHandler | undefined;
  private synced = false;
  private resyncing = false;
  /** The lease ran out: at the next resynchronisation, the sessions this node still owns are reloaded from Redis. */
  private reloadOwn = false;
  /** Where this node's stream stood when sessions arrived from other nodes. */
  private readonly arrivals = new ArrivalMarks();

  constructor(options: RedisBusOptions) {
    if (!isValidNodeId(options.nodeId)) throw new Error(`invalid node id "${options.nodeId}": use 1-128 of A-Z a-z 0-9 . _ : -`);
    const nodeId = (this.nodeId = options.nodeId);
    const log = (this.log = options.logger);
    const keys = (this.keys = new RedisKeys(options.prefix));
    const connections = (this.connections = new RedisConnections(options.url, nodeId, log));
    const { cmd } = connections;
    this.url = connections.url;
    this.ownChannel = keys.nodeChannel(nodeId);
    this.store = new RedisStore({ redis: cmd, nodeId, keys, log, beforeLoad: () => this.connect() });
    this.retained = new RetainedChannel(nodeId, keys, cmd);
    this.outbox = new Outbox(nodeId, keys, cmd, this.stats, () => this.ready);
    this.reader = new StreamReader(nodeId, keys, connections.reader, {
      isSynced: () => this.synced,
      isClosing: () => connections.closing,
      receive: (value, forNode, id) => this.receive(value, forNode, id),
      unsync: () => (this.synced = false),
      regain: () => void this.regained(),
    }, log);
    this.routes = new Routes(nodeId, keys, cmd, log);
    this.ownership = new Ownership(nodeId, keys, cmd, this.store, log, options.claimTimeoutMs ?? 5000, this.arrivals, (clientId) => !this.reloadOwn && !this.adoption.isArriving(clientId));
    // Order of the writes in each commit's transaction, after the store's own operations.
    for (const part of [this.retained, this.outbox, this.reader, this.routes, this.ownership]) this.store.join(part);
    this.adoption = new Adoption(nodeId, keys, cmd, { store: this.store, reader: this.reader, routes: this.routes, ownership: this.ownership, arrivals: this.arrivals }, log);
    const timing = { heartbeatMs: options.heartbeatMs ?? 1000, heartbeatTtlMs: options.heartbeatTtlMs ?? 4000, deadAfterMs: options.deadAfterMs ?? 3000 };
    this.membership = new Membership(nodeId, keys, connections, timing, {
      isReady: () => this.ready,
      isClosing: () => connections.closing,
      fenced: () => {
        // Not ready from here on: no claim, no commit until the node has rejoined.
        this.synced = false;
        this.arrivals.clear();
        this.handler?.fenced();
      },
      leaseLost: (silentMs) => this.leaseLost(silentMs),
      rejoin: () => {
        this.synced = false;
        return this.resync();
      },
      adopt: (node) => (this.handler === undefined ? Promise.resolve() : this.adoption.adopt(node, this.handler)),
    }, log);
    cmd.on('close', () => this.lost());
    cmd.on('ready', () => void this.regained());
    connections.sub.on('ready', () => void this.regained());
    connections.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.onChannel(channel.toString(), payload));
  }

  get ready(): boolean {
    return this.synced && this.connections.usable;
  }

  // ---- life cycle ----

  /** Connects to Redis (once; the store's `load` needs it before `start`) and waits for an adoption of this node id to end. */
  async connect(): Promise<void> {
    await this.connections.connect();
    await this.membership.waitForAdoption();
  }

  async start(handler: ClusterHandler): Promise<void> {
    this.handler = handler;
    this.ownership.setHandler(handler);
    await this.connect();
    const { sub } = this.connections;
    await sub.subscribe(this.ownChannel, this.keys.routesChannel(), this.keys.retainedChannel());
    await this.membership.clearTombstone();
    await this.resync();
    // Clients connected here when this node id last stopped without closing them: their wills are due.
    for (const [cid, will] of await this.ownership.willsOf(this.nodeId, true)) handler.publishOrphanWill(cid, will);
    this.membership.start();
    this.reader.start(handler);
  }

  async close(): Promise<void> {
    const connections = this.connections;
    connections.closing = true;
    this.membership.stop();
    try {
      // Stop the heartbeat. The routes stay: messages for this node's offline persistent sessions
      // keep arriving in its stream, for its restart under the same id or for the node that adopts
      // it once the heartbeat is missed (docs/clustering.md).
      await this.membership.leave();
    } catch (error) {
      this.log.warn({ err: error }, 'cluster: could not leave the route table cleanly');
    }
    connections.reader.disconnect();
    connections.beat.disconnect();
    await this.reader.stopped();
    connections.sub.disconnect();
    connections.cmd.disconnect();
  }

  private lost(): void {
    if (this.connections.closing || !this.synced) return;
    this.synced = false;
    this.log.error({ node: this.nodeId }, 'cluster: lost Redis; serving local clients only (QoS 0 to other nodes is dropped, QoS 1/2 is not acknowledged) until it returns');
  }

  /**
   * Redis has not confirmed a heartbeat for longer than the heartbeat key lives: the link is cut or
   * too slow, and the others may adopt this node from now on. Its writes stop now (every connection
   * is reset, so nothing unsent reaches Redis late), and it drops every client and session: what it
   * holds in memory may differ from Redis (commits failed), and may become another node's. When
   * Redis answers again it reloads the sessions it still owns from Redis, or — adopted meanwhile —
   * rejoins empty (docs/clustering.md, "Partitions").
   */
  private leaseLost(silentMs: number): void {
    if (this.connections.closing) return;
    this.synced = false;
    this.reloadOwn = true;
    this.log.error(
      { node: this.nodeId, silentMs },
      'cluster: Redis has not confirmed a heartbeat in time (link cut or too slow): dropping every client and session, not ready until Redis answers again',
    );
    this.handler?.fenced();
    this.connections.reset();
  }

  private async regained(): Promise<void> {
    if (this.connections.closing || this.handler === undefined || this.synced || this.resyncing || !this.connections.usable) return;
    this.resyncing = true;
    try {
      // Declared dead (or being adopted) while away: every session here is another node's now.
      const standing = await this.membership.standing().finally(() => (this.resyncing = false));
      if (!standing) {
        // Adopted: the sessions are the adopter's, nothing to reload.
        this.reloadOwn = false;
        await this.membership.fence();
        return;
      }
      await this.resync();
      this.log.info({ node: this.nodeId }, 'cluster: Redis is back; routes and retained messages resynchronised');
    } catch (error) {
      this.log.warn({ err: error }, 'cluster: resynchronisation failed; retrying');
      setTimeout(() => void this.regained(), 500).unref();
    }
  }

  /** (Re)registers this node and reloads the route table and retained messages. */
  private async resync(): Promise<void> {
    const cmd = this.connections.cmd;
    this.resyncing = true;
    this.routes.beginResync();
    try {
      if (this.reloadOwn && this.handler !== undefined) await this.reloadSessions(this.handler);
      const tx = cmd.multi();
      this.membership.register(tx);
      this.routes.register(tx);
      await execOrThrow(tx);
      await this.reader.createGroup(cmd);
      await this.routes.reload(await cmd.smembers(this.keys.nodes()));
      this.membership.connected();
      this.reader.rereadPending();
      this.synced = true;
    } finally {
      this.resyncing = false;
      this.routes.endResync();
    }
    // Retained messages set elsewhere while this node was away.
    if (this.handler !== undefined) await this.retained.reload(this.handler);
  }

  /**
   * After a lost lease: the sessions this node still owns, as Redis has them (as at a restart), and
   * the wills of the clients it dropped. Before the route set is registered again, so it holds
   * their subscriptions.
   */
  private async reloadSessions(handler: ClusterHandler): Promise<void> {
    const state = await this.store.load();
    handler.adoptSessions(state);
    for (const [cid, will] of await this.ownership.willsOf(this.nodeId, true)) handler.publishOrphanWill(cid, will);
    this.reloadOwn = false;
    this.log.info({ node: this.nodeId, sessions: state.sessions.length }, 'cluster: sessions this node still owns reloaded from Redis');
  }

  // ---- what arrives ----

  private onChannel(channel: string, payload: Buffer): void {
    if (channel === this.ownChannel) {
      if (payload[0] === CONTROL) this.ownership.onControl(payload);
      else this.receive(payload);
    } else if (channel === this.keys.routesChannel()) {
      this.routes.onAnnouncement(payload.toString());
    } else if (channel === this.keys.retainedChannel() && this.handler !== undefined) {
      this.retained.onAnnouncement(payload, this.handler);
    }
  }

  /**
   * Delivers what another node sent (one envelope or a batch); `forNode`: the dead node it was
   * redirected from; `id`: its entry in this node's stream (sessions that arrived after it was
   * written do not get it).
   */
  private receive(data: Buffer, forNode?: string, id?: string): void {
    if (this.handler === undefined) return;
    try {
      const only = forNode === undefined ? undefined : this.adoption.adoptedFrom(forNode);
      const except = forNode === undefined && id !== undefined ? this.arrivals.arrivedAfter(id) : undefined;
      deliverArrivals(this.handler, data, this.stats, only, except);
    } catch (error) {
      this.log.error({ err: error }, 'cluster: undecodable message from another node dropped');
    }
  }

  // ---- routes and messages ----

  addInterest(key: string): void {
    if (this.routes.add(key)) this.handler?.requestCommit();
  }

  removeInterest(key: string): void {
    if (this.routes.remove(key)) this.handler?.requestCommit();
  }

  publish(message: Message): ReadonlySet<string> | undefined {
    const table = this.routes.table;
    const before = this.outbox.queued;
    const served = this.outbox.publish(message, table.match(message.topic), table);
    // Only traffic that leaves this node joins (and so waits for) the next commit.
    if (this.outbox.queued !== before) this.handler?.requestCommit();
    return served;
  }

  wantedElsewhere(topic: string): boolean {
    return this.routes.table.wantedBeyond(topic, this.nodeId);
  }

  forward(node: string, clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): void {
    if (this.outbox.forward(node, clientId, message, qos, retain, subscriptionIds)) this.handler?.requestCommit();
  }

  // ---- client ids ----

  claimSession(clientId: string, load: boolean, clean = false): Promise<StoredState | undefined> {
    if (!this.ready) return Promise.reject(new Error('cluster: Redis unavailable'));
    return this.ownership.claim(clientId, load, clean);
  }

  clientOnline(clientId: string, will: Will | undefined): void {
    this.ownership.online(clientId, will);
    this.handler?.requestCommit();
  }

  clientOffline(clientId: string, persistent: boolean): void {
    this.ownership.offline(clientId, persistent);
    this.handler?.requestCommit();
  }
}
