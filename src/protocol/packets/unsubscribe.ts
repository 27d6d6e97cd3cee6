/** UNSUBSCRIBE (spec 3.10). */
import { MalformedPacketError, ProtocolViolationError } from '../errors.js';
import { Reader, Writer, packetSize, utf8Length, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import { validateTopicFilter } from '../topic.js';
import { expectedQos1Flags, isQos1Flags } from './qos1-flags.js';
import type { ProtocolVersion, UnsubscribePacket } from '../types.js';

/** Decodes an UNSUBSCRIBE body. */
export function decodeUnsubscribe(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): UnsubscribePacket {
  if (!isQos1Flags(flags, version)) throw new MalformedPacketError(`UNSUBSCRIBE fixed header flags must be ${expectedQos1Flags(version)} [MQTT-3.10.1-1]`);
  const r = new Reader(buf, start, end);
  const packetId = r.packetId();
  const properties = version === 5 ? decodeProperties(r, PropertyContext.unsubscribe) : undefined;
  const topicFilters: string[] = [];
  while (r.remaining() > 0) {
    const filter = r.utf8();
    validateTopicFilter(filter);
    topicFilters.push(filter);
  }
  if (topicFilters.length === 0) throw new ProtocolViolationError('UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]');
  const packet: UnsubscribePacket = { type: 'unsubscribe', packetId, topicFilters };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

/** Encodes an UNSUBSCRIBE. */
export function encodeUnsubscribe(p: UnsubscribePacket, version: ProtocolVersion): Buffer {
  const lens = p.topicFilters.map(utf8Length);
  let len = 2;
  for (const n of lens) len += 2 + n;
  const propsLen = version === 5 ? propertiesLength(p.properties) : 0;
  if (version === 5) len += varintSize(propsLen) + propsLen;
  const w = new Writer(packetSize(len));
  w.header(0xa2, len);
  w.u16(p.packetId);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  p.topicFilters.forEach((f, i) => w.utf8(f, lens[i]!));
  return w.finish();
}
