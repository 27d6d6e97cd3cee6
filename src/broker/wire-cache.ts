/** One encoding per wire form (3.1.x | 5.0 × QoS × RETAIN) of the message being routed, shared by its subscribers. */
import type { Message } from '../model/message.js';
import { encodePublish, publishPacketIdOffset } from '../protocol/encoder.js';
import type { Properties, ProtocolVersion, QoS } from '../protocol/types.js';

/**
 * Encodes a PUBLISH once per distinct wire form and shares the bytes across subscribers.
 * One slot: the broker routes one message to all its subscribers synchronously, so the
 * message being routed is almost always the one cached. QoS > 0 forms carry packet id 0: the
 * first subscriber to send a form takes the buffer itself and patches its packet id in place (a
 * device's message usually has one subscriber: no copy); later ones copy it and patch their own.
 * Forms: (3.1.x | 5.0) × QoS × RETAIN.
 */
export class WireCache {
  private message: Message | undefined;
  private readonly forms: (Buffer | undefined)[] = new Array<Buffer | undefined>(12).fill(undefined);
  private readonly offsets: number[] = new Array<number>(12).fill(0);
  /** Bit per form: encoded for the current message (the slot is stale otherwise). */
  private filled = 0;
  /** Bit per form: its buffer was taken by a subscriber (and patched). */
  private taken = 0;

  /** The encoded PUBLISH for (message, version, qos, retain), without per-subscriber properties. */
  get(message: Message, version: ProtocolVersion, qos: QoS, retain: boolean, now: number): Buffer {
    if (this.message !== message) {
      this.message = message;
      this.filled = 0;
      this.taken = 0;
    }
    const index = formIndex(version, qos, retain);
    const bit = 1 << index;
    if ((this.filled & bit) !== 0) return this.forms[index] as Buffer;
    const form = encodeDelivery(message, version, qos, retain, version === 5 ? publishProperties(message, now) : undefined, message.topic);
    this.forms[index] = form;
    this.filled |= bit;
    if (qos > 0) this.offsets[index] = publishPacketIdOffset(form);
    return form;
  }

  /**
   * True the first time a subscriber asks for the form last returned by `get` for (version, qos,
   * retain): it may patch that buffer in place. Later callers must copy it.
   */
  take(version: ProtocolVersion, qos: QoS, retain: boolean): boolean {
    const bit = 1 << formIndex(version, qos, retain);
    if ((this.taken & bit) !== 0) return false;
    this.taken |= bit;
    return true;
  }

  /** Offset of the packet id in the form last returned by `get` for (version, qos, retain). */
  packetIdOffset(version: ProtocolVersion, qos: QoS, retain: boolean): number {
    return this.offsets[formIndex(version, qos, retain)] as number;
  }

  /** Forgets the cached message (so its payload can be collected). */
  reset(): void {
    this.message = undefined;
    if (this.filled !== 0) this.forms.fill(undefined);
    this.filled = 0;
    this.taken = 0;
  }
}

function formIndex(version: ProtocolVersion, qos: QoS, retain: boolean): number {
  return (version === 5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
}

/** Encodes one PUBLISH of `message` (packet id 0 for QoS > 0, to be patched). */
export function encodeDelivery(message: Message, version: ProtocolVersion, qos: QoS, retain: boolean, properties: Properties | undefined, topic: string): Buffer {
  return encodePublish(
    properties === undefined
      ? { type: 'publish', topic, payload: message.payload, qos, retain, dup: false }
      : { type: 'publish', topic, payload: message.payload, qos, retain, dup: false, properties },
    version,
  );
}

/**
 * The MQTT 5 properties a message is forwarded with: the publisher's own (unchanged
 * [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-17] [MQTT-3.3.2-18]) and the Message Expiry Interval
 * reduced by the time the message waited here [MQTT-3.3.2-6].
 */
export function publishProperties(message: Message, now: number): Properties | undefined {
  const own = message.properties;
  if (message.expiresAt === undefined) return own;
  const remaining = Math.max(1, Math.ceil((message.expiresAt - now) / 1000));
  return own === undefined ? { messageExpiryInterval: remaining } : { ...own, messageExpiryInterval: remaining };
}
