/**
 * Access records (users, roles, bans, admins) in a worker group: one AccessStore, the hub's, that every
 * worker reads and writes through its bus, and whose changes the hub tells every worker.
 */
import { AccessWatchers } from '../../persistence/access-watchers.js';
import type { AccessChange, AccessKind, AccessRecords, AccessSnapshot, AccessStore, AccessWrite } from '../../persistence/types.js';

/** What a worker asks of the hub's access store. */
export type AccessRequest = { op: 'load' } | { op: 'get'; kind: AccessKind; key: string } | { op: 'write'; writes: AccessWrite[] };

/** How a worker reaches the hub: one request, its answer. */
export type AccessChannel = (request: AccessRequest) => Promise<unknown>;

/** The group's access store as one worker sees it. */
export class HubAccessStore implements AccessStore {
  private readonly watchers = new AccessWatchers();

  constructor(private readonly ask: AccessChannel) {}

  load(): Promise<AccessSnapshot> {
    return this.ask({ op: 'load' }) as Promise<AccessSnapshot>;
  }

  get<K extends AccessKind>(kind: K, key: string): Promise<AccessRecords[K] | undefined> {
    return this.ask({ op: 'get', kind, key }) as Promise<AccessRecords[K] | undefined>;
  }

  /** Resolves once the hub's store made it durable; the hub tells every worker (this one first) before it answers. */
  async write(writes: readonly AccessWrite[]): Promise<void> {
    await this.ask({ op: 'write', writes: [...writes] });
  }

  watch(listener: (changes: readonly AccessChange[] | 'all') => void): () => void {
    return this.watchers.add(listener);
  }

  /** The hub told a change (any worker's write), or 'all' when this worker may have missed some. */
  changed(changes: readonly AccessChange[] | 'all'): void {
    this.watchers.tell(changes);
  }
}

/** The hub's side: answers a worker's request from `store`. */
export async function answerAccess(store: AccessStore, request: AccessRequest): Promise<unknown> {
  switch (request.op) {
    case 'load':
      return store.load();
    case 'get':
      return store.get(request.kind, request.key);
    case 'write':
      await store.write(request.writes);
      return undefined;
  }
}
