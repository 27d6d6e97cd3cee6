/**
 * Clustering (issue 7), black-box: three `starling` processes (dist/cli/main.js) on one real
 * redis-server, driven by MQTT.js clients. A message published on any node reaches the matching
 * subscribers on every node, at every QoS, in order and (QoS 2) once; retained messages, persistent
 * sessions, takeover, shared subscriptions and wills work across nodes.
 *
 * A subscription made on one node reaches the other nodes through Redis a little after its SUBACK,
 * so before counting messages each test first publishes probes until every subscriber has one
 * (`publishUntilReceived`, bounded), then publishes the messages it counts on another topic.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  collect,
  connect,
  endClient,
  inbox,
  metric,
  publishAll,
  publishUntilReceived,
  received,
  sleep,
  startCluster,
  waitUntil,
  type Cluster,
  type ClusterNode,
  type Connected,
} from '../helpers/cluster.js';

let cluster: Cluster | undefined;
let n1: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;

before(async () => {
  cluster = await startCluster(3);
  [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
}, { timeout: 30_000 });

after(async () => {
  await cluster?.close();
}, { timeout: 30_000 });

const TEST = { timeout: 30_000 };

function numbers(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(i + 1));
}

for (const qos of [0, 1, 2] as const) {
  test(`[MQTT-3.3.5-1] [MQTT-4.6.0-6] QoS ${qos}: messages published on node 1 reach subscribers on nodes 2 and 3, in order, each exactly once`, TEST, async () => {
    const base = `cluster/qos${qos}`;
    const { client: s2 } = await connect(n2.port, { clientId: `qos${qos}-sub-n2` });
    const { client: s3 } = await connect(n3.port, { clientId: `qos${qos}-sub-n3` });
    await s2.subscribeAsync(`${base}/#`, { qos });
    await s3.subscribeAsync(`${base}/#`, { qos });
    const { client: pub } = await connect(n1.port, { clientId: `qos${qos}-pub-n1` });
    await publishUntilReceived(pub, `${base}/probe`, [s2, s3], { qos });

    const expected = [...numbers(50), 'end'];
    await publishAll(pub, `${base}/data`, expected, qos);
    for (const [name, sub] of [['node 2', s2], ['node 3', s3]] as const) {
      await waitUntil(() => received(sub, `${base}/data`).some((m) => m.payload === 'end'), 10_000, () => `${name}: no 'end' among ${received(sub, `${base}/data`).length} messages`);
      const got = received(sub, `${base}/data`);
      // Nothing is lost or duplicated on a healthy cluster, at any QoS; at QoS 2 a duplicate would break [MQTT-4.3.3-2].
      assert.deepEqual(got.map((m) => m.payload), expected, `${name}: every message once, in publish order`);
      assert.ok(got.every((m) => m.qos === qos), `${name}: delivered at QoS ${qos}`);
      assert.ok(got.every((m) => !m.retain), `${name}: RETAIN 0 on a live delivery`);
    }
  });
}

test('[MQTT-3.3.5-1] a subscriber on the publisher\'s node and one on another node both receive each message', TEST, async () => {
  const { client: local } = await connect(n1.port, { clientId: 'local-sub-n1' });
  const { client: remote } = await connect(n2.port, { clientId: 'local-sub-n2' });
  await local.subscribeAsync('local/#', { qos: 1 });
  await remote.subscribeAsync('local/#', { qos: 1 });
  const { client: pub } = await connect(n1.port, { clientId: 'local-pub-n1' });
  await publishUntilReceived(pub, 'local/probe', [remote]);
  const expected = numbers(20);
  await publishAll(pub, 'local/data', expected, 1);
  assert.deepEqual((await collect(local, 20, 5000, 'local/data')).map((m) => m.payload), expected, 'same node');
  assert.deepEqual((await collect(remote, 20, 5000, 'local/data')).map((m) => m.payload), expected, 'other node');
});

test('routing by interest: a topic nobody subscribes to reaches nobody; a subscription added on node 3 later receives within a bound', TEST, async (t) => {
  const subs = await Promise.all([n1, n2, n3].map(async (node, i) => (await connect(node.port, { clientId: `interest-sub-${i + 1}` })).client));
  for (const sub of subs) await sub.subscribeAsync('interest/watched', { qos: 1 });
  const { client: pub } = await connect(n1.port, { clientId: 'interest-pub-n1' });
  await publishUntilReceived(pub, 'interest/watched', subs, { qos: 1 });

  // Node 1 sends a message only to the nodes that want it: its count of messages sent to other
  // nodes (one per target node) stays put for a topic nobody subscribes to.
  const SENT = 'starling_cluster_messages_sent_total';
  const sentBefore = await metric(n1.httpPort, SENT);
  assert.ok(sentBefore !== undefined, `node 1 exports ${SENT}`);
  await publishAll(pub, 'interest/unwatched', numbers(20), 1);
  assert.equal(await metric(n1.httpPort, SENT), sentBefore, 'no message for an unwatched topic left node 1');
  await pub.publishAsync('interest/watched', 'after', { qos: 1 });
  for (const [i, sub] of subs.entries()) {
    await waitUntil(() => received(sub, 'interest/watched').some((m) => m.payload === 'after'), 5000, () => `subscriber ${i + 1}: no 'after'`);
    assert.deepEqual(received(sub, 'interest/unwatched'), [], `subscriber on node ${i + 1}`);
  }
  assert.equal(await metric(n1.httpPort, SENT), sentBefore + 2, 'a watched topic: one message to each of nodes 2 and 3');

  const { client: late } = await connect(n3.port, { clientId: 'interest-late-n3' });
  await late.subscribeAsync('interest/late', { qos: 1 });
  // The bound is ~1 s in the issue; 2 s leaves room for a loaded CI machine.
  const took = await publishUntilReceived(pub, 'interest/late', [late], { qos: 1, timeoutMs: 2000, intervalMs: 25 });
  t.diagnostic(`late subscription on node 3 received from node 1 after ${took} ms`);
});

test('[MQTT-4.7.1-2] [MQTT-4.7.1-3] wildcard filters + and # on nodes 2 and 3 match topics published on node 1', TEST, async () => {
  const { client: plus } = await connect(n2.port, { clientId: 'wc-plus-n2' });
  const { client: hash } = await connect(n3.port, { clientId: 'wc-hash-n3' });
  await plus.subscribeAsync('wc/+/temp', { qos: 1 });
  await hash.subscribeAsync('wc/#', { qos: 1 });
  const { client: pub } = await connect(n1.port, { clientId: 'wc-pub-n1' });
  await publishUntilReceived(pub, 'wc/probe/temp', [plus, hash], { qos: 1 });

  const topics = ['wc/kitchen/humidity', 'wc', 'wc/a/b/temp', 'wc/kitchen/temp', 'wc/end/temp'];
  for (const topic of topics) await pub.publishAsync(topic, topic, { qos: 1 });
  const notProbe = (topic: string): boolean => topic !== 'wc/probe/temp';
  const viaHash = await collect(hash, topics.length, 5000, notProbe);
  await waitUntil(() => received(plus, 'wc/end/temp').length > 0, 5000, () => 'wc/+/temp: no wc/end/temp');
  assert.deepEqual(viaHash.map((m) => m.topic).sort(), [...topics].sort(), 'wc/# matches the parent level and every level below');
  assert.deepEqual(received(plus).filter((m) => notProbe(m.topic)).map((m) => m.topic).sort(), ['wc/end/temp', 'wc/kitchen/temp'], 'wc/+/temp matches exactly one level');
});

test('[MQTT-3.3.1-6] [MQTT-3.3.1-8] [MQTT-3.3.1-10] retained message set on node 1 is sent to a new subscriber on node 2; cleared on node 3, a new subscriber on node 1 gets nothing', TEST, async () => {
  const { client: live } = await connect(n3.port, { clientId: 'ret-live-n3' });
  await live.subscribeAsync('ret/#', { qos: 1 });
  const { client: pub1 } = await connect(n1.port, { clientId: 'ret-pub-n1' });
  await publishUntilReceived(pub1, 'ret/probe', [live], { qos: 1 });

  await pub1.publishAsync('ret/a', 'r1', { qos: 1, retain: true });
  const [liveCopy] = await collect(live, 1, 5000, 'ret/a');
  assert.equal(liveCopy?.payload, 'r1');
  assert.equal(liveCopy?.retain, false, '[MQTT-3.3.1-9] RETAIN 0 to an established subscription');

  const { client: newOn2 } = await connect(n2.port, { clientId: 'ret-new-n2' });
  await newOn2.subscribeAsync('ret/a', { qos: 1 });
  const [retained] = await collect(newOn2, 1, 5000, 'ret/a');
  assert.equal(retained?.payload, 'r1');
  assert.equal(retained?.retain, true, 'sent because of a new subscription: RETAIN 1');

  const { client: pub3 } = await connect(n3.port, { clientId: 'ret-pub-n3' });
  await pub3.publishAsync('ret/a', '', { qos: 1, retain: true });
  const [clearing] = await collect(live, 1, 5000, 'ret/a');
  assert.equal(clearing?.payload, '', 'the empty retained PUBLISH is delivered normally');

  const { client: newOn1 } = await connect(n1.port, { clientId: 'ret-new-n1' });
  await newOn1.subscribeAsync('ret/a', { qos: 1 });
  // A retained message would be sent right after SUBACK, before this later live one on the same topic.
  await pub1.publishAsync('ret/a', 'marker', { qos: 1 });
  const [first] = await collect(newOn1, 1, 5000, 'ret/a');
  assert.deepEqual(first, { topic: 'ret/a', payload: 'marker', qos: 1, retain: false, dup: false }, 'no retained message after it was cleared on node 3');
});

test('[MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2] a persistent session moves from node 1 to node 2 with the messages queued while it was away', TEST, async () => {
  const clientId = 'mover';
  const first = await connect(n1.port, { clientId, clean: false });
  await first.client.subscribeAsync('sess/mover/#', { qos: 1 });
  const { client: pub3 } = await connect(n3.port, { clientId: 'mover-pub-n3' });
  await publishUntilReceived(pub3, 'sess/mover/probe', [first.client], { qos: 1 });
  await endClient(first.client, true);

  const expected = numbers(10);
  for (const payload of expected) await pub3.publishAsync('sess/mover/data', payload, { qos: 1 });

  const second = await connect(n2.port, { clientId, clean: false });
  assert.equal(second.connack.sessionPresent, true, 'Session Present on the other node');
  assert.deepEqual((await collect(second.client, 10, 10_000, 'sess/mover/data')).map((m) => m.payload), expected, 'every queued message, in order');
  // Live traffic now follows the session to node 2, after the queued messages.
  await pub3.publishAsync('sess/mover/data', 'live', { qos: 1 });
  const [live] = await collect(second.client, 1, 5000, 'sess/mover/data');
  assert.equal(live?.payload, 'live');
});

test('[MQTT-4.3.2-2] a persistent session hopping between nodes 1 and 2 while node 3 publishes QoS 1 without pause receives every acknowledged message', TEST, async () => {
  const clientId = 'hopper';
  // Every connection's inbox records from its first byte (messages resent right after CONNACK included).
  const connections: Connected['client'][] = [];
  const got = (): Set<string> => new Set(connections.flatMap((c) => received(c, 'hop/data').map((m) => m.payload)));
  const first = await connect(n1.port, { clientId, clean: false });
  connections.push(first.client);
  await first.client.subscribeAsync('hop/#', { qos: 1 });
  const { client: pub3 } = await connect(n3.port, { clientId: 'hopper-pub-n3' });
  await publishUntilReceived(pub3, 'hop/probe', [first.client], { qos: 1 });

  const acked: string[] = [];
  let publishing = true;
  const publisher = (async () => {
    for (let i = 1; publishing; i++) {
      await pub3.publishAsync('hop/data', String(i), { qos: 1 });
      acked.push(String(i));
    }
  })();
  // Each hop is a takeover across nodes: the session moves while messages for it are in flight.
  for (let hop = 1; hop <= 8; hop++) {
    await sleep(120);
    const next = await connect(hop % 2 === 1 ? n2.port : n1.port, { clientId, clean: false });
    assert.equal(next.connack.sessionPresent, true, `hop ${hop}: Session Present`);
    connections.push(next.client);
  }
  await sleep(120);
  publishing = false;
  await publisher;
  await waitUntil(
    () => {
      const all = got();
      return acked.every((p) => all.has(p));
    },
    10_000,
    () => `missing after 8 hops: ${acked.filter((p) => !got().has(p)).slice(0, 20).join(', ')} of ${acked.length} acknowledged`,
  );
  assert.ok(acked.length > 50, `the publisher kept going during the hops (${acked.length} messages)`);
});

test('[MQTT-3.1.4-3] takeover across nodes (MQTT 5): the connection on node 1 gets DISCONNECT 0x8E when the client id connects on node 2', TEST, async () => {
  const clientId = 'taker-v5';
  const old = await connect(n1.port, { clientId, protocolVersion: 5 });
  const fresh = await connect(n2.port, { clientId, protocolVersion: 5 });
  assert.equal(fresh.connack.reasonCode ?? 0, 0);
  const oldBox = inbox(old.client);
  await waitUntil(() => oldBox.closed, 5000, () => 'the connection on node 1 is still open');
  assert.deepEqual(oldBox.disconnects.map((d) => d.reasonCode), [0x8e], 'DISCONNECT with Session taken over');

  await fresh.client.subscribeAsync('take/v5', { qos: 1 });
  const { client: pub } = await connect(n3.port, { clientId: 'taker-v5-pub-n3', protocolVersion: 5 });
  await publishUntilReceived(pub, 'take/v5', [fresh.client], { qos: 1 });
  assert.equal(fresh.client.connected, true, 'the new connection stays');
});

test('[MQTT-3.1.4-2] takeover across nodes (3.1.1): the connection on node 1 is closed when the client id connects on node 2', TEST, async () => {
  const clientId = 'taker-v4';
  const old = await connect(n1.port, { clientId });
  const fresh = await connect(n2.port, { clientId });
  const oldBox = inbox(old.client);
  await waitUntil(() => oldBox.closed, 5000, () => 'the connection on node 1 is still open');
  assert.deepEqual(oldBox.disconnects, [], 'no DISCONNECT from the server in 3.1.1');

  await fresh.client.subscribeAsync('take/v4', { qos: 1 });
  const { client: pub } = await connect(n3.port, { clientId: 'taker-v4-pub-n3' });
  await publishUntilReceived(pub, 'take/v4', [fresh.client], { qos: 1 });
  assert.equal(fresh.client.connected, true, 'the new connection stays');
});

test('shared subscription $share/g/work/# with members on nodes 2 and 3: each message published on node 1 reaches exactly one member (MQTT 5 §4.8.2)', TEST, async (t) => {
  const N = 200;
  const { client: m2 } = await connect(n2.port, { clientId: 'share-m-n2', protocolVersion: 5 });
  const { client: m3 } = await connect(n3.port, { clientId: 'share-m-n3', protocolVersion: 5 });
  await m2.subscribeAsync('$share/g/work/#', { qos: 1 });
  await m3.subscribeAsync('$share/g/work/#', { qos: 1 });
  const { client: pub } = await connect(n1.port, { clientId: 'share-pub-n1', protocolVersion: 5 });
  // Until each member has had a probe, node 1 may not know both.
  await publishUntilReceived(pub, 'work/probe', [m2, m3], { qos: 1, intervalMs: 20 });

  await publishAll(pub, 'work/data', numbers(N), 1);
  const data = (): string[] => [...received(m2, 'work/data'), ...received(m3, 'work/data')].map((m) => m.payload);
  await waitUntil(() => new Set(data()).size >= N, 10_000, () => `${new Set(data()).size} of ${N} distinct messages`);
  // Later messages reach each member behind anything still on its way: then count.
  await publishUntilReceived(pub, 'work/end', [m2, m3], { qos: 1, intervalMs: 20 });

  const all = data();
  const counts = [received(m2, 'work/data').length, received(m3, 'work/data').length];
  t.diagnostic(`node 2 member: ${counts[0]}, node 3 member: ${counts[1]}`);
  assert.equal(all.length, N, 'no message to two members (or twice)');
  assert.deepEqual(new Set(all), new Set(numbers(N)), 'every message to one member');
  for (const [i, count] of counts.entries()) assert.ok(count >= N / 10, `member on node ${i + 2} got ${count} of ${N}: at least 10%`);
});

test('[MQTT-3.1.2-8] the will of a client on node 1 whose connection breaks reaches a subscriber on node 3', TEST, async () => {
  const { client: sub } = await connect(n3.port, { clientId: 'will-sub-n3' });
  await sub.subscribeAsync('will/#', { qos: 1 });
  const { client: pub } = await connect(n1.port, { clientId: 'will-probe-n1' });
  await publishUntilReceived(pub, 'will/probe', [sub], { qos: 1 });

  const { client: dying } = await connect(n1.port, { clientId: 'will-n1', will: { topic: 'will/will-n1', payload: Buffer.from('gone'), qos: 1, retain: false } });
  dying.stream.destroy();
  const [will] = await collect(sub, 1, 10_000, 'will/will-n1');
  assert.equal(will?.payload, 'gone');
  assert.equal(will?.qos, 1);
});
