/** Outgoing PUBLISH packets of one connection: the broker-wide encoding patched with a packet id, or an encoding of its own (subscription identifiers, topic aliases). */
import type { Message } from '../model/message.js';
import { encodePublish } from '../protocol/encoder.js';
import type { Properties, ProtocolVersion, PublishPacket, QoS } from '../protocol/types.js';
import type { Route } from './delivery.js';
import { OutboundTopicAliases } from './topic-aliases.js';
import { publishProperties, type WireCache } from './wire-cache.js';

/**
 * Encodes what one client is sent. Most deliveries share the broker-wide encoding of the message
 * (one per wire form per turn); QoS 1/2 copy it only to patch the packet id (and DUP). An MQTT 5
 * client gets its own encoding when it has subscription identifiers or accepts topic aliases.
 */
export class PublishEncoder {
  private readonly aliases: OutboundTopicAliases | undefined;

  constructor(
    private readonly wire: WireCache,
    readonly version: ProtocolVersion,
    /** MQTT 5: the largest packet the client accepts (Infinity if unlimited). */
    readonly maxPacketSize: number,
    topicAliasMaximum: number,
  ) {
    this.aliases = version === 5 && topicAliasMaximum > 0 ? new OutboundTopicAliases(topicAliasMaximum) : undefined;
  }

  /**
   * The PUBLISH bytes, or undefined when they would exceed the client's Maximum Packet Size: such a
   * message is discarded as if sent [MQTT-3.1.2-25]. `now` is needed only for MQTT 5 expiry (else 0).
   */
  encode(message: Message, qos: QoS, retain: boolean, route: Route, packetId: number, dup: boolean, now: number): Buffer | undefined {
    const bytes = this.version !== 5 || (route.subscriptionIds === undefined && this.aliases === undefined)
      ? this.shared(message, qos, retain, packetId, dup, now)
      : this.own(message, qos, retain, route, packetId, dup, now);
    return bytes === undefined || bytes.length > this.maxPacketSize ? undefined : bytes;
  }

  /** The broker-wide encoding of the message: itself, or (QoS 1/2) patched with this packet id and DUP — in place for the first taker, in a copy after. */
  private shared(message: Message, qos: QoS, retain: boolean, packetId: number, dup: boolean, now: number): Buffer {
    const wire = this.wire;
    const version = this.version;
    const form = wire.get(message, version, qos, retain, now);
    if (qos === 0) return form;
    let bytes = form;
    if (!wire.take(version, qos, retain)) {
      bytes = Buffer.allocUnsafe(form.length);
      form.copy(bytes, 0);
    }
    const offset = wire.packetIdOffset(version, qos, retain);
    bytes[offset] = packetId >> 8;
    bytes[offset + 1] = packetId & 0xff;
    bytes[0] = dup ? (bytes[0] as number) | 0x08 : (bytes[0] as number) & 0xf7;
    return bytes;
  }

  /** MQTT 5 encoding for this subscriber alone: its subscription identifiers and topic alias. */
  private own(message: Message, qos: QoS, retain: boolean, route: Route, packetId: number, dup: boolean, now: number): Buffer | undefined {
    const properties: Properties = { ...publishProperties(message, now) };
    if (route.subscriptionIds !== undefined) properties.subscriptionIdentifiers = route.subscriptionIds as number[];
    let topic = message.topic;
    const alias = this.aliases?.lookup(topic);
    if (alias !== undefined) {
      properties.topicAlias = alias.alias;
      if (alias.known) topic = '';
    }
    const packet: PublishPacket = { type: 'publish', topic, payload: message.payload, qos, retain, dup, properties };
    if (qos > 0) packet.packetId = packetId;
    const bytes = encodePublish(packet, 5);
    if (bytes.length > this.maxPacketSize) {
      if (alias !== undefined && !alias.known) this.aliases?.forget(message.topic); // the client never learns this alias
      return undefined;
    }
    return bytes;
  }
}
