/**
 * Cluster partitions on the clients' side and during session moves (issue 16), bounded: the same
 * lab as partitions-redis.test.ts (three nodes, Redis, clients, each in its own namespace), then:
 *
 * - a node cut from its clients but not from Redis: its clients time out (keep-alive) and resume
 *   their sessions on the other nodes, which take them over through Redis;
 * - a session moving from one node to another while the node it leaves is cut from Redis, the
 *   partition healing before that node's lease runs out, and again after it has run out.
 *
 * Checked from outside: no acknowledged message lost for any persistent subscriber, no QoS 2
 * message delivered twice, the healthy nodes keep serving.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep } from '../helpers/cluster.js';
import { startClusterLab, type ClusterLab, type LabNode } from './cluster-lab.js';
import { describe, endAll } from './ledger.js';
import { ReadyWatch, allReady, evidence, finish, startTraffic, tryPersistentConnect } from './partition-scenarios.js';

let cl: ClusterLab | undefined;
let n1: LabNode;
let n2: LabNode;
let n3: LabNode;

before(async () => {
  cl = await startClusterLab();
  [n1, n2, n3] = cl.nodes as [LabNode, LabNode, LabNode];
}, { timeout: 60_000 });

after(async () => {
  endAll();
  await cl?.close();
}, { timeout: 30_000 });

test('a node cut from its clients but not from Redis: its clients resume their sessions on the other nodes within seconds; it stays ready (it cannot tell); nothing acknowledged is lost', { timeout: 120_000 }, async (t) => {
  const lab = cl!.lab;
  const scene = await startTraffic(cl!, 'e', n3, [n1, n2]);
  const watch = new ReadyWatch(n3);
  try {
    await sleep(2000);
    const cutAt = Date.now();
    await lab.cut('clients', 'n3');
    await sleep(3000);
    const unreachable = await tryPersistentConnect(n3.mqttPort, 'e-newcomer', 3000);
    await sleep(Math.max(0, cutAt + 10_000 - Date.now()));
    const healAt = Date.now();
    await lab.heal('clients', 'n3');
    await sleep(4000);
    const verdict = await finish(scene);
    const [pubA, pubHome, pubB] = scene.publishers as [typeof scene.publishers[0], typeof scene.publishers[0], typeof scene.publishers[0]];
    const moved = scene.mover.connects.find((c) => c.at > cutAt && c.port !== n3.mqttPort);
    t.diagnostic(`n3's subscriber resumed ${moved === undefined ? 'nowhere' : `${moved.at - cutAt} ms after the cut on another node (session present: ${moved.sessionPresent})`}; a new client on n3 during the cut: ${JSON.stringify(unreachable)}; n3 ready throughout: ${watch.readyThroughout(cutAt, healAt)}`);
    t.diagnostic(`longest gap between acknowledgements on n1/n2 during the cut: ${pubA.longestAckGap(cutAt, healAt)}/${pubB.longestAckGap(cutAt, healAt)} ms; n3's publisher: ${pubHome.ackedBetween(cutAt + 1000, healAt)} acknowledged during the cut, ${pubHome.ackedBetween(healAt, Date.now())} after`);
    t.diagnostic(describe(verdict));
    assert.ok(verdict.acked > 200, `traffic flowed (${verdict.acked} acknowledged)`);
    assert.deepEqual(verdict.lost.slice(0, 10), [], `acknowledged messages lost: ${describe(verdict)}`);
    assert.deepEqual(verdict.duplicatedQos2.slice(0, 10), [], `QoS 2 messages delivered twice: ${describe(verdict)}`);
    assert.ok(moved?.sessionPresent === true && moved.at - cutAt < 8000, "[MQTT-3.2.2-2] n3's persistent subscriber resumed its session on another node within 8 s");
    assert.notEqual(unreachable.outcome, 'accepted', 'nothing reaches n3 during the cut');
    assert.ok(watch.readyThroughout(cutAt, healAt), 'n3 still reaches Redis: it stays ready');
    assert.ok(pubA.longestAckGap(cutAt, healAt) < 5000 && pubB.longestAckGap(cutAt, healAt) < 5000, 'n1 and n2 keep acknowledging during the cut');
    assert.ok(pubHome.ackedBetween(healAt, Date.now()) > 0, "n3's publisher is acknowledged again after the heal");
  } finally {
    await watch.stop();
    await scene.close();
  }
});

/**
 * A persistent subscriber on n1 moves (its connection drops; MQTT.js reconnects to the next
 * address of its list, n3) right after n1 is cut from Redis; the cut heals after `healAfterMs`.
 * n3's claim asks n1 to let go, which n1 can answer only once it hears Redis again; until then (or,
 * when n1's lease has run out, until it has reloaded its sessions) the client is refused and
 * retries. The client object stays the same: its half-done QoS 2 flows are part of its session.
 * `mustMove`: the session must arrive on another node (n1 kept its lease, so it lets go as soon as
 * it hears Redis); otherwise the client may as well resume on n1 once n1 has reloaded.
 */
async function moveDuringCut(tag: string, healAfterMs: number, mustMove: boolean, t: { diagnostic(message: string): void }): Promise<void> {
  const lab = cl!.lab;
  await allReady([n1, n2, n3]);
  // The subscriber's addresses: n1, then n3, then n2.
  const scene = await startTraffic(cl!, tag, n1, [n3, n2]);
  try {
    await sleep(2000);
    const cutAt = Date.now();
    await lab.cut('n1', 'redis');
    await sleep(300);
    // The subscriber's connection to n1 breaks: it resumes elsewhere (n3 first).
    const movedAt = Date.now();
    scene.mover.client.stream.destroy();
    await sleep(Math.max(0, cutAt + healAfterMs - Date.now()));
    const healAt = Date.now();
    await lab.heal('n1', 'redis');
    await allReady([n1, n2, n3]);
    await sleep(3000);
    const verdict = await finish(scene);
    const resumed = scene.mover.connects.find((c) => c.at > movedAt);
    const lapsed = n1.count('has not confirmed a heartbeat in time') > 0;
    const ports = new Map([n1, n2, n3].map((n) => [n.mqttPort, n.nodeId]));
    t.diagnostic(`cut healed after ${healAt - cutAt} ms; n1's lease ${lapsed ? 'ran out' : 'held'}; the subscriber resumed ${resumed === undefined ? 'never' : `on ${ports.get(resumed.port) ?? '?'} ${resumed.at - cutAt} ms after the cut (session present: ${resumed.sessionPresent})`}`);
    t.diagnostic(describe(verdict));
    if (verdict.lost.length + verdict.duplicatedQos2.length > 0) t.diagnostic(evidence([n1, n2, n3], cutAt, scene.mover.connects));
    assert.ok(verdict.acked > 200, `traffic flowed (${verdict.acked} acknowledged)`);
    assert.deepEqual(verdict.lost.slice(0, 10), [], `acknowledged messages lost: ${describe(verdict)}`);
    assert.deepEqual(verdict.duplicatedQos2.slice(0, 10), [], `QoS 2 messages delivered twice: ${describe(verdict)}`);
    assert.ok(resumed !== undefined && resumed.sessionPresent, '[MQTT-3.2.2-2] the session was resumed (session present)');
    if (mustMove) assert.notEqual(resumed.port, n1.mqttPort, 'the session arrived on another node');
  } finally {
    await scene.close();
  }
}

test('a session moving away from a node cut from Redis, the cut healing within its lease (1.5 s): the move completes, nothing acknowledged is lost, no QoS 2 duplicate', { timeout: 120_000 }, async (t) => {
  await moveDuringCut('g', 1500, true, t);
});

test('a session moving away from a node cut from Redis, the cut healing after its lease ran out (5 s): the client is refused until the node has reloaded its sessions, then resumes its session there or elsewhere; nothing acknowledged is lost, no QoS 2 duplicate', { timeout: 120_000 }, async (t) => {
  await moveDuringCut('h', 5000, false, t);
});
