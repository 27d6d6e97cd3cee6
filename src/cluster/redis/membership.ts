/**
 * A node's membership of the cluster: its registration and heartbeat key, the check of the other
 * nodes' heartbeats (a dead one is handed to the adoption), fencing (this node was declared dead
 * while cut off), and the wait of a restarted node while another still adopts its previous life.
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
}

/** Heartbeat, failure detection and fencing of one node. */
export class Membership {
  private readonly detector: FailureDetector;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private fencing = false;

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
    tx.sadd(this.keys.nodes(), this.nodeId);
    tx.set(this.keys.alive(this.nodeId), String(Date.now()), 'PX', this.timing.heartbeatTtlMs);
  }

  /** The node is (again) connected and registered: others are judged only after a while. */
  connected(): void {
    this.detector.connected(Date.now());
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
  }

  /** Stops the heartbeat (the key expires, or is deleted by `leave`). */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
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
      const alive = (await this.redis.beat.eval(
        "if redis.call('exists', KEYS[2]) == 1 then return 0 end redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1",
        2,
        this.keys.alive(this.nodeId),
        this.keys.dead(this.nodeId),
        String(Date.now()),
        String(this.timing.heartbeatTtlMs),
      )) as number;
      if (alive === 0) {
        await this.fence();
        return;
      }
      await this.detectDeadNodes();
    } catch (error) {
      if (!this.host.isClosing() && this.host.isReady()) this.log.warn({ err: error }, 'cluster: heartbeat failed');
    } finally {
      this.ticking = false;
    }
  }

  private async fence(): Promise<void> {
    if (this.fencing) return;
    this.fencing = true;
    try {
      this.log.error({ node: this.nodeId }, 'cluster: this node was declared dead while cut off from Redis and its sessions were adopted: dropping every client, rejoining empty');
      this.host.fenced();
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
