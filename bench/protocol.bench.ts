/**
 * Codec micro-benchmark: decode 1M small PUBLISH packets arriving in 64 KiB chunks, and encode 1M.
 * Run: node --import tsx bench/protocol.bench.ts  (not part of the tests; timings are never asserted)
 */
import mqttPacket from 'mqtt-packet';
import { PacketDecoder, encodePacket, encodePublish, type Packet, type ProtocolVersion, type PublishPacket } from '../src/protocol/index.js';

const N = 1_000_000;
const CHUNK = 64 * 1024;

function sample(version: ProtocolVersion, qos: 0 | 1): PublishPacket {
  const p: PublishPacket = { type: 'publish', topic: 'sensors/room1/temperature', payload: Buffer.from('{"t":21.5,"h":40}'),
    qos, retain: false, dup: false };
  if (qos > 0) p.packetId = 42;
  if (version === 5) p.properties = { messageExpiryInterval: 60 };
  return p;
}

function chunks(packet: Packet, version: ProtocolVersion): Buffer[] {
  const one = encodePacket(packet, version);
  const all = Buffer.alloc(one.length * N);
  for (let i = 0; i < N; i++) one.copy(all, i * one.length);
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; i += CHUNK) out.push(all.subarray(i, i + CHUNK));
  return out;
}

function time(label: string, ops: number, run: () => number): void {
  run(); // warm-up
  const t0 = process.hrtime.bigint();
  const n = run();
  const ns = Number(process.hrtime.bigint() - t0);
  if (n !== ops) throw new Error(`${label}: expected ${ops} ops, did ${n}`);
  console.log(`${label.padEnd(44)} ${(ns / ops).toFixed(1).padStart(7)} ns/op  ${(ops / (ns / 1e9) / 1e6).toFixed(2)} M op/s`);
}

for (const [version, qos] of [[4, 0], [4, 1], [5, 1]] as const) {
  const packet = sample(version, qos);
  const input = chunks(packet, version);
  time(`decode v${version} QoS ${qos} PUBLISH (starling)`, N, () => {
    const d = new PacketDecoder({ version });
    let n = 0;
    for (const c of input) n += d.push(c).length;
    return n;
  });
  time(`decode v${version} QoS ${qos} PUBLISH (mqtt-packet)`, N, () => {
    const parser = mqttPacket.parser({ protocolVersion: version });
    let n = 0;
    parser.on('packet', () => { n++; });
    for (const c of input) parser.parse(c);
    return n;
  });
  time(`encode v${version} QoS ${qos} PUBLISH (starling)`, N, () => {
    let n = 0;
    for (let i = 0; i < N; i++) n += encodePublish(packet, version).length > 0 ? 1 : 0;
    return n;
  });
  const mp = { cmd: 'publish', topic: packet.topic, payload: packet.payload, qos, retain: false, dup: false,
    ...(qos > 0 ? { messageId: 42 } : {}), ...(version === 5 ? { properties: { messageExpiryInterval: 60 } } : {}) } as mqttPacket.IPublishPacket;
  time(`encode v${version} QoS ${qos} PUBLISH (mqtt-packet)`, N, () => {
    let n = 0;
    for (let i = 0; i < N; i++) n += mqttPacket.generate(mp, { protocolVersion: version }).length > 0 ? 1 : 0;
    return n;
  });
}
