/**
 * Subscription index: topic filters in a trie of levels, so a topic is matched by walking
 * its levels once instead of testing every filter.
 */

interface TrieNode<S, V> {
  children: Map<string, TrieNode<S, V>> | undefined;
  /** Subscribers whose filter ends at this node. */
  values: Map<S, V> | undefined;
  parent: TrieNode<S, V> | undefined;
  level: string;
}

function newNode<S, V>(parent: TrieNode<S, V> | undefined, level: string): TrieNode<S, V> {
  return { children: undefined, values: undefined, parent, level };
}

/** Callback receiving each (subscriber, value) whose filter matches a topic. */
export type MatchVisitor<S, V> = (subscriber: S, value: V) => void;

/** A trie of topic filters; each filter maps subscribers to a value (their subscription). */
export class TopicTrie<S, V> {
  private readonly root: TrieNode<S, V> = newNode<S, V>(undefined, '');
  private filterCount = 0;

  /** Number of (filter, subscriber) entries. */
  get size(): number {
    return this.filterCount;
  }

  /** Adds or replaces the value of `subscriber` for `filter`; returns true when it is new. */
  add(filter: string, subscriber: S, value: V): boolean {
    let node = this.root;
    for (const level of filter.split('/')) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (child === undefined) {
        child = newNode(node, level);
        node.children.set(level, child);
      }
      node = child;
    }
    node.values ??= new Map();
    const isNew = !node.values.has(subscriber);
    node.values.set(subscriber, value);
    if (isNew) this.filterCount++;
    return isNew;
  }

  /** Removes `subscriber` from `filter`; returns true when it was there. */
  remove(filter: string, subscriber: S): boolean {
    let node: TrieNode<S, V> | undefined = this.root;
    for (const level of filter.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return false;
    }
    if (node.values?.delete(subscriber) !== true) return false;
    this.filterCount--;
    this.prune(node);
    return true;
  }

  /** Calls `visit` for every subscription whose filter matches `topic` (a valid topic name). */
  match(topic: string, visit: MatchVisitor<S, V>): void {
    const levels = topic.split('/');
    // [MQTT-4.7.2-1] a topic starting with '$' is not matched by a filter starting with a wildcard.
    const dollar = topic.charCodeAt(0) === 0x24;
    this.walk(this.root, levels, 0, visit, dollar);
  }

  private walk(node: TrieNode<S, V>, levels: string[], index: number, visit: MatchVisitor<S, V>, noWildcard: boolean): void {
    const children = node.children;
    if (children === undefined) return;
    if (!noWildcard) {
      // '#' matches this level and everything below it, including the parent level itself
      // ("sport/#" matches "sport") [MQTT-4.7.1-2].
      const hash = children.get('#');
      if (hash?.values !== undefined) emit(hash.values, visit);
    }
    if (index === levels.length) return;
    const level = levels[index] as string;
    const last = index + 1 === levels.length;
    const exact = children.get(level);
    if (exact !== undefined) {
      if (last) {
        if (exact.values !== undefined) emit(exact.values, visit);
        // "a/b/#" also matches "a/b" itself.
        const tailHash = exact.children?.get('#');
        if (tailHash?.values !== undefined) emit(tailHash.values, visit);
      } else {
        this.walk(exact, levels, index + 1, visit, false);
      }
    }
    if (!noWildcard) {
      const plus = children.get('+');
      if (plus !== undefined) {
        if (last) {
          if (plus.values !== undefined) emit(plus.values, visit);
          const tailHash = plus.children?.get('#');
          if (tailHash?.values !== undefined) emit(tailHash.values, visit);
        } else {
          this.walk(plus, levels, index + 1, visit, false);
        }
      }
    }
  }

  private prune(node: TrieNode<S, V>): void {
    let current: TrieNode<S, V> | undefined = node;
    while (current?.parent !== undefined) {
      const empty = (current.values === undefined || current.values.size === 0) && (current.children === undefined || current.children.size === 0);
      if (!empty) return;
      current.parent.children?.delete(current.level);
      current = current.parent;
    }
  }
}

function emit<S, V>(values: Map<S, V>, visit: MatchVisitor<S, V>): void {
  for (const [subscriber, value] of values) visit(subscriber, value);
}
