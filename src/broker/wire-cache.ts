import type { Message } from '../model/message.js';
import { encodePublish, publishPacketIdOffset } from '../protocol/encoder.js';
import type { ProtocolVersion, QoS } from '../protocol/types.js';

/**
 * Encodes a PUBLISH once per distinct wire form and shares the bytes across subscribers.
 * One slot: the broker routes one message to all its subscribers synchronously, so the
 * message being routed is almost always the one cached. QoS > 0 forms carry packet id 0,
 * which `Connection` patches in its own copy.
 */
export class WireCache {
  private message: Message | undefined;
  private readonly forms: (Buffer | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined];
  private readonly offsets: number[] = [0, 0, 0, 0, 0, 0];

  /** The encoded PUBLISH for (message, qos, retain) in the 3.1/3.1.1 wire form. */
  get(message: Message, version: ProtocolVersion, qos: QoS, retain: boolean): Buffer {
    if (this.message !== message) {
      this.message = message;
      this.forms.fill(undefined);
    }
    const index = qos * 2 + (retain ? 1 : 0);
    let form = this.forms[index];
    if (form === undefined) {
      form = encodePublish(
        qos === 0
          ? { type: 'publish', topic: message.topic, payload: message.payload, qos, retain, dup: false }
          : { type: 'publish', topic: message.topic, payload: message.payload, qos, retain, dup: false, packetId: 1 },
        version,
      );
      this.forms[index] = form;
      if (qos > 0) this.offsets[index] = publishPacketIdOffset(form);
    }
    return form;
  }

  /** Offset of the packet id in the form last returned by `get` for (qos, retain). */
  packetIdOffset(qos: QoS, retain: boolean): number {
    return this.offsets[qos * 2 + (retain ? 1 : 0)] as number;
  }

  /** Forgets the cached message (so its payload can be collected). */
  reset(): void {
    this.message = undefined;
    this.forms.fill(undefined);
  }
}
