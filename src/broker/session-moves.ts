/** Cluster: sessions moving between nodes — stubs that forward, arrivals that drop forwarded duplicates, deliveries held during claims. */
import type { ClusterBus } from '../cluster/types.js';
import type { Message } from '../model/message.js';
import type { Subscription } from '../model/subscription.js';
import { effectiveQos, type Route } from './delivery.js';
import type { Session } from './session.js';
import type { SessionRegistry } from './sessions.js';
import type { BrokerStats } from './stats.js';
import type { SubscriptionIndex } from './subscription-index.js';

/**
 * In a cluster, how long a session that moved to another node leaves a forwarding stub behind (and
 * the node it arrived at recognises forwarded duplicates): longer than route changes take to reach
 * every node.
 */
const MOVE_GRACE_MS = 10_000;

/**
 * How long a session that arrived recognises duplicates: longer than the stub it left forwards
 * (the stub's node sweeps on its own schedule, and a forwarded copy takes a hop), or the last
 * forwarded copies of a busy topic would be delivered twice.
 */
const ARRIVAL_GRACE_MS = MOVE_GRACE_MS + 2000;

/** A delivery for a session that is on its way to this node. */
export interface HeldDelivery {
  readonly message: Message;
  readonly route: Route;
  readonly retain: boolean;
}

/**
 * The bookkeeping of sessions moving between cluster nodes, so that nothing routed during a move is
 * lost: stubs left behind by sessions that moved away (they forward), sessions that just arrived
 * (they drop forwarded duplicates), and deliveries held for client ids being claimed here.
 */
export class SessionMoves {
  private readonly stubs = new Map<string, { stub: Session; until: number }>();
  private readonly arrivals = new Map<Session, number>();
  /** Client ids being claimed here: the deliveries held for them, and how many claims are running (a client may connect again before its first claim ended). */
  private readonly claiming = new Map<string, { held: HeldDelivery[]; claims: number }>();

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly index: SubscriptionIndex,
    private readonly bus: ClusterBus,
    private readonly stats: BrokerStats,
  ) {}

  /**
   * A delivery to a session in the middle of a move: a stub forwards it to the node the session
   * moved to (or holds it, when the session is on its way back here); a session that just arrived
   * takes it unless it already has this message (a forwarded copy of one routed here directly, or
   * the reverse). Returns true when delivered or sent on.
   */
  deliver(session: Session, message: Message, route: Route, retain: boolean): boolean {
    if (session.movedTo !== undefined) {
      const held = this.claiming.get(session.clientId)?.held;
      if (held !== undefined) held.push({ message, route, retain });
      else this.bus.forward(session.movedTo, session.clientId, message, effectiveQos(message, route), retain, route.subscriptionIds as number[] | undefined);
      return true;
    }
    const id = message.clusterId;
    const seen = session.recentIds;
    if (id !== undefined && seen !== undefined) {
      if (seen.has(id)) return false;
      seen.add(id);
    }
    const dropsBefore = session.droppedQueueFull;
    const delivered = session.deliver(message, route, retain);
    if (session.droppedQueueFull !== dropsBefore) this.stats.droppedQueueFull++;
    return delivered;
  }

  /** After `clientId`'s session left for `node`: a stub with its subscriptions, forwarding for a while. */
  leaveStub(clientId: string, node: string, subscriptions: readonly Subscription[], identity: Session['identity']): void {
    this.removeStub(clientId);
    const stub = this.sessions.createStub(clientId, node);
    stub.identity = identity;
    for (const subscription of subscriptions) {
      stub.setSubscription(subscription);
      this.index.subscribe(stub, subscription);
    }
    this.stubs.set(clientId, { stub, until: Date.now() + MOVE_GRACE_MS });
  }

  /** The session came back (or the node is fenced): its stub goes. */
  removeStub(clientId: string): void {
    const entry = this.stubs.get(clientId);
    if (entry === undefined) return;
    this.stubs.delete(clientId);
    for (const subscription of entry.stub.subscriptions.values()) this.index.unsubscribe(entry.stub, subscription);
  }

  /**
   * A claim of `clientId` starts here: deliveries for it are held until the last of its claims ends.
   * Claims of one client id overlap when it connects again before its first claim ended (a client
   * that gave up waiting for CONNACK): they share one list, so the end of the first (which may fail)
   * does not drop what is held for the next. Whoever delivers held deliveries takes them out.
   */
  beginClaim(clientId: string): HeldDelivery[] {
    let entry = this.claiming.get(clientId);
    if (entry === undefined) this.claiming.set(clientId, (entry = { held: [], claims: 0 }));
    entry.claims++;
    return entry.held;
  }

  endClaim(clientId: string): void {
    const entry = this.claiming.get(clientId);
    if (entry !== undefined && --entry.claims === 0) this.claiming.delete(clientId);
  }

  /** The deliveries held for `clientId`, while it is being claimed here. */
  held(clientId: string): HeldDelivery[] | undefined {
    return this.claiming.get(clientId)?.held;
  }

  /** `session` arrived from another node holding the messages `seen`: copies of them are dropped for a while. */
  arrived(session: Session, seen: Set<string>): void {
    session.recentIds = seen;
    this.arrivals.set(session, Date.now() + ARRIVAL_GRACE_MS);
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
