import type { Message } from '../model/message.js';
import type { Subscription } from '../model/subscription.js';
import type { QoS } from '../protocol/types.js';
import type { Router } from './router.js';
import type { Session } from './session.js';
import type { SessionRegistry } from './sessions.js';

/**
 * In a cluster, how long a session that moved to another node leaves a forwarding stub behind (and
 * the node it arrived at recognises forwarded duplicates): longer than route changes take to reach
 * every node.
 */
const MOVE_GRACE_MS = 10_000;

/** A delivery for a session that is on its way to this node. */
export interface HeldDelivery {
  message: Message;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
}

/**
 * The bookkeeping of sessions moving between cluster nodes, so that nothing routed during a move is
 * lost: stubs left behind by sessions that moved away (they forward), sessions that just arrived
 * (they drop forwarded duplicates), and deliveries held for client ids being claimed here.
 */
export class SessionMoves {
  private readonly stubs = new Map<string, { stub: Session; until: number }>();
  private readonly arrivals = new Map<Session, number>();
  private readonly claiming = new Map<string, HeldDelivery[]>();

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly router: Router,
  ) {}

  /** After `clientId`'s session left for `node`: a stub with its subscriptions, forwarding for a while. */
  leaveStub(clientId: string, node: string, subscriptions: readonly Subscription[], identity: Session['identity']): void {
    this.removeStub(clientId);
    const stub = this.sessions.createStub(clientId, node);
    stub.identity = identity;
    for (const subscription of subscriptions) {
      stub.setSubscription(subscription);
      this.router.subscribe(stub, subscription);
    }
    this.stubs.set(clientId, { stub, until: Date.now() + MOVE_GRACE_MS });
  }

  /** The session came back (or the node is fenced): its stub goes. */
  removeStub(clientId: string): void {
    const entry = this.stubs.get(clientId);
    if (entry === undefined) return;
    this.stubs.delete(clientId);
    for (const subscription of entry.stub.subscriptions.values()) this.router.unsubscribe(entry.stub, subscription);
  }

  /** A claim of `clientId` starts here: deliveries for it are held until `endClaim`. */
  beginClaim(clientId: string): HeldDelivery[] {
    const held: HeldDelivery[] = [];
    this.claiming.set(clientId, held);
    return held;
  }

  endClaim(clientId: string): void {
    this.claiming.delete(clientId);
  }

  /** The deliveries held for `clientId`, while it is being claimed here. */
  held(clientId: string): HeldDelivery[] | undefined {
    return this.claiming.get(clientId);
  }

  /** `session` arrived from another node holding the messages `seen`: copies of them are dropped for a while. */
  arrived(session: Session, seen: Set<string>): void {
    session.recentIds = seen;
    this.arrivals.set(session, Date.now() + MOVE_GRACE_MS);
  }

  /** `session` leaves this node again. */
  left(session: Session): void {
    this.arrivals.delete(session);
  }

  /** Ends stubs and duplicate checks whose time is over. */
  sweep(now: number): void {
    for (const [clientId, entry] of this.stubs) if (now >= entry.until) this.removeStub(clientId);
    for (const [session, until] of this.arrivals) {
      if (now < until) continue;
      session.recentIds = undefined;
      this.arrivals.delete(session);
    }
  }

  /** Forgets everything (the node was fenced). */
  clear(): void {
    for (const clientId of [...this.stubs.keys()]) this.removeStub(clientId);
    for (const session of this.arrivals.keys()) session.recentIds = undefined;
    this.arrivals.clear();
  }
}
