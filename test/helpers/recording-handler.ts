/**
 * A real `ClusterHandler` for driving a `ClusterBus` without a broker: it records every call, and it
 * commits as the broker does (a `requestCommit` schedules one store commit at the end of the turn,
 * `settle` commits and waits), with store operations a test stages for the next commit. Waits are
 * driven by the recorded calls (`until`), never by sleeping.
 */
import type { ClusterHandler } from '../../src/cluster/types.js';
import type { Message } from '../../src/model/message.js';
import type { Persistence, StoreOp, StoredRetained, StoredState } from '../../src/persistence/types.js';
import type { QoS, Will } from '../../src/protocol/types.js';

/** A delivery forwarded for one session. */
export interface Targeted {
  clientId: string;
  message: Message;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
}

/** Records what a bus hands the broker. */
export class RecordingHandler implements ClusterHandler {
  readonly delivered: { message: Message; groups: readonly string[] }[] = [];
  readonly targeted: Targeted[] = [];
  readonly retained: (StoredRetained | { topic: string; cleared: true })[] = [];
  readonly replacedRetained: (readonly StoredRetained[])[] = [];
  readonly released: { clientId: string; toNode: string }[] = [];
  readonly adopted: StoredState[] = [];
  readonly orphanWills: { clientId: string; will: Will }[] = [];
  /** Errors of commits nobody awaited (the end-of-turn ones). */
  readonly commitErrors: unknown[] = [];
  fencedCount = 0;
  commitsRequested = 0;
  private staged: StoreOp[] = [];
  private scheduled = false;
  private readonly waiters = new Set<() => void>();

  /** `store`: the node's store (the bus's), committed to as the broker would; none for a bus without one. */
  constructor(private readonly store: Persistence | undefined) {}

  /** Store operations for the next commit (what the broker's journal would hold). */
  stage(...ops: StoreOp[]): void {
    this.staged.push(...ops);
    this.requestCommit();
  }

  /** Resolves once `check()` holds (checked now and after every recorded call); rejects naming `what` after `timeoutMs`. */
  until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private recorded(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  deliverFromCluster(message: Message, groups: readonly string[]): void {
    this.delivered.push({ message, groups });
    this.recorded();
  }

  retainedFromCluster(message: StoredRetained | { topic: string; cleared: true }): void {
    this.retained.push(message);
    this.recorded();
  }

  replaceRetained(messages: readonly StoredRetained[]): void {
    this.replacedRetained.push(messages);
    this.recorded();
  }

  async releaseSession(clientId: string, toNode: string): Promise<void> {
    this.released.push({ clientId, toNode });
    this.recorded();
    await this.settle();
  }

  deliverTargeted(clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): void {
    this.targeted.push({ clientId, message, qos, retain, subscriptionIds });
    this.recorded();
  }

  adoptSessions(state: StoredState): void {
    this.adopted.push(state);
    this.recorded();
  }

  publishOrphanWill(clientId: string, will: Will): void {
    this.orphanWills.push({ clientId, will });
    this.recorded();
  }

  requestCommit(): void {
    this.commitsRequested++;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.commit().catch((error: unknown) => this.commitErrors.push(error)));
  }

  async settle(): Promise<void> {
    await this.commit();
  }

  fenced(): void {
    this.fencedCount++;
    this.staged = [];
    this.recorded();
  }

  /** One commit of what is staged (and of the bus's writes that join it); resolves in call order. */
  private commit(): Promise<void> {
    this.scheduled = false;
    const ops = this.staged;
    this.staged = [];
    return this.store?.apply(ops) ?? Promise.resolve();
  }
}
