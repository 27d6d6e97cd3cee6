/**
 * Retained messages across nodes: every node keeps a full copy in memory, loaded from the store's
 * hash and kept current by a change channel, announced in the same transaction that changes the hash.
 */
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { Transaction, TransactionPart } from '../../persistence/redis/transaction.js';
import type { StoreOp, StoredRetained } from '../../persistence/types.js';
import type { ClusterHandler } from '../types.js';

/** A retained change as announced: the message set, or the topic cleared. */
type RetainedChange = StoredRetained | { topic: string; cleared: true };

/** Announces this node's retained changes and applies the others'. */
export class RetainedChannel implements TransactionPart {
  private readonly from: Buffer;

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    private readonly redis: Redis,
  ) {
    this.from = Buffer.from(`${nodeId}\n`);
  }

  /** Announces every retained change among the store operations of this commit. */
  write(tx: Transaction, ops: readonly StoreOp[]): undefined {
    for (const op of ops) {
      if (op.op === 'putRetained') this.announce(tx, op.message);
      else if (op.op === 'deleteRetained') this.announce(tx, { topic: op.topic, cleared: true });
    }
    return undefined;
  }

  private announce(tx: Transaction, change: RetainedChange): void {
    tx.publish(this.keys.retainedChannel(), Buffer.concat([this.from, serialize(change)]));
  }

  /** An announcement from the channel: another node's change is applied here. */
  onAnnouncement(payload: Buffer, handler: ClusterHandler): void {
    const nl = payload.indexOf(10);
    if (payload.toString('utf8', 0, nl) === this.nodeId) return;
    handler.retainedFromCluster(deserialize(payload.subarray(nl + 1)) as RetainedChange);
  }

  /** Replaces this node's copy by every retained message in Redis (after a resynchronisation). */
  async reload(handler: ClusterHandler): Promise<void> {
    const retained = await this.redis.hgetallBuffer(this.keys.retained());
    handler.replaceRetained(Object.values(retained).map((value) => deserialize(value) as StoredRetained));
  }
}
