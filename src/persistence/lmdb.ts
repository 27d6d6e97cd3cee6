/** The embedded, durable store on LMDB (the default): one file in the data directory, versioned format, group commit. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { DataDirLock } from './data-dir-lock.js';
import { LmdbAccessStore } from './lmdb-access.js';
import type { Persistence, StoreOp, StoredDelivery, StoredIncomingQos2, StoredMessage, StoredRecord, StoredRetained, StoredSession, StoredState } from './types.js';

/** On-disk format version written by this build. Bump it on any incompatible change. */
export const FORMAT_VERSION = 1;

/** Data of a newer (unknown) format, or otherwise unusable. */
export class StoreFormatError extends Error {
  readonly code = 'ERR_STORE_FORMAT';
}

/** Options of the embedded store. */
export interface LmdbPersistenceOptions {
  /** Directory holding the data (created if missing). */
  dataDir: string;
  /**
   * true (default): a write resolves only once it is flushed to disk (crash-safe).
   * false: writes resolve when committed; the OS flushes later (faster; a machine crash can lose
   * the last writes, a process crash cannot).
   */
  sync?: boolean;
  /**
   * true (default): hold `starling.lock` in the directory while open, so a second broker refuses
   * to start on it; false for a reader that runs beside the broker (`starling data inspect`).
   */
  lock?: boolean;
}

type Key = string | number | (string | number)[];

/**
 * The embedded, durable backend on LMDB (memory-mapped B+tree, ACID transactions, one file).
 * Writes are grouped by lmdb-js into few transactions (group commit); every `apply` resolves after
 * the transaction holding its last write is durable, and earlier writes are in the same or an
 * earlier transaction.
 */
export class LmdbPersistence implements Persistence {
  readonly name = 'lmdb';
  private readonly root: RootDatabase<unknown, Key>;
  private readonly meta: Database<unknown, string>;
  private readonly sessions: Database<StoredSession, string>;
  private readonly messages: Database<StoredMessage, number>;
  private readonly deliveries: Database<StoredDelivery, [string, number]>;
  private readonly incomingQos2: Database<StoredIncomingQos2, [string, number]>;
  private readonly retained: Database<StoredRetained, string>;
  /** Records of the worker hub (owners, wills, inboxes), keyed [space, key]. */
  private readonly records: Database<Buffer, [string, string]>;
  private readonly sync: boolean;
  /** Delivery seqs ('d' + client id) and QoS 2 ids ('q' + client id) written and not yet committed. */
  private readonly uncommitted = new Map<string, Set<number>>();
  /** Commit of the last write issued: an empty apply waits for it. */
  private lastWrite: Promise<void> = Promise.resolve();
  private readonly lock: DataDirLock | undefined;
  /** Users, roles, bans and admins, in the same file (their own database). */
  readonly access: LmdbAccessStore;

  /** Opens (creating if needed) the store in `dataDir`; throws StoreFormatError for newer data. */
  constructor(options: LmdbPersistenceOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.lock = options.lock === false ? undefined : DataDirLock.acquire(options.dataDir);
    const sync = options.sync ?? true;
    this.sync = sync;
    try {
      this.root = open<unknown, Key>({
        path: join(options.dataDir, 'starling.mdb'),
        compression: false,
        // The next transaction commits while the previous one is being flushed (pipelined fsync);
        // an apply still resolves only once its own transaction is flushed (see apply).
        overlappingSync: sync,
        noSync: !sync,
        maxDbs: 12,
      });
    } catch (error) {
      this.lock?.release();
      throw error;
    }
    this.meta = this.root.openDB<unknown, string>({ name: 'meta' });
    this.sessions = this.root.openDB<StoredSession, string>({ name: 'sessions' });
    this.messages = this.root.openDB<StoredMessage, number>({ name: 'messages' });
    this.deliveries = this.root.openDB<StoredDelivery, [string, number]>({ name: 'deliveries' });
    this.incomingQos2 = this.root.openDB<StoredIncomingQos2, [string, number]>({ name: 'incoming-qos2' });
    this.retained = this.root.openDB<StoredRetained, string>({ name: 'retained' });
    this.records = this.root.openDB<Buffer, [string, string]>({ name: 'records', encoding: 'binary' });
    const format = this.meta.get('format');
    if (format === undefined) {
      this.meta.putSync('format', FORMAT_VERSION);
    } else if (typeof format !== 'number' || format > FORMAT_VERSION) {
      void this.root.close();
      this.lock?.release();
      throw new StoreFormatError(
        `${options.dataDir} holds data in store format ${JSON.stringify(format)}, newer than this Starling understands (${FORMAT_VERSION}); upgrade Starling or use another --data-dir`,
      );
    }
    // A database added in format 1 without a version bump: an older build ignores it.
    this.access = new LmdbAccessStore(this.root, sync);
  }

  /** The format version recorded in the store. */
  get formatVersion(): number {
    return this.meta.get('format') as number;
  }

  load(): Promise<StoredState> {
    const state: StoredState = { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [] };
    for (const { value } of this.sessions.getRange()) state.sessions.push(value);
    for (const { value } of this.deliveries.getRange()) state.deliveries.push(value);
    for (const { value } of this.messages.getRange()) state.messages.push(value);
    for (const { value } of this.incomingQos2.getRange()) state.incomingQos2.push(value);
    for (const { value } of this.retained.getRange()) state.retained.push(value);
    const records: StoredRecord[] = [];
    for (const { key, value } of this.records.getRange()) records.push({ space: key[0], key: key[1], value });
    if (records.length > 0) state.records = records;
    return Promise.resolve(state);
  }

  apply(ops: readonly StoreOp[]): Promise<void> {
    let last: Promise<unknown> | undefined;
    for (const op of ops) {
      switch (op.op) {
        case 'putSession':
          last = this.sessions.put(op.session.clientId, op.session);
          break;
        case 'deleteSession':
          last = this.deleteSession(op.clientId);
          break;
        case 'putMessage':
          last = this.messages.put(op.message.id, op.message);
          break;
        case 'deleteMessage':
          last = this.messages.remove(op.id);
          break;
        case 'putDelivery':
          last = this.track('d', op.delivery.clientId, op.delivery.seq, this.deliveries.put([op.delivery.clientId, op.delivery.seq], op.delivery));
          break;
        case 'deleteDelivery':
          last = this.deliveries.remove([op.clientId, op.seq]);
          break;
        case 'putIncomingQos2':
          last = this.track('q', op.clientId, op.packetId, this.incomingQos2.put([op.clientId, op.packetId], { clientId: op.clientId, packetId: op.packetId }));
          break;
        case 'deleteIncomingQos2':
          last = this.incomingQos2.remove([op.clientId, op.packetId]);
          break;
        case 'putRetained':
          last = this.retained.put(op.message.topic, op.message);
          break;
        case 'deleteRetained':
          last = this.retained.remove(op.topic);
          break;
        case 'putRecord':
          last = this.records.put([op.record.space, op.record.key], op.record.value);
          break;
        case 'deleteRecord':
          last = this.records.remove([op.space, op.key]);
          break;
      }
    }
    // lmdb-js commits queued writes in order, so the last write's commit covers all earlier ones.
    if (last !== undefined) {
      const write = last;
      // With overlapping sync a write resolves at commit; the database's `flushed` promise, taken
      // after that, resolves once everything committed so far is on disk.
      const own = this.sync ? write.then(() => this.root.flushed) : write;
      // Resolve in call order, as the port promises: lmdb-js can settle a later write's promise
      // before an earlier one's (seen with the first apply of a burst touching several databases).
      const previous = this.lastWrite.catch(() => undefined);
      this.lastWrite = Promise.all([previous, own]).then(() => undefined);
    }
    return this.lastWrite;
  }

  private deleteSession(clientId: string): Promise<unknown> {
    // Reads see only committed data, so keys written but not yet committed are tracked in memory.
    const range = { start: [clientId, 0] as [string, number], end: [clientId, Number.MAX_SAFE_INTEGER] as [string, number] };
    for (const key of this.deliveries.getKeys(range)) void this.deliveries.remove(key);
    for (const key of this.incomingQos2.getKeys(range)) void this.incomingQos2.remove(key);
    for (const seq of this.uncommitted.get(`d${clientId}`) ?? []) void this.deliveries.remove([clientId, seq]);
    for (const id of this.uncommitted.get(`q${clientId}`) ?? []) void this.incomingQos2.remove([clientId, id]);
    return this.sessions.remove(clientId);
  }

  /** Remembers a key written but not yet committed, until its write commits. */
  private track(kind: 'd' | 'q', clientId: string, n: number, write: Promise<unknown>): Promise<unknown> {
    const key = `${kind}${clientId}`;
    let set = this.uncommitted.get(key);
    if (set === undefined) this.uncommitted.set(key, (set = new Set()));
    set.add(n);
    const done = (): void => {
      set.delete(n);
      if (set.size === 0 && this.uncommitted.get(key) === set) this.uncommitted.delete(key);
    };
    write.then(done, done);
    return write;
  }

  async close(): Promise<void> {
    try {
      await this.root.close();
    } finally {
      this.lock?.release();
    }
  }
}
