/** Sessions by client id: creation, lookup and removal together with their subscriptions. */
import { Session, type QueueFullPolicy } from './session.js';
import type { SubscriptionIndex } from './subscription-index.js';

/** Every session of this broker, online and offline. */
export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly index: SubscriptionIndex,
    private readonly maxInflight: number,
    private readonly maxQueued: number,
    private readonly queueFullPolicy: QueueFullPolicy = 'drop-new',
  ) {}

  /** Number of sessions, online and offline. */
  get size(): number {
    return this.sessions.size;
  }

  /** The session of `clientId`, if any. */
  get(clientId: string): Session | undefined {
    return this.sessions.get(clientId);
  }

  /** A new, empty session for `clientId`, replacing (and discarding) any existing one. */
  create(clientId: string): Session {
    const existing = this.sessions.get(clientId);
    if (existing !== undefined) this.discard(existing);
    const session = new Session(clientId, this.maxInflight, this.maxQueued, this.queueFullPolicy);
    this.sessions.set(clientId, session);
    return session;
  }

  /** A session that is not registered: a cluster stub forwarding to the node its session moved to. */
  createStub(clientId: string, movedTo: string): Session {
    const stub = new Session(clientId, this.maxInflight, this.maxQueued, this.queueFullPolicy);
    stub.movedTo = movedTo;
    return stub;
  }

  /** Ends a session: its subscriptions leave the index and its state is dropped. */
  discard(session: Session): void {
    for (const subscription of session.subscriptions.values()) this.index.unsubscribe(session, subscription);
    session.clear();
    session.link = undefined;
    // A stored session goes with its stored deliveries and QoS 2 ids.
    session.journal?.deleteSession(session.clientId);
    session.journal = undefined;
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  /** Lets go of a session without deleting its stored state (another cluster node holds it now). */
  detach(session: Session): void {
    for (const subscription of session.subscriptions.values()) this.index.unsubscribe(session, subscription);
    session.detach();
    session.link = undefined;
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  /** Every session. */
  values(): IterableIterator<Session> {
    return this.sessions.values();
  }
}
