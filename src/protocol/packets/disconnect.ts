/** DISCONNECT (spec 3.14): empty before MQTT 5; a reason code and properties in MQTT 5. */
import { MalformedPacketError } from '../errors.js';
import { Reader, Writer, packetSize, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import type { DisconnectPacket, ProtocolVersion } from '../types.js';

/** The encoded 3.1.x DISCONNECT (and MQTT 5 normal disconnection), shared: never mutate it. */
export const DISCONNECT_BYTES: Buffer = Buffer.from([0xe0, 0x00]);

/** Decodes a DISCONNECT body; in MQTT 5 `reasonCode` is always set (0 when omitted on the wire). */
export function decodeDisconnect(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): DisconnectPacket {
  if (flags !== 0) throw new MalformedPacketError('DISCONNECT fixed header flags must be 0 [MQTT-2.2.2-1]');
  const packet: DisconnectPacket = { type: 'disconnect' };
  if (version < 5) {
    if (end !== start) throw new MalformedPacketError('DISCONNECT must have remaining length 0');
    return packet;
  }
  const r = new Reader(buf, start, end);
  // Remaining Length 0 means reason 0x00; below 2 there is no Property Length (spec 3.14.2.1, 3.14.2.2.1).
  packet.reasonCode = r.remaining() > 0 ? r.u8() : 0;
  if (r.remaining() > 0) {
    const properties = decodeProperties(r, PropertyContext.disconnect);
    if (properties !== undefined) packet.properties = properties;
  }
  r.expectEnd('DISCONNECT');
  return packet;
}

/** Encodes a DISCONNECT in the shortest form the version allows. */
export function encodeDisconnect(p: DisconnectPacket, version: ProtocolVersion): Buffer {
  if (version < 5) return DISCONNECT_BYTES;
  const rc = p.reasonCode ?? 0;
  const propsLen = propertiesLength(p.properties);
  if (rc === 0 && propsLen === 0) return DISCONNECT_BYTES;
  const len = propsLen === 0 ? 1 : 1 + varintSize(propsLen) + propsLen;
  const w = new Writer(packetSize(len));
  w.header(0xe0, len);
  w.u8(rc);
  if (len > 1) writeProperties(w, p.properties, propsLen);
  return w.finish();
}
