/** CONNECT (spec 3.1): the only packet whose format is chosen by its own protocol level. */
import { MalformedPacketError, UnsupportedProtocolVersionError } from '../errors.js';
import { Reader, Writer, packetSize, utf8Length, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import { validateTopicName } from '../topic.js';
import type { ConnectPacket, ProtocolVersion, QoS, Will } from '../types.js';

const F_RESERVED = 0x01;
const F_CLEAN = 0x02;
const F_WILL = 0x04;
const F_WILL_RETAIN = 0x20;
const F_PASSWORD = 0x40;
const F_USERNAME = 0x80;

/** Level the protocol name allows: "MQTT" for 4 and 5, "MQIsdp" for 3 (spec 3.1.2.1, 3.1.2.2). */
function levelMatchesName(name: string, level: number): boolean | undefined {
  if (name === 'MQTT') return level === 4 || level === 5;
  if (name === 'MQIsdp') return level === 3;
  return undefined;
}

/**
 * Decodes a CONNECT body. The `version` argument is ignored: the packet carries its own level. An
 * unknown name or level throws UnsupportedProtocolVersionError carrying the requested level.
 */
export function decodeConnect(flags: number, buf: Buffer, start: number, end: number, _version?: ProtocolVersion): ConnectPacket {
  if (flags !== 0) throw new MalformedPacketError('CONNECT fixed header flags must be 0 [MQTT-2.2.2-1] [MQTT-2.2.2-2]');
  const r = new Reader(buf, start, end);
  const protocolName = r.utf8();
  const level = r.u8();
  const ok = levelMatchesName(protocolName, level);
  if (ok === undefined) {
    throw new UnsupportedProtocolVersionError(level, false, `unknown protocol name "${protocolName}" [MQTT-3.1.2-1]`);
  }
  if (!ok) {
    throw new UnsupportedProtocolVersionError(level, true, `unsupported protocol level ${level} for "${protocolName}" [MQTT-3.1.2-2]`);
  }
  const version = level as ProtocolVersion;
  const f = r.u8();
  if ((f & F_RESERVED) !== 0) throw new MalformedPacketError('CONNECT reserved flag must be 0 [MQTT-3.1.2-3]');
  const hasWill = (f & F_WILL) !== 0;
  const willQos = (f >> 3) & 0x03;
  const willRetain = (f & F_WILL_RETAIN) !== 0;
  if (!hasWill && willQos !== 0) throw new MalformedPacketError('will QoS set without will flag [MQTT-3.1.2-13]');
  if (!hasWill && willRetain) throw new MalformedPacketError('will retain set without will flag [MQTT-3.1.2-15]');
  if (willQos === 3) throw new MalformedPacketError('will QoS 3 [MQTT-3.1.2-14]');
  const hasUsername = (f & F_USERNAME) !== 0;
  const hasPassword = (f & F_PASSWORD) !== 0;
  // MQTT 5 allows a password without a user name (spec 3.1.2.9); 3.1.x does not.
  if (version < 5 && hasPassword && !hasUsername) {
    throw new MalformedPacketError('password flag set without user name flag [MQTT-3.1.2-22]');
  }
  const keepalive = r.u16();
  const properties = version === 5 ? decodeProperties(r, PropertyContext.connect) : undefined;
  const clientId = r.utf8();
  const packet: ConnectPacket = {
    type: 'connect',
    protocolName,
    protocolVersion: version,
    clean: (f & F_CLEAN) !== 0,
    keepalive,
    clientId,
  };
  if (hasWill) {
    const willProps = version === 5 ? decodeProperties(r, PropertyContext.will) : undefined;
    const topic = r.utf8();
    validateTopicName(topic);
    const will: Will = { topic, payload: r.binary(), qos: willQos as QoS, retain: willRetain };
    if (willProps !== undefined) will.properties = willProps;
    packet.will = will;
  }
  if (hasUsername) packet.username = r.utf8();
  if (hasPassword) packet.password = r.binary();
  if (properties !== undefined) packet.properties = properties;
  r.expectEnd('CONNECT payload');
  return packet;
}

/** Encodes a CONNECT in the format of its own `protocolVersion` (the version argument is ignored). */
export function encodeConnect(p: ConnectPacket, _version?: ProtocolVersion): Buffer {
  const v5 = p.protocolVersion === 5;
  const nameLen = utf8Length(p.protocolName);
  const clientIdLen = utf8Length(p.clientId);
  let len = 2 + nameLen + 4 + 2 + clientIdLen;
  const propsLen = v5 ? propertiesLength(p.properties) : 0;
  if (v5) len += varintSize(propsLen) + propsLen;
  const will = p.will;
  let willPropsLen = 0;
  let willTopicLen = 0;
  let flags = p.clean ? F_CLEAN : 0;
  if (will !== undefined) {
    willTopicLen = utf8Length(will.topic);
    len += 2 + willTopicLen + 2 + will.payload.length;
    if (v5) {
      willPropsLen = propertiesLength(will.properties);
      len += varintSize(willPropsLen) + willPropsLen;
    }
    flags |= F_WILL | (will.qos << 3) | (will.retain ? F_WILL_RETAIN : 0);
  }
  let usernameLen = 0;
  if (p.username !== undefined) {
    usernameLen = utf8Length(p.username);
    len += 2 + usernameLen;
    flags |= F_USERNAME;
  }
  if (p.password !== undefined) {
    len += 2 + p.password.length;
    flags |= F_PASSWORD;
  }
  const w = new Writer(packetSize(len));
  w.header(0x10, len);
  w.utf8(p.protocolName, nameLen);
  // A Mosquitto bridge marks itself with the level's top bit (0x83 / 0x84), so the remote treats it as one.
  w.u8(p.bridge === true && !v5 ? p.protocolVersion | 0x80 : p.protocolVersion);
  w.u8(flags);
  w.u16(p.keepalive);
  if (v5) writeProperties(w, p.properties, propsLen);
  w.utf8(p.clientId, clientIdLen);
  if (will !== undefined) {
    if (v5) writeProperties(w, will.properties, willPropsLen);
    w.utf8(will.topic, willTopicLen);
    w.binary(will.payload);
  }
  if (p.username !== undefined) w.utf8(p.username, usernameLen);
  if (p.password !== undefined) w.binary(p.password);
  return w.finish();
}
