/** Retained messages by topic, in a trie of levels so that a subscription's filter walks only the matching branches. */
import type { Message } from '../model/message.js';
import { LevelTrie, type LevelNode } from './level-trie.js';

type Node = LevelNode<Message>;

const isEmpty = (message: Message | undefined): boolean => message === undefined;

/** Retained messages by topic [MQTT-3.3.1-5], with the order in which topics were set (for a drop-oldest limit). */
export class RetainedMessages {
  private readonly trie = new LevelTrie<Message>();
  private count = 0;
  /** Topics from the least to the most recently set. */
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
    const node = this.trie.ensure(message.topic);
    if (node.value === undefined) this.count++;
    node.value = message;
    this.order.delete(message.topic);
    this.order.set(message.topic, true);
  }

  /** The retained message of one topic. */
  get(topic: string): Message | undefined {
    return this.trie.find(topic)?.value;
  }

  /** Removes the retained message of `topic`; returns true when there was one. */
  delete(topic: string): boolean {
    const node = this.trie.find(topic);
    if (node?.value === undefined) return false;
    node.value = undefined;
    this.count--;
    this.order.delete(topic);
    this.trie.prune(node, isEmpty);
    return true;
  }

  /** Retained messages whose topic matches `filter` (a valid topic filter). */
  match(filter: string): Message[] {
    const out: Message[] = [];
    collect(this.trie.root, filter.split('/'), 0, out);
    return out;
  }

  /** Every retained message (for listing and persistence). */
  all(): Message[] {
    const out: Message[] = [];
    collectAll(this.trie.root, out, false);
    return out;
  }
}

function collect(node: Node, levels: string[], index: number, out: Message[]): void {
  const level = levels[index];
  if (level === undefined) {
    if (node.value !== undefined) out.push(node.value);
    return;
  }
  const children = node.children;
  if (level === '#') {
    // "a/#" matches "a" itself and everything below [MQTT-4.7.1-2]; a root "#" skips $-topics.
    if (node.value !== undefined && index > 0) out.push(node.value);
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

function collectAll(node: Node, out: Message[], skipDollar: boolean): void {
  if (skipDollar && node.level.charCodeAt(0) === 0x24) return;
  if (node.value !== undefined) out.push(node.value);
  if (node.children !== undefined) for (const child of node.children.values()) collectAll(child, out, false);
}
