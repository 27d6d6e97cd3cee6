/**
 * The form of a message crossing between nodes: a small header (origin, times, shared groups the
 * receiving node serves) followed by the message as an MQTT 5 PUBLISH packet, so topic, payload and
 * properties use the codec's exact encoding.
 */
import type { Message } from '../model/message.js';
import { decodePacket } from '../protocol/decoder.js';
import { encodePacket } from '../protocol/encoder.js';
import type { QoS } from '../protocol/types.js';

const FORMAT = 1;
const NO_BUFFERS: Buffer[] = [];
/** An envelope for one session (forwarded by the node it just left), with the delivery's own QoS. */
const FORMAT_TARGETED = 3;

/** A delivery to one session on the receiving node (instead of routing by its subscriptions). */
export interface EnvelopeTarget {
  clientId: string;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
}

/** A message, the shared groups the receiving node serves for it, or the one session it is for. */
export interface Envelope {
  message: Message;
  groups: string[];
  target?: EnvelopeTarget;
}

/**
 * Encodes a message for another node. `message.clusterId` (unique in the cluster) travels with it,
 * so a node can tell a forwarded copy from the original.
 */
export function encodeEnvelope(message: Message, groups: readonly string[], target?: EnvelopeTarget): Buffer {
  const origin = Buffer.from(message.origin);
  // Cluster ids are ASCII (node id, base-36 numbers): written as latin1, one byte per character.
  const id = message.clusterId ?? '';
  const groupBytes = groups.length === 0 ? NO_BUFFERS : groups.map((g) => Buffer.from(g));
  const packet = encodePacket(
    {
      type: 'publish',
      topic: message.topic,
      payload: message.payload,
      qos: message.qos,
      retain: message.retain,
      dup: false,
      ...(message.qos > 0 ? { packetId: 1 } : {}),
      ...(message.properties === undefined ? {} : { properties: message.properties }),
    },
    5,
  );
  const targetId = target === undefined ? undefined : Buffer.from(target.clientId);
  const subscriptionIds = target?.subscriptionIds ?? [];
  let size = 1 + 2 + origin.length + 2 + id.length + 8 + 8 + 2;
  for (const g of groupBytes) size += 2 + g.length;
  if (targetId !== undefined) size += 2 + targetId.length + 2 + 2 + 4 * subscriptionIds.length;
  const header = Buffer.allocUnsafe(size);
  let p = header.writeUInt8(target === undefined ? FORMAT : FORMAT_TARGETED, 0);
  p = header.writeUInt16BE(origin.length, p);
  p += origin.copy(header, p);
  p = header.writeUInt16BE(id.length, p);
  p += header.write(id, p, 'latin1');
  p = header.writeDoubleBE(message.receivedAt, p);
  p = header.writeDoubleBE(message.expiresAt ?? -1, p);
  p = header.writeUInt16BE(groupBytes.length, p);
  for (const g of groupBytes) {
    p = header.writeUInt16BE(g.length, p);
    p += g.copy(header, p);
  }
  if (target !== undefined && targetId !== undefined) {
    p = header.writeUInt16BE(targetId.length, p);
    p += targetId.copy(header, p);
    p = header.writeUInt8(target.qos, p);
    p = header.writeUInt8(target.retain ? 1 : 0, p);
    p = header.writeUInt16BE(subscriptionIds.length, p);
    for (const sid of subscriptionIds) p = header.writeUInt32BE(sid, p);
  }
  return Buffer.concat([header, packet], size + packet.length);
}

/** Decodes what `encodeEnvelope` made; throws on anything else. */
export function decodeEnvelope(buf: Buffer): Envelope {
  const format = buf[0];
  if (buf.length < 23 || (format !== FORMAT && format !== FORMAT_TARGETED)) throw new Error(`cluster envelope of unknown format ${format}`);
  let p = 1;
  const originLength = buf.readUInt16BE(p);
  p += 2;
  const origin = buf.toString('utf8', p, p + originLength);
  p += originLength;
  const idLength = buf.readUInt16BE(p);
  p += 2;
  const clusterId = idLength === 0 ? undefined : buf.toString('latin1', p, p + idLength);
  p += idLength;
  const receivedAt = buf.readDoubleBE(p);
  p += 8;
  const expiresAt = buf.readDoubleBE(p);
  p += 8;
  const groupCount = buf.readUInt16BE(p);
  p += 2;
  const groups: string[] = [];
  for (let i = 0; i < groupCount; i++) {
    const length = buf.readUInt16BE(p);
    p += 2;
    groups.push(buf.toString('utf8', p, p + length));
    p += length;
  }
  let target: EnvelopeTarget | undefined;
  if (format === FORMAT_TARGETED) {
    const length = buf.readUInt16BE(p);
    p += 2;
    const clientId = buf.toString('utf8', p, p + length);
    p += length;
    const qos = buf.readUInt8(p++);
    if (qos > 2) throw new Error(`cluster envelope with QoS ${qos}`);
    const retain = buf.readUInt8(p++) === 1;
    const count = buf.readUInt16BE(p);
    p += 2;
    const subscriptionIds: number[] = [];
    for (let i = 0; i < count; i++, p += 4) subscriptionIds.push(buf.readUInt32BE(p));
    target = { clientId, qos: qos as QoS, retain, subscriptionIds: count === 0 ? undefined : subscriptionIds };
  }
  const packet = decodePacket(buf.subarray(p), 5);
  if (packet.type !== 'publish') throw new Error(`cluster envelope holds a ${packet.type} packet`);
  const message: Message = { topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, origin, receivedAt, clusterId };
  if (packet.properties !== undefined) message.properties = packet.properties;
  if (expiresAt >= 0) message.expiresAt = expiresAt;
  return target === undefined ? { message, groups } : { message, groups, target };
}

const BATCH = 2;
/** Largest batch (one Redis message or stream entry) made by `encodeBatches`. */
const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * Packs envelopes for one node into as few buffers as fit `MAX_BATCH_BYTES` each, so a turn's
 * traffic to a node is one Redis command instead of one per message. A single envelope is sent as is.
 */
export function encodeBatches(envelopes: readonly Buffer[]): Buffer[] {
  if (envelopes.length === 1) return [envelopes[0]!];
  const out: Buffer[] = [];
  let start = 0;
  while (start < envelopes.length) {
    let size = 1;
    let end = start;
    while (end < envelopes.length && (end === start || size + 4 + envelopes[end]!.length <= MAX_BATCH_BYTES)) size += 4 + envelopes[end++]!.length;
    const batch = Buffer.allocUnsafe(size);
    batch[0] = BATCH;
    let p = 1;
    for (let i = start; i < end; i++) {
      const envelope = envelopes[i]!;
      p = batch.writeUInt32BE(envelope.length, p);
      p += envelope.copy(batch, p);
    }
    out.push(batch);
    start = end;
  }
  return out;
}

/** Calls `visit` with each envelope of what `encodeBatches` made (a batch, or a single envelope). */
export function forEachEnvelope(buf: Buffer, visit: (envelope: Buffer) => void): void {
  if (buf[0] !== BATCH) {
    visit(buf);
    return;
  }
  let p = 1;
  while (p < buf.length) {
    if (p + 4 > buf.length) throw new Error('truncated cluster batch');
    const length = buf.readUInt32BE(p);
    p += 4;
    if (p + length > buf.length) throw new Error('truncated cluster batch');
    visit(buf.subarray(p, p + length));
    p += length;
  }
}
