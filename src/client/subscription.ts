/** What `subscribe()` returns: the SUBACK result and an async iterator of the matching messages. */
import { parseSharedSubscription, topicMatches, type Properties, type QoS } from '../protocol/index.js';
import type { MessageQueue } from './message-queue.js';

/** An application message received from the server. */
export interface Message {
  topic: string;
  /** The payload bytes (a view of the received chunk: copy it to keep it for long). */
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** MQTT 5 PUBLISH properties (user properties, content type, subscription identifiers …). */
  properties?: Properties;
}

/** True when `topic` matches `filter`, a `$share/{group}/` prefix being ignored. */
export function filterMatches(filter: string, topic: string): boolean {
  const shared = parseSharedSubscription(filter);
  return topicMatches(shared === undefined ? filter : shared.filter, topic);
}

/** A subscription made by `client.subscribe()`. Iterate it (`for await`) to read its messages. */
export class Subscription implements AsyncIterable<Message> {
  /** The filters asked for, in order. */
  readonly filters: readonly string[];
  /** SUBACK codes in the same order: granted QoS (0-2), or a failure code ≥ 0x80. */
  readonly reasonCodes: readonly number[];
  /** SUBACK properties (MQTT 5). */
  readonly properties: Properties | undefined;
  private readonly queue: MessageQueue<Message>;
  private readonly unsubscribeFn: (filters: string[]) => Promise<unknown>;

  constructor(
    filters: string[],
    reasonCodes: number[],
    properties: Properties | undefined,
    queue: MessageQueue<Message>,
    unsubscribe: (filters: string[]) => Promise<unknown>,
  ) {
    this.filters = filters;
    this.reasonCodes = reasonCodes;
    this.properties = properties;
    this.queue = queue;
    this.unsubscribeFn = unsubscribe;
  }

  /** Granted QoS per filter, or undefined where the server refused it. */
  get granted(): Array<QoS | undefined> {
    return this.reasonCodes.map((c) => (c <= 2 ? (c as QoS) : undefined));
  }

  /** True when every filter was granted. */
  get ok(): boolean {
    return this.reasonCodes.every((c) => c <= 2);
  }

  /** Messages dropped because this subscription's reader fell too far behind. */
  get dropped(): number {
    return this.queue.dropped;
  }

  /** The messages matching this subscription's filters, until it is closed or unsubscribed. */
  messages(): AsyncIterableIterator<Message> {
    return this.queue;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this.queue;
  }

  /** Stops iteration (the server subscription stays). */
  close(): void {
    this.queue.end();
  }

  /** Unsubscribes these filters and ends iteration. */
  async unsubscribe(): Promise<void> {
    this.queue.end();
    await this.unsubscribeFn([...this.filters]);
  }
}
