/**
 * The store of a cluster node, in Redis: persistent sessions (record, deliveries each with its
 * message body, incoming QoS 2 ids) keyed by client id so that any node can load them, and the
 * retained messages of the whole cluster. Each commit is one MULTI/EXEC, which the cluster bus's
 * writes of the same turn join (transaction.ts). docs/decisions/0001-cluster-bus-carries-the-store.md
 * says why.
 */
import { deserialize, serialize } from 'node:v8';
import { Redis } from 'ioredis';
import type { Persistence, StoreOp, StoredDelivery, StoredMessage, StoredRecord, StoredRetained, StoredSession, StoredState } from '../types.js';
import { RedisKeys } from './keys.js';
import { RedisAccessStore } from './redis-access.js';
import { execOrThrow, type Transaction, type TransactionPart } from './transaction.js';

/** Sessions read at once (pipelined on the connection), at start-up and in an adoption. */
const LOAD_BATCH = 256;

/** A message body without the journal id it had on the node that stored it. */
type Body = Omit<StoredMessage, 'id'>;

/** Stored form of a delivery: the delivery and its message body together (no shared bodies in Redis). */
interface StoredDeliveryRecord {
  d: Omit<StoredDelivery, 'messageId'>;
  m: Body;
}

/** The logging the store needs (pino-compatible). */
export interface StoreLogger {
  error(obj: object, msg: string): void;
}

/** Options of `new RedisStore`. */
export interface RedisStoreOptions {
  /** The commands connection (the bus's, when it joins the transactions). */
  redis: Redis;
  /** The node whose persistent sessions `load` reads. */
  nodeId: string;
  keys?: RedisKeys;
  log: StoreLogger;
  /** Awaited first by `load` (the cluster connects, and waits for an adoption of this node id to end). */
  beforeLoad?: () => Promise<void>;
  /** `close` disconnects `redis` (a store opened with `RedisStore.open`). */
  ownsConnection?: boolean;
}

/**
 * A `Persistence` on Redis. Message bodies are stored with each delivery that holds them, not once by
 * id: a session must load on any node, whose journal numbers messages its own way. So `load` gives
 * messages new (negative) ids, and keeps no body that no delivery holds.
 */
export class RedisStore implements Persistence {
  readonly name = 'redis';
  readonly keys: RedisKeys;
  /** Users, roles, bans and admins of the whole cluster, with a change channel. */
  readonly access: RedisAccessStore;
  private readonly redis: Redis;
  private readonly nodeId: string;
  private readonly log: StoreLogger;
  private readonly beforeLoad: (() => Promise<void>) | undefined;
  private readonly ownsConnection: boolean;
  private readonly parts: TransactionPart[] = [];
  /** Message bodies by journal id, until their last delivery lets go (deliveries embed them). */
  private readonly bodies = new Map<number, Body>();
  private nextLoadedId = -1;

  constructor(options: RedisStoreOptions) {
    this.redis = options.redis;
    this.nodeId = options.nodeId;
    this.keys = options.keys ?? new RedisKeys();
    this.log = options.log;
    this.beforeLoad = options.beforeLoad;
    this.ownsConnection = options.ownsConnection ?? false;
    this.access = new RedisAccessStore(this.redis, this.keys, this.log);
  }

  /** A store on its own connection (connected; closed by `close`): without a cluster bus. */
  static async open(url: string, options: Omit<RedisStoreOptions, 'redis' | 'ownsConnection'>): Promise<RedisStore> {
    const redis = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
      connectionName: `starling-store:${options.nodeId}`,
    });
    redis.on('error', () => {}); // a failed command says what went wrong; ioredis retries the connection
    try {
      await redis.connect();
    } catch (error) {
      redis.disconnect();
      throw new Error(`store: cannot reach Redis at ${withoutPassword(url)}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return new RedisStore({ ...options, redis, ownsConnection: true });
  }

  /** Adds `part`'s writes to every commit, after the store's own operations (in joining order). */
  join(part: TransactionPart): void {
    this.parts.push(part);
  }

  /** Every retained message, and the sessions this node id holds (a client another node claimed is let go). */
  async load(): Promise<StoredState> {
    await this.beforeLoad?.();
    const state = emptyState();
    const retained = await this.redis.hgetallBuffer(this.keys.retained());
    for (const value of Object.values(retained)) state.retained.push(deserialize(value) as StoredRetained);
    const records = await this.redis.hgetallBuffer(this.keys.records());
    const list: StoredRecord[] = [];
    for (const [field, value] of Object.entries(records)) {
      const at = field.indexOf('\u0000');
      list.push({ space: field.slice(0, at), key: field.slice(at + 1), value });
    }
    if (list.length > 0) state.records = list.sort((a, b) => (a.space < b.space ? -1 : a.space > b.space ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const mine = this.keys.nodeClients(this.nodeId);
    const clients = await this.redis.smembers(mine);
    for (let i = 0; i < clients.length; i += LOAD_BATCH) {
      const batch = clients.slice(i, i + LOAD_BATCH);
      const owners = await this.redis.mget(batch.map((clientId) => this.keys.owner(clientId)));
      const held = batch.filter((_, j) => owners[j] === null || owners[j] === this.nodeId);
      const foreign = batch.filter((_, j) => owners[j] !== null && owners[j] !== this.nodeId);
      if (foreign.length > 0) await this.redis.srem(mine, ...foreign);
      appendState(state, await this.loadSessions(held));
    }
    sortDeliveries(state.deliveries);
    return state;
  }

  /**
   * Reads the stored sessions of `clientIds` (a client without one contributes nothing): records,
   * deliveries (bodies given fresh local ids), QoS 2 ids. Used by `load`, a claim and an adoption.
   */
  async loadSessions(clientIds: readonly string[]): Promise<StoredState> {
    const state = emptyState();
    for (let i = 0; i < clientIds.length; i += LOAD_BATCH) {
      const loaded = await Promise.all(clientIds.slice(i, i + LOAD_BATCH).map((clientId) => this.readSession(clientId)));
      for (const one of loaded) appendState(state, one);
    }
    sortDeliveries(state.deliveries);
    return state;
  }

  private async readSession(clientId: string): Promise<StoredState> {
    const [session, deliveries, qos2] = await Promise.all([
      this.redis.getBuffer(this.keys.session(clientId)),
      this.redis.hvalsBuffer(this.keys.deliveries(clientId)),
      this.redis.smembers(this.keys.qos2(clientId)),
    ]);
    return session === null ? emptyState() : this.decodeSession(clientId, session, deliveries, qos2);
  }

  /**
   * One stored session as read from Redis (its record, the values of its deliveries hash, its QoS 2
   * ids), bodies given fresh local ids, deliveries in order. Also used by a claim, which reads the
   * three keys in its own script.
   */
  decodeSession(clientId: string, session: Buffer, deliveries: readonly Buffer[], qos2: readonly (string | Buffer)[]): StoredState {
    const state = emptyState();
    state.sessions.push(deserialize(session) as StoredSession);
    for (const value of deliveries) {
      const record = deserialize(value) as StoredDeliveryRecord;
      const id = this.nextLoadedId--;
      this.bodies.set(id, record.m);
      state.messages.push({ ...record.m, id });
      state.deliveries.push({ ...record.d, messageId: id });
    }
    for (const packetId of qos2) state.incomingQos2.push({ clientId, packetId: Number(packetId.toString()) });
    sortDeliveries(state.deliveries);
    return state;
  }

  /** One transaction: the operations of a commit, then the joined parts' writes of the same turn. */
  apply(ops: readonly StoreOp[]): Promise<void> {
    const tx = this.redis.multi();
    for (const op of ops) this.write(tx, op);
    const answered: (() => void)[] = [];
    for (const part of this.parts) {
      const done = part.write(tx, ops);
      if (done !== undefined) answered.push(done);
    }
    const settle = (): void => {
      for (const done of answered) done();
    };
    return execOrThrow(tx).then(settle, (error: unknown) => {
      settle();
      throw error;
    });
  }

  private write(tx: Transaction, op: StoreOp): void {
    const keys = this.keys;
    switch (op.op) {
      case 'putSession':
        tx.set(keys.session(op.session.clientId), serialize(op.session));
        tx.sadd(keys.nodeClients(this.nodeId), op.session.clientId);
        break;
      case 'deleteSession':
        tx.del(keys.session(op.clientId), keys.deliveries(op.clientId), keys.qos2(op.clientId));
        tx.srem(keys.nodeClients(this.nodeId), op.clientId);
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
        tx.hset(keys.deliveries(delivery.clientId), String(delivery.seq), serialize(record));
        break;
      }
      case 'deleteDelivery':
        tx.hdel(keys.deliveries(op.clientId), String(op.seq));
        break;
      case 'putIncomingQos2':
        tx.sadd(keys.qos2(op.clientId), String(op.packetId));
        break;
      case 'deleteIncomingQos2':
        tx.srem(keys.qos2(op.clientId), String(op.packetId));
        break;
      case 'putRetained':
        tx.hset(keys.retained(), op.message.topic, serialize(op.message));
        break;
      case 'deleteRetained':
        tx.hdel(keys.retained(), op.topic);
        break;
      case 'putRecord':
        tx.hset(keys.records(), `${op.record.space}\u0000${op.record.key}`, op.record.value);
        break;
      case 'deleteRecord':
        tx.hdel(keys.records(), `${op.space}\u0000${op.key}`);
        break;
    }
  }

  close(): Promise<void> {
    this.access.close();
    if (this.ownsConnection) this.redis.disconnect();
    return Promise.resolve();
  }
}

/** `url` with its password replaced by ***, for messages and logs. */
export function withoutPassword(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

function emptyState(): StoredState {
  return { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [] };
}

/** Adds `from`'s sessions, deliveries, messages and QoS 2 ids to `into` (not retained messages). */
function appendState(into: StoredState, from: StoredState): void {
  // Loops, not push(...list): a session may hold more deliveries than a call takes arguments.
  for (const session of from.sessions) into.sessions.push(session);
  for (const delivery of from.deliveries) into.deliveries.push(delivery);
  for (const message of from.messages) into.messages.push(message);
  for (const id of from.incomingQos2) into.incomingQos2.push(id);
}

/** The order the port promises: by client id, then seq. */
function sortDeliveries(deliveries: StoredDelivery[]): void {
  deliveries.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.seq - b.seq));
}
