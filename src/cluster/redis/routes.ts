/**
 * Routing by interest on Redis: this node's interest keys (a filter, or `$share/{group}/{filter}`)
 * as a set per node, changes announced on the routes channel, and every node's set cached in the
 * interest table. A change commits with the turn that made it (it is a transaction part).
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../persistence/redis/keys.js';
import type { Transaction, TransactionPart } from '../../persistence/redis/transaction.js';
import { InterestTable } from '../interest-table.js';
import type { ClusterLogger } from './connections.js';

/** One announcement on the routes channel. */
export type RouteChange =
  | { node: string; op: 'add' | 'remove'; key: string }
  /** The node is gone from the cluster (adopted). */
  | { node: string; op: 'drop' }
  /** The node (re)registered: reload its whole set. */
  | { node: string; op: 'reload' };

const OPS = { '+': 'add', '-': 'remove', '!': 'drop', '*': 'reload' } as const;

/** The wire form of a route change: `{node}\n{+|-}{key}`, `{node}\n!` or `{node}\n*`. */
export function formatRouteChange(change: RouteChange): string {
  switch (change.op) {
    case 'add':
      return `${change.node}\n+${change.key}`;
    case 'remove':
      return `${change.node}\n-${change.key}`;
    case 'drop':
      return `${change.node}\n!`;
    case 'reload':
      return `${change.node}\n*`;
  }
}

/** Reads what `formatRouteChange` wrote; undefined for anything else. */
export function parseRouteChange(text: string): RouteChange | undefined {
  const nl = text.indexOf('\n');
  if (nl <= 0) return undefined;
  const node = text.slice(0, nl);
  const op = OPS[text.charAt(nl + 1) as keyof typeof OPS] as RouteChange['op'] | undefined;
  if (op === 'add' || op === 'remove') return { node, op, key: text.slice(nl + 2) };
  return op === undefined ? undefined : { node, op };
}

/** This node's interest, and every node's as cached here. */
export class Routes implements TransactionPart {
  /** Every node's interest keys (this node's included), matched by topic. */
  readonly table = new InterestTable();
  private readonly own = new Set<string>();
  /** This node's changes waiting for the next commit. */
  private changes: RouteChange[] = [];
  /** Announcements that arrived during a resynchronisation, applied after it. */
  private backlog: string[] | undefined;

  constructor(
    private readonly nodeId: string,
    private readonly keys: RedisKeys,
    private readonly redis: Redis,
    private readonly log: ClusterLogger,
  ) {}

  /** Records a new interest of this node; false if it was held already. */
  add(key: string): boolean {
    if (this.own.has(key)) return false;
    this.own.add(key);
    this.table.add(this.nodeId, key);
    this.changes.push({ node: this.nodeId, op: 'add', key });
    return true;
  }

  /** Records that this node lost an interest; false if it was not held. */
  remove(key: string): boolean {
    if (!this.own.delete(key)) return false;
    this.table.remove(this.nodeId, key);
    this.changes.push({ node: this.nodeId, op: 'remove', key });
    return true;
  }

  write(tx: Transaction): undefined {
    const mine = this.keys.routes(this.nodeId);
    for (const change of this.changes) {
      if (change.op === 'add') tx.sadd(mine, change.key);
      else if (change.op === 'remove') tx.srem(mine, change.key);
      tx.publish(this.keys.routesChannel(), formatRouteChange(change));
    }
    this.changes = [];
    return undefined;
  }

  /** Starts a resynchronisation: announcements are held until `endResync`. */
  beginResync(): void {
    this.backlog ??= [];
  }

  /**
   * Adds to `tx` the replacement of this node's route set by what it holds now, announced. It
   * supersedes the changes not yet written (made while Redis was away): they are dropped, so none
   * is announced late (a late removal would make the other nodes skip this node for a moment).
   */
  register(tx: Transaction): void {
    this.changes = [];
    const mine = this.keys.routes(this.nodeId);
    tx.del(mine);
    if (this.own.size > 0) tx.sadd(mine, ...this.own);
    tx.publish(this.keys.routesChannel(), formatRouteChange({ node: this.nodeId, op: 'reload' }));
  }

  /** Reloads every other node's route set from Redis (`nodes`: the registered nodes). */
  async reload(nodes: readonly string[]): Promise<void> {
    const known = new Set(nodes);
    for (const node of [...this.table.nodes()]) if (!known.has(node) && node !== this.nodeId) this.table.removeNode(node);
    for (const node of nodes) {
      if (node === this.nodeId) continue;
      this.table.replaceNode(node, await this.redis.smembers(this.keys.routes(node)));
    }
    this.table.replaceNode(this.nodeId, this.own);
  }

  /** Ends a resynchronisation: applies what was announced meanwhile. */
  endResync(): void {
    const backlog = this.backlog ?? [];
    this.backlog = undefined;
    for (const text of backlog) this.apply(text);
  }

  /** An announcement from the routes channel. */
  onAnnouncement(text: string): void {
    if (this.backlog !== undefined) this.backlog.push(text);
    else this.apply(text);
  }

  /** Forgets a node (adopted by this one: only once its sessions and stream are taken over). */
  dropNode(node: string): void {
    this.table.removeNode(node);
  }

  private apply(text: string): void {
    const change = parseRouteChange(text);
    if (change === undefined || change.node === this.nodeId) return;
    const node = change.node;
    switch (change.op) {
      case 'add':
        this.table.add(node, change.key);
        break;
      case 'remove':
        this.table.remove(node, change.key);
        break;
      case 'drop':
        this.table.removeNode(node);
        break;
      case 'reload':
        this.redis.smembers(this.keys.routes(node)).then(
          (keys) => this.table.replaceNode(node, keys),
          (error: unknown) => this.log.warn({ node, err: error }, 'cluster: could not reload routes of a node'),
        );
        break;
    }
  }
}
