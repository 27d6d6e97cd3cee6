import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep } from '../helpers/cluster.js';
import { startClusterLab, type ClusterLab, type LabNode } from './cluster-lab.js';
import { MosquittoSubscriber, Publisher, Subscriber, client, connected, describe, endAll, settle, untilReceived } from './ledger.js';

let cl: ClusterLab | undefined;
let n1: LabNode, n2: LabNode, n3: LabNode;
before(async () => {
  cl = await startClusterLab();
  [n1, n2, n3] = cl.nodes as [LabNode, LabNode, LabNode];
}, { timeout: 60_000 });
after(async () => {
  endAll();
  await cl?.close();
}, { timeout: 30_000 });

test('explore: n2 cut from Redis', { timeout: 120_000 }, async (t) => {
  const lab = cl!.lab;
  const subA = new Subscriber('a-sub-n2', [n2.mqttPort, n3.mqttPort, n1.mqttPort], 'fa/#');
  const subB = new MosquittoSubscriber('a-mosq-n3', lab, 'n3', 'fa/#');
  await subA.subscribed;
  const pubs = [
    new Publisher(client([n1.mqttPort], { clientId: 'a-pub1', clean: false }), 'fa/q1/n1', 1),
    new Publisher(client([n2.mqttPort], { clientId: 'a-pub2', clean: false }), 'fa/q2/n2', 2),
    new Publisher(client([n3.mqttPort], { clientId: 'a-pub3', clean: false }), 'fa/q2/n3', 2),
  ];
  const prober = client([n1.mqttPort], { clientId: 'a-probe' });
  await connected(prober);
  await untilReceived(prober, 'fa/probe', [subA, subB]);
  await sleep(2000);
  const cutAt = Date.now();
  await lab.cut('n2', 'redis');
  for (let i = 0; i < 24; i++) {
    await sleep(500);
    t.diagnostic(`${Date.now() - cutAt} ms: n2 readyz ${await n2.readyz()} acked since cut ${pubs.map((p) => p.ackedSince(cutAt)).join('/')} sub ${subA.client.connected} deliveries ${subA.total()} ${subB.total()}`);
  }
  await lab.heal('n2', 'redis');
  const healAt = Date.now();
  for (let i = 0; i < 16; i++) {
    await sleep(500);
    t.diagnostic(`${Date.now() - healAt} ms after heal: n2 readyz ${await n2.readyz()} acked ${pubs.map((p) => p.ackedSince(healAt)).join('/')} sub ${subA.client.connected}`);
  }
  await Promise.all(pubs.map((p) => p.stop()));
  const verdict = await settle(pubs, [subA, subB], 15_000);
  t.diagnostic(describe(verdict));
  for (const n of [n1, n2, n3]) t.diagnostic(`${n.nodeId}: ${n.output().split('\n').filter((l) => /"level":(40|50)|cluster/.test(l)).slice(0, 30).join('\n')}`);
  assert.deepEqual(verdict.lost.slice(0, 10), []);
  assert.deepEqual(verdict.duplicatedQos2.slice(0, 10), []);
});
