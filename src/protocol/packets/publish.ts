/** PUBLISH (spec 3.3): the hot path, decoded without a Reader and with the payload as a view. */
import { MalformedPacketError, ProtocolViolationError } from '../errors.js';
import { Reader, Writer, checkUtf8, packetSize, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import { validateTopicName } from '../topic.js';
import type { ProtocolVersion, PublishPacket, QoS } from '../types.js';

function short(): MalformedPacketError {
  return new MalformedPacketError('PUBLISH shorter than its content');
}

/**
 * Decodes a PUBLISH body. The payload is a `subarray` of `buf` (no copy): callers that keep it beyond
 * the life of the read chunk should copy it.
 */
export function decodePublish(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw new MalformedPacketError('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) throw new ProtocolViolationError('PUBLISH QoS 0 with DUP set [MQTT-3.3.1-2]');
  let pos = start;
  if (pos + 2 > end) throw short();
  const topicEnd = pos + 2 + ((buf[pos]! << 8) | buf[pos + 1]!);
  pos += 2;
  if (topicEnd > end) throw short();
  checkUtf8(buf, pos, topicEnd);
  const topic = pos === topicEnd ? '' : buf.toString('utf8', pos, topicEnd);
  pos = topicEnd;
  let packetId = 0;
  if (qos > 0) {
    if (pos + 2 > end) throw short();
    packetId = (buf[pos]! << 8) | buf[pos + 1]!;
    if (packetId === 0) throw new MalformedPacketError('PUBLISH QoS > 0 with packet identifier 0 [MQTT-2.3.1-1]');
    pos += 2;
  }
  let properties;
  if (version === 5) {
    if (pos < end && buf[pos] === 0) {
      // Property Length 0, by far the most common case: no Reader to allocate.
      pos++;
    } else {
      const r = new Reader(buf, pos, end);
      properties = decodeProperties(r, PropertyContext.publish);
      pos = r.pos;
    }
    // MQTT 5: an empty topic name is allowed when a Topic Alias carries it (spec 3.3.2.3.4).
    if (topic.length !== 0 || properties?.topicAlias === undefined) validateTopicName(topic);
  } else {
    validateTopicName(topic);
  }
  const packet: PublishPacket = {
    type: 'publish',
    topic,
    payload: buf.subarray(pos, end),
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    dup,
  };
  if (qos > 0) packet.packetId = packetId;
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

/** First byte of a PUBLISH fixed header. */
function firstByte(p: PublishPacket): number {
  return 0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 0x01 : 0);
}

/**
 * Encodes a PUBLISH. A QoS > 0 packet without `packetId` gets 0 in its id field, to be patched per
 * subscriber at `publishPacketIdOffset`.
 */
export function encodePublish(p: PublishPacket, version: ProtocolVersion): Buffer {
  const topicLen = Buffer.byteLength(p.topic, 'utf8');
  if (topicLen > 0xffff) throw new MalformedPacketError(`topic of ${topicLen} bytes exceeds 65535`);
  let len = 2 + topicLen + (p.qos > 0 ? 2 : 0) + p.payload.length;
  let propsLen = 0;
  if (version === 5) {
    propsLen = propertiesLength(p.properties);
    len += varintSize(propsLen) + propsLen;
  }
  const w = new Writer(packetSize(len));
  w.header(firstByte(p), len);
  w.utf8(p.topic, topicLen);
  if (p.qos > 0) w.u16(p.packetId ?? 0);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  w.bytes(p.payload);
  return w.finish();
}

/** Offset of the two-byte packet id inside an encoded QoS > 0 PUBLISH. */
export function publishPacketIdOffset(encoded: Buffer): number {
  let pos = 1;
  while ((encoded[pos++]! & 0x80) !== 0 && pos < 5);
  return pos + 2 + ((encoded[pos]! << 8) | encoded[pos + 1]!);
}

/** Returns a copy of an encoded PUBLISH with the DUP flag set. */
export function setDupFlag(encoded: Buffer): Buffer {
  const copy = Buffer.allocUnsafe(encoded.length);
  encoded.copy(copy, 0);
  copy[0] = copy[0]! | 0x08;
  return copy;
}
