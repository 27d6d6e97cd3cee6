/**
 * A node's membership of the cluster: its registration and heartbeat key, its lease (how long after
 * the last heartbeat Redis confirmed it may still write), the check of the other nodes' heartbeats
 * (a dead one is handed to the adoption), fencing (this node was declared dead while cut off), and
 * the wait of a restarted node while another still adopts its previous life.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { Transaction } from '../../persistence/redis/transaction.js';
import type { ClusterLogger } from './connections.js';
import { FailureDetector } from './failure-detector.js';
import { sleep } from './stream-reader.js';

/** Heartbeat timing. */
export interface MembershipTiming {
  /** Heartbeat period. */
  heartbeatMs: number;
  /** Expiry of the heartbeat key. */
  heartbeatTtlMs: number;
  /** A node whose heartbeat key has been gone this long is declared dead. */
  deadAfterMs: number;
}

/** What membership needs from the bus around it. */
export interface MembershipHost {
  /** True while the node is connected and synchronised. */
  isReady(): boolean;
  /** True once the node leaves. */
  isClosing(): boolean;
  /** This node was declared dead: drop every client and session (the broker's `fenced`). */
  fenced(): void;
  /** Registers again and reloads the shared state (after fencing). */
  rejoin(): Promise<void>;
  /** Takes over a dead node (resolves once done; another check retries after a failure). */
  adopt(node: string): Promise<void>;
  /** Redis has not confirmed a heartbeat for a whole heartbeat expiry: stop writing, reconnect. */
  leaseLost(silentMs: number): void;
}

/**
 * The heartbeat: refreshes this node's key unless it was declared dead (tombstone) or another node
 * is adopting it right now (lock); then it answers 0 and the node fences itself.
 */
const BEAT =
  "if redis.call('exists', KEYS[2]) == 1 or redis.call('exists', KEYS[3]) == 1 then return 0 end redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

/** Heartbeat, failure detection and fencing of one node. */
export class Membership {
  private readonly detector: FailureDetector;
  private timer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private ticking = false;
  private fencing = false;
  /**
   * When the last heartbeat Redis confirmed was sent. Its key lives `heartbeatTtlMs` from then at
   * least, and no node adopts this one before `deadAfterMs` more have passed: so writes stop at
   * `lastBeatAt + heartbeatTtlMs`, leaving `deadAfterMs` for anything still on the wire.
   */
  private lastBeatAt = 0;
  private registeringAt = 0;
  /** True from a confirmed heartbeat (or registration) until the lease runs out. */
  private leaseHeld = false;

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    /** Commands (registration, fencing) and the heartbeat's own connection. */
    private readonly redis: { cmd: Redis; beat: Redis },
    private readonly timing: MembershipTiming,
    private readonly host: MembershipHost,
    private readonly log: ClusterLogger,
  ) {
    this.detector = new FailureDetector(timing.deadAfterMs, timing.heartbeatTtlMs + timing.deadAfterMs);
  }

  /** Adds to `tx` this node's registration and a first heartbeat. */
  register(tx: Transaction): void {
    this.registeringAt = Date.now();
    tx.sadd(this.keys.nodes(), this.nodeId);
    tx.set(this.keys.alive(this.nodeId), String(Date.now()), 'PX', this.timing.heartbeatTtlMs);
  }

  /** The node is (again) connected and registered: others are judged only after a while. */
  connected(): void {
    this.lastBeatAt = this.registeringAt;
    this.leaseHeld = true;
    this.detector.connected(Date.now());
  }

  /**
   * On reconnecting: true (and a fresh heartbeat) if this node may carry on; false if it was
   * declared dead meanwhile or is being adopted right now — then it must fence itself first.
   */
  async standing(): Promise<boolean> {
    const sentAt = Date.now();
    const alive = (await this.beatOnce(this.redis.cmd)) === 1;
    if (alive) this.confirmed(sentAt);
    return alive;
  }

  /** A heartbeat sent at `sentAt` was confirmed: the lease runs from then (unless the answer came too late to count). */
  private confirmed(sentAt: number): void {
    if (Date.now() - sentAt > this.timing.heartbeatTtlMs) return;
    this.lastBeatAt = Math.max(this.lastBeatAt, sentAt);
    this.leaseHeld = true;
  }

  /** A node restarted while another is adopting its previous life waits for that to finish (≤ 60 s). */
  async waitForAdoption(): Promise<void> {
    const deadline = Date.now() + 60_000;
    let logged = false;
    while ((await this.redis.cmd.exists(this.keys.adopt(this.nodeId))) === 1 && Date.now() < deadline) {
      if (!logged) this.log.info({ node: this.nodeId }, 'cluster: another node is adopting this node id\'s previous sessions; waiting for it');
      logged = true;
      await sleep(200);
    }
  }

  /** A fresh start holds nothing: a tombstone from an earlier life (declared dead, adopted) is void. */
  async clearTombstone(): Promise<void> {
    await this.redis.cmd.del(this.keys.dead(this.nodeId));
  }

  /** Starts beating and checking the others. */
  start(): void {
    this.timer = setInterval(() => void this.tick(), this.timing.heartbeatMs);
    this.timer.unref();
    // Checked more often than the heartbeat: the lease must end on time even while a beat hangs.
    this.leaseTimer = setInterval(() => this.checkLease(), Math.max(50, this.timing.heartbeatMs / 4));
    this.leaseTimer.unref();
  }

  /** Stops the heartbeat (the key expires, or is deleted by `leave`). */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
  }

  /** Ends the lease once no heartbeat was confirmed for a heartbeat key's lifetime (also while Redis is known to be away). */
  private checkLease(): void {
    if (this.host.isClosing() || !this.leaseHeld) return;
    const silent = Date.now() - this.lastBeatAt;
    if (silent <= this.timing.heartbeatTtlMs) return;
    this.leaseHeld = false;
    this.host.leaseLost(silent);
  }

  private beatOnce(redis: Redis): Promise<number> {
    return redis.eval(BEAT, 3, this.keys.alive(this.nodeId), this.keys.dead(this.nodeId), this.keys.adopt(this.nodeId), String(Date.now()), String(this.timing.heartbeatTtlMs)) as Promise<number>;
  }

  /** Deletes the heartbeat key: the others may adopt this node once the failure timeout has passed. */
  async leave(): Promise<void> {
    if (this.redis.cmd.status === 'ready') await this.redis.cmd.del(this.keys.alive(this.nodeId));
  }

  private async tick(): Promise<void> {
    if (this.host.isClosing() || !this.host.isReady() || this.ticking || this.redis.beat.status !== 'ready') return;
    this.ticking = true;
    try {
      // Heartbeat, unless the others declared this node dead while it was cut off (then: fenced).
      const sentAt = Date.now();
      const alive = await this.beatOnce(this.redis.beat);
      if (alive === 0) {
        await this.fence();
        return;
      }
      this.confirmed(sentAt);
      await this.detectDeadNodes();
    } catch (error) {
      if (!this.host.isClosing() && this.host.isReady()) this.log.warn({ err: error }, 'cluster: heartbeat failed');
    } finally {
      this.ticking = false;
    }
  }

  /** Drops every client and session (they are the adopter's now), waits for the adoption to end, rejoins empty. */
  async fence(): Promise<void> {
    if (this.fencing) return;
    this.fencing = true;
    try {
      this.log.error({ node: this.nodeId }, 'cluster: this node was declared dead while cut off from Redis and its sessions were adopted: dropping every client, rejoining empty');
      this.host.fenced();
      // Rejoining before the adopter is done would let its clean-up (route table, stream) erase the new registration.
      await this.waitForAdoption();
      await this.clearTombstone();
      await this.host.rejoin();
    } finally {
      this.fencing = false;
    }
  }

  private async detectDeadNodes(): Promise<void> {
    const now = Date.now();
    if (!this.detector.mayJudge(now)) return;
    const beat = this.redis.beat;
    for (const node of await beat.smembers(this.keys.nodes())) {
      if (node === this.nodeId) continue;
      const alive = (await beat.exists(this.keys.alive(node))) === 1;
      if (this.detector.observe(node, alive, now)) {
        // Not awaited: the heartbeat goes on while the adoption runs.
        this.host.adopt(node).catch((error: unknown) => this.log.error({ node, err: error }, 'cluster: adopting a dead node failed; another check will retry'));
      }
    }
  }
}
