/**
 * Messages leaving this node, per turn, on Redis: which node gets which message (routing by interest,
 * shared groups planned by `../outbound.ts`), queued per target node and written at the commit as one
 * stream entry (QoS 1/2) or one pub/sub message (QoS 0) per node, in the store's transaction.
 */
import type { Redis } from 'ioredis';
import type { Message } from '../../model/message.js';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { Transaction, TransactionPart } from '../../persistence/redis/transaction.js';
import type { QoS } from '../../protocol/types.js';
import { encodeEnvelope } from '../envelope.js';
import type { ClusterRoute, InterestTable } from '../interest-table.js';
import { ClusterIds, MAX_PENDING_BYTES, NodeQueues, queueForNodes } from '../outbound.js';
import type { ClusterStats } from '../types.js';
import { STREAM_FIELD, STREAM_TARGET_FIELD } from './stream-reader.js';

const NO_GROUPS: readonly string[] = [];
const EMPTY_SET: ReadonlySet<string> = new Set();

/**
 * XADD to a node's stream, or, when that node was declared dead, to the stream of the node that
 * adopted it (following up to 8 adoptions): nothing is written to a stream nobody will read. A
 * redirected entry names the node it was for (a second field): only the sessions adopted from
 * there take it; the adopter's own subscribers had their copy already.
 */
const ROUTED_XADD = `
local node = ARGV[1]
for i = 1, 8 do
  local adopter = redis.call('get', ARGV[2] .. 'dead:' .. node)
  if not adopter then break end
  node = adopter
end
if node ~= ARGV[1] then
  return redis.call('xadd', ARGV[2] .. 'stream:' .. node, '*', '${STREAM_FIELD}', ARGV[3], '${STREAM_TARGET_FIELD}', ARGV[1])
end
return redis.call('xadd', ARGV[2] .. 'stream:' .. node, '*', '${STREAM_FIELD}', ARGV[3])`;

interface RoutedXadd {
  starlingXadd(node: string, prefix: string, envelope: Buffer): unknown;
}

/** This node's outgoing cross-node traffic. */
export class Outbox implements TransactionPart {
  private readonly stream = new NodeQueues();
  private readonly qos0 = new NodeQueues();
  /** Envelope bytes in commits Redis has not answered yet. */
  private inflightBytes = 0;
  private readonly ids: ClusterIds;

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    redis: Redis,
    private readonly stats: ClusterStats,
    /** True while QoS 0 may go to Redis (the node is connected and synchronised). */
    private readonly usable: () => boolean,
  ) {
    redis.defineCommand('starlingXadd', { numberOfKeys: 0, lua: ROUTED_XADD });
    this.ids = new ClusterIds(nodeId);
  }

  /** Envelopes queued since the last commit (a publish that queued something changes it). */
  get queued(): number {
    return this.stream.size + this.qos0.size;
  }

  /**
   * Queues `message` for every other node with matching interest; returns the shared groups this node
   * serves for it (undefined: every group, Redis being away). No allocation when nothing leaves.
   */
  publish(message: Message, route: ClusterRoute, table: Pick<InterestTable, 'pick'>): ReadonlySet<string> | undefined {
    if (route.nodes.length === 0 && route.groups.size === 0) return EMPTY_SET;
    const me = this.nodeId;
    if (message.qos === 0 && !this.mayQueueQos0()) {
      // Redis is away or behind: QoS 0 for other nodes is dropped (counted); shared groups are served
      // by local members if there are any.
      for (const node of route.nodes) if (node !== me) this.stats.droppedQos0++;
      return undefined;
    }
    message.clusterId ??= this.ids.next();
    return queueForNodes(message, route, table, me, message.qos === 0 ? this.qos0 : this.stream);
  }

  /** Queues a delivery for one session on `node`; false if it was dropped (QoS 0, Redis away or behind). */
  forward(node: string, clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): boolean {
    if (qos === 0 && !this.mayQueueQos0()) {
      this.stats.droppedQos0++;
      return false;
    }
    message.clusterId ??= this.ids.next();
    (qos === 0 ? this.qos0 : this.stream).push(node, encodeEnvelope(message, NO_GROUPS, { clientId, qos, retain, subscriptionIds }));
    return true;
  }

  write(tx: Transaction): () => void {
    const routed = tx as unknown as RoutedXadd;
    this.stats.sent += this.stream.size + this.qos0.size;
    const bytes = this.stream.bytes + this.qos0.bytes;
    for (const [node, batches] of this.stream.take()) for (const batch of batches) routed.starlingXadd(node, `${this.keys.prefix}:`, batch);
    for (const [node, batches] of this.qos0.take()) for (const batch of batches) tx.publish(this.keys.nodeChannel(node), batch);
    this.inflightBytes += bytes;
    return () => {
      this.inflightBytes -= bytes;
    };
  }

  private mayQueueQos0(): boolean {
    return this.usable() && this.stream.bytes + this.qos0.bytes + this.inflightBytes <= MAX_PENDING_BYTES;
  }
}
