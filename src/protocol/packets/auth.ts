/** AUTH (spec 3.15, MQTT 5 only). */
import { MalformedPacketError } from '../errors.js';
import { Reader, Writer, packetSize, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import type { AuthPacket, ProtocolVersion } from '../types.js';

/** Decodes an AUTH body; packet type 15 is reserved before MQTT 5. `reasonCode` is always set. */
export function decodeAuth(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): AuthPacket {
  if (version < 5) throw new MalformedPacketError('packet type 15 is reserved before MQTT 5');
  if (flags !== 0) throw new MalformedPacketError('AUTH fixed header flags must be 0 [MQTT-3.15.1-1]');
  const r = new Reader(buf, start, end);
  // Remaining Length 0 means Success with no properties (spec 3.15.2.1).
  const packet: AuthPacket = { type: 'auth', reasonCode: r.remaining() > 0 ? r.u8() : 0 };
  if (r.remaining() > 0) {
    const properties = decodeProperties(r, PropertyContext.auth);
    if (properties !== undefined) packet.properties = properties;
  }
  r.expectEnd('AUTH');
  return packet;
}

/** Encodes an AUTH; success without properties is the two-byte form. */
export function encodeAuth(p: AuthPacket, version: ProtocolVersion): Buffer {
  if (version < 5) throw new MalformedPacketError('AUTH exists only in MQTT 5');
  const rc = p.reasonCode ?? 0;
  const propsLen = propertiesLength(p.properties);
  const len = rc === 0 && propsLen === 0 ? 0 : 1 + varintSize(propsLen) + propsLen;
  const w = new Writer(packetSize(len));
  w.header(0xf0, len);
  if (len > 0) {
    w.u8(rc);
    writeProperties(w, p.properties, propsLen);
  }
  return w.finish();
}
