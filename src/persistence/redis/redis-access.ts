/**
 * Access records (users, roles, bans, admins, sessions) of a cluster, in Redis: one hash per kind, each
 * write one MULTI/EXEC that also announces the changed keys on a channel, so every node hears of a
 * change made on any other within milliseconds (and reloads everything after a lost connection).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AccessWatchers } from '../access-watchers.js';
import { ACCESS_KINDS, type AccessChange, type AccessKind, type AccessRecords, type AccessSnapshot, type AccessStore, type AccessWrite } from '../types.js';
import type { RedisKeys } from './keys.js';
import { execOrThrow } from './transaction.js';

/** The logging the access store needs (pino-compatible). */
export interface AccessStoreLogger {
  error(obj: object, msg: string): void;
}

/** A change announcement on the access channel. */
interface Announcement {
  /** The store instance that wrote (its own announcements are not told twice). */
  from: string;
  changes: AccessChange[];
}

/** The AccessStore of the cluster: shared by every node through Redis. */
export class RedisAccessStore implements AccessStore {
  private readonly watchers = new AccessWatchers();
  /** Tells this instance's announcements from the others' (two stores may share a node id in tests). */
  private readonly instance = randomBytes(8).toString('hex');
  private subscriber: Redis | undefined;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly log: AccessStoreLogger,
  ) {}

  async load(): Promise<AccessSnapshot> {
    const snapshot = {} as Record<AccessKind, Map<string, unknown>>;
    const hashes = await Promise.all(ACCESS_KINDS.map((kind) => this.redis.hgetall(this.keys.access(kind))));
    ACCESS_KINDS.forEach((kind, i) => {
      snapshot[kind] = new Map(Object.entries(hashes[i]!).map(([key, text]) => [key, JSON.parse(text) as unknown]));
    });
    return snapshot as AccessSnapshot;
  }

  async get<K extends AccessKind>(kind: K, key: string): Promise<AccessRecords[K] | undefined> {
    const text = await this.redis.hget(this.keys.access(kind), key);
    return text === null ? undefined : (JSON.parse(text) as AccessRecords[K]);
  }

  async write(writes: readonly AccessWrite[]): Promise<void> {
    const tx = this.redis.multi();
    for (const { kind, key, value } of writes) {
      if (value === undefined) tx.hdel(this.keys.access(kind), key);
      else tx.hset(this.keys.access(kind), key, JSON.stringify(value));
    }
    const changes = writes.map(({ kind, key }): AccessChange => ({ kind, key }));
    const announcement: Announcement = { from: this.instance, changes };
    tx.publish(this.keys.accessChannel(), JSON.stringify(announcement));
    await execOrThrow(tx);
    this.watchers.tell(changes);
  }

  watch(listener: (changes: readonly AccessChange[] | 'all') => void): () => void {
    const stop = this.watchers.add(listener);
    this.subscribe();
    return stop;
  }

  /** Stops hearing the other nodes. */
  close(): void {
    this.closed = true;
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  /** Starts the subscriber connection once. Each time its subscription is (re)made, watchers reload everything. */
  private subscribe(): void {
    if (this.subscriber !== undefined || this.closed) return;
    const channel = this.keys.accessChannel();
    const subscriber = this.redis.duplicate({ lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null, connectionName: 'starling-access' });
    this.subscriber = subscriber;
    let reported = false;
    subscriber.on('error', (error: Error) => {
      if (reported || this.closed) return;
      reported = true;
      this.log.error({ err: error.message }, 'access store: Redis subscriber connection error (retrying; changes made meanwhile are reloaded when it is back)');
    });
    subscriber.on('message', (from: string, text: string) => {
      if (from !== channel) return;
      let announcement: Announcement;
      try {
        announcement = JSON.parse(text) as Announcement;
      } catch {
        return;
      }
      if (announcement.from !== this.instance && Array.isArray(announcement.changes)) this.watchers.tell(announcement.changes);
    });
    const resubscribed = (): void => {
      if (!this.closed) this.watchers.tell('all');
    };
    // Subscribed at each (re)connection; what was announced while away is reloaded.
    subscriber.on('ready', () => {
      reported = false;
      void subscriber.subscribe(channel).then(resubscribed, () => undefined);
    });
    subscriber.connect().catch(() => undefined);
  }
}
