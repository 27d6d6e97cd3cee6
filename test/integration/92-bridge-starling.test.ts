/**
 * Two Starling brokers joined by a bridge with a `both` mapping (issue 15): messages published on
 * either side reach the other once, and nothing comes back or goes round (MQTT 5 No Local on both
 * ends). With MQTT 3.1.1 the remote Starling refuses Mosquitto's bridge flag; the bridge goes on
 * without it, drops the echoes of what it sent, and does not loop.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect, type MqttClient } from '../../src/client/index.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { bridgeConfig, bridgeState, collect, probe, waitUntil } from '../helpers/bridges.js';

const servers: StarlingServer[] = [];
const clients: MqttClient[] = [];

after(async () => {
  for (const c of clients) c.destroy();
  for (const s of servers) await s.close();
});

async function client(port: number): Promise<MqttClient> {
  const c = await connect(`mqtt://127.0.0.1:${port}`, { reconnect: false, protocolVersion: 5 });
  clients.push(c);
  return c;
}

const N = 50;

/** Two brokers: `cloud`, and `edge` with one `both` bridge `name` on `root/#` to it, up; and the edge's log lines. */
async function pair(name: string, protocolVersion: 4 | 5, root: string): Promise<{ cloud: StarlingServer; edge: StarlingServer; lines: string[] }> {
  const cloud = await startTestBroker();
  servers.push(cloud);
  const lines: string[] = [];
  const record = (_obj: object, msg: string): number => lines.push(msg);
  const topics = [{ pattern: `${root}/#`, direction: 'both' as const, qos: 1 as const, localPrefix: '', remotePrefix: '' }];
  const edge = await startTestBroker({
    logger: { debug: record, info: record, warn: record, error: record },
    bridges: [bridgeConfig({ name, url: `mqtt://127.0.0.1:${cloud.port}`, protocolVersion, topics })],
  });
  servers.push(edge);
  await bridgeState(edge.bridges, name, 'up');
  return { cloud, edge, lines };
}

test('MQTT 5, both: each message reaches the other side once, none comes back, none loops', async () => {
  const { cloud, edge, lines } = await pair('up', 5, 'shared');
  const atEdge = await client(edge.port);
  const atCloud = await client(cloud.port);
  const edgeGot = collect(atEdge);
  const cloudGot = collect(atCloud);
  await atEdge.subscribe('shared/#', { qos: 1 });
  await atCloud.subscribe('shared/#', { qos: 1 });
  await probe(atEdge, 'shared/probe-e', cloudGot, 'shared/probe-e');
  await probe(atCloud, 'shared/probe-c', edgeGot, 'shared/probe-c');
  const before = edge.bridges.get('up')!;

  for (let i = 0; i < N; i++) {
    await atEdge.publish('shared/from-edge', `e${i}`, { qos: 1 });
    await atCloud.publish('shared/from-cloud', `c${i}`, { qos: 1 });
  }
  // A last message each way; what a loop or an echo would add arrives before it (one path, in order).
  await atEdge.publish('shared/end-e', 'end', { qos: 1 });
  await atCloud.publish('shared/end-c', 'end', { qos: 1 });
  await cloudGot.count(1, 'shared/end-e');
  await edgeGot.count(1, 'shared/end-c');

  const expect = (prefix: string): string[] => Array.from({ length: N }, (_, i) => `${prefix}${i}`);
  assert.deepEqual(cloudGot.payloads('shared/from-edge'), expect('e'), 'edge → cloud once each, in order');
  assert.deepEqual(edgeGot.payloads('shared/from-cloud'), expect('c'), 'cloud → edge once each, in order');
  assert.deepEqual(edgeGot.payloads('shared/from-edge'), expect('e'), 'no echo back to the edge');
  assert.deepEqual(cloudGot.payloads('shared/from-cloud'), expect('c'), 'no echo back to the cloud');
  const status = edge.bridges.get('up')!;
  assert.equal(status.messagesOut - before.messagesOut, N + 1, 'out: each edge message once');
  assert.equal(status.messagesIn - before.messagesIn, N + 1, 'in: each cloud message once');
  await waitUntil(() => edge.bridges.get('up')?.queued === 0, 'the bridge session to be empty');
  assert.ok(!lines.some((l) => l.includes('bridge flag')), 'MQTT 5 needs no bridge flag');
});

test('MQTT 3.1.1 to a Starling remote: the bridge flag refused, it goes on without it; messages pass both ways, echoes are dropped, nothing loops', async () => {
  const { cloud, edge, lines } = await pair('old', 4, 'both');
  assert.ok(lines.some((l) => l.includes("does not take Mosquitto's bridge flag")), lines.join('\n'));
  const atEdge = await client(edge.port);
  const atCloud = await client(cloud.port);
  const edgeGot = collect(atEdge);
  const cloudGot = collect(atCloud);
  await atEdge.subscribe('both/#', { qos: 1 });
  await atCloud.subscribe('both/#', { qos: 1 });
  await probe(atEdge, 'both/probe-e', cloudGot, 'both/probe-e');
  await probe(atCloud, 'both/probe-c', edgeGot, 'both/probe-c');
  for (let i = 0; i < N; i++) await atEdge.publish('both/x', `x${i}`, { qos: 1 });
  await atEdge.publish('both/end', 'end', { qos: 1 });
  await cloudGot.count(1, 'both/end');
  await edgeGot.count(1, 'both/end');
  // Without No Local the cloud hands the bridge each of its own messages back: recognised and
  // dropped (same topic and payload). A message from the cloud comes in on the same path, behind
  // where the echoes would be: once it is here, so would they.
  await atCloud.publish('both/end', 'from the cloud', { qos: 1 });
  await edgeGot.count(2, 'both/end');
  assert.deepEqual(edgeGot.payloads('both/end'), ['end', 'from the cloud'], 'the same topic from a remote publisher still comes in');
  const expected = Array.from({ length: N }, (_, i) => `x${i}`);
  assert.deepEqual(cloudGot.payloads('both/x'), expected);
  assert.deepEqual(edgeGot.payloads('both/x'), expected, 'no echo');
  await waitUntil(() => edge.bridges.get('old')?.queued === 0, 'the bridge session to be empty');
  const { messagesOut, messagesIn } = edge.bridges.get('old')!;
  await atCloud.publish('both/quiet', 'q', { qos: 1 });
  await edgeGot.count(1, 'both/quiet');
  assert.equal(edge.bridges.get('old')!.messagesOut, messagesOut, 'nothing more goes out: no loop');
  assert.equal(edge.bridges.get('old')!.messagesIn, messagesIn + 1);
});

test("a message larger than the remote's Maximum Packet Size is dropped and counted; the link stays up and the next message passes", async () => {
  const cloud = await startTestBroker({ limits: { maxPacketSize: 1024 } });
  servers.push(cloud);
  const edge = await startTestBroker({
    bridges: [bridgeConfig({ name: 'small', url: `mqtt://127.0.0.1:${cloud.port}`, protocolVersion: 5, topics: [{ pattern: 'big/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: '' }] })],
  });
  servers.push(edge);
  await bridgeState(edge.bridges, 'small', 'up');
  const atEdge = await client(edge.port);
  const atCloud = await client(cloud.port);
  const cloudGot = collect(atCloud);
  await atCloud.subscribe('big/#', { qos: 1 });
  await probe(atEdge, 'big/probe', cloudGot, 'big/probe');
  await atEdge.publish('big/x', Buffer.alloc(4000, 0x61), { qos: 1 });
  await atEdge.publish('big/x', 'small', { qos: 1 });
  await cloudGot.count(1, 'big/x');
  assert.deepEqual(cloudGot.payloads('big/x'), ['small']);
  const status = edge.bridges.get('small')!;
  assert.equal(status.dropped, 1);
  assert.equal(status.connects, 1, 'never disconnected');
  await waitUntil(() => edge.bridges.get('small')?.queued === 0, 'the bridge session to be empty');
});
