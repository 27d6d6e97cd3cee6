/** CONNACK (spec 3.2). */
import { MalformedPacketError } from '../errors.js';
import { Reader, Writer, packetSize, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import type { ConnackPacket, ProtocolVersion } from '../types.js';

/** Decodes a CONNACK body; in MQTT 3.1 the acknowledge-flags byte is unused and session present is false. */
export function decodeConnack(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): ConnackPacket {
  if (flags !== 0) throw new MalformedPacketError('CONNACK fixed header flags must be 0 [MQTT-2.2.2-1]');
  const r = new Reader(buf, start, end);
  const ackFlags = r.u8();
  if (version > 3 && (ackFlags & 0xfe) !== 0) {
    throw new MalformedPacketError('CONNACK acknowledge flags bits 7-1 are reserved [MQTT-3.2.2-1]');
  }
  const packet: ConnackPacket = {
    type: 'connack',
    sessionPresent: version > 3 && (ackFlags & 0x01) !== 0,
    reasonCode: r.u8(),
  };
  if (version === 5) {
    const properties = decodeProperties(r, PropertyContext.connack);
    if (properties !== undefined) packet.properties = properties;
  }
  r.expectEnd('CONNACK');
  return packet;
}

/** Encodes a CONNACK; MQTT 3.1 always sends 0 in the acknowledge-flags byte. */
export function encodeConnack(p: ConnackPacket, version: ProtocolVersion): Buffer {
  const propsLen = version === 5 ? propertiesLength(p.properties) : 0;
  const len = version === 5 ? 2 + varintSize(propsLen) + propsLen : 2;
  const w = new Writer(packetSize(len));
  w.header(0x20, len);
  w.u8(version > 3 && p.sessionPresent ? 1 : 0);
  w.u8(p.reasonCode);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  return w.finish();
}
