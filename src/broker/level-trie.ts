/** A trie of topic levels (`a/b/c` → a → b → c) with one value slot per node: the shape shared by the subscription index and the retained store. */

/** One node: its children by level, its value, and its place in the tree (for pruning). */
export interface LevelNode<T> {
  children: Map<string, LevelNode<T>> | undefined;
  value: T | undefined;
  readonly parent: LevelNode<T> | undefined;
  readonly level: string;
}

function newNode<T>(parent: LevelNode<T> | undefined, level: string): LevelNode<T> {
  return { children: undefined, value: undefined, parent, level };
}

/**
 * Nodes keyed by the levels of a topic name or filter. It knows nothing of wildcards: the
 * subscription index and the retained store walk it with their own matching rules.
 */
export class LevelTrie<T> {
  readonly root: LevelNode<T> = newNode<T>(undefined, '');

  /** The node of `path`, created with its ancestors when missing. */
  ensure(path: string): LevelNode<T> {
    let node = this.root;
    for (const level of path.split('/')) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (child === undefined) {
        child = newNode(node, level);
        node.children.set(level, child);
      }
      node = child;
    }
    return node;
  }

  /** The node of `path`, if it exists. */
  find(path: string): LevelNode<T> | undefined {
    let node: LevelNode<T> | undefined = this.root;
    for (const level of path.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node;
  }

  /** Removes `node` and its ancestors while they hold nothing (`isEmpty(value)`) and have no children. */
  prune(node: LevelNode<T>, isEmpty: (value: T | undefined) => boolean): void {
    let current: LevelNode<T> | undefined = node;
    while (current?.parent !== undefined) {
      if (!isEmpty(current.value) || (current.children !== undefined && current.children.size > 0)) return;
      current.parent.children?.delete(current.level);
      current = current.parent;
    }
  }
}
