/**
 * Hostile input: hand-made malformed packets, then a seeded fuzz run. Whatever arrives, the broker
 * closes the offending connection [MQTT-4.8.0-1], keeps serving everyone else, delivers nothing from
 * a bad packet, and leaks no connection.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { varint } from '../fuzz/harness.js';
import type { MqttClient } from 'mqtt';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { Packet, QoS } from '../../src/protocol/types.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { RawClient, TestClients, sleep } from '../helpers/raw-client.js';

/** Packet size limit of the broker under test: small, so "too large" is cheap to send. */
const MAX_PACKET_SIZE = 4096;
/** Connect timeout (seconds) of the broker under test: bounds the "then silence" cases. */
const CONNECT_TIMEOUT_S = 2;
const CLOSE_WAIT_MS = CONNECT_TIMEOUT_S * 1000 + 2000;

/** Polls `predicate` until it holds or `timeoutMs` passes; returns whether it held. */
async function eventually(predicate: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Waits (bounded) for the broker's connection count to come back to `expected`. */
async function assertConnectionCount(server: StarlingServer, expected: number, what: string): Promise<void> {
  const settled = await eventually(() => server.broker.connectionCount === expected);
  assert.ok(settled, `${what}: broker.connectionCount is ${server.broker.connectionCount}, expected ${expected} (leaked connection)`);
}

// ---------------------------------------------------------------------------------------------
// Hand-made packets


/** A packet with the given first byte and body, with a correct Remaining Length. */
function raw(first: number, ...body: (Buffer | number[])[]): Buffer {
  const b = Buffer.concat(body.map((part) => (Buffer.isBuffer(part) ? part : Buffer.from(part))));
  return Buffer.concat([Buffer.from([first]), varint(b.length), b]);
}

/** A length-prefixed string from raw bytes (which need not be valid UTF-8). */
function str(bytes: Buffer | string): Buffer {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

function u16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

/** CONNECT 3.1.1 body with the given flags byte and client id bytes. */
function connectBody(flags: number, clientId: Buffer | string): Buffer {
  return Buffer.concat([str('MQTT'), Buffer.from([4, flags, 0, 0]), str(clientId)]);
}

/** A PUBLISH first byte: type 3 with DUP, QoS and RETAIN. */
function publishByte(qos: number, opts: { dup?: boolean; retain?: boolean } = {}): number {
  return 0x30 | (opts.dup === true ? 0x08 : 0) | (qos << 1) | (opts.retain === true ? 0x01 : 0);
}

interface BadCase {
  name: string;
  /** Send a valid CONNECT first and wait for CONNACK 0. */
  afterConnect: boolean;
  bytes: Buffer;
  /** 'wait': the broker must close on its own; 'end': the client half-closes right after sending. */
  then: 'wait' | 'end';
}

const BYSTANDER_TOPIC_PREFIX = 'm';
const VALID_PUBLISH_BODY = [str('m/ok'), Buffer.from('payload')] as const;

const BAD_CASES: readonly BadCase[] = [
  // Fixed header: Remaining Length is at most 4 bytes (spec 2.2.3).
  { name: 'CONNECT with a 5-byte Remaining Length (spec 2.2.3)', afterConnect: false, bytes: Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), then: 'wait' },
  { name: 'PUBLISH with a 5-byte Remaining Length (spec 2.2.3)', afterConnect: true, bytes: Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]), then: 'wait' },
  // Truncated packets, then the client closes.
  { name: 'truncated CONNECT, then close', afterConnect: false, bytes: raw(0x10, connectBody(0x02, 'trunc')).subarray(0, 9), then: 'end' },
  { name: 'truncated QoS 1 PUBLISH, then close', afterConnect: true, bytes: raw(publishByte(1), str('m/trunc'), u16(7), Buffer.from('payload')).subarray(0, 14), then: 'end' },
  { name: 'truncated SUBSCRIBE (header only), then close', afterConnect: true, bytes: Buffer.from([0x82, 0x08]), then: 'end' },
  { name: 'truncated Remaining Length, then close', afterConnect: true, bytes: Buffer.from([0x30, 0xff]), then: 'end' },
  // Reserved fixed-header flags [MQTT-2.2.2-2].
  { name: 'CONNECT with fixed-header flags 0001 [MQTT-2.2.2-2]', afterConnect: false, bytes: raw(0x11, connectBody(0x02, 'flags')), then: 'wait' },
  { name: 'SUBSCRIBE with fixed-header flags 0000 [MQTT-2.2.2-2] [MQTT-3.8.1-1]', afterConnect: true, bytes: raw(0x80, u16(1), str('m/#'), [0]), then: 'wait' },
  { name: 'UNSUBSCRIBE with fixed-header flags 0000 [MQTT-2.2.2-2] [MQTT-3.10.1-1]', afterConnect: true, bytes: raw(0xa0, u16(1), str('m/#')), then: 'wait' },
  { name: 'PUBREL with fixed-header flags 0000 [MQTT-2.2.2-2] [MQTT-3.6.1-1]', afterConnect: true, bytes: raw(0x60, u16(1)), then: 'wait' },
  { name: 'PUBACK with fixed-header flags 0001 [MQTT-2.2.2-2]', afterConnect: true, bytes: raw(0x41, u16(1)), then: 'wait' },
  { name: 'PINGREQ with fixed-header flags 0001 [MQTT-2.2.2-2]', afterConnect: true, bytes: Buffer.from([0xc1, 0x00]), then: 'wait' },
  { name: 'DISCONNECT with fixed-header flags 0001 [MQTT-2.2.2-2] [MQTT-3.14.1-1]', afterConnect: true, bytes: Buffer.from([0xe1, 0x00]), then: 'wait' },
  { name: 'DISCONNECT with fixed-header flags 1000 [MQTT-2.2.2-2] [MQTT-3.14.1-1]', afterConnect: true, bytes: Buffer.from([0xe8, 0x00]), then: 'wait' },
  { name: 'packet type 0 (reserved) [MQTT-2.2.2-2]', afterConnect: true, bytes: Buffer.from([0x00, 0x00]), then: 'wait' },
  { name: 'CONNECT with the reserved connect flag set [MQTT-3.1.2-3]', afterConnect: false, bytes: raw(0x10, connectBody(0x03, 'reserved')), then: 'wait' },
  // PUBLISH rules.
  { name: 'PUBLISH with QoS 3 [MQTT-3.3.1-4]', afterConnect: true, bytes: raw(publishByte(3), str('m/q3'), u16(1), Buffer.from('x')), then: 'wait' },
  { name: 'QoS 0 PUBLISH with DUP set [MQTT-3.3.1-2]', afterConnect: true, bytes: raw(publishByte(0, { dup: true }), ...VALID_PUBLISH_BODY), then: 'wait' },
  { name: 'PUBLISH topic with ill-formed UTF-8 (C3 28) [MQTT-1.5.3-1] [MQTT-3.3.2-1]', afterConnect: true, bytes: raw(publishByte(0), str(Buffer.from([0x6d, 0x2f, 0xc3, 0x28])), Buffer.from('x')), then: 'wait' },
  { name: 'PUBLISH topic with a UTF-16 surrogate (ED A0 80) [MQTT-1.5.3-1]', afterConnect: true, bytes: raw(publishByte(1), str(Buffer.from([0x6d, 0x2f, 0xed, 0xa0, 0x80])), u16(1), Buffer.from('x')), then: 'wait' },
  { name: 'PUBLISH topic with an overlong encoding (C0 AF) [MQTT-1.5.3-1]', afterConnect: true, bytes: raw(publishByte(0), str(Buffer.from([0x6d, 0xc0, 0xaf, 0x78])), Buffer.from('x')), then: 'wait' },
  { name: 'PUBLISH topic containing U+0000 [MQTT-1.5.3-2]', afterConnect: true, bytes: raw(publishByte(0), str(Buffer.from('m/a\u0000b')), Buffer.from('x')), then: 'wait' },
  { name: 'SUBSCRIBE filter containing U+0000 [MQTT-1.5.3-2]', afterConnect: true, bytes: raw(0x82, u16(1), str(Buffer.from('m/\u0000')), [0]), then: 'wait' },
  { name: 'CONNECT client id with ill-formed UTF-8 [MQTT-1.5.3-1]', afterConnect: false, bytes: raw(0x10, connectBody(0x02, Buffer.from([0x61, 0xff, 0x62]))), then: 'wait' },
  { name: 'PUBLISH with a zero-length topic [MQTT-4.7.3-1]', afterConnect: true, bytes: raw(publishByte(0), str(''), Buffer.from('x')), then: 'wait' },
  { name: 'PUBLISH topic with a wildcard [MQTT-3.3.2-2]', afterConnect: true, bytes: raw(publishByte(0), str('m/+'), Buffer.from('x')), then: 'wait' },
  { name: 'QoS 1 PUBLISH with packet identifier 0 [MQTT-2.3.1-1]', afterConnect: true, bytes: raw(publishByte(1), str('m/id0'), u16(0), Buffer.from('x')), then: 'wait' },
  { name: 'QoS 2 PUBLISH with packet identifier 0 [MQTT-2.3.1-1]', afterConnect: true, bytes: raw(publishByte(2), str('m/id0'), u16(0), Buffer.from('x')), then: 'wait' },
  { name: 'QoS 1 PUBLISH too short for its packet identifier', afterConnect: true, bytes: raw(publishByte(1), str('m/short'), [0]), then: 'wait' },
  // SUBSCRIBE / UNSUBSCRIBE rules.
  { name: 'SUBSCRIBE with no topic filter [MQTT-3.8.3-3]', afterConnect: true, bytes: raw(0x82, u16(1)), then: 'wait' },
  { name: 'SUBSCRIBE with requested QoS 3 [MQTT-3.8.3-4]', afterConnect: true, bytes: raw(0x82, u16(1), str('m/#'), [3]), then: 'wait' },
  { name: 'SUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]', afterConnect: true, bytes: raw(0x82, u16(0), str('m/#'), [0]), then: 'wait' },
  { name: 'SUBSCRIBE with a filter but no options byte', afterConnect: true, bytes: raw(0x82, u16(1), str('m/#')), then: 'wait' },
  { name: 'UNSUBSCRIBE with no topic filter [MQTT-3.10.3-2]', afterConnect: true, bytes: raw(0xa2, u16(1)), then: 'wait' },
  // Sequence rules.
  { name: 'PUBLISH before CONNECT [MQTT-3.1.0-1]', afterConnect: false, bytes: raw(publishByte(0), ...VALID_PUBLISH_BODY), then: 'wait' },
  { name: 'second CONNECT [MQTT-3.1.0-2]', afterConnect: true, bytes: raw(0x10, connectBody(0x02, 'again')), then: 'wait' },
  { name: 'CONNACK sent by a client', afterConnect: true, bytes: Buffer.from([0x20, 0x02, 0x00, 0x00]), then: 'wait' },
  // Limits.
  {
    name: `PUBLISH of ${MAX_PACKET_SIZE + 1000} bytes over maxPacketSize ${MAX_PACKET_SIZE}`,
    afterConnect: true,
    bytes: raw(publishByte(0), str('m/big'), Buffer.alloc(MAX_PACKET_SIZE + 1000 - 12, 0x61)),
    then: 'wait',
  },
  { name: 'PUBLISH header announcing 1 MB over maxPacketSize, body never sent', afterConnect: true, bytes: Buffer.concat([Buffer.from([0x30]), varint(1 << 20)]), then: 'wait' },
  { name: 'CONNECT announcing 256 MB (over maxPacketSize), then silence', afterConnect: false, bytes: Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]), then: 'wait' },
  { name: 'CONNECT announcing 100 bytes, 10 sent, then silence (connect timeout)', afterConnect: false, bytes: raw(0x10, connectBody(0x02, 'x'.repeat(86))).subarray(0, 10), then: 'wait' },
];

describe('malformed packets: the connection is closed, nothing is delivered, the broker survives', () => {
  let server: StarlingServer;
  let clients: TestClients;
  let bystander: MqttClient;
  const delivered: string[] = [];
  let bystanderClosed = 0;

  before(async () => {
    server = await startTestBroker({ limits: { maxPacketSize: MAX_PACKET_SIZE, connectTimeout: CONNECT_TIMEOUT_S } });
    clients = new TestClients(() => server.port);
    bystander = await clients.mqtt({ clientId: 'bystander' });
    bystander.on('message', (topic, payload) => delivered.push(`${topic}: ${payload.toString('hex')}`));
    bystander.on('close', () => bystanderClosed++);
    await bystander.subscribeAsync('#', { qos: 2 });
  });

  after(async () => {
    await clients.closeAll();
    await server.close();
  });

  test('control: a well-formed raw PUBLISH does reach the bystander subscribed to "#"', async () => {
    const c = await clients.rawConnected({ clientId: 'control' });
    c.send(raw(publishByte(0), ...VALID_PUBLISH_BODY));
    assert.ok(await eventually(() => delivered.length === 1), 'the bystander never got the control message');
    assert.deepEqual(delivered.splice(0), [`m/ok: ${Buffer.from('payload').toString('hex')}`]);
    c.disconnect();
    await c.expectClosed();
    await assertConnectionCount(server, 1, 'after the control client');
  });

  for (const bad of BAD_CASES) {
    test(bad.name, { timeout: CLOSE_WAIT_MS + 10_000 }, async () => {
      const c = await clients.raw();
      if (bad.afterConnect) {
        const connack = await c.connectMqtt({ clientId: `bad-${BAD_CASES.indexOf(bad)}` });
        assert.equal(connack.reasonCode, 0);
      }
      c.send(bad.bytes);
      if (bad.then === 'end') c.socket.end();
      // No answer of any kind: a 3.1.1 server closes the connection on a protocol violation [MQTT-4.8.0-1].
      const started = Date.now();
      await c.expectClosed(CLOSE_WAIT_MS);
      if (bad.then === 'wait' && !bad.name.includes('silence')) {
        assert.ok(Date.now() - started < 1500, `closed only after ${Date.now() - started} ms: by a timeout, not on the bad packet`);
      }
      await assertConnectionCount(server, 1, 'after the bad connection closed');
      await sleep(20);
      assert.deepEqual(delivered, [], 'a bad packet was delivered to the bystander');
      assert.equal(bystanderClosed, 0, 'the bystander was disconnected');
    });
  }

  test('afterwards the broker accepts new connections and routes normally', async () => {
    const c = await clients.rawConnected({ clientId: 'after' });
    c.send(raw(publishByte(1), str(`${BYSTANDER_TOPIC_PREFIX}/after`), u16(9), Buffer.from('fine')));
    assert.equal((await c.expect('puback')).packetId, 9);
    assert.ok(await eventually(() => delivered.length === 1), 'the bystander did not get the message');
    assert.deepEqual(delivered.splice(0), [`m/after: ${Buffer.from('fine').toString('hex')}`]);
    c.disconnect();
    await c.expectClosed();
    await assertConnectionCount(server, 1, 'at the end');
    assert.ok(bystander.connected, 'bystander still connected');
  });
});

describe('a CONNECT announcing a huge packet, then silence, with the default limits', () => {
  test('is closed by the connect timeout and reserves no memory for bytes that never came', { timeout: 15_000 }, async () => {
    const server = await startTestBroker({ limits: { connectTimeout: 1 } });
    const clients = new TestClients(() => server.port);
    try {
      const count = 8;
      const before = process.memoryUsage().arrayBuffers;
      const sockets: RawClient[] = [];
      for (let i = 0; i < count; i++) {
        const c = await clients.raw();
        // 268,435,455 bytes announced (the protocol maximum), 2 sent.
        c.send(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04]));
        sockets.push(c);
      }
      await sleep(200);
      const reservedMb = (process.memoryUsage().arrayBuffers - before) / 2 ** 20;
      assert.equal(server.broker.connectionCount, count, 'the broker closed the connections before the connect timeout');
      // Connect timeout: the broker must close each silent connection by itself.
      await Promise.all(sockets.map((c) => c.expectClosed(3000)));
      await assertConnectionCount(server, 0, 'after the connect timeout');
      assert.ok(
        reservedMb < 64,
        `${count} connections that sent 7 bytes each made the broker reserve ${reservedMb.toFixed(0)} MiB: ` +
          'buffer space must follow the bytes received, not the Remaining Length a client announces',
      );
    } finally {
      await clients.closeAll();
      await server.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Seeded fuzzing

/** Small, fast, seedable PRNG (mulberry32): the same seed always gives the same inputs. */
function prng(seed: number): { next(): number; int(n: number): number; pick<T>(items: readonly T[]): T; bytes(n: number): Buffer } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)] as T,
    bytes: (n: number): Buffer => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
  };
}
type Rng = ReturnType<typeof prng>;

const FUZZ_SEED = Number(process.env['STARLING_FUZZ_SEED'] ?? 0x5747_2024);
const FUZZ_RUNS = Number(process.env['STARLING_FUZZ_RUNS'] ?? 3000);
const FUZZ_CONCURRENCY = 50;
/** How long a fuzz socket waits for the broker to react before closing it itself. */
const FUZZ_LINGER_MS = 60;

/** A valid packet sequence (CONNECT first), with the offset of every packet in it. */
interface Sequence {
  bytes: Buffer;
  offsets: number[];
}

function randomQos(rng: Rng): QoS {
  return rng.pick([0, 1, 2] as const);
}

function randomConnect(rng: Rng, i: number): Packet {
  const version = rng.pick([3, 4, 4, 4, 5] as const);
  const packet: Packet = {
    type: 'connect',
    protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: version,
    clean: rng.next() < 0.8,
    keepalive: rng.pick([0, 0, 1, 60]),
    clientId: rng.next() < 0.1 && version !== 3 ? '' : `fz${i}`,
  };
  if (rng.next() < 0.3) packet.will = { topic: `fuzz/will/${i}`, payload: rng.bytes(rng.int(16)), qos: randomQos(rng), retain: rng.next() < 0.5 };
  if (rng.next() < 0.2) {
    packet.username = 'user';
    packet.password = Buffer.from('secret');
  }
  return packet;
}

function randomPacket(rng: Rng): Packet {
  const topic = rng.pick(['fuzz/a', 'fuzz/b/c', 'fuzz/é', 'fuzz']);
  const packetId = 1 + rng.int(0xfffe);
  switch (rng.int(9)) {
    case 0:
    case 1:
    case 2: {
      const qos = randomQos(rng);
      const p: Packet = { type: 'publish', topic, payload: rng.bytes(rng.int(48)), qos, retain: rng.next() < 0.2, dup: qos > 0 && rng.next() < 0.2 };
      if (qos > 0) p.packetId = packetId;
      return p;
    }
    case 3:
      return { type: 'subscribe', packetId, subscriptions: [{ topicFilter: rng.pick(['fuzz/+', 'fuzz/#', 'fuzz/a', '+/b/+']), qos: randomQos(rng) }] };
    case 4:
      return { type: 'unsubscribe', packetId, topicFilters: [rng.pick(['fuzz/+', 'fuzz/#'])] };
    case 5:
      return { type: rng.pick(['puback', 'pubrec', 'pubrel', 'pubcomp'] as const), packetId };
    case 6:
      return { type: 'pingreq' };
    case 7:
      return { type: 'disconnect' };
    default:
      return { type: 'subscribe', packetId, subscriptions: [{ topicFilter: 'fuzz/a', qos: 1 }, { topicFilter: 'fuzz/b/#', qos: 2 }] };
  }
}

function randomSequence(rng: Rng, i: number): Sequence {
  const connect = randomConnect(rng, i);
  const version = connect.type === 'connect' ? connect.protocolVersion : 4;
  const parts = [encodePacket(connect, version)];
  const count = rng.int(5);
  for (let k = 0; k < count; k++) parts.push(encodePacket(randomPacket(rng), version));
  const offsets: number[] = [];
  let at = 0;
  for (const part of parts) {
    offsets.push(at);
    at += part.length;
  }
  return { bytes: Buffer.concat(parts), offsets };
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x30, 0x82, 0xc0, 0xe0];

/** Applies one mutation: bit flip, byte insert / delete / overwrite, truncation, length corruption, duplication. */
function mutate(rng: Rng, seq: Sequence): Buffer {
  let b = seq.bytes;
  if (b.length === 0) return rng.bytes(1 + rng.int(8));
  const pos = rng.int(b.length);
  switch (rng.int(7)) {
    case 0: {
      const c = Buffer.from(b);
      c[pos] = (c[pos] ?? 0) ^ (1 << rng.int(8));
      return c;
    }
    case 1:
      return Buffer.concat([b.subarray(0, pos), Buffer.from([rng.int(256)]), b.subarray(pos)]);
    case 2:
      return Buffer.concat([b.subarray(0, pos), b.subarray(pos + 1 + rng.int(4))]);
    case 3:
      return b.subarray(0, pos);
    case 4: {
      // Corrupt the Remaining Length of one packet: random, huge, overlong or off by a little.
      const at = rng.pick(seq.offsets) + 1;
      if (at >= b.length) return b;
      const forms = [
        Buffer.from([rng.int(256)]),
        Buffer.from([0xff, 0xff, 0xff, 0x7f]),
        Buffer.from([0x80, 0x80, 0x80, 0x80, 0x01]),
        Buffer.from([((b[at] ?? 0) + rng.int(5) - 2) & 0x7f]),
        Buffer.from([0x80 | rng.int(128), rng.int(128)]),
      ];
      b = Buffer.concat([b.subarray(0, at), rng.pick(forms), b.subarray(at + 1)]);
      return b;
    }
    case 5: {
      const c = Buffer.from(b);
      c[pos] = rng.pick(INTERESTING_BYTES);
      return c;
    }
    default: {
      const end = Math.min(b.length, pos + 1 + rng.int(32));
      return Buffer.concat([b.subarray(0, end), b.subarray(pos, end), b.subarray(end)]);
    }
  }
}

function fuzzInput(rng: Rng, i: number): Buffer {
  const kind = rng.next();
  if (kind < 0.08) return rng.bytes(1 + rng.int(256));
  const seq = randomSequence(rng, i);
  if (kind < 0.14) return Buffer.concat([seq.bytes.subarray(0, seq.offsets[1] ?? seq.bytes.length), rng.bytes(1 + rng.int(128))]);
  let bytes = seq.bytes;
  const mutations = 1 + rng.int(4);
  for (let m = 0; m < mutations; m++) bytes = mutate(rng, { bytes, offsets: seq.offsets });
  return bytes;
}

type FuzzOutcome = 'closed-by-broker' | 'closed-by-client' | 'connect-error';

/** Sends one input over a fresh socket; closes it after a short linger if the broker did not. */
function sendOne(port: number, input: Buffer, abrupt: boolean, split: number): Promise<FuzzOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    let outcome: FuzzOutcome = 'closed-by-client';
    let lingerTimer: NodeJS.Timeout | undefined;
    // Hard bound: whatever happens, this socket is gone within 5 s.
    const hardTimer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', () => undefined);
    let connected = false;
    socket.on('error', () => {
      if (!connected) outcome = 'connect-error';
    });
    socket.on('end', () => {
      if (lingerTimer !== undefined) outcome = 'closed-by-broker';
    });
    socket.on('close', () => {
      clearTimeout(hardTimer);
      if (lingerTimer !== undefined) clearTimeout(lingerTimer);
      resolve(outcome);
    });
    socket.on('connect', () => {
      connected = true;
      if (split > 0 && split < input.length) {
        socket.write(input.subarray(0, split));
        setImmediate(() => socket.write(input.subarray(split)));
      } else {
        socket.write(input);
      }
      lingerTimer = setTimeout(() => {
        lingerTimer = undefined;
        if (abrupt) socket.destroy();
        else socket.end();
      }, FUZZ_LINGER_MS);
    });
  });
}

describe('fuzzing', () => {
  test(`[MQTT-4.8.0-1] seeded fuzz (seed ${FUZZ_SEED}, ${FUZZ_RUNS} inputs): the broker keeps serving a well-behaved client and leaks no connection`, { timeout: 120_000 }, async (t) => {
    const server = await startTestBroker();
    const clients = new TestClients(() => server.port);
    try {
      // A well-behaved client on the side, round-tripping QoS 1 messages with itself throughout.
      const side = await clients.mqtt({ clientId: 'fuzz-side', keepalive: 30 });
      let sideClosed = 0;
      side.on('close', () => sideClosed++);
      const seen = new Set<string>();
      side.on('message', (_topic, payload) => seen.add(payload.toString()));
      await side.subscribeAsync('side/echo', { qos: 1 });
      const published: string[] = [];
      let fuzzing = true;
      const sideLoop = (async () => {
        let n = 0;
        while (fuzzing) {
          const payload = `side-${n++}`;
          await side.publishAsync('side/echo', payload, { qos: 1 });
          published.push(payload);
          await sleep(5);
        }
      })();

      const rng = prng(FUZZ_SEED);
      const inputs: { bytes: Buffer; abrupt: boolean; split: number }[] = [];
      for (let i = 0; i < FUZZ_RUNS; i++) {
        const bytes = fuzzInput(rng, i);
        inputs.push({ bytes, abrupt: rng.next() < 0.3, split: rng.next() < 0.2 ? rng.int(bytes.length) : 0 });
      }
      const outcomes: Record<FuzzOutcome, number> = { 'closed-by-broker': 0, 'closed-by-client': 0, 'connect-error': 0 };
      let nextInput = 0;
      const started = Date.now();
      const worker = async (): Promise<void> => {
        for (;;) {
          const input = inputs[nextInput++];
          if (input === undefined) return;
          outcomes[await sendOne(server.port, input.bytes, input.abrupt, input.split)]++;
        }
      };
      await Promise.all(Array.from({ length: FUZZ_CONCURRENCY }, worker));
      fuzzing = false;
      await sideLoop;
      t.diagnostic(`fuzz: ${FUZZ_RUNS} inputs in ${Date.now() - started} ms: ${JSON.stringify(outcomes)}; protocol errors counted by the broker: ${server.broker.stats.protocolErrors}`);

      assert.equal(outcomes['connect-error'], 0, 'the broker refused TCP connections during the fuzz run');
      assert.ok(server.broker.stats.protocolErrors > FUZZ_RUNS / 4, 'the fuzzer barely produced protocol errors: the inputs are too tame');
      assert.ok(published.length > 0, 'the side client published nothing');
      assert.ok(await eventually(() => published.every((p) => seen.has(p)), 5000), `side client missed ${published.filter((p) => !seen.has(p)).length} of ${published.length} of its own QoS 1 messages`);
      assert.equal(sideClosed, 0, 'the side client was disconnected');
      assert.ok(side.connected, 'the side client is no longer connected');

      // Every fuzz socket is closed on our side: only the side client may remain.
      await assertConnectionCount(server, 1, 'after the fuzz run');

      // The broker still accepts and serves new connections.
      const fresh = await RawClient.connected(server.port, { clientId: 'after-fuzz' });
      await fresh.subscribe('after/fuzz', 1);
      fresh.publish('after/fuzz', 'still alive', 1);
      const packets = [await fresh.next(), await fresh.next()];
      assert.deepEqual(packets.map((p) => p.type).sort(), ['puback', 'publish']);
      fresh.disconnect();
      await fresh.expectClosed();
      await assertConnectionCount(server, 1, 'after the post-fuzz client left');
    } finally {
      await clients.closeAll();
      await server.close();
    }
  });
});
