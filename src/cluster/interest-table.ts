/**
 * The cluster route table as cached on one node: which nodes have subscribers for which filters
 * (routing by interest), and which nodes have members of which shared groups. Pure data: the Redis
 * bus keeps it current from the route table in Redis and its change notifications.
 */

const SHARE_PREFIX = '$share/';
const NO_NODES: readonly string[] = [];

interface Level {
  children: Map<string, Level> | undefined;
  /** Interest keys (a filter, or `$share/{group}/{filter}`) ending here, with the nodes holding them. */
  keys: Map<string, Set<string>> | undefined;
}

/** Where a topic goes in the cluster. */
export interface ClusterRoute {
  /** Nodes with a non-shared subscription matching the topic. */
  nodes: readonly string[];
  /** Shared groups matching the topic, by key, with the nodes that have members. */
  groups: ReadonlyMap<string, readonly string[]>;
}

const MAX_CACHED_TOPICS = 10_000;
const EMPTY_GROUPS: ReadonlyMap<string, readonly string[]> = new Map();

/** Filters and shared groups of every node, matched by topic with a per-topic cache. */
export class InterestTable {
  private readonly root: Level = { children: undefined, keys: undefined };
  private readonly byNode = new Map<string, Set<string>>();
  private cache = new Map<string, ClusterRoute>();
  private readonly cursors = new Map<string, number>();

  /** Node ids with at least one interest. */
  nodes(): IterableIterator<string> {
    return this.byNode.keys();
  }

  /** The interest keys of `node`. */
  keysOf(node: string): ReadonlySet<string> {
    return this.byNode.get(node) ?? new Set();
  }

  /** Records that `node` has subscribers for `key`; returns false if it was known. */
  add(node: string, key: string): boolean {
    let keys = this.byNode.get(node);
    if (keys === undefined) this.byNode.set(node, (keys = new Set()));
    if (keys.has(key)) return false;
    keys.add(key);
    const level = this.walk(filterOf(key), true)!;
    level.keys ??= new Map();
    let holders = level.keys.get(key);
    if (holders === undefined) level.keys.set(key, (holders = new Set()));
    holders.add(node);
    this.invalidate();
    return true;
  }

  /** Records that `node` no longer has subscribers for `key`; returns false if it was not known. */
  remove(node: string, key: string): boolean {
    const keys = this.byNode.get(node);
    if (keys === undefined || !keys.delete(key)) return false;
    if (keys.size === 0) this.byNode.delete(node);
    const level = this.walk(filterOf(key), false);
    const holders = level?.keys?.get(key);
    if (holders !== undefined) {
      holders.delete(node);
      if (holders.size === 0) level!.keys!.delete(key);
    }
    this.invalidate();
    return true;
  }

  /** Forgets every interest of `node` (it left or died). */
  removeNode(node: string): void {
    for (const key of [...this.keysOf(node)]) this.remove(node, key);
  }

  /** Replaces all interests of `node` (a full resynchronisation). */
  replaceNode(node: string, keys: Iterable<string>): void {
    this.removeNode(node);
    for (const key of keys) this.add(node, key);
  }

  /** A node other than `me` has a subscription (plain or shared) matching `topic`. */
  wantedBeyond(topic: string, me: string): boolean {
    const route = this.match(topic);
    if (route.nodes.some((node) => node !== me)) return true;
    for (const nodes of route.groups.values()) if (nodes.some((node) => node !== me)) return true;
    return false;
  }

  /** The nodes and shared groups a message on `topic` goes to. The result is shared: do not modify it. */
  match(topic: string): ClusterRoute {
    const cached = this.cache.get(topic);
    if (cached !== undefined) return cached;
    const nodes = new Set<string>();
    let groups: Map<string, string[]> | undefined;
    const visit = (keys: Map<string, Set<string>>): void => {
      for (const [key, holders] of keys) {
        if (key.startsWith(SHARE_PREFIX)) {
          groups ??= new Map();
          const list = groups.get(key) ?? [];
          for (const node of holders) if (!list.includes(node)) list.push(node);
          list.sort();
          groups.set(key, list);
        } else {
          for (const node of holders) nodes.add(node);
        }
      }
    };
    const levels = topic.split('/');
    // [MQTT-4.7.2-1] a topic starting with $ is not matched by a filter starting with a wildcard.
    const dollar = topic.startsWith('$');
    const descend = (level: Level, i: number): void => {
      const children = level.children;
      if (children === undefined) return;
      const wildcardsAllowed = !(dollar && i === 0);
      if (wildcardsAllowed) {
        const hash = children.get('#');
        if (hash?.keys !== undefined) visit(hash.keys);
      }
      if (i === levels.length) return;
      const exact = children.get(levels[i]!);
      if (exact !== undefined) {
        if (i + 1 === levels.length && exact.keys !== undefined) visit(exact.keys);
        descend(exact, i + 1);
      }
      if (wildcardsAllowed) {
        const plus = children.get('+');
        if (plus !== undefined) {
          if (i + 1 === levels.length && plus.keys !== undefined) visit(plus.keys);
          descend(plus, i + 1);
        }
      }
    };
    descend(this.root, 0);
    const route: ClusterRoute = { nodes: nodes.size === 0 ? NO_NODES : [...nodes], groups: groups ?? EMPTY_GROUPS };
    if (this.cache.size >= MAX_CACHED_TOPICS) this.cache.clear();
    this.cache.set(topic, route);
    return route;
  }

  /** The next node (round-robin) to serve shared group `key` among `holders`. */
  pick(key: string, holders: readonly string[]): string | undefined {
    if (holders.length === 0) return undefined;
    const cursor = this.cursors.get(key) ?? 0;
    this.cursors.set(key, (cursor + 1) % 1_000_000);
    return holders[cursor % holders.length];
  }

  private walk(filter: string, create: boolean): Level | undefined {
    let level = this.root;
    for (const part of filter.split('/')) {
      let child = level.children?.get(part);
      if (child === undefined) {
        if (!create) return undefined;
        level.children ??= new Map();
        child = { children: undefined, keys: undefined };
        level.children.set(part, child);
      }
      level = child;
    }
    return level;
  }

  private invalidate(): void {
    if (this.cache.size > 0) this.cache = new Map();
  }
}

/** The topic filter of an interest key (`$share/{group}/{filter}` → `{filter}`). */
export function filterOf(key: string): string {
  if (!key.startsWith(SHARE_PREFIX)) return key;
  const slash = key.indexOf('/', SHARE_PREFIX.length);
  return key.slice(slash + 1);
}
