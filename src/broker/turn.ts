/** The end of an event-loop turn: one store commit for the turn's changes (group commit), acknowledgements released as commits complete, one write per connection. */
import type { Persistence } from '../persistence/types.js';
import { Journal } from './journal.js';
import type { Logger } from './logger.js';
import type { BrokerStats } from './stats.js';

/** Something written once at the end of the turn (a connection with queued bytes). */
export interface Flushable {
  flush(): void;
}

/** Something holding acknowledgements back until the store commit they depend on is durable. */
export interface CommitWaiter {
  /** Commit `gen` is durable: release what waited for it; true when nothing waits any more. */
  commitDone(gen: number): boolean;
  /** Commit `gen` failed: give up what depended on it; true when nothing waits any more. */
  commitFailed(gen: number): boolean;
}

/**
 * The per-turn pipeline shared by connections, the store and the cluster bus. Changes of a turn go
 * to the journal; at the end of the turn (setImmediate) they are handed to the store in one call,
 * then every connection that queued bytes writes them in one call. A commit has a generation number:
 * acknowledgements wait for the generation their changes belong to (`pendingGen`).
 */
export class Turn {
  /** Changes to persist this turn; undefined without a store. */
  readonly journal: Journal | undefined;
  /** The last commit known durable. */
  committedGen = 0;
  private issuedGen = 0;
  private readonly waiters = new Set<CommitWaiter>();
  private flushList: Flushable[] = [];
  private scheduled = false;
  private lastFailureLog = 0;

  constructor(
    private readonly store: Persistence | undefined,
    private readonly logger: Logger,
    private readonly stats: BrokerStats,
    /** Runs after every turn's writes (the broker drops its per-turn encoding cache). */
    private readonly afterTurn: () => void,
  ) {
    this.journal = store === undefined ? undefined : new Journal(this.schedule);
  }

  /** The commit that changes made now belong to. */
  get pendingGen(): number {
    return this.issuedGen + 1;
  }

  /** Writes `target` at the end of this turn, with all the others. */
  flushAtEnd(target: Flushable): void {
    this.flushList.push(target);
    this.schedule();
  }

  /** Tells `waiter` about each commit until it has nothing left waiting. */
  waitForCommit(waiter: CommitWaiter): void {
    this.waiters.add(waiter);
  }

  /** Runs the end of the turn once, after the I/O callbacks of this turn. */
  readonly schedule = (): void => {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.end);
  };

  private readonly end = (): void => {
    this.scheduled = false;
    this.commit();
    const list = this.flushList;
    this.flushList = [];
    for (let i = 0; i < list.length; i++) list[i]!.flush();
    this.afterTurn();
  };

  /** Hands the journal's operations to the store as one commit. */
  commit(): void {
    const journal = this.journal;
    const store = this.store;
    if (journal === undefined || store === undefined || journal.size === 0) return;
    const ops = journal.take();
    const gen = ++this.issuedGen;
    store.apply(ops).then(
      () => {
        this.committedGen = gen;
        for (const waiter of this.waiters) if (waiter.commitDone(gen)) this.waiters.delete(waiter);
      },
      (error: unknown) => {
        // Nothing in this commit is acknowledged: clients will resend. Loud, because durability is at stake.
        this.stats.storeFailures++;
        const now = Date.now();
        if (now - this.lastFailureLog >= 10_000) {
          // Once per 10 s at most (a store outage fails every commit).
          this.lastFailureLog = now;
          this.logger.error(
            { err: error, store: store.name, operations: ops.length, failures: this.stats.storeFailures },
            'store commit failed: closing the connections whose acknowledgements depended on it',
          );
        }
        // [MQTT-4.8.0-2] their messages were not stored: those connections close, nothing is acknowledged.
        for (const waiter of this.waiters) if (waiter.commitFailed(gen)) this.waiters.delete(waiter);
      },
    );
  }

  /** Resolves once everything changed so far is durable (at shutdown, after start-up, before a session moves). */
  async settle(): Promise<void> {
    this.commit();
    await this.store?.apply([]);
  }
}
