/**
 * The receiving side of a client: incoming PUBLISH (topic aliases, QoS 1/2 acknowledgements, manual
 * acknowledgements) and where each message goes — the 'message' event, the queues of subscriptions
 * and `messages()`, or, while nobody listens yet, a bounded list kept for the first taker.
 */
import type { AckPacket, ProtocolVersion, PublishPacket } from '../protocol/index.js';
import { PendingAcks } from './acknowledgements.js';
import type { Connection } from './connection.js';
import { ProtocolError } from './errors.js';
import { MessageQueue } from './message-queue.js';
import { filterMatches, type Message } from './subscription.js';

/** Messages kept for a consumer that has not subscribed yet; older ones beyond this are dropped. */
const MAX_UNCLAIMED = 10_000;

/** A consumer of messages: a subscription's filters, or every message (`filters` undefined). */
export interface QueueEntry {
  queue: MessageQueue<Message>;
  filters: readonly string[] | undefined;
}

/** What the inbox needs of its client. */
export interface InboxHost {
  version(): ProtocolVersion;
  readonly manualAck: boolean;
  /** QoS 2 packet ids received and not yet released (PUBREL), kept by the client's session. */
  readonly incomingQos2: Set<number>;
  /** Emits the 'message' event; true if someone listens for it. */
  emitMessage(message: Message): boolean;
}

/** The messages a client receives and who takes them. */
export class Inbox {
  private readonly queues = new Set<QueueEntry>();
  /** Messages received while nothing was listening (see dispatch). */
  private unclaimed: Message[] = [];
  private readonly aliases = new Map<number, string>();
  private readonly pendingAcks = new PendingAcks();

  constructor(private readonly host: InboxHost) {}

  /** A new connection: topic aliases start over [MQTT-3.3.2-7]. */
  connected(): void {
    this.aliases.clear();
  }

  /** The server started a new session: acknowledgements of the old one mean nothing any more. */
  newSession(): void {
    this.pendingAcks.newSession();
  }

  /** An incoming PUBLISH on `conn`: dispatched, and acknowledged unless the application does it (`manualAck`). */
  receive(conn: Connection, p: PublishPacket): void {
    let topic = p.topic;
    const alias = p.properties?.topicAlias;
    if (alias !== undefined) {
      if (topic.length > 0) this.aliases.set(alias, topic);
      else topic = this.aliases.get(alias) ?? '';
      if (topic.length === 0) {
        conn.destroy(new ProtocolError(`unknown topic alias ${alias}`));
        return;
      }
    }
    const message: Message = { topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup };
    if (p.properties !== undefined) message.properties = p.properties;
    const manual = this.host.manualAck;
    if (p.qos === 2) {
      const id = p.packetId!;
      const qos2 = this.host.incomingQos2;
      if (!qos2.has(id)) {
        qos2.add(id);
        if (manual) this.pendingAcks.hold(message, id, 2);
        this.dispatch(message);
      }
      // A duplicate of a message the application still holds is acknowledged when it is.
      if (!this.pendingAcks.waiting(id)) conn.send({ type: 'pubrec', packetId: id });
      return;
    }
    if (p.qos === 1 && manual) this.pendingAcks.hold(message, p.packetId!, 1);
    this.dispatch(message);
    if (p.qos === 1 && !manual) conn.send({ type: 'puback', packetId: p.packetId! });
  }

  /**
   * The application acknowledges `message` (`manualAck`): PUBACK or PUBREC on `conn`, with an MQTT 5
   * reason code if given. False when there was nothing to send or no connection to send it on.
   */
  acknowledge(message: Message, reasonCode: number, conn: Connection | undefined): boolean {
    const pending = this.pendingAcks.take(message);
    if (pending === undefined) return false;
    const code = this.host.version() === 5 ? reasonCode : 0;
    if (pending.qos === 2 && code >= 0x80) this.host.incomingQos2.delete(pending.packetId);
    if (conn === undefined) return false;
    const packet: AckPacket<'puback' | 'pubrec'> = { type: pending.qos === 1 ? 'puback' : 'pubrec', packetId: pending.packetId };
    if (code !== 0) packet.reasonCode = code;
    conn.send(packet);
    return true;
  }

  /** A new consumer (a subscription's `filters`, or every message): it first gets what nobody had taken that it matches. */
  open(filters: readonly string[] | undefined): QueueEntry {
    const entry: QueueEntry = { queue: new MessageQueue<Message>(undefined, () => this.queues.delete(entry)), filters };
    this.queues.add(entry);
    if (this.unclaimed.length > 0) {
      const kept: Message[] = [];
      for (const message of this.unclaimed) {
        if (matches(entry, message)) entry.queue.push(message);
        else kept.push(message);
      }
      this.unclaimed = kept;
    }
    return entry;
  }

  /** Ends the subscription queues none of whose filters is still subscribed. */
  endUnsubscribed(subscribed: (filter: string) => boolean): void {
    for (const entry of this.queues) {
      if (entry.filters !== undefined && entry.filters.every((f) => !subscribed(f))) entry.queue.end();
    }
  }

  /** The client closed: every queue ends (with `error` if it failed). */
  close(error: Error | undefined): void {
    for (const entry of [...this.queues]) entry.queue.end(error);
  }

  private dispatch(message: Message): void {
    let claimed = this.host.emitMessage(message);
    for (const entry of this.queues) {
      if (matches(entry, message)) {
        entry.queue.push(message);
        claimed = true;
      }
    }
    if (!claimed) {
      // A resumed session delivers its queued messages right after CONNACK, before the application
      // had a chance to subscribe() or call messages(): keep them (bounded) for the first taker.
      if (this.unclaimed.length >= MAX_UNCLAIMED) this.unclaimed.shift();
      this.unclaimed.push(message);
    }
  }
}

function matches(entry: QueueEntry, message: Message): boolean {
  return entry.filters === undefined || entry.filters.some((f) => filterMatches(f, message.topic));
}
