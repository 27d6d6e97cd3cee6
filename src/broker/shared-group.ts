import type { Subscription } from '../model/subscription.js';
import type { Session } from './session.js';

/**
 * A shared subscription group (`$share/{group}/{filter}`, MQTT 5 section 4.8.2): every message
 * matching the filter goes to exactly one member.
 */
export class SharedGroup {
  private readonly members = new Map<Session, Subscription>();
  private order: Session[] = [];
  private cursor = 0;

  /** The group as a subscription filter (`$share/{group}/{filter}`): its name in the cluster. */
  readonly shareFilter: string;

  constructor(
    readonly name: string,
    readonly filter: string,
    private readonly strategy: 'round-robin' | 'random',
  ) {
    this.shareFilter = `$share/${name}/${filter}`;
  }

  /** The key that names a group: its name and its filter. */
  static key(name: string, filter: string): string {
    return `${name}\u0000${filter}`;
  }

  /** This group's key. */
  get key(): string {
    return SharedGroup.key(this.name, this.filter);
  }

  /** Number of member sessions. */
  get size(): number {
    return this.members.size;
  }

  /** Adds or updates a member; returns true when it is new. */
  add(session: Session, subscription: Subscription): boolean {
    const isNew = !this.members.has(session);
    this.members.set(session, subscription);
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
  pick(exclude?: Session): { session: Session; subscription: Subscription } | undefined {
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
        return { session, subscription: this.members.get(session) as Subscription };
      }
      fallback ??= session;
    }
    if (fallback === undefined) return undefined;
    this.cursor = (start + 1) % n;
    return { session: fallback, subscription: this.members.get(fallback) as Subscription };
  }
}
