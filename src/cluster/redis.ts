/**
 * The cluster on Redis: routing by interest, cross-node messages (QoS 0 over pub/sub, QoS 1/2 over a
 * Redis Stream per node with consumer-group acknowledgement), and the shared state (persistent
 * sessions, retained messages, client-id ownership) as this node's store. A node heartbeats in
 * Redis; when one dies, another adopts its sessions, replays its stream and publishes its clients'
 * wills. docs/clustering.md describes the design and its guarantees.
 */
import { deserialize, serialize } from 'node:v8';
import { Redis } from 'ioredis';
import type { Message } from '../model/message.js';
import type { Persistence, StoreOp, StoredDelivery, StoredMessage, StoredRetained, StoredSession, StoredState } from '../persistence/types.js';
import type { QoS, Will } from '../protocol/types.js';
import { decodeEnvelope, encodeBatches, encodeEnvelope, forEachEnvelope } from './envelope.js';
import { InterestTable } from './interest-table.js';
import { isValidNodeId } from './node-id.js';
import type { ClusterBus, ClusterHandler, ClusterStats } from './types.js';

/** The logging the cluster needs (pino-compatible). */
export interface ClusterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RedisClusterOptions {
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

/** What a node's stream holds per entry: one field with the envelope. */
const FIELD = 'm';
const GROUP = 'starling';
const STREAM_BATCH = 512;
/** Clients whose stored sessions are read at once when a node starts. */
const LOAD_BATCH = 256;
/**
 * Envelope bytes on their way to Redis (queued for the next commit or in a commit not yet answered)
 * beyond which QoS 0 messages for other nodes are dropped (counted), as QoS 0 to a slow client is:
 * without it a QoS 0 flood faster than Redis grows the node's memory without bound. QoS 1/2 are
 * bounded by the publishers' inflight windows (their acknowledgements wait for the commit).
 */
const MAX_PENDING_BYTES = 4 * 1024 * 1024;
const CONTROL = 0x7b; // "{": a JSON control message on a node channel; envelopes start with 1, batches with 2.
const NO_GROUPS: readonly string[] = [];
const EMPTY_SET: ReadonlySet<string> = new Set();

/** Stored form of a delivery: the delivery and its message body together (no shared bodies in Redis). */
interface StoredDeliveryRecord {
  d: Omit<StoredDelivery, 'messageId'>;
  m: Omit<StoredMessage, 'id'>;
}

type Control = { t: 'release'; cid: string; from: string; rid: number } | { t: 'released'; rid: number };


export class RedisCluster implements ClusterBus {
  readonly nodeId: string;
  readonly store: Persistence;
  private readonly prefix: string;
  private readonly log: ClusterLogger;
  private readonly heartbeatMs: number;
  private readonly heartbeatTtlMs: number;
  private readonly deadAfterMs: number;
  private readonly claimTimeoutMs: number;
  /** Commands and transactions. Commands fail at once while disconnected (no offline queue). */
  private readonly cmd: Redis;
  /**
   * Heartbeat and failure detection, on their own connection: a node busy with a large backlog of
   * commands still beats on time (and is not declared dead for being busy).
   */
  private readonly beat: Redis;
  /** Pub/sub: this node's channel, route changes, retained changes. */
  private readonly sub: Redis;
  /** The blocking stream reader. */
  private readonly reader: Redis;
  private handler: ClusterHandler | undefined;
  private readonly table = new InterestTable();
  /** This node's own interest keys, with how they are held (for resynchronisation). */
  private readonly interest = new Set<string>();
  private synced = false;
  private resyncing = false;
  private readonly routeBacklog: string[] = [];
  private connectedSince = 0;
  private closing = false;
  private fencing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly missingSince = new Map<string, number>();
  private readonly reportedErrors = new Set<string>();
  private lastError: string | undefined;
  /** The Redis URL without its password, for messages and logs. */
  readonly url: string;
  private nextRid = 1;
  private readonly releaseWaiters = new Map<number, () => void>();
  private readerLoop: Promise<void> | undefined;
  private connecting: Promise<void> | undefined;
  private readPending = true;
  private adopting = false;
  private ticking = false;
  private parked: (() => void) | undefined;

  // One transaction per commit: what this turn adds besides the store's own operations.
  private outQos0 = new Map<string, Buffer[]>();
  private outStream = new Map<string, Buffer[]>();
  private outAcks: string[] = [];
  private outRoutes: string[] = [];
  private outWills: { cid: string; will: Will | undefined }[] = [];
  private outOffline: string[] = [];
  /** Envelope bytes queued for the next commit, and in commits Redis has not answered yet. */
  private outBytes = 0;
  private readonly idPrefix: string;
  private idCounter = 0;
  private inflightBytes = 0;
  /** Message bodies by journal id, until their last delivery lets go (deliveries embed them). */
  private readonly bodies = new Map<number, Omit<StoredMessage, 'id'>>();
  private nextLoadedId = -1;
  /** Messages sent to and received from other nodes, and QoS 0 ones dropped while Redis was away. */
  readonly stats: ClusterStats = { sent: 0, received: 0, droppedQos0: 0 };

  constructor(options: RedisClusterOptions) {
    if (!isValidNodeId(options.nodeId)) throw new Error(`invalid node id "${options.nodeId}": use 1-128 of A-Z a-z 0-9 . _ : -`);
    this.nodeId = options.nodeId;
    this.prefix = options.prefix ?? 'starling';
    this.idPrefix = `${options.nodeId}/${Date.now().toString(36)}/`;
    this.url = options.url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
    this.log = options.logger;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.heartbeatTtlMs = options.heartbeatTtlMs ?? 4000;
    this.deadAfterMs = options.deadAfterMs ?? 3000;
    this.claimTimeoutMs = options.claimTimeoutMs ?? 5000;
    const retryStrategy = (times: number): number => Math.min(100 * times, 2000);
    const base = { lazyConnect: true, retryStrategy, maxRetriesPerRequest: 1, connectionName: `starling:${this.nodeId}` } as const;
    this.cmd = new Redis(options.url, { ...base, enableOfflineQueue: false });
    this.beat = new Redis(options.url, { ...base, enableOfflineQueue: false });
    this.sub = new Redis(options.url, { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.reader = new Redis(options.url, { ...base, enableOfflineQueue: false });
    for (const [name, client] of [
      ['commands', this.cmd],
      ['heartbeat', this.beat],
      ['subscriber', this.sub],
      ['reader', this.reader],
    ] as const) {
      client.on('error', (error: Error) => this.connectionError(name, error));
      client.on('ready', () => this.reportedErrors.delete(name));
    }
    this.cmd.on('close', () => this.lost());
    this.cmd.on('ready', () => void this.regained());
    this.sub.on('ready', () => void this.regained());
    this.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.onChannel(channel.toString(), payload));
    this.cmd.defineCommand('starlingXadd', { numberOfKeys: 0, lua: ROUTED_XADD });
    this.store = this.makeStore();
  }

  get ready(): boolean {
    return this.synced && this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  // ---- keys ----
  private key(...parts: string[]): string {
    return `${this.prefix}:${parts.join(':')}`;
  }
  private nodeChannel(node: string): string {
    return this.key('ch', node);
  }
  private streamKey(node: string): string {
    return this.key('stream', node);
  }

  // ---- life cycle ----

  /** Connects to Redis (once; the store's `load` needs it before `start`). */
  connect(): Promise<void> {
    this.connecting ??= Promise.all([this.cmd.connect(), this.beat.connect(), this.sub.connect(), this.reader.connect()]).catch((error: unknown) => {
      this.closing = true;
      for (const client of [this.cmd, this.beat, this.sub, this.reader]) client.disconnect();
      throw new Error(`cluster: cannot reach Redis at ${this.url}: ${this.lastError ?? (error instanceof Error ? error.message : String(error))}`);
    }).then(async () => {
      // SET … GET (client-id ownership) needs Redis 6.2.
      const info = await this.cmd.info('server');
      const version = /redis_version:(\d+)\.(\d+)/.exec(info);
      if (version !== null && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
        throw new Error(`cluster: Redis ${version[1]}.${version[2]} is too old; Starling needs Redis 6.2 or later`);
      }
    });
    return this.connecting;
  }

  async start(handler: ClusterHandler): Promise<void> {
    this.handler = handler;
    await this.connect();
    await this.waitForAdoption();
    await this.sub.subscribe(this.nodeChannel(this.nodeId), this.key('ch', 'routes'), this.key('ch', 'retained'));
    // A fresh start holds nothing: a tombstone from an earlier life (declared dead, adopted) is void.
    await this.cmd.del(this.key('dead', this.nodeId));
    await this.resync();
    // Clients connected here when this node id last stopped without closing them: their wills are due.
    const willsKey = this.key('node', this.nodeId, 'wills');
    const wills = await this.cmd.hgetallBuffer(willsKey);
    await this.cmd.del(willsKey);
    for (const [cid, value] of Object.entries(wills)) handler.publishOrphanWill(cid, deserialize(value) as Will);
    this.timer = setInterval(() => void this.tick(), this.heartbeatMs);
    this.timer.unref();
    this.readerLoop = this.consume();
  }

  /** A node restarted while another is adopting its previous life waits for that to finish (≤ 60 s). */
  private async waitForAdoption(): Promise<void> {
    const deadline = Date.now() + 60_000;
    let logged = false;
    while ((await this.cmd.exists(this.key('adopt', this.nodeId))) === 1 && Date.now() < deadline) {
      if (!logged) this.log.info({ node: this.nodeId }, 'cluster: another node is adopting this node id\'s previous sessions; waiting for it');
      logged = true;
      await sleep(200);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    try {
      if (this.cmd.status === 'ready') {
        // Stop the heartbeat. The routes stay: messages for this node's offline persistent sessions
        // keep arriving in its stream, for its restart under the same id or for the node that adopts
        // it once the heartbeat is missed (docs/clustering.md).
        await this.cmd.del(this.key('alive', this.nodeId));
      }
    } catch (error) {
      this.log.warn({ err: error }, 'cluster: could not leave the route table cleanly');
    }
    this.reader.disconnect();
    this.beat.disconnect();
    await this.readerLoop?.catch(() => undefined);
    this.sub.disconnect();
    this.cmd.disconnect();
  }

  private connectionError(name: string, error: Error): void {
    this.lastError = error.message;
    // Once per connection and outage: ioredis retries every few hundred milliseconds.
    if (this.closing || this.reportedErrors.has(name)) return;
    this.reportedErrors.add(name);
    this.log.warn({ connection: name, err: error.message }, 'cluster: Redis connection error (retrying; logged once per outage)');
  }

  private lost(): void {
    if (this.closing || !this.synced) return;
    this.synced = false;
    this.log.error({ node: this.nodeId }, 'cluster: lost Redis; serving local clients only (QoS 0 to other nodes is dropped, QoS 1/2 is not acknowledged) until it returns');
  }

  private async regained(): Promise<void> {
    if (this.closing || this.handler === undefined || this.synced || this.resyncing) return;
    if (this.cmd.status !== 'ready' || this.sub.status !== 'ready') return;
    try {
      await this.resync();
      this.log.info({ node: this.nodeId }, 'cluster: Redis is back; routes and retained messages resynchronised');
    } catch (error) {
      this.log.warn({ err: error }, 'cluster: resynchronisation failed; retrying');
      setTimeout(() => void this.regained(), 500).unref();
    }
  }

  /** (Re)registers this node and reloads the route table and retained messages. */
  private async resync(): Promise<void> {
    this.resyncing = true;
    try {
      const me = this.nodeId;
      const tx = this.cmd.multi();
      tx.sadd(this.key('nodes'), me);
      tx.set(this.key('alive', me), String(Date.now()), 'PX', this.heartbeatTtlMs);
      tx.del(this.key('routes', me));
      if (this.interest.size > 0) tx.sadd(this.key('routes', me), ...this.interest);
      tx.publish(this.key('ch', 'routes'), `${me}\n*`);
      await execOrThrow(tx);
      try {
        await this.cmd.xgroup('CREATE', this.streamKey(me), GROUP, '0', 'MKSTREAM');
      } catch (error) {
        if (!String(error).includes('BUSYGROUP')) throw error;
      }
      const nodes = await this.cmd.smembers(this.key('nodes'));
      const known = new Set(nodes);
      for (const node of [...this.table.nodes()]) if (!known.has(node) && node !== me) this.table.removeNode(node);
      for (const node of nodes) {
        if (node === me) continue;
        this.table.replaceNode(node, await this.cmd.smembers(this.key('routes', node)));
      }
      this.table.replaceNode(me, this.interest);
      if (this.connectedSince === 0 || !this.synced) this.connectedSince = Date.now();
      this.readPending = true;
      this.synced = true;
    } finally {
      this.resyncing = false;
      const backlog = this.routeBacklog.splice(0);
      for (const change of backlog) this.applyRouteChange(change);
    }
    // Retained messages set elsewhere while this node was away.
    const retained = await this.cmd.hgetallBuffer(this.key('retained'));
    this.handler?.replaceRetained(Object.values(retained).map((value) => deserialize(value) as StoredRetained));
  }

  // ---- heartbeat and failure detection ----

  private async tick(): Promise<void> {
    if (this.closing || !this.ready || this.ticking || this.beat.status !== 'ready') return;
    this.ticking = true;
    try {
      // Heartbeat, unless the others declared this node dead while it was cut off (then: fenced).
      const alive = (await this.beat.eval(
        "if redis.call('exists', KEYS[2]) == 1 then return 0 end redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1",
        2,
        this.key('alive', this.nodeId),
        this.key('dead', this.nodeId),
        String(Date.now()),
        String(this.heartbeatTtlMs),
      )) as number;
      if (alive === 0) {
        await this.fence();
        return;
      }
      await this.detectDeadNodes();
    } catch (error) {
      if (!this.closing && this.ready) this.log.warn({ err: error }, 'cluster: heartbeat failed');
    } finally {
      this.ticking = false;
    }
  }

  private async fence(): Promise<void> {
    if (this.fencing) return;
    this.fencing = true;
    try {
      this.log.error({ node: this.nodeId }, 'cluster: this node was declared dead while cut off from Redis and its sessions were adopted: dropping every client, rejoining empty');
      this.handler?.fenced();
      await this.cmd.del(this.key('dead', this.nodeId));
      this.synced = false;
      await this.resync();
    } finally {
      this.fencing = false;
    }
  }

  private async detectDeadNodes(): Promise<void> {
    const now = Date.now();
    // Only a node that has itself been connected for a while judges others (after a Redis restart,
    // every heartbeat key may be gone until the nodes beat again).
    if (now - this.connectedSince < this.heartbeatTtlMs + this.deadAfterMs) return;
    const nodes = await this.beat.smembers(this.key('nodes'));
    for (const node of nodes) {
      if (node === this.nodeId) continue;
      if ((await this.beat.exists(this.key('alive', node))) === 1) {
        this.missingSince.delete(node);
        continue;
      }
      const since = this.missingSince.get(node);
      if (since === undefined) this.missingSince.set(node, now);
      else if (now - since >= this.deadAfterMs) {
        this.missingSince.delete(node);
        // Not awaited: the heartbeat goes on while the adoption runs.
        this.adopt(node).catch((error: unknown) => this.log.error({ node, err: error }, 'cluster: adopting a dead node failed; another check will retry'));
      }
    }
  }

  /** Takes over a dead node: its clients' wills, its sessions, its undelivered stream entries. */
  private async adopt(dead: string): Promise<void> {
    const me = this.nodeId;
    const won = await this.cmd.set(this.key('adopt', dead), me, 'PX', 60_000, 'NX');
    if (won !== 'OK') return;
    const handler = this.handler!;
    this.log.warn({ node: dead }, "cluster: node missed its heartbeats: adopting its sessions, publishing its clients' wills");
    // This node's own stream waits while the dead node's entries are replayed (keeps their order).
    await this.parkConsumer();
    try {
      // 1. Its persistent sessions come here, with their subscriptions (so routes point here too).
      //    Meanwhile messages for the dead node keep collecting in its stream.
      const clients = await this.cmd.smembers(this.key('node', dead, 'clients'));
      const state: StoredState = { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [] };
      for (const cid of clients) {
        const moved = (await this.cmd.eval(
          "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2]) return 1 end return 0",
          1,
          this.key('owner', cid),
          dead,
          me,
        )) as number;
        if (moved === 0) continue;
        await this.cmd.sadd(this.key('node', me, 'clients'), cid);
        mergeState(state, await this.loadClient(cid));
      }
      handler.adoptSessions(state);
      handler.requestCommit();
      await handler.settle();
      // 2. Tombstone: from now on every node's stream writes for the dead node land in this node's
      //    stream (see ROUTED_XADD), so its own stream is frozen; and should it come back from a
      //    network cut, it finds itself fenced and drops its clients.
      await this.cmd.set(this.key('dead', dead), me);
      // 3. The wills of the clients that were connected there.
      const wills = await this.cmd.hgetallBuffer(this.key('node', dead, 'wills'));
      for (const [cid, value] of Object.entries(wills)) handler.publishOrphanWill(cid, deserialize(value) as Will);
      // 4. What was sent to the dead node and not delivered there goes to the sessions now held here.
      const entries = (await this.cmd.xrangeBuffer(this.streamKey(dead), '-', '+')) as [Buffer, Buffer[]][];
      let replayed = 0;
      for (const [, fields] of entries) {
        const value = fieldValue(fields);
        if (value === undefined) continue;
        forEachEnvelope(value, (envelope) => {
          const { message, groups, target } = decodeEnvelope(envelope);
          if (target === undefined) handler.deliverFromCluster(message, groups);
          else handler.deliverTargeted(target.clientId, message, target.qos, target.retain, target.subscriptionIds);
          replayed++;
        });
      }
      handler.requestCommit();
      await handler.settle();
      // 5. Only now is the dead node taken out of the route table.
      this.table.removeNode(dead);
      const tx = this.cmd.multi();
      tx.del(this.streamKey(dead), this.key('routes', dead), this.key('node', dead, 'clients'), this.key('node', dead, 'wills'));
      tx.srem(this.key('nodes'), dead);
      tx.publish(this.key('ch', 'routes'), `${dead}\n!`);
      tx.del(this.key('adopt', dead));
      await execOrThrow(tx);
      this.log.warn({ node: dead, sessions: state.sessions.length, wills: Object.keys(wills).length, replayed }, 'cluster: dead node adopted');
    } finally {
      this.adopting = false;
    }
  }

  /** Stops this node's stream reader between two batches; resolves once it waits (or after 2 s). */
  private parkConsumer(): Promise<void> {
    this.adopting = true;
    return Promise.race([new Promise<void>((resolve) => (this.parked = resolve)), sleep(2000)]);
  }

  // ---- routes ----

  addInterest(key: string): void {
    if (this.interest.has(key)) return;
    this.interest.add(key);
    this.table.add(this.nodeId, key);
    this.outRoutes.push(`+${key}`);
    this.handler?.requestCommit();
  }

  removeInterest(key: string): void {
    if (!this.interest.delete(key)) return;
    this.table.remove(this.nodeId, key);
    this.outRoutes.push(`-${key}`);
    this.handler?.requestCommit();
  }

  private applyRouteChange(text: string): void {
    const nl = text.indexOf('\n');
    const node = text.slice(0, nl);
    if (node === this.nodeId) return;
    const op = text.charAt(nl + 1);
    const key = text.slice(nl + 2);
    switch (op) {
      case '+':
        this.table.add(node, key);
        break;
      case '-':
        this.table.remove(node, key);
        break;
      case '!':
        this.table.removeNode(node);
        break;
      case '*':
        // A node (re)registered or left: reload its whole set.
        this.cmd.smembers(this.key('routes', node)).then(
          (keys) => this.table.replaceNode(node, keys),
          (error: unknown) => this.log.warn({ node, err: error }, 'cluster: could not reload routes of a node'),
        );
        break;
    }
  }

  private onChannel(channel: string, payload: Buffer): void {
    if (channel === this.nodeChannel(this.nodeId)) {
      if (payload[0] === CONTROL) this.onControl(JSON.parse(payload.toString()) as Control);
      else this.receive(payload);
      return;
    }
    if (channel === this.key('ch', 'routes')) {
      const text = payload.toString();
      if (this.resyncing) this.routeBacklog.push(text);
      else this.applyRouteChange(text);
      return;
    }
    if (channel === this.key('ch', 'retained')) {
      const nl = payload.indexOf(10);
      if (payload.toString('utf8', 0, nl) === this.nodeId) return;
      this.handler?.retainedFromCluster(deserialize(payload.subarray(nl + 1)) as StoredRetained | { topic: string; cleared: true });
    }
  }

  /** Delivers what another node sent (one envelope or a batch). */
  private receive(data: Buffer): void {
    try {
      forEachEnvelope(data, this.receiveOne);
    } catch (error) {
      this.log.error({ err: error }, 'cluster: undecodable message from another node dropped');
    }
  }

  private readonly receiveOne = (envelope: Buffer): void => {
    const { message, groups, target } = decodeEnvelope(envelope);
    this.stats.received++;
    if (target === undefined) this.handler?.deliverFromCluster(message, groups);
    else this.handler?.deliverTargeted(target.clientId, message, target.qos, target.retain, target.subscriptionIds);
  };

  // ---- messages ----

  publish(message: Message): ReadonlySet<string> | undefined {
    const route = this.table.match(message.topic);
    if (route.nodes.length === 0 && route.groups.size === 0) return EMPTY_SET;
    const me = this.nodeId;
    if (message.qos === 0 && (!this.ready || this.outBytes + this.inflightBytes > MAX_PENDING_BYTES)) {
      // Redis is away or behind: QoS 0 for other nodes is dropped (counted); shared groups are served
      // by local members if there are any.
      for (const node of route.nodes) if (node !== me) this.stats.droppedQos0++;
      return undefined;
    }
    let local: Set<string> | undefined;
    let remoteGroups: Map<string, string[]> | undefined;
    for (const [key, holders] of route.groups) {
      const node = this.table.pick(key, holders);
      if (node === me) (local ??= new Set()).add(key);
      else if (node !== undefined) {
        remoteGroups ??= new Map();
        const list = remoteGroups.get(node);
        if (list === undefined) remoteGroups.set(node, [key]);
        else list.push(key);
      }
    }
    let plain: Buffer | undefined;
    let sent = 0;
    const out = message.qos === 0 ? this.outQos0 : this.outStream;
    message.clusterId ??= this.nextClusterId();
    for (const node of route.nodes) {
      if (node === me) continue;
      const groups = remoteGroups?.get(node);
      if (groups !== undefined) remoteGroups!.delete(node);
      const buf = groups === undefined ? (plain ??= encodeEnvelope(message, NO_GROUPS)) : encodeEnvelope(message, groups);
      pushTo(out, node, buf);
      this.outBytes += buf.length;
      sent++;
    }
    if (remoteGroups !== undefined) {
      for (const [node, groups] of remoteGroups) {
        const buf = encodeEnvelope(message, groups);
        pushTo(out, node, buf);
        this.outBytes += buf.length;
        sent++;
      }
    }
    // Only traffic that leaves this node joins (and so waits for) the next commit.
    if (sent > 0) this.handler?.requestCommit();
    return local ?? EMPTY_SET;
  }

  forward(node: string, clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): void {
    if (qos === 0 && (!this.ready || this.outBytes + this.inflightBytes > MAX_PENDING_BYTES)) {
      this.stats.droppedQos0++;
      return;
    }
    message.clusterId ??= this.nextClusterId();
    const buf = encodeEnvelope(message, NO_GROUPS, { clientId, qos, retain, subscriptionIds });
    pushTo(qos === 0 ? this.outQos0 : this.outStream, node, buf);
    this.outBytes += buf.length;
    this.handler?.requestCommit();
  }

  /** An id unique in the cluster: this node's id, its start time, a counter. */
  private nextClusterId(): string {
    return `${this.idPrefix}${(this.idCounter++).toString(36)}`;
  }

  // ---- sessions ----

  async claimSession(clientId: string, load: boolean): Promise<StoredState | undefined> {
    if (!this.ready) throw new Error('cluster: Redis unavailable');
    const previous = (await this.cmd.call('SET', this.key('owner', clientId), this.nodeId, 'GET')) as string | null;
    if (previous !== null && previous !== this.nodeId && (await this.cmd.exists(this.key('alive', previous))) === 1) {
      await this.requestRelease(previous, clientId);
    }
    if (previous !== null && previous !== this.nodeId) {
      await this.cmd.srem(this.key('node', previous, 'clients'), clientId);
      await this.cmd.sadd(this.key('node', this.nodeId, 'clients'), clientId);
    }
    const state = load ? await this.loadClient(clientId) : undefined;
    // Two connections with one client id on two nodes at once: the later claim wins.
    if ((await this.cmd.get(this.key('owner', clientId))) !== this.nodeId) throw new Error('client id claimed by another node meanwhile');
    return state;
  }

  private requestRelease(node: string, clientId: string): Promise<void> {
    const rid = this.nextRid++;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.releaseWaiters.delete(rid);
        this.log.warn({ clientId, node }, 'cluster: the node holding the session did not let go in time; taking it as stored');
        resolve();
      }, this.claimTimeoutMs);
      this.releaseWaiters.set(rid, () => {
        clearTimeout(timer);
        resolve();
      });
      const control: Control = { t: 'release', cid: clientId, from: this.nodeId, rid };
      this.cmd.publish(this.nodeChannel(node), JSON.stringify(control)).catch(() => undefined);
    });
  }

  private onControl(control: Control): void {
    if (control.t === 'released') {
      this.releaseWaiters.get(control.rid)?.();
      this.releaseWaiters.delete(control.rid);
      return;
    }
    const reply: Control = { t: 'released', rid: control.rid };
    const answer = (): void => void this.cmd.publish(this.nodeChannel(control.from), JSON.stringify(reply)).catch(() => undefined);
    this.handler!.releaseSession(control.cid, control.from).then(answer, (error: unknown) => {
      this.log.error({ clientId: control.cid, err: error }, 'cluster: letting go of a session failed');
      answer();
    });
  }

  clientOnline(clientId: string, will: Will | undefined): void {
    this.outWills.push({ cid: clientId, will });
    this.handler?.requestCommit();
  }

  clientOffline(clientId: string, persistent: boolean): void {
    this.outWills.push({ cid: clientId, will: undefined });
    if (!persistent) this.outOffline.push(clientId);
    this.handler?.requestCommit();
  }

  /** Reads one client's stored session, deliveries (bodies given fresh local ids) and QoS 2 ids. */
  private async loadClient(clientId: string): Promise<StoredState> {
    const state: StoredState = { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [] };
    const [session, deliveries, qos2] = await Promise.all([
      this.cmd.getBuffer(this.key('session', clientId)),
      this.cmd.hgetallBuffer(this.key('dlv', clientId)),
      this.cmd.smembers(this.key('qos2', clientId)),
    ]);
    if (session === null) return state;
    state.sessions.push(deserialize(session) as StoredSession);
    const list: StoredDelivery[] = [];
    for (const value of Object.values(deliveries)) {
      const record = deserialize(value) as StoredDeliveryRecord;
      const id = this.nextLoadedId--;
      this.bodies.set(id, record.m);
      state.messages.push({ ...record.m, id });
      list.push({ ...record.d, messageId: id });
    }
    list.sort((a, b) => a.seq - b.seq);
    state.deliveries.push(...list);
    for (const packetId of qos2) state.incomingQos2.push({ clientId, packetId: Number(packetId) });
    return state;
  }

  // ---- the stream consumer ----

  private async consume(): Promise<void> {
    const me = this.nodeId;
    while (!this.closing) {
      if (this.adopting) {
        this.parked?.();
        this.parked = undefined;
        await sleep(20);
        continue;
      }
      if (this.reader.status !== 'ready' || !this.synced) {
        await sleep(200);
        continue;
      }
      try {
        const pending = this.readPending;
        const args: (string | number)[] = ['GROUP', GROUP, me, 'COUNT', STREAM_BATCH];
        if (!pending) args.push('BLOCK', 1000);
        args.push('STREAMS', this.streamKey(me), pending ? '0' : '>');
        const reply = (await this.reader.callBuffer('XREADGROUP', ...args)) as [Buffer, [Buffer, Buffer[] | null][]][] | null;
        const entries = reply?.[0]?.[1] ?? [];
        if (pending && entries.length === 0) this.readPending = false;
        if (entries.length === 0) continue;
        for (const [id, fields] of entries) {
          this.outAcks.push(id.toString());
          const value = fields === null ? undefined : fieldValue(fields);
          if (value !== undefined) this.receive(value);
        }
        this.handler?.requestCommit();
        // Wait until these deliveries and their acknowledgements are committed before reading more:
        // bounded memory, and a pending re-read never sees entries already being handled.
        await this.handler?.settle();
        if (pending) this.readPending = true;
      } catch (error) {
        if (this.closing) return;
        if (String(error).includes('NOGROUP')) this.synced = false;
        this.readPending = true;
        await sleep(200);
        if (this.synced) this.log.warn({ err: error }, 'cluster: reading this node\'s stream failed; retrying');
        else void this.regained();
      }
    }
  }

  // ---- the store ----

  private makeStore(): Persistence {
    return {
      name: 'redis',
      load: () => this.loadOwned(),
      apply: (ops) => this.apply(ops),
      close: () => Promise.resolve(),
    };
  }

  /** At start-up: every retained message, and the sessions this node id still owns. */
  private async loadOwned(): Promise<StoredState> {
    await this.connect();
    await this.waitForAdoption();
    const state: StoredState = { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [] };
    const retained = await this.cmd.hgetallBuffer(this.key('retained'));
    for (const value of Object.values(retained)) state.retained.push(deserialize(value) as StoredRetained);
    const mine = this.key('node', this.nodeId, 'clients');
    const clients = await this.cmd.smembers(mine);
    // Many clients at once (pipelined on the connection), not one round trip after another.
    for (let i = 0; i < clients.length; i += LOAD_BATCH) {
      const loaded = await Promise.all(
        clients.slice(i, i + LOAD_BATCH).map(async (cid) => {
          const owner = await this.cmd.get(this.key('owner', cid));
          if (owner === null || owner === this.nodeId) return this.loadClient(cid);
          await this.cmd.srem(mine, cid);
          return undefined;
        }),
      );
      for (const client of loaded) if (client !== undefined) mergeState(state, client);
    }
    return state;
  }

  /** One transaction: the store operations of a commit and the cluster writes of the same turn. */
  private apply(ops: readonly StoreOp[]): Promise<void> {
    const tx = this.cmd.multi();
    const me = this.nodeId;
    for (const op of ops) {
      switch (op.op) {
        case 'putSession':
          tx.set(this.key('session', op.session.clientId), serialize(op.session));
          tx.sadd(this.key('node', me, 'clients'), op.session.clientId);
          break;
        case 'deleteSession':
          tx.del(this.key('session', op.clientId), this.key('dlv', op.clientId), this.key('qos2', op.clientId));
          tx.srem(this.key('node', me, 'clients'), op.clientId);
          break;
        case 'putMessage': {
          const { id, ...body } = op.message;
          this.bodies.set(id, body);
          break;
        }
        case 'deleteMessage':
          this.bodies.delete(op.id);
          break;
        case 'putDelivery': {
          const { messageId, ...delivery } = op.delivery;
          const body = this.bodies.get(messageId);
          if (body === undefined) {
            this.log.error({ clientId: delivery.clientId, messageId }, 'cluster store: delivery of an unknown message body not stored');
            break;
          }
          const record: StoredDeliveryRecord = { d: delivery, m: body };
          tx.hset(this.key('dlv', delivery.clientId), String(delivery.seq), serialize(record));
          break;
        }
        case 'deleteDelivery':
          tx.hdel(this.key('dlv', op.clientId), String(op.seq));
          break;
        case 'putIncomingQos2':
          tx.sadd(this.key('qos2', op.clientId), String(op.packetId));
          break;
        case 'deleteIncomingQos2':
          tx.srem(this.key('qos2', op.clientId), String(op.packetId));
          break;
        case 'putRetained':
          tx.hset(this.key('retained'), op.message.topic, serialize(op.message));
          tx.publish(this.key('ch', 'retained'), Buffer.concat([Buffer.from(`${me}\n`), serialize(op.message)]));
          break;
        case 'deleteRetained':
          tx.hdel(this.key('retained'), op.topic);
          tx.publish(this.key('ch', 'retained'), Buffer.concat([Buffer.from(`${me}\n`), serialize({ topic: op.topic, cleared: true })]));
          break;
      }
    }
    // Cluster writes of this turn, in the same transaction (a delivery and the acknowledgement of
    // the stream entry that brought it are committed together).
    const routed = tx as unknown as RoutedXadd;
    const prefix = `${this.prefix}:`;
    // One stream entry / one pub/sub message per node per turn (batches of up to 1 MiB).
    for (const [node, list] of this.outStream) for (const batch of encodeBatches(list)) routed.starlingXadd(node, prefix, batch);
    for (const [node, list] of this.outQos0) for (const batch of encodeBatches(list)) tx.publish(this.nodeChannel(node), batch);
    if (this.outAcks.length > 0) {
      tx.xack(this.streamKey(me), GROUP, ...this.outAcks);
      tx.xdel(this.streamKey(me), ...this.outAcks);
    }
    for (const change of this.outRoutes) {
      if (change.charAt(0) === '+') tx.sadd(this.key('routes', me), change.slice(1));
      else tx.srem(this.key('routes', me), change.slice(1));
      tx.publish(this.key('ch', 'routes'), `${me}\n${change}`);
    }
    for (const { cid, will } of this.outWills) {
      if (will === undefined) tx.hdel(this.key('node', me, 'wills'), cid);
      else tx.hset(this.key('node', me, 'wills'), cid, serialize(will));
    }
    for (const cid of this.outOffline) {
      tx.eval("if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end return 0", 1, this.key('owner', cid), me);
    }
    let sent = 0;
    for (const list of this.outStream.values()) sent += list.length;
    for (const list of this.outQos0.values()) sent += list.length;
    this.stats.sent += sent;
    this.outStream = new Map();
    this.outQos0 = new Map();
    this.outAcks = [];
    this.outRoutes = [];
    this.outWills = [];
    this.outOffline = [];
    const bytes = this.outBytes;
    this.outBytes = 0;
    this.inflightBytes += bytes;
    const release = (): void => {
      this.inflightBytes -= bytes;
    };
    return execOrThrow(tx).then(release, (error: unknown) => {
      release();
      throw error;
    });
  }
}

/**
 * XADD to a node's stream, or, when that node was declared dead, to the stream of the node that
 * adopted it (following up to 8 adoptions): nothing is written to a stream nobody will read.
 */
const ROUTED_XADD = `
local node = ARGV[1]
for i = 1, 8 do
  local adopter = redis.call('get', ARGV[2] .. 'dead:' .. node)
  if not adopter then break end
  node = adopter
end
return redis.call('xadd', ARGV[2] .. 'stream:' .. node, '*', '${FIELD}', ARGV[3])`;

interface RoutedXadd {
  starlingXadd(node: string, prefix: string, envelope: Buffer): unknown;
}

function pushTo(out: Map<string, Buffer[]>, node: string, buf: Buffer): void {
  const list = out.get(node);
  if (list === undefined) out.set(node, [buf]);
  else list.push(buf);
}

function fieldValue(fields: Buffer[]): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === FIELD) return fields[i + 1];
  return undefined;
}

function mergeState(into: StoredState, from: StoredState): void {
  into.sessions.push(...from.sessions);
  into.deliveries.push(...from.deliveries);
  into.messages.push(...from.messages);
  into.incomingQos2.push(...from.incomingQos2);
}

async function execOrThrow(tx: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const results = await tx.exec();
  if (results === null) throw new Error('Redis transaction aborted');
  const out: unknown[] = [];
  for (const [error, value] of results) {
    if (error !== null) throw error;
    out.push(value);
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
