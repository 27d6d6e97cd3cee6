/** UNSUBACK (spec 3.11): a packet id only before MQTT 5; reason codes and properties in MQTT 5. */
import { MalformedPacketError, ProtocolViolationError } from '../errors.js';
import { Reader, Writer, packetSize, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import type { ProtocolVersion, UnsubackPacket } from '../types.js';

/** MQTT 5 UNSUBACK reason codes (spec 3.11.3). */
const V5_CODES = new Set([0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91]);

/** Decodes an UNSUBACK body; `reasonCodes` is present exactly in MQTT 5. */
export function decodeUnsuback(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): UnsubackPacket {
  if (flags !== 0) throw new MalformedPacketError('UNSUBACK fixed header flags must be 0 [MQTT-2.2.2-1]');
  const r = new Reader(buf, start, end);
  const packet: UnsubackPacket = { type: 'unsuback', packetId: r.packetId() };
  if (version === 5) {
    const properties = decodeProperties(r, PropertyContext.unsuback);
    const reasonCodes: number[] = [];
    while (r.remaining() > 0) {
      const code = r.u8();
      if (!V5_CODES.has(code)) throw new MalformedPacketError(`invalid UNSUBACK reason code 0x${code.toString(16)}`);
      reasonCodes.push(code);
    }
    if (reasonCodes.length === 0) throw new ProtocolViolationError('UNSUBACK without a reason code (spec 3.11.3)');
    packet.reasonCodes = reasonCodes;
    if (properties !== undefined) packet.properties = properties;
  }
  r.expectEnd('UNSUBACK');
  return packet;
}

/** Encodes an UNSUBACK; before MQTT 5 reason codes and properties are dropped. */
export function encodeUnsuback(p: UnsubackPacket, version: ProtocolVersion): Buffer {
  const codes = version === 5 ? p.reasonCodes ?? [] : [];
  const propsLen = version === 5 ? propertiesLength(p.properties) : 0;
  const len = version === 5 ? 2 + varintSize(propsLen) + propsLen + codes.length : 2;
  const w = new Writer(packetSize(len));
  w.header(0xb0, len);
  w.u16(p.packetId);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  for (const code of codes) w.u8(code);
  return w.finish();
}
