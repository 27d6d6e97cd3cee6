/** Access records (users, roles, bans, admins, sessions) in memory: the memory store's, and the fallback of a store without its own. */
import { AccessWatchers } from './access-watchers.js';
import { ACCESS_KINDS, type AccessChange, type AccessKind, type AccessRecords, type AccessSnapshot, type AccessStore, type AccessWrite } from './types.js';

/** An AccessStore in maps: nothing survives the process. Records are copied in and out, as a real store would. */
export class MemoryAccessStore implements AccessStore {
  private readonly records = new Map<AccessKind, Map<string, unknown>>(ACCESS_KINDS.map((kind) => [kind, new Map()]));
  private readonly watchers = new AccessWatchers();

  load(): Promise<AccessSnapshot> {
    const snapshot = {} as Record<AccessKind, Map<string, unknown>>;
    for (const [kind, records] of this.records) snapshot[kind] = new Map([...records].map(([key, value]) => [key, structuredClone(value)]));
    return Promise.resolve(snapshot as AccessSnapshot);
  }

  get<K extends AccessKind>(kind: K, key: string): Promise<AccessRecords[K] | undefined> {
    const value = this.records.get(kind)?.get(key);
    return Promise.resolve(value === undefined ? undefined : (structuredClone(value) as AccessRecords[K]));
  }

  write(writes: readonly AccessWrite[]): Promise<void> {
    for (const { kind, key, value } of writes) {
      const records = this.records.get(kind)!;
      if (value === undefined) records.delete(key);
      else records.set(key, structuredClone(value));
    }
    this.watchers.tell(writes.map(({ kind, key }) => ({ kind, key })));
    return Promise.resolve();
  }

  watch(listener: (changes: readonly AccessChange[] | 'all') => void): () => void {
    return this.watchers.add(listener);
  }
}
