/**
 * Failure detection, as decisions only (no I/O): a node whose heartbeat key has been missing for
 * `deadAfterMs` is dead; a node judges others only once it has itself been connected long enough
 * for every live node to have beaten (after a Redis restart every heartbeat key may be gone).
 */

/** Decides which nodes are dead from observations of their heartbeat keys. */
export class FailureDetector {
  private readonly missingSince = new Map<string, number>();
  private connectedSince = 0;

  /**
   * `deadAfterMs`: how long a heartbeat may be missing; `warmupMs`: how long this node must be
   * connected before it judges (the heartbeat key's expiry plus `deadAfterMs`).
   */
  constructor(
    private readonly deadAfterMs: number,
    private readonly warmupMs: number,
  ) {}

  /** This node (re)connected at `now`. */
  connected(now: number): void {
    this.connectedSince = now;
  }

  /** True once this node has been connected long enough to judge others. */
  mayJudge(now: number): boolean {
    return this.connectedSince > 0 && now - this.connectedSince >= this.warmupMs;
  }

  /**
   * Records whether `node`'s heartbeat key exists at `now`; true when the node is to be declared
   * dead now (once: observation starts again from scratch after that).
   */
  observe(node: string, alive: boolean, now: number): boolean {
    if (alive) {
      this.missingSince.delete(node);
      return false;
    }
    const since = this.missingSince.get(node);
    if (since === undefined) {
      this.missingSince.set(node, now);
      return false;
    }
    if (now - since < this.deadAfterMs) return false;
    this.missingSince.delete(node);
    return true;
  }
}
