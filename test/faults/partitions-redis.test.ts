/**
 * Cluster partitions on the Redis side (issue 16), bounded: three `starling` nodes and a real
 * redis-server, each in its own network namespace (./lab.ts), QoS 1/2 traffic between persistent
 * clients on different nodes (MQTT.js and Paho), then one fault per test:
 *
 * - a node cut from Redis, not from its clients, long enough to be adopted (14 s);
 * - a node cut from Redis for less than the failure timeout (4.8 s): its lease runs out, nobody adopts it;
 * - Redis cut from every node, then back;
 * - a node whose link to Redis is slow and lossy, not down.
 *
 * Checked from outside, every time: no acknowledged message lost for any persistent subscriber, no
 * QoS 2 message delivered twice (apart from the documented limit, counted separately), the healthy
 * nodes' clients keep being served, and what the cut-off node does: not ready, refuses persistent
 * sessions, acknowledges nothing, until Redis answers again (docs/clustering.md, "Partitions").
 * bench/partitions.ts runs the same scenarios for longer, with random durations.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep } from '../helpers/cluster.js';
import { startClusterLab, type ClusterLab, type LabNode } from './cluster-lab.js';
import { describe as describeVerdict, endAll, type Verdict } from './ledger.js';
import { ReadyWatch, adoptedBy, allReady, evidence, finish, startTraffic, tryPersistentConnect } from './partition-scenarios.js';

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

/** The invariants of every scenario. */
function assertVerdict(verdict: Verdict, what: string): void {
  assert.ok(verdict.acked > 200, `${what}: traffic flowed (${verdict.acked} acknowledged)`);
  assert.deepEqual(verdict.lost.slice(0, 10), [], `${what}: acknowledged messages lost: ${describeVerdict(verdict)}`);
  assert.deepEqual(verdict.duplicatedQos2.slice(0, 10), [], `${what}: QoS 2 messages delivered twice: ${describeVerdict(verdict)}`);
}

test('a node cut from Redis but not from its clients, for longer than the failure timeout: not ready, refuses persistent sessions and acknowledges nothing; another node adopts it; after the heal it is fenced and rejoins; nothing acknowledged is lost', { timeout: 150_000 }, async (t) => {
  const lab = cl!.lab;
  const scene = await startTraffic(cl!, 'a', n2, [n1, n3]);
  const watch = new ReadyWatch(n2);
  try {
    await sleep(2000);
    const cutAt = Date.now();
    await lab.cut('n2', 'redis');
    await sleep(6500);
    // The lease (4 s after the last confirmed heartbeat) has run out by now.
    const refused = await tryPersistentConnect(n2.mqttPort, 'a-newcomer');
    await sleep(Math.max(0, cutAt + 14_000 - Date.now()));
    const healAt = Date.now();
    await lab.heal('n2', 'redis');
    await allReady([n1, n2, n3]);
    await sleep(3000);
    const verdict = await finish(scene);
    const readyAt = watch.firstReady(healAt);
    const [pubA, pubHome, pubB] = scene.publishers as [typeof scene.publishers[0], typeof scene.publishers[0], typeof scene.publishers[0]];
    const notReadyAt = watch.firstNotReady(cutAt);
    const moved = scene.mover.connects.find((c) => c.at > cutAt && c.at < healAt && c.port !== n2.mqttPort);
    t.diagnostic(`n2 not ready ${notReadyAt === undefined ? 'never' : `${notReadyAt - cutAt} ms`} after the cut, ready ${readyAt === undefined ? '?' : `${readyAt - healAt} ms`} after the heal; adopted by ${adoptedBy([n1, n3], 'n2', cutAt) ?? 'nobody'}`);
    t.diagnostic(`persistent CONNECT to n2 while cut off: ${JSON.stringify(refused)}; the subscriber of n2 resumed ${moved === undefined ? 'nowhere' : `on port ${moved.port} ${moved.at - cutAt} ms after the cut (session present: ${moved.sessionPresent})`}`);
    t.diagnostic(`longest gap between acknowledgements on the healthy nodes during the cut: ${Math.max(pubA.longestAckGap(cutAt, healAt), pubB.longestAckGap(cutAt, healAt))} ms; n2's publisher: ${pubHome.ackedBetween(cutAt + 1000, healAt)} acknowledged while cut off, ${pubHome.ackedBetween(healAt, Date.now())} after`);
    t.diagnostic(describeVerdict(verdict));
    if (verdict.lost.length + verdict.duplicatedQos2.length > 0) t.diagnostic(evidence([n1, n2, n3], cutAt, scene.mover.connects));

    assertVerdict(verdict, 'n2 cut from Redis');
    assert.ok(notReadyAt !== undefined && notReadyAt - cutAt < 6500, `n2 reports not ready within 6.5 s of the cut (${notReadyAt === undefined ? 'never' : notReadyAt - cutAt} ms)`);
    assert.ok(watch.notReadyThroughout(cutAt + 6500, healAt), 'n2 stays not ready until the heal');
    assert.equal(refused.outcome, 'refused', `a new persistent session on n2 is refused while it is cut off (${JSON.stringify(refused)})`);
    assert.equal(refused.returnCode, 3, '[MQTT-3.2.2-6] CONNACK 3: Server unavailable');
    assert.equal(pubHome.ackedBetween(cutAt + 1000, healAt), 0, 'n2 acknowledges no QoS 2 message while cut off');
    assert.ok(pubHome.ackedBetween(healAt, Date.now()) > 0, 'n2 acknowledges again after the heal');
    assert.ok(pubA.longestAckGap(cutAt, healAt) < 5000 && pubB.longestAckGap(cutAt, healAt) < 5000, 'the healthy nodes keep acknowledging during the cut');
    assert.ok(adoptedBy([n1, n3], 'n2', cutAt) !== undefined, 'a healthy node adopted n2');
    assert.ok(moved?.sessionPresent === true, "n2's persistent subscriber resumed its session on a healthy node before the heal");
    assert.ok(n2.count('declared dead while cut off') > 0, 'n2 found itself fenced after the heal');
  } finally {
    await watch.stop();
    await scene.close();
  }
});

test('a node cut from Redis for less than the failure timeout: its lease runs out (not ready, clients dropped), nobody adopts it, it reloads its sessions from Redis when the link heals; nothing acknowledged is lost', { timeout: 120_000 }, async (t) => {
  const lab = cl!.lab;
  await allReady([n1, n2, n3]);
  const scene = await startTraffic(cl!, 'b', n2, [n3, n1]);
  const watch = new ReadyWatch(n2);
  try {
    await sleep(2000);
    const cutAt = Date.now();
    await lab.cut('n2', 'redis');
    await sleep(4800);
    const healAt = Date.now();
    await lab.heal('n2', 'redis');
    await allReady([n1, n2, n3]);
    await sleep(3000);
    const verdict = await finish(scene);
    const adopter = adoptedBy([n1, n3], 'n2', cutAt);
    const reloaded = n2.count('sessions this node still owns reloaded from Redis');
    t.diagnostic(`n2 not ready ${(watch.firstNotReady(cutAt) ?? NaN) - cutAt} ms after the cut, ready ${(watch.firstReady(healAt) ?? NaN) - healAt} ms after the heal; ${adopter === undefined ? `not adopted; reloaded its sessions ${reloaded} time(s)` : `adopted by ${adopter} (the heal came late)`}`);
    t.diagnostic(describeVerdict(verdict));
    assertVerdict(verdict, 'n2 cut from Redis for 4.8 s');
    assert.ok(watch.firstNotReady(cutAt) !== undefined, 'n2 reported not ready during the cut');
    // Adoption needs the heartbeat key gone for 3 s more; on a loaded machine the heal may still lose that race.
    if (adopter === undefined) assert.ok(reloaded > 0, 'n2 reloaded the sessions it still owns');
    else assert.ok(n2.count('declared dead while cut off') > 0, 'adopted: n2 fenced itself');
  } finally {
    await watch.stop();
    await scene.close();
  }
});

test('Redis cut from every node and back: every node not ready and acknowledging nothing that needs Redis, all ready again after the heal; nothing acknowledged is lost', { timeout: 120_000 }, async (t) => {
  const lab = cl!.lab;
  await allReady([n1, n2, n3]);
  const scene = await startTraffic(cl!, 'c', n1, [n2, n3]);
  const watches = [n1, n2, n3].map((n) => new ReadyWatch(n));
  try {
    await sleep(2000);
    const cutAt = Date.now();
    await lab.isolate('redis');
    await sleep(10_000);
    const healAt = Date.now();
    await lab.healAll();
    await allReady([n1, n2, n3]);
    await sleep(3000);
    const verdict = await finish(scene);
    const acksWhileDown = scene.publishers.map((p) => p.ackedBetween(cutAt + 6500, healAt));
    t.diagnostic(`not ready after ${watches.map((w) => `${w.node.nodeId} ${(w.firstNotReady(cutAt) ?? NaN) - cutAt} ms`).join(', ')}; ready again ${watches.map((w) => `${w.node.nodeId} ${(w.firstReady(healAt) ?? NaN) - healAt} ms`).join(', ')} after the heal`);
    t.diagnostic(`acknowledged while Redis was away (from 6.5 s after the cut): ${acksWhileDown.join('/')}; adoptions: ${[n1, n2, n3].map((n) => adoptedBy([n1, n2, n3], n.nodeId, cutAt) ?? '-').join('/')}`);
    t.diagnostic(describeVerdict(verdict));
    assertVerdict(verdict, 'Redis cut from every node');
    for (const w of watches) assert.ok(w.notReadyThroughout(cutAt + 6500, healAt), `${w.node.nodeId} not ready while Redis is away`);
    assert.deepEqual(acksWhileDown, [0, 0, 0], 'no QoS 1/2 message is acknowledged while Redis is away');
    for (const p of scene.publishers) assert.ok(p.ackedBetween(healAt, Date.now()) > 0, `${p.topic}: acknowledged again after the heal`);
  } finally {
    await Promise.all(watches.map((w) => w.stop()));
    await scene.close();
  }
});

test('a node whose link to Redis is slow and lossy (100 ms ± 50 ms each way, 5% loss, reordering): it keeps serving, slower; nothing acknowledged is lost', { timeout: 120_000 }, async (t) => {
  const lab = cl!.lab;
  await allReady([n1, n2, n3]);
  const scene = await startTraffic(cl!, 'd', n2, [n1, n3]);
  const watch = new ReadyWatch(n2);
  try {
    await sleep(1000);
    const from = Date.now();
    const link = await lab.impair('n2', 'redis', { delay: 100, jitter: 50, loss: 0.05, reorder: 0.02, reorderMs: 60 });
    await sleep(15_000);
    const stats = await link.remove();
    const to = Date.now();
    await allReady([n1, n2, n3]);
    await sleep(2000);
    const verdict = await finish(scene);
    const home = scene.publishers[1]!;
    const lapsed = n2.count('has not confirmed a heartbeat in time');
    t.diagnostic(`link n2-redis: ${stats.seen} packets, ${stats.dropped} dropped, ${stats.reordered} held back; n2 ${watch.readyThroughout(from, to) ? 'ready throughout' : `not ready at times (lease lost ${lapsed} time(s))`}; its QoS 2 publisher: ${home.ackedBetween(from, to)} acknowledged during the slow link`);
    t.diagnostic(describeVerdict(verdict));
    assertVerdict(verdict, 'slow link to Redis');
    assert.ok(stats.dropped > 0 && stats.delayed > 0, 'the link was really impaired');
    assert.ok(home.ackedBetween(from, to) > 0, 'n2 keeps acknowledging over the slow link');
  } finally {
    await watch.stop();
    await scene.close();
  }
});
