/**
 * What every bus does with messages leaving its node, whatever carries them (Redis, the workers'
 * hub): the shared groups of a message planned over the nodes that have members, envelopes queued per
 * target node until the commit, and the memory bound of QoS 0 on its way out.
 */
import type { Message } from '../model/message.js';
import { encodeBatches, encodeEnvelope } from './envelope.js';
import type { ClusterRoute, InterestTable } from './interest-table.js';

const NO_GROUPS: readonly string[] = [];
const EMPTY_SET: ReadonlySet<string> = new Set();

/**
 * Envelope bytes on their way out (queued for the next commit or in a commit not yet answered)
 * beyond which QoS 0 messages for other nodes are dropped (counted), as QoS 0 to a slow client is:
 * without it a QoS 0 flood faster than the shared state (Redis, the workers' hub) grows the node's memory
 * without bound. QoS 1/2 are
 * bounded by the publishers' inflight windows (their acknowledgements wait for the commit).
 */
export const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** Where the shared groups of one message are served: here, or by which other node. */
export interface GroupPlan {
  /** Groups this node serves (undefined: none). */
  local: Set<string> | undefined;
  /** Groups another node serves, by node (undefined: none). */
  remote: Map<string, string[]> | undefined;
}

/** Picks, round-robin, the node that serves each shared group of `route`. */
export function planGroups(route: ClusterRoute, table: Pick<InterestTable, 'pick'>, me: string): GroupPlan {
  const plan: GroupPlan = { local: undefined, remote: undefined };
  for (const [key, holders] of route.groups) {
    const node = table.pick(key, holders);
    if (node === me) (plan.local ??= new Set()).add(key);
    else if (node !== undefined) {
      plan.remote ??= new Map();
      const list = plan.remote.get(node);
      if (list === undefined) plan.remote.set(node, [key]);
      else list.push(key);
    }
  }
  return plan;
}

/** Envelopes queued per target node until the next commit, with their byte count. */
export class NodeQueues {
  private byNode = new Map<string, Buffer[]>();
  private count = 0;
  /** Bytes queued since the last `take`. */
  bytes = 0;

  /** Queues `envelope` for `node`. */
  push(node: string, envelope: Buffer): void {
    const list = this.byNode.get(node);
    if (list === undefined) this.byNode.set(node, [envelope]);
    else list.push(envelope);
    this.bytes += envelope.length;
    this.count++;
  }

  /** Envelopes queued since the last `take`. */
  get size(): number {
    return this.count;
  }

  /** Empties the queues: per node, the batches to send (one per ≤ 1 MiB, in queueing order). */
  take(): Map<string, Buffer[]> {
    const out = new Map<string, Buffer[]>();
    for (const [node, list] of this.byNode) out.set(node, encodeBatches(list));
    this.byNode = new Map();
    this.count = 0;
    this.bytes = 0;
    return out;
  }
}

const NO_GROUP_PLAN: GroupPlan = { local: undefined, remote: undefined };

/**
 * Queues `message` in `out` once for every node of `route` but `me`, each envelope naming the shared
 * groups that node serves for it (one envelope encoding shared by the nodes that serve none); returns
 * the groups `me` serves. `message.clusterId` must be set.
 */
export function queueForNodes(message: Message, route: ClusterRoute, table: Pick<InterestTable, 'pick'>, me: string, out: NodeQueues): ReadonlySet<string> {
  const { local, remote } = route.groups.size === 0 ? NO_GROUP_PLAN : planGroups(route, table, me);
  let plain: Buffer | undefined;
  for (const node of route.nodes) {
    if (node === me) continue;
    const groups = remote?.get(node);
    if (groups !== undefined) remote!.delete(node);
    out.push(node, groups === undefined ? (plain ??= encodeEnvelope(message, NO_GROUPS)) : encodeEnvelope(message, groups));
  }
  if (remote !== undefined) for (const [node, groups] of remote) out.push(node, encodeEnvelope(message, groups));
  return local ?? EMPTY_SET;
}

/** Cluster-wide message ids made by one node: its id, its start time, a counter. */
export class ClusterIds {
  private readonly prefix: string;
  private counter = 0;

  constructor(nodeId: string) {
    this.prefix = `${nodeId}/${Date.now().toString(36)}/`;
  }

  /** The next id. */
  next(): string {
    return `${this.prefix}${(this.counter++).toString(36)}`;
  }
}
