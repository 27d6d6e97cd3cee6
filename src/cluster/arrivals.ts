/**
 * What arrives from other nodes (a stream entry, a pub/sub message, or a dead node's stream replayed),
 * handed to the broker: a message for this node's subscribers, or a delivery for one session.
 */
import { decodeEnvelope, forEachEnvelope } from './envelope.js';
import type { ClusterHandler } from './types.js';

/**
 * Hands every envelope of `data` (one envelope or a batch) to `handler`, counting each in `counter`
 * as it goes; returns how many. `only`: the client ids a message may reach, `except`:
 * those it must not (see `ClusterHandler.deliverFromCluster`). Throws on undecodable data (what came before it was delivered).
 */
export function deliverArrivals(
  handler: Pick<ClusterHandler, 'deliverFromCluster' | 'deliverTargeted'>,
  data: Buffer,
  counter?: { received: number },
  only?: ReadonlySet<string>,
  except?: Pick<ReadonlySet<string>, 'has'>,
): number {
  let count = 0;
  forEachEnvelope(data, (envelope) => {
    const { message, groups, target } = decodeEnvelope(envelope);
    count++;
    if (counter !== undefined) counter.received++;
    if (target === undefined) handler.deliverFromCluster(message, groups, only, except);
    else handler.deliverTargeted(target.clientId, message, target.qos, target.retain, target.subscriptionIds);
  });
  return count;
}
