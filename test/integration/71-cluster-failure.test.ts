/**
 * Clustering (issue 7) under failure, black-box: three `starling` processes on one real
 * redis-server. A node killed with SIGKILL mid-traffic: the wills of its clients are published by the
 * cluster, and a persistent session it held resumes on another node with every message whose PUBACK
 * a publisher got. A node restarted with the same --node-id after SIGKILL serves again. Redis
 * restarted mid-traffic: the nodes report not ready during the outage, then ready, and route again.
 *
 * The tests run in order on one cluster (node 2 dies in the first and comes back in the second).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type MqttClient } from 'mqtt';
import {
  collect,
  connect,
  endClient,
  publishAll,
  publishUntilReceived,
  received,
  startCluster,
  waitUntil,
  type Cluster,
  type ClusterNode,
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

/** Unacknowledged QoS 1 messages a publisher keeps in flight. */
const WINDOW = 32;
/** Milliseconds between two publications (about 200 messages a second: traffic, not a load test). */
const PACE = 5;

/** A paced QoS 1 publisher of numbered messages: records when each PUBACK arrived. */
interface Publisher {
  /** Message number → Date.now() when its PUBACK arrived. */
  readonly acked: Map<number, number>;
  readonly sent: () => number;
  stop(): void;
}

function startPublisher(client: MqttClient, topic: string): Publisher {
  const acked = new Map<number, number>();
  let sent = 0;
  let inflight = 0;
  let stopped = false;
  const timer = setInterval(() => {
    if (stopped || inflight >= WINDOW || !client.connected) return;
    const n = ++sent;
    inflight++;
    client.publish(topic, String(n), { qos: 1 }, (error) => {
      inflight--;
      if (error === undefined || error === null) acked.set(n, Date.now());
    });
  }, PACE);
  return {
    acked,
    sent: () => sent,
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

test('kill -9 of node 2 mid-traffic: the will of its client reaches node 3, and its persistent subscriber resumes on node 3 with every acknowledged message', { timeout: 60_000 }, async (t) => {
  const { client: watcher } = await connect(n3.port, { clientId: 'kill-watcher-n3' });
  await watcher.subscribeAsync('failure/will/#', { qos: 1 });
  const { client: victim } = await connect(n2.port, {
    clientId: 'kill-victim-n2',
    will: { topic: 'failure/will/kill-victim-n2', payload: Buffer.from('node 2 died'), qos: 1, retain: false },
  });
  await publishUntilReceived(victim, 'failure/will/probe', [watcher], { qos: 1 });

  const subscriberId = 'kill-persistent';
  const first = await connect(n2.port, { clientId: subscriberId, clean: false });
  await first.client.subscribeAsync('acked/#', { qos: 1 });
  // Publishers on both surviving nodes: whichever of them adopts node 2, one publishes on the
  // adopting node and one on the other.
  const sources = await Promise.all(
    [n1, n3].map(async (node) => {
      const { client } = await connect(node.port, { clientId: `kill-pub-${node.nodeId}` });
      await publishUntilReceived(client, `acked/probe/${node.nodeId}`, [first.client], { qos: 1 });
      return { node, topic: `acked/from/${node.nodeId}`, client };
    }),
  );
  const publishers = sources.map((source) => ({ ...source, publisher: startPublisher(source.client, source.topic) }));
  const ackedCount = (): number => publishers.reduce((sum, p) => sum + p.publisher.acked.size, 0);
  const ackedSince = (time: number): number => publishers.reduce((sum, p) => sum + [...p.publisher.acked.values()].filter((at) => at >= time).length, 0);
  const isData = (topic: string): boolean => topic.startsWith('acked/from/');
  try {
    await waitUntil(() => received(first.client).filter((m) => isData(m.topic)).length >= 20, 10_000, () => 'the subscriber on node 2 got fewer than 20 messages');
    // A clean DISCONNECT: from now on node 2's session of the subscriber queues what arrives.
    await endClient(first.client, true);
    const disconnectedAt = Date.now();
    await waitUntil(() => ackedSince(disconnectedAt) >= 100, 10_000, () => `${ackedSince(disconnectedAt)} acknowledgements since the disconnect`);

    await n2.kill('SIGKILL');
    const killedAt = Date.now();
    // The issue asks for ~10 s; the bound leaves room for heartbeat timing on a loaded machine.
    const [will] = await collect(watcher, 1, 15_000, 'failure/will/kill-victim-n2');
    const willAt = Date.now();
    t.diagnostic(`will of the killed node's client after ${willAt - killedAt} ms`);
    const adopter = [n1, n3].find((node) => node.output().includes('adopting its sessions'));
    t.diagnostic(`adopted by ${adopter?.nodeId ?? 'a node that did not log it (yet)'}`);
    assert.equal(will?.payload, 'node 2 died');
    // The publishers keep publishing across the failover (the adopting node takes over the dead
    // node's sessions and stream while the other may still route to it), then stop: what they saw
    // acknowledged is final.
    await waitUntil(() => ackedSince(willAt) >= 200, 10_000, () => `${ackedSince(willAt)} acknowledgements since the will`);
    for (const p of publishers) p.publisher.stop();

    const second = await connect(n3.port, { clientId: subscriberId, clean: false, connectTimeout: 15_000 });
    assert.equal(second.connack.sessionPresent, true, '[MQTT-3.2.2-2] the session of the killed node is present on node 3');
    const got = (): Set<string> => new Set([...received(first.client), ...received(second.client)].map((m) => `${m.topic} ${m.payload}`));
    const missing = (): { node: string; n: number; at: number }[] => {
      const have = got();
      return publishers.flatMap((p) => [...p.publisher.acked].filter(([n]) => !have.has(`${p.topic} ${n}`)).map(([n, at]) => ({ node: p.node.nodeId, n, at })));
    };
    try {
      await waitUntil(() => missing().length === 0, 15_000, () => 'acknowledged messages missing', 50);
    } catch {
      const lost = missing();
      const evidence = await deadStreamEvidence('n2');
      const phase = (at: number): string => (at < killedAt ? 'before the kill' : at < willAt ? 'between the kill and the will' : 'after the will');
      assert.fail(
        `${lost.length} of ${ackedCount()} acknowledged messages never reached the resumed session (node 2 adopted by ${adopter?.nodeId ?? '?'}): ` +
          lost.slice(0, 20).map((l) => `#${l.n} published on ${l.node}, acknowledged ${phase(l.at)} (${l.at - killedAt} ms after the kill)`).join('; ') +
          `; ${evidence}`,
      );
    }
    t.diagnostic(publishers.map((p) => `${p.node.nodeId}: ${p.publisher.sent()} published, ${p.publisher.acked.size} acknowledged`).join('; ') + `; ${got().size} distinct received`);
  } finally {
    for (const p of publishers) p.publisher.stop();
  }
});

/**
 * For a failure message: what Redis still holds for the dead node (key names of src/persistence/redis/keys.ts,
 * default prefix). Entries left in its stream after the adoption were acknowledged to a publisher
 * and never delivered.
 */
async function deadStreamEvidence(node: string): Promise<string> {
  const redis = cluster!.redis.client();
  try {
    const stream = `starling:stream:${node}`;
    const length = await redis.xlen(stream);
    const entries = length > 0 ? (await redis.xrange(stream, '-', '+', 'COUNT', 5)).map(([id]) => id) : [];
    return `Redis: ${stream} has ${length} entries${entries.length > 0 ? ` (${entries.join(', ')}…)` : ''}, ${await redis.scard(`starling:routes:${node}`)} routes left for ${node}`;
  } catch (error) {
    return `Redis not inspected: ${(error as Error).message}`;
  } finally {
    redis.disconnect();
  }
}

/** Makes a client on `to` receive from a publisher on `from`, through the cluster. */
async function assertRoutes(from: ClusterNode, to: ClusterNode, tag: string): Promise<void> {
  const { client: sub } = await connect(to.port, { clientId: `${tag}-sub` });
  await sub.subscribeAsync(`${tag}/#`, { qos: 1 });
  const { client: pub } = await connect(from.port, { clientId: `${tag}-pub` });
  await publishUntilReceived(pub, `${tag}/probe`, [sub], { qos: 1, timeoutMs: 10_000 });
  await publishAll(pub, `${tag}/data`, ['1', '2', '3'], 1);
  assert.deepEqual((await collect(sub, 3, 5000, `${tag}/data`)).map((m) => m.payload), ['1', '2', '3'], `${from.nodeId} → ${to.nodeId}`);
  await endClient(sub);
  await endClient(pub);
}

test('a node restarted with the same --node-id after SIGKILL comes back ready and serves', { timeout: 60_000 }, async () => {
  // Node 2 died in the previous test (if it ran): bring it back, then kill it again and restart at once.
  if (n2.running) await n2.kill('SIGKILL');
  await n2.restart(20_000);
  await assertRoutes(n1, n2, 'restart-a');
  await n2.kill('SIGKILL');
  await n2.restart(20_000);
  assert.equal(await n2.readyz(), 200);
  await assertRoutes(n1, n2, 'restart-b');
  await assertRoutes(n2, n3, 'restart-c');
});

test('Redis restarted mid-traffic: the nodes are not ready during the outage, ready again after, and route again', { timeout: 60_000 }, async (t) => {
  assert.ok(cluster !== undefined);
  const { redis } = cluster;
  const nodes = [n1, n2, n3];
  const subscribe = async (): Promise<MqttClient> => {
    const { client } = await connect(n2.port, { clientId: 'redis-sub-n2' });
    await client.subscribeAsync('redis/#', { qos: 1 });
    return client;
  };
  let sub = await subscribe();
  let pub = (await connect(n1.port, { clientId: 'redis-pub-n1' })).client;
  await publishUntilReceived(pub, 'redis/probe', [sub], { qos: 1 });
  const publisher = startPublisher(pub, 'redis/traffic');
  try {
    await waitUntil(() => received(sub, 'redis/traffic').length >= 20, 10_000, () => `${received(sub, 'redis/traffic').length} messages before the outage`);

    await redis.stop();
    const outageStart = Date.now();
    const notReady = new Set<string>();
    await waitUntil(
      async () => {
        const statuses = await Promise.all(nodes.map((node) => node.readyz()));
        for (const [i, status] of statuses.entries()) if (status !== 200) notReady.add(nodes[i]!.nodeId);
        return notReady.size === nodes.length;
      },
      10_000,
      () => `only ${[...notReady].join(', ') || 'no node'} reported /readyz not 200 while Redis was down`,
      100,
    );
    t.diagnostic(`every node not ready ${Date.now() - outageStart} ms after Redis stopped`);

    await redis.restart();
    const back = Date.now();
    await waitUntil(
      async () => (await Promise.all(nodes.map((node) => node.readyz()))).every((status) => status === 200),
      15_000,
      () => 'not every node reports /readyz 200 after Redis came back',
      100,
    );
    t.diagnostic(`every node ready ${Date.now() - back} ms after Redis came back`);
  } finally {
    publisher.stop();
  }

  // The broker may have closed connections during the outage: reconnect what is gone.
  if (!sub.connected) {
    await endClient(sub);
    sub = await subscribe();
  }
  if (!pub.connected) {
    await endClient(pub);
    pub = (await connect(n1.port, { clientId: 'redis-pub-n1' })).client;
  }
  const took = await publishUntilReceived(pub, 'redis/after', [sub], { qos: 1, timeoutMs: 15_000, intervalMs: 100 });
  t.diagnostic(`routing from node 1 to node 2 again ${took} ms after the nodes were ready`);
  const expected = Array.from({ length: 20 }, (_, i) => String(i + 1));
  await publishAll(pub, 'redis/data', expected, 1);
  assert.deepEqual((await collect(sub, 20, 10_000, 'redis/data')).map((m) => m.payload), expected);
});
