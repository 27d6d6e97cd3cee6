/**
 * The single-node ClusterBus: a cluster of one. Nothing is sent anywhere, every shared group is
 * served here, a claim has no other node to ask, and the store is the node's own. A broker without a
 * bus behaves the same and skips the calls; this implementation exists so the broker's cluster path
 * (claims before CONNACK, acknowledgements waiting for the bus's commit) can run, and be tested,
 * without Redis, and as the reference for the port's contract.
 */
import type { Message } from '../model/message.js';
import type { Persistence, StoredState } from '../persistence/types.js';
import type { QoS, Will } from '../protocol/types.js';
import type { ClusterBus, ClusterHandler, ClusterStats } from './types.js';

export class LocalBus implements ClusterBus {
  readonly ready = true;
  readonly stats: ClusterStats = { sent: 0, received: 0, droppedQos0: 0 };
  private readonly interest = new Set<string>();

  /** `store`: the node's store (the broker must be given the same one). */
  constructor(
    readonly store: Persistence | undefined,
    readonly nodeId = 'local',
  ) {}

  start(_handler: ClusterHandler): Promise<void> {
    return Promise.resolve();
  }

  /** The filters and shared groups this node has subscribers for (what a real bus would announce). */
  interests(): ReadonlySet<string> {
    return this.interest;
  }

  addInterest(key: string): void {
    this.interest.add(key);
  }

  removeInterest(key: string): void {
    this.interest.delete(key);
  }

  publish(_message: Message): ReadonlySet<string> | undefined {
    return undefined;
  }

  wantedElsewhere(_topic: string): boolean {
    return false;
  }

  claimSession(_clientId: string, _load: boolean): Promise<StoredState | undefined> {
    return Promise.resolve(undefined);
  }

  forward(_node: string, _clientId: string, _message: Message, _qos: QoS, _retain: boolean, _subscriptionIds: number[] | undefined): void {
    // A cluster of one has no other node for a session to move to.
  }

  clientOnline(_clientId: string, _will: Will | undefined): void {}

  clientOffline(_clientId: string, _persistent: boolean): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}
