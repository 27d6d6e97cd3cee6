import type { Message } from '../model/message.js';

interface RetainedNode {
  children: Map<string, RetainedNode> | undefined;
  message: Message | undefined;
  parent: RetainedNode | undefined;
  level: string;
}

function newNode(parent: RetainedNode | undefined, level: string): RetainedNode {
  return { children: undefined, message: undefined, parent, level };
}

/** Retained messages by topic, in a trie of levels so a filter walks only the matching branches. */
export class RetainedMessages {
  private readonly root = newNode(undefined, '');
  private count = 0;
  /** Topics from the least to the most recently set (for a drop-oldest limit). */
  private readonly order = new Map<string, true>();

  /** Number of retained messages. */
  get size(): number {
    return this.count;
  }

  /** The topic whose retained message was set longest ago. */
  oldestTopic(): string | undefined {
    for (const topic of this.order.keys()) return topic;
    return undefined;
  }

  /** True when `topic` has a retained message. */
  has(topic: string): boolean {
    return this.order.has(topic);
  }

  /** Stores `message` for its topic, or clears the topic when the payload is empty [MQTT-3.3.1-10/11]. */
  set(message: Message): void {
    if (message.payload.length === 0) {
      this.delete(message.topic);
      return;
    }
    let node = this.root;
    for (const level of message.topic.split('/')) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (child === undefined) {
        child = newNode(node, level);
        node.children.set(level, child);
      }
      node = child;
    }
    if (node.message === undefined) this.count++;
    node.message = message;
    this.order.delete(message.topic);
    this.order.set(message.topic, true);
  }

  /** The retained message of one topic. */
  get(topic: string): Message | undefined {
    let node: RetainedNode | undefined = this.root;
    for (const level of topic.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node.message;
  }

  /** Removes the retained message of `topic`; returns true when there was one. */
  delete(topic: string): boolean {
    let node: RetainedNode | undefined = this.root;
    for (const level of topic.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return false;
    }
    if (node.message === undefined) return false;
    node.message = undefined;
    this.count--;
    this.order.delete(topic);
    let current: RetainedNode | undefined = node;
    while (current?.parent !== undefined && current.message === undefined && (current.children === undefined || current.children.size === 0)) {
      current.parent.children?.delete(current.level);
      current = current.parent;
    }
    return true;
  }

  /** Retained messages whose topic matches `filter` (a valid topic filter). */
  match(filter: string): Message[] {
    const out: Message[] = [];
    collect(this.root, filter.split('/'), 0, out);
    return out;
  }

  /** Every retained message (for listing and persistence). */
  all(): Message[] {
    const out: Message[] = [];
    collectAll(this.root, out, false);
    return out;
  }
}

function collect(node: RetainedNode, levels: string[], index: number, out: Message[]): void {
  const level = levels[index];
  if (level === undefined) {
    if (node.message !== undefined) out.push(node.message);
    return;
  }
  const children = node.children;
  if (level === '#') {
    // "a/#" matches "a" itself and everything below [MQTT-4.7.1-2]; a root "#" skips $-topics.
    if (node.message !== undefined && index > 0) out.push(node.message);
    if (children !== undefined) for (const child of children.values()) collectAll(child, out, index === 0);
    return;
  }
  if (children === undefined) return;
  if (level === '+') {
    for (const child of children.values()) {
      if (index === 0 && child.level.charCodeAt(0) === 0x24) continue; // [MQTT-4.7.2-1]
      collect(child, levels, index + 1, out);
    }
    return;
  }
  const child = children.get(level);
  if (child !== undefined) collect(child, levels, index + 1, out);
}

function collectAll(node: RetainedNode, out: Message[], skipDollar: boolean): void {
  if (skipDollar && node.level.charCodeAt(0) === 0x24) return;
  if (node.message !== undefined) out.push(node.message);
  if (node.children !== undefined) for (const child of node.children.values()) collectAll(child, out, false);
}
