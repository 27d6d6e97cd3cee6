/** A shared subscription group (`$share/{group}/{filter}`): its members, and the one a message goes to. */
import type { Subscription } from '../model/subscription.js';
import { routeOf, type Route } from './delivery.js';
import type { Session } from './session.js';

/** A member of a group: its subscription and the route a delivery through the group takes. */
export interface GroupMember {
  readonly session: Session;
  readonly subscription: Subscription;
  readonly route: Route;
}

/**
 * A shared subscription group (`$share/{group}/{filter}`, MQTT 5 section 4.8.2): every message
 * matching the filter goes to exactly one member.
 */
export class SharedGroup {
  private readonly members = new Map<Session, GroupMember>();
  private order: Session[] = [];
  private cursor = 0;

  /** The group as a subscription filter (`$share/{group}/{filter}`): its name in the cluster. */
  readonly shareFilter: string;
  /** This group's key (see SharedGroup.key). */
  readonly key: string;

  constructor(
    readonly name: string,
    readonly filter: string,
    private readonly strategy: 'round-robin' | 'random',
  ) {
    this.shareFilter = `$share/${name}/${filter}`;
    this.key = SharedGroup.key(name, filter);
  }

  /** The key that names a group: its name and its filter. */
  static key(name: string, filter: string): string {
    return `${name}\u0000${filter}`;
  }


  /** Number of member sessions. */
  get size(): number {
    return this.members.size;
  }

  /** Adds or updates a member; returns true when it is new. */
  add(session: Session, subscription: Subscription): boolean {
    const isNew = !this.members.has(session);
    this.members.set(session, { session, subscription, route: routeOf(subscription, this.key) });
    if (isNew) this.order.push(session);
    return isNew;
  }

  /** Removes a member; returns true when it was one. */
  remove(session: Session): boolean {
    if (!this.members.delete(session)) return false;
    this.order = this.order.filter((s) => s !== session);
    return true;
  }

  /**
   * Picks the member for the next message: online members first (so a message does not wait in an
   * absent member's queue while others could take it), by the configured strategy. `exclude` is a
   * member that must not be picked (the one a message is being taken from).
   */
  pick(exclude?: Session): GroupMember | undefined {
    const order = this.order;
    const n = order.length;
    if (n === 0) return undefined;
    const start = this.strategy === 'random' ? Math.floor(Math.random() * n) : this.cursor % n;
    let fallback: Session | undefined;
    for (let i = 0; i < n; i++) {
      const session = order[(start + i) % n] as Session;
      if (session === exclude) continue;
      if (session.link !== undefined) {
        this.cursor = (start + i + 1) % n;
        return this.members.get(session);
      }
      fallback ??= session;
    }
    if (fallback === undefined) return undefined;
    this.cursor = (start + 1) % n;
    return this.members.get(fallback);
  }
}
