/**
 * Client-id claims under load (issue 18: a node batches the claims of one event-loop turn into one
 * Redis pipeline): 200 clients connecting at once to two nodes, a fifth of them twice at the same
 * moment (once on each node), clean and persistent, MQTT 3.1.1 and 5. Afterwards every client id is
 * connected exactly once in the cluster, its owner key in Redis names the node it is connected to,
 * a persistent session is recorded by that node only, and a message reaches every live client. And
 * a clean session taken over on its own node keeps its client id claimed, so a later connection on
 * the other node still closes it [MQTT-3.1.4-2].
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { connect, endClient, inbox, publishUntilReceived, startCluster, waitUntil, type Cluster, type ClusterNode } from '../helpers/cluster.js';

let cluster: Cluster | undefined;
let n1: ClusterNode;
let n2: ClusterNode;

before(async () => {
  cluster = await startCluster(2, 'storm');
  [n1, n2] = cluster.nodes as [ClusterNode, ClusterNode];
}, { timeout: 30_000 });

after(async () => {
  await cluster?.close();
}, { timeout: 30_000 });

const TEST = { timeout: 60_000 };

test('[MQTT-3.1.4-2] a clean session taken over on its own node stays claimed: a connection on the other node still closes it', TEST, async () => {
  const first = await connect(n1.port, { clientId: 'same-node-twice' });
  const second = await connect(n1.port, { clientId: 'same-node-twice' });
  await waitUntil(() => inbox(first.client).closed, 5000, () => 'the first connection was not taken over');
  const redis = cluster!.redis.client();
  try {
    await waitUntil(async () => (await redis.get('starling:owner:same-node-twice')) === 'storm1', 5000, () => 'owner key of the connected client');
    const third = await connect(n2.port, { clientId: 'same-node-twice' });
    await waitUntil(() => inbox(second.client).closed, 5000, () => 'the connection on node 1 stayed open while node 2 has the client id too');
    assert.equal(third.client.connected, true);
    assert.equal(await redis.get('starling:owner:same-node-twice'), 'storm2');
  } finally {
    redis.disconnect();
  }
});

interface Attempt {
  clientId: string;
  node: ClusterNode;
  persistent: boolean;
  client: MqttClient | undefined;
}

test('200 clients connect at once to two nodes, 40 of them on both at the same moment: each client id ends connected exactly once, owned and recorded by its node, and reachable', TEST, async () => {
  const attempts: Attempt[] = [];
  for (let i = 0; i < 200; i++) {
    const clientId = `storm-${String(i).padStart(3, '0')}`;
    const persistent = i % 3 === 0;
    attempts.push({ clientId, node: i % 2 === 0 ? n1 : n2, persistent, client: undefined });
    if (i % 5 === 0) attempts.push({ clientId, node: i % 2 === 0 ? n2 : n1, persistent, client: undefined });
  }
  const results = await Promise.allSettled(
    attempts.map(async (attempt, i) => {
      const { client } = await connect(attempt.node.port, {
        clientId: attempt.clientId,
        clean: !attempt.persistent,
        protocolVersion: i % 4 === 0 ? 5 : 4,
        ...(i % 4 === 0 && attempt.persistent ? { properties: { sessionExpiryInterval: 600 } } : {}),
      });
      attempt.client = client;
      // Each client subscribes to its own topic, so a message shows which connection holds the id.
      await client.subscribeAsync(`storm/${attempt.clientId}`, { qos: 1 });
    }),
  );
  // A connection may lose the race before its CONNACK (refused: claimed by the other node meanwhile) or
  // before its SUBACK (taken over); never both of a pair, and never a single one.
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${attempts[i]!.clientId}@${attempts[i]!.node.nodeId}: ${String(r.reason)}`] : []));
  const live = (): Map<string, Attempt[]> => {
    const byId = new Map<string, Attempt[]>();
    for (const attempt of attempts) {
      if (attempt.client === undefined || inbox(attempt.client).closed || !attempt.client.connected) continue;
      byId.set(attempt.clientId, [...(byId.get(attempt.clientId) ?? []), attempt]);
    }
    return byId;
  };
  const describe = (): string => {
    const byId = live();
    const wrong = [...new Set(attempts.map((a) => a.clientId))].filter((id) => byId.get(id)?.length !== 1);
    return `client ids not connected exactly once: ${wrong.map((id) => `${id}×${byId.get(id)?.length ?? 0}`).join(', ')}; failures: ${failures.join('; ')}`;
  };
  await waitUntil(() => [...new Set(attempts.map((a) => a.clientId))].every((id) => live().get(id)?.length === 1), 20_000, describe);

  const redis = cluster!.redis.client();
  try {
    const winners = [...live().values()].map((list) => list[0] as Attempt);
    assert.equal(winners.length, 200);
    const owners = await redis.mget(winners.map((w) => `starling:owner:${w.clientId}`));
    const misowned = winners.filter((w, i) => owners[i] !== w.node.nodeId).map((w, i) => `${w.clientId}: on ${w.node.nodeId}, owner ${owners[i]}`);
    assert.deepEqual(misowned, [], 'every owner key names the node the client is connected to');
    // A persistent session is in its node's set and in no other node's.
    await waitUntil(
      async () => {
        const [one, two] = await Promise.all([redis.smembers('starling:node:storm1:clients'), redis.smembers('starling:node:storm2:clients')]);
        return winners.filter((w) => w.persistent).every((w) => (w.node === n1 ? one.includes(w.clientId) && !two.includes(w.clientId) : two.includes(w.clientId) && !one.includes(w.clientId)));
      },
      10_000,
      () => 'persistent sessions recorded by the wrong node',
    );
    const stored = await redis.exists(...winners.filter((w) => w.persistent).map((w) => `starling:session:${w.clientId}`));
    assert.equal(stored, winners.filter((w) => w.persistent).length, 'every persistent session is stored');

    // A message to each client id reaches the connection that holds it.
    const { client: publisher } = await connect(n1.port, { clientId: 'storm-publisher' });
    for (const winner of winners) {
      await publishUntilReceived(publisher, `storm/${winner.clientId}`, [winner.client as MqttClient], { qos: 1 });
    }
    await endClient(publisher);
  } finally {
    redis.disconnect();
  }
});
