/** PUBACK, PUBREC, PUBREL, PUBCOMP (spec 3.4-3.7): packet id, then in MQTT 5 a reason code and properties. */
import { MalformedPacketError } from '../errors.js';
import { Reader, Writer, packetSize, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import type { AckPacket, ProtocolVersion, PubackPacket, PubcompPacket, PubrecPacket, PubrelPacket } from '../types.js';
import { expectedQos1Flags, isQos1Flags } from './qos1-flags.js';

/** Names of the four acknowledgement packet types. */
export type AckType = 'puback' | 'pubrec' | 'pubrel' | 'pubcomp';

const CODE: Record<AckType, number> = { puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7 };

function decodeAck<T extends AckType>(type: T, flags: number, buf: Buffer, start: number, end: number,
  version: ProtocolVersion): AckPacket<T> {
  // PUBREL has flags 0010 (1010 allowed in MQTT 3.1), the others 0 [MQTT-2.2.2-1] [MQTT-3.6.1-1].
  if (type === 'pubrel') {
    if (!isQos1Flags(flags, version)) throw new MalformedPacketError(`PUBREL fixed header flags must be ${expectedQos1Flags(version)} [MQTT-3.6.1-1]`);
  } else if (flags !== 0) {
    throw new MalformedPacketError(`${type.toUpperCase()} fixed header flags must be 0 [MQTT-2.2.2-1]`);
  }
  const r = new Reader(buf, start, end);
  const packet: AckPacket<T> = { type, packetId: r.packetId() };
  if (version === 5) {
    // Reason code and property length may be omitted (spec 3.4.2.1): absent reason code means 0x00.
    packet.reasonCode = r.remaining() > 0 ? r.u8() : 0;
    if (r.remaining() > 0) {
      const properties = decodeProperties(r, PropertyContext[type]);
      if (properties !== undefined) packet.properties = properties;
    }
  }
  r.expectEnd(type.toUpperCase());
  return packet;
}

/** Decodes a PUBACK body. */
export function decodePuback(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): PubackPacket {
  return decodeAck('puback', flags, buf, start, end, version);
}

/** Decodes a PUBREC body. */
export function decodePubrec(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): PubrecPacket {
  return decodeAck('pubrec', flags, buf, start, end, version);
}

/** Decodes a PUBREL body. */
export function decodePubrel(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): PubrelPacket {
  return decodeAck('pubrel', flags, buf, start, end, version);
}

/** Decodes a PUBCOMP body. */
export function decodePubcomp(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): PubcompPacket {
  return decodeAck('pubcomp', flags, buf, start, end, version);
}

/**
 * Encodes any of the four acks. MQTT 5 uses the shortest form allowed: 2 bytes for success without
 * properties, 3 bytes for a reason code without properties.
 */
export function encodeAck(p: AckPacket<AckType>, version: ProtocolVersion): Buffer {
  const first = (CODE[p.type] << 4) | (p.type === 'pubrel' ? 0x02 : 0);
  const rc = p.reasonCode ?? 0;
  const propsLen = version === 5 ? propertiesLength(p.properties) : 0;
  let len = 2;
  if (version === 5 && (rc !== 0 || propsLen > 0)) len = propsLen > 0 ? 3 + varintSize(propsLen) + propsLen : 3;
  const w = new Writer(packetSize(len));
  w.header(first, len);
  w.u16(p.packetId);
  if (len > 2) w.u8(rc);
  if (len > 3) writeProperties(w, p.properties, propsLen);
  return w.finish();
}

/**
 * The 4 bytes of a successful PUBACK, PUBREC or PUBCOMP (no reason code, no properties): the same in
 * every protocol version (MQTT 5 omits reason code 0 [MQTT-3.4.2-1]). The broker's hot path sends
 * these without building a packet object.
 */
export function encodeShortAck(type: 'puback' | 'pubrec' | 'pubcomp', packetId: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes[0] = CODE[type] << 4;
  bytes[1] = 2;
  bytes[2] = packetId >> 8;
  bytes[3] = packetId & 0xff;
  return bytes;
}
