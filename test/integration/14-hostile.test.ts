/**
 * Hostile input against a live broker (issue 5, item 7), bounded and seeded: slowloris connects,
 * SUBSCRIBE floods, 256 MB Remaining Length claims, random MQTT 5 property sets, and a fuzz run built
 * from test/fuzz/harness.ts. Throughout, a well-behaved MQTT.js client round-trips QoS 1 messages and
 * must see every one; the broker stays up, its connection count returns to baseline, memory stays bounded.
 *
 * Another seed: STARLING_FUZZ_SEED=7 node --import tsx --test test/integration/14-hostile.test.ts
 * The long run: bench/fuzz-long.ts (docs/security.md, "Hostile input").
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodePacket, encodePacket, type ConnectPacket } from '../../src/protocol/index.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { RawClient, TestClients } from '../helpers/raw-client.js';
import {
  CLIENT_TYPES,
  MAX_REMAINING_LENGTH,
  PROPERTY_FAULTS,
  RAW_V5_CONTEXT,
  type RawV5Kind,
  createRng,
  randomConnect,
  randomPacket,
  rawPropertyBlock,
  rawV5Packet,
  varint,
} from '../fuzz/harness.js';
import { SideClient, memoryMb, runHostileSockets, sleep, slowloris, subscribeFlood } from '../fuzz/live.js';

const SEED = Number(process.env['STARLING_FUZZ_SEED'] ?? 0x5eed_0014);
const FUZZ_RUNS = Number(process.env['STARLING_FUZZ_RUNS'] ?? 6000);
const CONNECT_TIMEOUT_S = 1;
const MAX_PACKET_SIZE = 64 * 1024;
const MAX_SUBSCRIPTIONS = 100;
const MAX_TOPIC_LEVELS = 16;

async function eventually(predicate: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Runs `fn` over `items`, `concurrency` at a time. */
async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

describe('14 hostile input: the broker stays up, memory stays bounded, other clients are unaffected', () => {
  let server: StarlingServer;
  let side: SideClient;
  const clients = new TestClients(() => server.port);
  /** Connections that are not part of a test: the side client. */
  const BASELINE = 1;

  before(async () => {
    server = await startTestBroker({
      limits: { connectTimeout: CONNECT_TIMEOUT_S, maxPacketSize: MAX_PACKET_SIZE, maxSubscriptionsPerClient: MAX_SUBSCRIPTIONS, maxTopicLevels: MAX_TOPIC_LEVELS },
    });
    side = await SideClient.start(server.port, { clientId: 'hostile-side' });
  });

  after(async () => {
    await clients.closeAll();
    await side.stop(0).catch(() => undefined);
    await server.close();
  });

  /** The side client is connected, was never disconnected, and has seen every QoS 1 message older than the grace period. */
  async function assertUnaffected(what: string): Promise<void> {
    const report = side.check(2000);
    assert.equal(report.closes, 0, `${what}: the well-behaved client was disconnected`);
    assert.ok(report.connected, `${what}: the well-behaved client is no longer connected`);
    assert.equal(report.missing, 0, `${what}: the well-behaved client missed ${report.missing} of its QoS 1 messages`);
    const settled = await eventually(() => server.broker.connectionCount === BASELINE, 4000);
    assert.ok(settled, `${what}: broker.connectionCount is ${server.broker.connectionCount}, expected ${BASELINE} (leaked connections)`);
  }

  test('slowloris: 200 sockets that send nothing or drip a CONNECT byte by byte are all closed by the connect timeout', { timeout: 20_000 }, async (t) => {
    const rng = createRng(SEED);
    const before = server.broker.connectionCount;
    const results = Promise.all(Array.from({ length: 200 }, (_, i) =>
      slowloris(server.port, i % 2 === 0 ? 'silent' : 'drip', { dripMs: 150 + rng.int(200), version: rng.pick([3, 4, 5] as const), rng: rng.fork(), hardMs: 8000 })));
    assert.ok(await eventually(() => server.broker.connectionCount === before + 200, 2000), `only ${server.broker.connectionCount - before} of 200 slow sockets were accepted`);
    const closed = await results;
    const late = closed.filter((r) => !r.closedByBroker || r.closedAfterMs > CONNECT_TIMEOUT_S * 1000 + 2000);
    const early = closed.filter((r) => r.closedAfterMs < CONNECT_TIMEOUT_S * 1000 - 100);
    t.diagnostic(`closed after ${Math.min(...closed.map((r) => r.closedAfterMs))}..${Math.max(...closed.map((r) => r.closedAfterMs))} ms; ${closed.reduce((n, r) => n + r.bytesSent, 0)} bytes dripped`);
    assert.equal(late.length, 0, `${late.length} slow sockets were not closed by the broker within the connect timeout (+2 s)`);
    assert.equal(early.length, 0, `${early.length} slow sockets were closed before the connect timeout`);
    await assertUnaffected('after slowloris');
  });

  test('[MQTT-3.8.4-5] SUBSCRIBE flood from one MQTT 5 client: thousands of filters, one answer each, 0x97 beyond maxSubscriptionsPerClient', { timeout: 20_000 }, async () => {
    const refusalsBefore = server.broker.stats.limitRefusals;
    const subsBefore = server.broker.query.totals().subscriptions;
    const subacks = await subscribeFlood(server.port, { version: 5, clientId: 'flood-v5', packets: 30, filtersPerPacket: 100 });
    const codes = subacks.flatMap((s) => s.reasonCodes);
    assert.equal(codes.length, 3000, 'one reason code per filter');
    assert.equal(codes.filter((c) => c === 1).length, MAX_SUBSCRIPTIONS, 'granted up to the limit');
    assert.equal(codes.filter((c) => c === 0x97).length, 3000 - MAX_SUBSCRIPTIONS, 'the rest: 0x97 quota exceeded');
    assert.deepEqual(subacks.map((s) => s.packetId), Array.from({ length: 30 }, (_, i) => i + 1), 'SUBACKs in order');
    assert.equal(server.broker.stats.limitRefusals - refusalsBefore, 3000 - MAX_SUBSCRIPTIONS, 'every refusal counted');
    assert.ok(await eventually(() => server.broker.query.totals().subscriptions === subsBefore), 'the clean session left its subscriptions behind');
    await assertUnaffected('after the MQTT 5 flood');
  });

  test('[MQTT-3.8.4-5] SUBSCRIBE flood from one 3.1.1 client in a single 2,000-filter packet: 0x80 beyond the limit; too-deep filters refused', { timeout: 20_000 }, async () => {
    const c = await clients.rawConnected({ clientId: 'flood-v4' });
    const filters: [string, 0 | 1][] = Array.from({ length: 2000 }, (_, i) => [i % 10 === 9 ? `deep/${'x/'.repeat(MAX_TOPIC_LEVELS)}${i}` : `flood4/${i}`, 1]);
    const suback = await c.subscribe(filters);
    assert.equal(suback.reasonCodes.length, 2000);
    assert.equal(suback.reasonCodes.filter((code) => code === 1).length, MAX_SUBSCRIPTIONS);
    assert.equal(suback.reasonCodes.filter((code) => code === 0x80).length, 2000 - MAX_SUBSCRIPTIONS);
    suback.reasonCodes.forEach((code, i) => {
      if (i % 10 === 9) assert.equal(code, 0x80, `filter ${i} has ${MAX_TOPIC_LEVELS + 2} levels`);
    });
    c.disconnect();
    await c.expectClosed();
    await assertUnaffected('after the 3.1.1 flood');
  });

  test('SUBSCRIBE flood from 100 clients at once: each capped, subscriptions and memory bounded, all released', { timeout: 30_000 }, async (t) => {
    const subsBefore = server.broker.query.totals().subscriptions;
    const memBefore = memoryMb();
    let peakSubs = 0;
    const watch = setInterval(() => (peakSubs = Math.max(peakSubs, server.broker.query.totals().subscriptions)), 20);
    try {
      const results = await pool(Array.from({ length: 100 }, (_, i) => i), 25, (i) =>
        subscribeFlood(server.port, { version: i % 2 === 0 ? 5 : 4, clientId: `flood-many-${i}`, packets: 5, filtersPerPacket: 60 }));
      for (const subacks of results) {
        const codes = subacks.flatMap((s) => s.reasonCodes);
        assert.equal(codes.length, 300);
        assert.equal(codes.filter((c) => c === 1).length, MAX_SUBSCRIPTIONS);
      }
    } finally {
      clearInterval(watch);
    }
    const memAfter = memoryMb();
    t.diagnostic(`peak subscriptions ${peakSubs}; heap ${memBefore.heapUsed.toFixed(0)} → ${memAfter.heapUsed.toFixed(0)} MiB, rss ${memBefore.rss.toFixed(0)} → ${memAfter.rss.toFixed(0)} MiB`);
    assert.ok(peakSubs <= subsBefore + 100 * MAX_SUBSCRIPTIONS, `${peakSubs} subscriptions held: more than 100 clients × ${MAX_SUBSCRIPTIONS}`);
    assert.ok(memAfter.heapUsed - memBefore.heapUsed < 128, `heap grew by ${(memAfter.heapUsed - memBefore.heapUsed).toFixed(0)} MiB`);
    assert.ok(await eventually(() => server.broker.query.totals().subscriptions === subsBefore), 'clean sessions left subscriptions behind');
    await assertUnaffected('after 100 flooding clients');
  });

  test('256 MB Remaining Length claims on 100 connections (before and after CONNECT) are closed at once; memory stays bounded', { timeout: 20_000 }, async (t) => {
    const memBefore = memoryMb();
    const closedIn = await pool(Array.from({ length: 100 }, (_, i) => i), 100, async (i) => {
      const c = await clients.raw();
      if (i % 2 === 1) await c.connectMqtt({ clientId: `claim-${i}`, protocolVersion: i % 4 === 1 ? 5 : 4 });
      const first = i % 2 === 0 ? 0x10 : i % 3 === 0 ? 0x82 : 0x30;
      const started = Date.now();
      c.send(Buffer.concat([Buffer.from([first]), varint(MAX_REMAINING_LENGTH), Buffer.alloc(1000, 0x61)]));
      // MQTT 5 clients may get DISCONNECT 0x95 (packet too large) first.
      await c.expectClosed(3000, { allowPackets: true });
      return Date.now() - started;
    });
    const memAfter = memoryMb();
    t.diagnostic(`closed in ${Math.min(...closedIn)}..${Math.max(...closedIn)} ms; arrayBuffers ${memBefore.arrayBuffers.toFixed(1)} → ${memAfter.arrayBuffers.toFixed(1)} MiB, rss ${memBefore.rss.toFixed(0)} → ${memAfter.rss.toFixed(0)} MiB`);
    assert.ok(Math.max(...closedIn) < 800, `a claim over maxPacketSize was closed only after ${Math.max(...closedIn)} ms: by the timeout, not at once`);
    assert.ok(memAfter.arrayBuffers - memBefore.arrayBuffers < 16, 'arrayBuffers grew by more than 16 MiB');
    assert.ok(memAfter.rss - memBefore.rss < 128, 'rss grew by more than 128 MiB');
    await assertUnaffected('after 256 MB claims');
  });

  test('[MQTT-4.8.0-1] random MQTT 5 property sets: valid ones are served, every broken property rule closes the connection', { timeout: 30_000 }, async (t) => {
    const rng = createRng(SEED + 4);
    const kinds = Object.keys(RAW_V5_CONTEXT) as RawV5Kind[];
    const outcome: Record<string, number> = {};
    const count = (k: string): void => void (outcome[k] = (outcome[k] ?? 0) + 1);
    const errorsBefore = server.broker.stats.protocolErrors;
    await pool(Array.from({ length: 600 }, (_, i) => ({ i, rng: rng.fork() })), 30, async ({ i, rng: r }) => {
      const c = await RawClient.connect(server.port, { version: 5 });
      try {
        const fault = PROPERTY_FAULTS[i % PROPERTY_FAULTS.length]!;
        const kind = kinds[Math.floor(i / PROPERTY_FAULTS.length) % kinds.length]!;
        if (kind === 'connect') {
          const props = rawPropertyBlock(r, 'connect', fault);
          const bytes = rawV5Packet('connect', props.bytes, { clientId: `props-${i}` });
          c.send(bytes);
          const maxSize = props.fault === 'none' ? (decodePacket(bytes, 5) as ConnectPacket).properties?.maximumPacketSize : undefined;
          if (maxSize !== undefined && maxSize < 64) {
            // [MQTT-3.1.2-24] the CONNACK does not fit the client's Maximum Packet Size: it is not sent,
            // and the useless connection is closed rather than left hanging.
            const seen = await c.expectClosed(2000, { allowPackets: true });
            assert.ok(!seen.some((p) => p.type === 'connack'), 'no CONNACK larger than the client accepts');
            count('connect:none:connack-too-large-for-client');
          } else if (props.fault === 'none') {
            const connack = await c.expect('connack', 3000);
            count(`connect:none:connack-${connack.reasonCode}`);
            c.disconnect();
          } else {
            // A CONNACK with an error code may come first; then the broker closes.
            await c.expectClosed(2000, { allowPackets: true });
            count(`connect:${props.fault}:closed`);
          }
          return;
        }
        // A CONNECT with random (valid) properties and will properties, then valid packets with random properties.
        const connect = randomConnect(r, 5, `props-${i}`);
        // Enhanced authentication is not configured: an Authentication Method would only get CONNACK 0x8C.
        // A Maximum Packet Size smaller than the CONNACK gets no CONNACK (covered above).
        if (connect.type === 'connect' && connect.properties !== undefined) {
          delete connect.properties.authenticationMethod;
          if ((connect.properties.maximumPacketSize ?? Infinity) < 256) delete connect.properties.maximumPacketSize;
        }
        c.send(encodePacket(connect, 5));
        const connack = await c.expect('connack', 3000).catch(() => undefined);
        if (connack === undefined || connack.reasonCode !== 0) {
          count(`connect-random:refused-${connack?.reasonCode ?? 'closed'}`);
          await c.expectClosed(2000, { allowPackets: true });
          return;
        }
        for (let k = 0; k < 3; k++) c.send(encodePacket(randomPacket(r, 5, r.pick(CLIENT_TYPES.filter((type) => type !== 'disconnect'))), 5));
        const props = rawPropertyBlock(r, RAW_V5_CONTEXT[kind], fault);
        c.send(rawV5Packet(kind, props.bytes, { packetId: 0xfff0 + (i % 15), topic: kind === 'publish' ? 'fz/props' : 'fz/props/#' }));
        if (props.fault === 'none' && kind !== 'disconnect') {
          c.disconnect();
          await c.expectClosed(2000, { allowPackets: true });
          count(`${kind}:none:served`);
        } else {
          const packets = await c.expectClosed(2000, { allowPackets: true });
          const last = packets.at(-1);
          count(`${kind}:${props.fault}:closed${last?.type === 'disconnect' ? `-0x${(last.reasonCode ?? 0).toString(16)}` : ''}`);
        }
      } catch (error) {
        throw new Error(`session ${i} (${PROPERTY_FAULTS[i % PROPERTY_FAULTS.length]} in ${kinds[Math.floor(i / PROPERTY_FAULTS.length) % kinds.length]}): ${String(error)}`, { cause: error });
      } finally {
        c.destroy();
      }
    });
    t.diagnostic(`outcomes ${JSON.stringify(outcome)}; protocol errors counted: ${server.broker.stats.protocolErrors - errorsBefore}`);
    assert.ok(Object.keys(outcome).some((k) => k.startsWith('connect:none:connack-0')), 'no clean raw CONNECT was accepted');
    assert.ok(server.broker.stats.protocolErrors - errorsBefore > 200, 'broken property rules barely produced protocol errors');
    await assertUnaffected('after random property sets');
  });

  test(`[MQTT-4.8.0-1] seeded hostile fuzz (seed ${SEED}, ${FUZZ_RUNS} inputs from test/fuzz/harness.ts): the broker keeps serving and leaks no connection`, { timeout: 60_000 }, async (t) => {
    const errorsBefore = server.broker.stats.protocolErrors;
    const memBefore = memoryMb();
    const report = await runHostileSockets(server.port, createRng(SEED + 5), FUZZ_RUNS, 50);
    const memAfter = memoryMb();
    t.diagnostic(`${report.inputs} inputs in ${report.ms} ms: ${JSON.stringify(report.outcomes)}; protocol errors ${server.broker.stats.protocolErrors - errorsBefore}; rss ${memBefore.rss.toFixed(0)} → ${memAfter.rss.toFixed(0)} MiB`);
    assert.equal(report.outcomes['connect-error'], 0, 'the broker refused TCP connections during the fuzz run');
    assert.ok(server.broker.stats.protocolErrors - errorsBefore > FUZZ_RUNS / 4, 'the fuzzer barely produced protocol errors');
    assert.ok(memAfter.rss - memBefore.rss < 256, `rss grew by ${(memAfter.rss - memBefore.rss).toFixed(0)} MiB`);
    await assertUnaffected('after the fuzz run');
    // Still serving new clients.
    const fresh = await clients.rawConnected({ clientId: 'after-hostile', protocolVersion: 5 });
    await fresh.subscribe('after/hostile', 1);
    fresh.publish('after/hostile', 'alive', 1);
    const types = [(await fresh.next()).type, (await fresh.next()).type].sort();
    assert.deepEqual(types, ['puback', 'publish']);
    fresh.disconnect();
    await fresh.expectClosed();
  });

  test('throughout: the well-behaved MQTT.js client saw every one of its QoS 1 messages and was never disconnected', async (t) => {
    const report = await side.stop(3000);
    t.diagnostic(`side client: ${report.published} QoS 1 messages, max round trip ${report.maxRoundTripMs} ms`);
    assert.ok(report.published > 20, `only ${report.published} messages published`);
    assert.equal(report.missing, 0, `${report.missing} of ${report.published} QoS 1 messages never came back`);
    assert.equal(report.closes, 0);
  });
});

describe('14 hostile input with the default maxPacketSize (256 MB allowed)', () => {
  test('100 connected clients each claiming a 256 MB PUBLISH and sending 8 KiB: the broker buffers what arrived, not what was claimed', { timeout: 20_000 }, async (t) => {
    const server = await startTestBroker({ limits: { connectTimeout: CONNECT_TIMEOUT_S } });
    const clients = new TestClients(() => server.port);
    try {
      const connected = await pool(Array.from({ length: 100 }, (_, i) => i), 50, (i) => clients.rawConnected({ clientId: `big-${i}`, protocolVersion: i % 2 === 0 ? 4 : 5 }));
      await sleep(50);
      const memBefore = memoryMb();
      for (const c of connected) {
        c.send(Buffer.concat([Buffer.from([0x30]), varint(MAX_REMAINING_LENGTH), Buffer.from([0, 3]), Buffer.from('a/b')]));
        for (let k = 0; k < 8; k++) c.send(Buffer.alloc(1024, 0x62));
      }
      assert.ok(await eventually(() => server.broker.stats.bytesReceived > 100 * 8 * 1024, 5000), 'the bodies did not arrive');
      await sleep(100);
      const memAfter = memoryMb();
      t.diagnostic(`arrayBuffers ${memBefore.arrayBuffers.toFixed(1)} → ${memAfter.arrayBuffers.toFixed(1)} MiB (800 KiB received), rss ${memBefore.rss.toFixed(0)} → ${memAfter.rss.toFixed(0)} MiB`);
      assert.ok(memAfter.arrayBuffers - memBefore.arrayBuffers < 32, `arrayBuffers grew by ${(memAfter.arrayBuffers - memBefore.arrayBuffers).toFixed(0)} MiB for 800 KiB received under 100 × 256 MB claims`);
      assert.equal(server.broker.connectionCount, 100, 'the connections waiting for their bodies are still open');
      for (const c of connected) c.destroy();
      assert.ok(await eventually(() => server.broker.connectionCount === 0), 'connections leaked');
    } finally {
      await clients.closeAll();
      await server.close();
    }
  });
});
