/** SUBACK (spec 3.9). */
import { MalformedPacketError, ProtocolViolationError } from '../errors.js';
import { Reader, Writer, packetSize, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import type { ProtocolVersion, SubackPacket } from '../types.js';

/** 3.1.x return codes [MQTT-3.9.3-2]. */
const V4_CODES = new Set([0x00, 0x01, 0x02, 0x80]);
/** MQTT 5 SUBACK reason codes (spec 3.9.3). */
const V5_CODES = new Set([0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2]);

/** Decodes a SUBACK body; an unknown return / reason code is malformed. */
export function decodeSuback(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): SubackPacket {
  if (flags !== 0) throw new MalformedPacketError('SUBACK fixed header flags must be 0 [MQTT-2.2.2-1]');
  const r = new Reader(buf, start, end);
  const packetId = r.packetId();
  const properties = version === 5 ? decodeProperties(r, PropertyContext.suback) : undefined;
  const allowed = version === 5 ? V5_CODES : V4_CODES;
  const reasonCodes: number[] = [];
  while (r.remaining() > 0) {
    const code = r.u8();
    if (!allowed.has(code)) throw new MalformedPacketError(`invalid SUBACK code 0x${code.toString(16)} [MQTT-3.9.3-2]`);
    reasonCodes.push(code);
  }
  if (reasonCodes.length === 0) throw new ProtocolViolationError('SUBACK without a return code (spec 3.9.3)');
  const packet: SubackPacket = { type: 'suback', packetId, reasonCodes };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

/** Encodes a SUBACK. */
export function encodeSuback(p: SubackPacket, version: ProtocolVersion): Buffer {
  let len = 2 + p.reasonCodes.length;
  const propsLen = version === 5 ? propertiesLength(p.properties) : 0;
  if (version === 5) len += varintSize(propsLen) + propsLen;
  const w = new Writer(packetSize(len));
  w.header(0x90, len);
  w.u16(p.packetId);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  for (const code of p.reasonCodes) w.u8(code);
  return w.finish();
}
