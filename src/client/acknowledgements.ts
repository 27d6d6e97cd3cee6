/** Manual acknowledgement (the `manualAck` option): received QoS 1/2 messages the application has not acknowledged yet. */
import type { Message } from './subscription.js';

/** What the acknowledgement of one message will be. */
export interface PendingAck {
  packetId: number;
  qos: 1 | 2;
}

/**
 * Received QoS 1/2 messages awaiting `client.acknowledge()`. A message belongs to one server
 * session: when the server starts a new one (Session Present 0) the old acknowledgements mean
 * nothing to it any more and are forgotten.
 */
export class PendingAcks {
  private readonly byMessage = new WeakMap<Message, PendingAck & { epoch: number }>();
  /** QoS 2 packet ids delivered to the application and not acknowledged: a resent duplicate gets no PUBREC yet. */
  private readonly unackedQos2 = new Set<number>();
  private epoch = 0;

  /** Remembers that `message` (packet id, QoS 1 or 2) waits for the application. */
  hold(message: Message, packetId: number, qos: 1 | 2): void {
    this.byMessage.set(message, { packetId, qos, epoch: this.epoch });
    if (qos === 2) this.unackedQos2.add(packetId);
  }

  /** True while the QoS 2 message with this id waits for the application (its PUBREC must wait too). */
  waiting(packetId: number): boolean {
    return this.unackedQos2.has(packetId);
  }

  /** Takes the pending acknowledgement of `message`; undefined if it has none (QoS 0, already acknowledged, or of a forgotten session). */
  take(message: Message): PendingAck | undefined {
    const pending = this.byMessage.get(message);
    if (pending === undefined) return undefined;
    this.byMessage.delete(message);
    if (pending.qos === 2) this.unackedQos2.delete(pending.packetId);
    return pending.epoch === this.epoch ? { packetId: pending.packetId, qos: pending.qos } : undefined;
  }

  /** The server started a new session: nothing pending belongs to it. */
  newSession(): void {
    this.epoch++;
    this.unackedQos2.clear();
  }
}
