/**
 * Bridges (issue 15) against a real Mosquitto: messages both ways at QoS 0, 1 and 2 with Mosquitto-style
 * prefixes, in MQTT 3.1.1 (try_private) and 5; retained flags carried both ways; TLS to the remote with
 * a CA, a client certificate and SNI; a TLS failure logged once, never a crash; ws:// to its WebSocket listener.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type MqttClient } from '../../src/client/index.js';
import type { BridgeConfig } from '../../src/config/schema.js';
import type { QoS } from '../../src/protocol/types.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { bridgeConfig, bridgeState, collect, probe, waitUntil } from '../helpers/bridges.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { tempDir } from '../helpers/temp-dir.js';

const QOS: readonly QoS[] = [0, 1, 2];
const COUNT = 20;

let mosquitto: MosquittoBroker & { extraPorts: number[] };
let certs: TestCertificates;
const servers: StarlingServer[] = [];
const clients: MqttClient[] = [];

before(async () => {
  certs = makeTestCertificates();
  mosquitto = await startMosquitto({
    extraListeners: [['require_certificate true', `cafile ${certs.caFile}`, `certfile ${certs.server.certFile}`, `keyfile ${certs.server.keyFile}`]],
  });
});

after(async () => {
  for (const c of clients) c.destroy();
  for (const s of servers) await s.close();
  await mosquitto?.stop();
  certs?.cleanup();
});

async function client(url: string, options: Parameters<typeof connect>[1] = {}): Promise<MqttClient> {
  const c = await connect(url, { reconnect: false, ...options });
  clients.push(c);
  return c;
}

async function starling(bridge: BridgeConfig, extra: Parameters<typeof startTestBroker>[0] = {}): Promise<StarlingServer> {
  const server = await startTestBroker({ bridges: [bridge], store: 'embedded', dataDir: tempDir(), ...extra });
  servers.push(server);
  return server;
}

for (const version of [4, 5] as const) {
  describe(`bridge to mosquitto, MQTT ${version === 4 ? '3.1.1 (try_private)' : '5'}`, () => {
    test('messages both ways at QoS 0, 1 and 2, with prefixes, in order; retained flags carried', async () => {
      const server = await starling(
        bridgeConfig({
          name: 'cloud',
          url: `mqtt://127.0.0.1:${mosquitto.port}`,
          clientId: `edge-${version}`,
          protocolVersion: version,
          topics: [
            { pattern: 'sensors/#', direction: 'out', qos: 2, localPrefix: '', remotePrefix: `edge-${version}/` },
            { pattern: 'cmd/#', direction: 'in', qos: 2, localPrefix: `edge-${version}/`, remotePrefix: `to-${version}/` },
          ],
        }),
      );
      await bridgeState(server.bridges, 'cloud', 'up');
      const local = await client(`mqtt://127.0.0.1:${server.port}`, { protocolVersion: version });
      const remote = await client(`mqtt://127.0.0.1:${mosquitto.port}`, { protocolVersion: version });
      const atRemote = collect(remote);
      const atLocal = collect(local);
      await remote.subscribe(`edge-${version}/sensors/#`, { qos: 2 });
      await local.subscribe(`edge-${version}/cmd/#`, { qos: 2 });
      await probe(local, 'sensors/probe', atRemote, `edge-${version}/sensors/probe`);
      await probe(remote, `to-${version}/cmd/probe`, atLocal, `edge-${version}/cmd/probe`);

      for (const qos of QOS) {
        const sent: Promise<unknown>[] = [];
        for (let i = 0; i < COUNT; i++) {
          sent.push(local.publish(`sensors/q${qos}`, `out-${qos}-${i}`, { qos }));
          sent.push(remote.publish(`to-${version}/cmd/q${qos}`, `in-${qos}-${i}`, { qos }));
        }
        await Promise.all(sent);
        await atRemote.count(COUNT, `edge-${version}/sensors/q${qos}`);
        await atLocal.count(COUNT, `edge-${version}/cmd/q${qos}`);
        const expected = (dir: string): string[] => Array.from({ length: COUNT }, (_, i) => `${dir}-${qos}-${i}`);
        assert.deepEqual(atRemote.payloads(`edge-${version}/sensors/q${qos}`), expected('out'), `QoS ${qos} out: every message once, in order`);
        assert.deepEqual(atLocal.payloads(`edge-${version}/cmd/q${qos}`), expected('in'), `QoS ${qos} in: every message once, in order`);
        assert.ok(atRemote.messages.filter((m) => m.topic === `edge-${version}/sensors/q${qos}`).every((m) => m.qos === qos));
        assert.ok(atLocal.messages.filter((m) => m.topic === `edge-${version}/cmd/q${qos}`).every((m) => m.qos === qos));
      }

      // Retained both ways: a subscriber arriving later on each side gets the retained copy.
      await local.publish('sensors/last', 'kept-out', { qos: 1, retain: true });
      await remote.publish(`to-${version}/cmd/last`, 'kept-in', { qos: 1, retain: true });
      await atRemote.count(1, `edge-${version}/sensors/last`);
      await atLocal.count(1, `edge-${version}/cmd/last`);
      const lateRemote = await client(`mqtt://127.0.0.1:${mosquitto.port}`);
      const lateLocal = await client(`mqtt://127.0.0.1:${server.port}`);
      const lateAtRemote = collect(lateRemote);
      const lateAtLocal = collect(lateLocal);
      await lateRemote.subscribe(`edge-${version}/sensors/last`, { qos: 1 });
      await lateLocal.subscribe(`edge-${version}/cmd/last`, { qos: 1 });
      await lateAtRemote.count(1);
      await lateAtLocal.count(1);
      assert.equal(lateAtRemote.messages[0]?.payload.toString(), 'kept-out');
      assert.equal(lateAtRemote.messages[0]?.retain, true);
      assert.equal(lateAtLocal.messages[0]?.payload.toString(), 'kept-in');
      assert.equal(lateAtLocal.messages[0]?.retain, true);

      const status = server.bridges.get('cloud');
      assert.equal(status?.state, 'up');
      assert.ok((status?.messagesOut ?? 0) >= COUNT * 3 + 1, `messagesOut ${status?.messagesOut}`);
      assert.ok((status?.messagesIn ?? 0) >= COUNT * 3 + 1, `messagesIn ${status?.messagesIn}`);
      assert.equal(status?.queued, 0);
    });
  });
}

describe('bridge over TLS', () => {
  test('mqtts:// with the CA, a client certificate and SNI: messages flow; a wrong CA is logged once and retried, never a crash', async () => {
    const tlsPort = mosquitto.extraPorts[0]!;
    const client1 = certs.client('edge-tls');
    const good = await starling(
      bridgeConfig({
        name: 'secure',
        url: `mqtts://localhost:${tlsPort}`,
        clientId: 'edge-tls',
        caFile: certs.caFile,
        certFile: client1.certFile,
        keyFile: client1.keyFile,
        topics: [{ pattern: 'tls/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: 'secure/' }],
      }),
    );
    await bridgeState(good.bridges, 'secure', 'up');
    const remote = await client(`mqtt://127.0.0.1:${mosquitto.port}`);
    const atRemote = collect(remote);
    await remote.subscribe('secure/tls/#', { qos: 1 });
    const local = await client(`mqtt://127.0.0.1:${good.port}`);
    for (let i = 0; i < 5; i++) await local.publish('tls/reading', `t${i}`, { qos: 1 });
    await atRemote.count(5, 'secure/tls/reading');
    assert.deepEqual(atRemote.payloads('secure/tls/reading'), ['t0', 't1', 't2', 't3', 't4']);

    // A CA that did not sign the server's certificate: down, the reason logged once however often it retries.
    const lines: Array<{ level: string; msg: string; obj: object }> = [];
    const record = (level: string) => (obj: object, msg: string) => lines.push({ level, msg, obj });
    const logger = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
    const rogue = certs.rogueClient('rogue');
    const bad = await starling(
      bridgeConfig({
        name: 'untrusted',
        url: `mqtts://localhost:${tlsPort}`,
        caFile: rogue.certFile,
        topics: [{ pattern: 'x/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: '' }],
      }),
      { logger },
    );
    await waitUntil(() => (bad.bridges.get('untrusted')?.lastError ?? null) !== null, 'the TLS failure');
    await bridgeState(bad.bridges, 'untrusted', 'down');
    assert.match(bad.bridges.get('untrusted')?.lastError ?? '', /certificate|self.signed|issuer/i);
    // Let it retry a few times (each failed attempt is a debug line), then count the warnings.
    const retries = (): number => lines.filter((l) => l.level === 'debug' && l.msg.includes('"untrusted": attempt failed again')).length;
    await waitUntil(() => retries() >= 3, 'three more failed attempts');
    const warnings = lines.filter((l) => l.level === 'warn' && l.msg.includes('"untrusted" cannot connect'));
    assert.equal(warnings.length, 1, `one warning per state change, got: ${warnings.map((w) => w.msg).join(' | ')}`);
    assert.match(warnings[0]!.msg, new RegExp(`mqtts://localhost:${tlsPort}`));
  });
});

describe('bridge over WebSocket', () => {
  test('ws:// to mosquitto\'s WebSocket listener: messages both ways', async () => {
    const server = await starling(
      bridgeConfig({
        name: 'web',
        url: `ws://127.0.0.1:${mosquitto.wsPort}/mqtt`,
        clientId: 'edge-ws',
        protocolVersion: 5,
        topics: [{ pattern: 'ws/#', direction: 'both', qos: 1, localPrefix: 'here/', remotePrefix: 'there/' }],
      }),
    );
    await bridgeState(server.bridges, 'web', 'up');
    assert.equal(server.bridges.get('web')?.url, `ws://127.0.0.1:${mosquitto.wsPort}/mqtt`);
    const local = await client(`mqtt://127.0.0.1:${server.port}`, { protocolVersion: 5 });
    const remote = await client(`mqtt://127.0.0.1:${mosquitto.port}`, { protocolVersion: 5 });
    const atLocal = collect(local);
    const atRemote = collect(remote);
    await local.subscribe('here/ws/#', { qos: 1 });
    await remote.subscribe('there/ws/#', { qos: 1 });
    await probe(local, 'here/ws/probe', atRemote, 'there/ws/probe');
    await probe(remote, 'there/ws/probe-back', atLocal, 'here/ws/probe-back');
    for (let i = 0; i < 10; i++) {
      await local.publish('here/ws/up', `u${i}`, { qos: 1 });
      await remote.publish('there/ws/down', `d${i}`, { qos: 1 });
    }
    await atRemote.count(10, 'there/ws/up');
    await atLocal.count(10, 'here/ws/down');
    assert.deepEqual(atRemote.payloads('there/ws/up'), Array.from({ length: 10 }, (_, i) => `u${i}`));
    assert.deepEqual(atLocal.payloads('here/ws/down'), Array.from({ length: 10 }, (_, i) => `d${i}`));
    // No Local on both ends: neither side got its own messages back.
    assert.equal(atLocal.payloads('here/ws/up').length, 10, 'the local subscriber saw its own 10 once');
    assert.equal(atRemote.payloads('there/ws/down').length, 10);
  });
});
