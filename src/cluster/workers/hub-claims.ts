/**
 * Client-id ownership in a worker group, kept by the hub: which worker holds each client id, claims
 * made one at a time per client id, the holder asked to let go first (or, when it is down and holds a
 * persistent session, waited for until it is back, within a bound), then the stored session handed over.
 */
import type { StoreOp, StoredState } from '../../persistence/types.js';
import type { HubFrame } from './frames.js';
import type { HubLogger } from './hub.js';
import type { HubState } from './hub-state.js';

/** What the claims need from the hub around them. */
export interface ClaimsHost {
  /** True while `node`'s bus runs (it can let go of a session). */
  isStarted(node: string): boolean;
  send(node: string, frame: HubFrame): boolean;
  /** Commits hub records (the new owner of a stored session). */
  commit(ops: StoreOp[]): Promise<void>;
  log: HubLogger;
  /** How long a claim waits for the holder to let go (or, if it is down, to be back). */
  timeoutMs: number;
}

/** Who holds which client id, and the claims in progress. */
export class HubClaims {
  /** Client id → the worker holding it (connected there, or its persistent session stored for it). */
  private readonly holders = new Map<string, string>();
  /** Client id → the worker it is connected to (since its claim; until it goes away there). */
  private readonly connected = new Map<string, string>();
  /** Connected client ids per worker. */
  private readonly online = new Map<string, number>();
  /** Client ids held per worker. */
  private readonly counts = new Map<string, number>();
  /** The last claim of each client id (the next one waits for it). */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly releases = new Map<number, { node: string; done: (outcome: 'released' | 'down') => void }>();
  private readonly startWaiters = new Map<string, Set<() => void>>();
  private nextRid = 1;

  constructor(
    private readonly state: HubState,
    private readonly host: ClaimsHost,
  ) {
    for (const [clientId, node] of state.owners) this.hold(clientId, node);
  }

  /** Client ids `node` holds (its sessions, connected or stored). */
  heldBy(node: string): number {
    return this.counts.get(node) ?? 0;
  }

  /** Clients connected to `node`. */
  connectedTo(node: string): number {
    return this.online.get(node) ?? 0;
  }

  private connect(clientId: string, node: string): void {
    const previous = this.connected.get(clientId);
    if (previous === node) return;
    if (previous !== undefined) this.online.set(previous, (this.online.get(previous) ?? 1) - 1);
    this.connected.set(clientId, node);
    this.online.set(node, (this.online.get(node) ?? 0) + 1);
  }

  private disconnect(clientId: string): void {
    const previous = this.connected.get(clientId);
    if (previous === undefined) return;
    this.connected.delete(clientId);
    this.online.set(previous, (this.online.get(previous) ?? 1) - 1);
  }

  private hold(clientId: string, node: string): void {
    const previous = this.holders.get(clientId);
    if (previous === node) return;
    if (previous !== undefined) this.counts.set(previous, (this.counts.get(previous) ?? 1) - 1);
    this.holders.set(clientId, node);
    this.counts.set(node, (this.counts.get(node) ?? 0) + 1);
  }

  private unhold(clientId: string): void {
    const previous = this.holders.get(clientId);
    if (previous === undefined) return;
    this.holders.delete(clientId);
    this.counts.set(previous, (this.counts.get(previous) ?? 1) - 1);
  }

  /** Takes `clientId` for `node`; with `load`, resolves with its stored session (if any). */
  claim(node: string, clientId: string, load: boolean): Promise<StoredState | undefined> {
    const previous = this.queues.get(clientId) ?? Promise.resolve();
    const run = previous.then(() => this.take(node, clientId, load));
    const tail = run.catch(() => undefined);
    this.queues.set(clientId, tail);
    void tail.then(() => {
      if (this.queues.get(clientId) === tail) this.queues.delete(clientId);
    });
    return run;
  }

  private async take(node: string, clientId: string, load: boolean): Promise<StoredState | undefined> {
    const previous = this.holders.get(clientId);
    this.hold(clientId, node);
    // Every CONNECT of a worker claims its client id: the claim is the connection, for the counts.
    this.connect(clientId, node);
    if (previous !== undefined && previous !== node) await this.letGo(previous, clientId, node);
    const ops: StoreOp[] = [];
    if (this.state.hasSession(clientId) && this.state.owners.get(clientId) !== node) this.state.setOwner(clientId, node, ops);
    if (ops.length > 0) await this.host.commit(ops);
    if (!load || !this.state.hasSession(clientId)) return undefined;
    return this.state.stateFor(node, [clientId]);
  }

  /**
   * Asks `from` to let go of `clientId` (for `to`); a worker that is down and holds its session is
   * waited for — also when it dies after the request was sent: until its new process has loaded
   * the session and delivered its inbox into it, the stored session misses what that inbox holds.
   */
  private async letGo(from: string, clientId: string, to: string): Promise<void> {
    const deadline = Date.now() + this.host.timeoutMs;
    for (;;) {
      if (!this.host.isStarted(from)) {
        // A clean session ended with its worker; a persistent one may still have messages in that
        // worker's inbox, which only its restart delivers into it.
        if (this.state.owners.get(clientId) !== from) return;
        await this.waitStarted(from, deadline);
        if (!this.host.isStarted(from)) {
          this.host.log.warn({ clientId, node: from, to }, 'workers: the worker holding the session is not back in time; taking the session as stored');
          return;
        }
      }
      if ((await this.askRelease(from, clientId, to, deadline)) !== 'down') return;
      // The worker died before it answered: ask its next process.
    }
  }

  /** Sends one release request; resolves when answered, when `from` went down, or at `deadline`. */
  private askRelease(from: string, clientId: string, to: string, deadline: number): Promise<'released' | 'down' | 'timeout'> {
    const rid = this.nextRid++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.releases.delete(rid);
        this.host.log.warn({ clientId, node: from, to }, 'workers: the worker holding the session did not let go in time; taking it as stored');
        resolve('timeout');
      }, Math.max(0, deadline - Date.now()));
      this.releases.set(rid, {
        node: from,
        done: (outcome) => {
          clearTimeout(timer);
          this.releases.delete(rid);
          resolve(outcome);
        },
      });
      this.host.send(from, { t: 'release', rid, clientId, to });
    });
  }

  private waitStarted(node: string, deadline: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.startWaiters.get(node);
      if (waiters === undefined) this.startWaiters.set(node, (waiters = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      waiters.add(done);
    });
  }

  /** A worker answered a release: its part of the session is committed. */
  released(rid: number): void {
    this.releases.get(rid)?.done('released');
  }

  /** `node`'s bus started: claims waiting for it go on. */
  started(node: string): void {
    for (const done of [...(this.startWaiters.get(node) ?? [])]) done();
  }

  /** `node`'s process ended: releases asked of it wait for its next process, and its clean sessions are gone. */
  down(node: string): void {
    for (const release of [...this.releases.values()]) if (release.node === node) release.done('down');
    for (const [clientId, holder] of this.holders) if (holder === node && this.state.owners.get(clientId) !== node) this.unhold(clientId);
    for (const [clientId, holder] of this.connected) if (holder === node) this.disconnect(clientId);
  }

  /** `node` loads its sessions again (a new process): it holds exactly the persistent sessions it owns. */
  restarted(node: string): void {
    this.down(node);
  }

  /** A client of `node` went away; a clean session lets its client id go. */
  offline(clientId: string, node: string, persistent: boolean, ops: StoreOp[]): void {
    if (this.connected.get(clientId) === node) this.disconnect(clientId);
    if (persistent || this.holders.get(clientId) !== node) return;
    this.unhold(clientId);
    this.state.release(node, clientId, ops);
  }

  /** `node` deleted the stored session of `clientId` (it expired, or a clean start): held only while connected. */
  sessionDeleted(clientId: string, node: string): void {
    if (this.holders.get(clientId) === node && this.connected.get(clientId) !== node) this.unhold(clientId);
  }

  /** The worker holding `clientId`, if any. */
  holder(clientId: string): string | undefined {
    return this.holders.get(clientId);
  }
}
