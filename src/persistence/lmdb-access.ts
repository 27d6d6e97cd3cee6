/** Access records (users, roles, bans, admins, sessions) in the embedded store: one LMDB database keyed by [kind, key]. */
import type { Database, RootDatabase } from 'lmdb';
import { AccessWatchers } from './access-watchers.js';
import { ACCESS_KINDS, type AccessChange, type AccessKind, type AccessRecords, type AccessSnapshot, type AccessStore, type AccessWrite } from './types.js';

/** The AccessStore of the embedded store: its writes are one LMDB transaction each, durable as the broker's. */
export class LmdbAccessStore implements AccessStore {
  private readonly db: Database<unknown, [string, string]>;
  private readonly watchers = new AccessWatchers();

  constructor(
    private readonly root: RootDatabase<unknown, string | number | (string | number)[]>,
    /** Whether a write resolves only once flushed to disk (durability "full"). */
    private readonly sync: boolean,
  ) {
    this.db = root.openDB<unknown, [string, string]>({ name: 'access' });
  }

  load(): Promise<AccessSnapshot> {
    const snapshot = Object.fromEntries(ACCESS_KINDS.map((kind) => [kind, new Map<string, unknown>()])) as Record<AccessKind, Map<string, unknown>>;
    for (const { key, value } of this.db.getRange()) {
      const [kind, name] = key;
      snapshot[kind as AccessKind]?.set(name, value);
    }
    return Promise.resolve(snapshot as AccessSnapshot);
  }

  get<K extends AccessKind>(kind: K, key: string): Promise<AccessRecords[K] | undefined> {
    return Promise.resolve(this.db.get([kind, key]) as AccessRecords[K] | undefined);
  }

  async write(writes: readonly AccessWrite[]): Promise<void> {
    // One transaction: every write of the call or none.
    await this.db.transaction(() => {
      for (const { kind, key, value } of writes) {
        if (value === undefined) void this.db.remove([kind, key]);
        else void this.db.put([kind, key], value);
      }
    });
    if (this.sync) await this.root.flushed;
    this.watchers.tell(writes.map(({ kind, key }): AccessChange => ({ kind, key })));
  }

  watch(listener: (changes: readonly AccessChange[] | 'all') => void): () => void {
    return this.watchers.add(listener);
  }
}
