/**
 * The store of a worker (`Persistence`): the hub's store, reached through the worker's bus. A commit
 * is the bus's commit frame (the turn's store operations with the bus's writes of the same turn), so
 * an acknowledgement waits for one answer from the hub, as it waits for EXEC on Redis.
 */
import type { Persistence, StoreOp, StoredState } from '../../persistence/types.js';
import { HubAccessStore, type AccessChannel } from './hub-access.js';

/** What the store needs from the worker's bus. */
export interface HubStoreChannel {
  load(): Promise<StoredState>;
  commit(ops: readonly StoreOp[]): Promise<void>;
  /** A request to the hub's access store. */
  access: AccessChannel;
}

/** The group's store as one worker sees it: its own sessions and every retained message. */
export class HubStore implements Persistence {
  readonly name = 'hub';
  /** Users, roles, bans and admins: the hub's, shared by every worker. */
  readonly access: HubAccessStore;

  constructor(private readonly channel: HubStoreChannel) {
    this.access = new HubAccessStore((request) => channel.access(request));
  }

  /** The sessions this worker holds (their message bodies numbered for it) and every retained message. */
  load(): Promise<StoredState> {
    return this.channel.load();
  }

  apply(ops: readonly StoreOp[]): Promise<void> {
    return this.channel.commit(ops);
  }

  /** The hub owns the store: a worker has nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
