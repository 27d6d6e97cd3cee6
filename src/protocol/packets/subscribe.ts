/** SUBSCRIBE (spec 3.8). */
import { MalformedPacketError, ProtocolViolationError } from '../errors.js';
import { Reader, Writer, packetSize, utf8Length, varintSize } from '../primitives.js';
import { PropertyContext, decodeProperties, propertiesLength, writeProperties } from '../properties.js';
import { validateTopicFilter } from '../topic.js';
import { expectedQos1Flags, isQos1Flags } from './qos1-flags.js';
import type { ProtocolVersion, QoS, SubscribePacket, SubscriptionRequest } from '../types.js';

/** Decodes one Subscription Options byte (a requested QoS before MQTT 5). */
function decodeOptions(topicFilter: string, opts: number, version: ProtocolVersion): SubscriptionRequest {
  const qos = opts & 0x03;
  if (version < 5) {
    if ((opts & 0xfc) !== 0 || qos === 3) {
      throw new MalformedPacketError('SUBSCRIBE reserved bits set or QoS 3 [MQTT-3.8.3-4]');
    }
    return { topicFilter, qos: qos as QoS };
  }
  if ((opts & 0xc0) !== 0) throw new MalformedPacketError('SUBSCRIBE options bits 6-7 are reserved [MQTT-3.8.3-5]');
  if (qos === 3) throw new ProtocolViolationError('SUBSCRIBE maximum QoS 3 (spec 3.8.3.1)');
  const retainHandling = (opts >> 4) & 0x03;
  if (retainHandling === 3) throw new ProtocolViolationError('SUBSCRIBE retain handling 3 (spec 3.8.3.1)');
  const noLocal = (opts & 0x04) !== 0;
  if (noLocal && topicFilter.startsWith('$share/')) {
    throw new ProtocolViolationError('No Local on a shared subscription [MQTT-3.8.3-4]');
  }
  return {
    topicFilter,
    qos: qos as QoS,
    noLocal,
    retainAsPublished: (opts & 0x08) !== 0,
    retainHandling: retainHandling as 0 | 1 | 2,
  };
}

/** Decodes a SUBSCRIBE body; v5 subscriptions always carry noLocal, retainAsPublished, retainHandling. */
export function decodeSubscribe(flags: number, buf: Buffer, start: number, end: number, version: ProtocolVersion): SubscribePacket {
  if (!isQos1Flags(flags, version)) throw new MalformedPacketError(`SUBSCRIBE fixed header flags must be ${expectedQos1Flags(version)} [MQTT-3.8.1-1]`);
  const r = new Reader(buf, start, end);
  const packetId = r.packetId();
  const properties = version === 5 ? decodeProperties(r, PropertyContext.subscribe) : undefined;
  const subscriptions: SubscriptionRequest[] = [];
  while (r.remaining() > 0) {
    const topicFilter = r.utf8();
    validateTopicFilter(topicFilter);
    subscriptions.push(decodeOptions(topicFilter, r.u8(), version));
  }
  if (subscriptions.length === 0) throw new ProtocolViolationError('SUBSCRIBE without a topic filter [MQTT-3.8.3-3]');
  const packet: SubscribePacket = { type: 'subscribe', packetId, subscriptions };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

function encodeOptions(s: SubscriptionRequest, version: ProtocolVersion): number {
  if (version < 5) return s.qos;
  return s.qos | (s.noLocal === true ? 0x04 : 0) | (s.retainAsPublished === true ? 0x08 : 0) | ((s.retainHandling ?? 0) << 4);
}

/** Encodes a SUBSCRIBE; before MQTT 5 only the requested QoS of each subscription is sent. */
export function encodeSubscribe(p: SubscribePacket, version: ProtocolVersion): Buffer {
  const filterLens = p.subscriptions.map((s) => utf8Length(s.topicFilter));
  let len = 2;
  for (const n of filterLens) len += 3 + n;
  const propsLen = version === 5 ? propertiesLength(p.properties) : 0;
  if (version === 5) len += varintSize(propsLen) + propsLen;
  const w = new Writer(packetSize(len));
  w.header(0x82, len);
  w.u16(p.packetId);
  if (version === 5) writeProperties(w, p.properties, propsLen);
  p.subscriptions.forEach((s, i) => {
    w.utf8(s.topicFilter, filterLens[i]!);
    w.u8(encodeOptions(s, version));
  });
  return w.finish();
}
