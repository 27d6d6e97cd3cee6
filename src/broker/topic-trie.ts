/** Subscription filters in a trie of levels, so a topic is matched by walking its levels once instead of testing every filter. */
import { LevelTrie, type LevelNode } from './level-trie.js';

/** Callback receiving each (subscriber, value) whose filter matches a topic. */
export type MatchVisitor<S, V> = (subscriber: S, value: V) => void;

type Node<S, V> = LevelNode<Map<S, V>>;

const isEmpty = <S, V>(values: Map<S, V> | undefined): boolean => values === undefined || values.size === 0;

/** A trie of topic filters; each filter maps subscribers to a value (their subscription). */
export class TopicTrie<S, V> {
  private readonly trie = new LevelTrie<Map<S, V>>();
  private filterCount = 0;

  /** Number of (filter, subscriber) entries. */
  get size(): number {
    return this.filterCount;
  }

  /** Adds or replaces the value of `subscriber` for `filter`; returns true when it is new. */
  add(filter: string, subscriber: S, value: V): boolean {
    const node = this.trie.ensure(filter);
    node.value ??= new Map();
    const isNew = !node.value.has(subscriber);
    node.value.set(subscriber, value);
    if (isNew) this.filterCount++;
    return isNew;
  }

  /** Removes `subscriber` from `filter`; returns true when it was there. */
  remove(filter: string, subscriber: S): boolean {
    const node = this.trie.find(filter);
    if (node?.value?.delete(subscriber) !== true) return false;
    this.filterCount--;
    this.trie.prune(node, isEmpty);
    return true;
  }

  /** Calls `visit` for every subscription whose filter matches `topic` (a valid topic name). */
  match(topic: string, visit: MatchVisitor<S, V>): void {
    // [MQTT-4.7.2-1] a topic starting with '$' is not matched by a filter starting with a wildcard.
    walk(this.trie.root, topic.split('/'), 0, visit, topic.charCodeAt(0) === 0x24);
  }
}

function walk<S, V>(node: Node<S, V>, levels: string[], index: number, visit: MatchVisitor<S, V>, noWildcard: boolean): void {
  const children = node.children;
  if (children === undefined) return;
  if (!noWildcard) {
    // '#' matches this level and everything below it, including the parent level itself
    // ("sport/#" matches "sport") [MQTT-4.7.1-2].
    const hash = children.get('#');
    if (hash?.value !== undefined) emit(hash.value, visit);
  }
  if (index === levels.length) return;
  const level = levels[index] as string;
  const last = index + 1 === levels.length;
  const exact = children.get(level);
  if (exact !== undefined) step(exact, levels, index, last, visit);
  if (!noWildcard) {
    const plus = children.get('+');
    if (plus !== undefined) step(plus, levels, index, last, visit);
  }
}

/** A node matched the level at `index`: emit it (and its "/#", which matches the parent too) or go deeper. */
function step<S, V>(node: Node<S, V>, levels: string[], index: number, last: boolean, visit: MatchVisitor<S, V>): void {
  if (!last) {
    walk(node, levels, index + 1, visit, false);
    return;
  }
  if (node.value !== undefined) emit(node.value, visit);
  // "a/b/#" also matches "a/b" itself.
  const tailHash = node.children?.get('#');
  if (tailHash?.value !== undefined) emit(tailHash.value, visit);
}

function emit<S, V>(values: Map<S, V>, visit: MatchVisitor<S, V>): void {
  for (const [subscriber, value] of values) visit(subscriber, value);
}
