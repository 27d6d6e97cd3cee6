/**
 * One broker behind a bad link (issue 16, part 2): `starling` (embedded store, durability full) in
 * its own network namespace, every client in another, the link between them through nfq-impair
 * (40 ms ± 30 ms each way, 5% loss, 3% of packets held back 60 ms so later ones overtake them) and
 * cut completely every few seconds for 8 s, longer than 1.5 × every client's keep-alive (MQTT.js
 * and Paho 2 s, mosquitto_sub 5 s). Persistent QoS 2 subscribers on three client libraries
 * (MQTT.js, Paho Python, libmosquitto) and QoS 1 / QoS 2 publishers: every message whose PUBACK or
 * PUBCOMP a publisher got reaches every subscriber, and no QoS 2 message arrives twice. Then once
 * more with the broker killed (SIGKILL) during a cut and restarted on the same data directory.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CLI, probe, sleep } from '../helpers/cluster.js';
import { tempDir } from '../helpers/temp-dir.js';
import { Lab, type Impairment, type LabProcess } from './lab.js';
import { ProcessSubscriber, Publisher, Subscriber, client, connected, describe, endAll, settle, untilReceived, type Deliveries } from './ledger.js';

let lab: Lab | undefined;
let broker: LabProcess | undefined;
let mqttPort = 0;
let localPort = 0;
let link: Impairment | undefined;
const dataDir = tempDir('starling-faults-lossy-');

/** Starts the broker in its namespace (same data directory every time) and waits until it listens. */
async function startBroker(): Promise<void> {
  const l = lab!;
  broker = l.spawn('broker', process.execPath, [
    CLI, '--host', l.address('broker'), '--port', '1883', '--allow-anonymous',
    '--data-dir', dataDir, '--durability', 'full', '--log-level', 'warn', '--no-http', '--sys-interval', '0',
  ]);
  if (localPort === 0) localPort = await l.expose('broker', 'broker', 1883);
  const deadline = Date.now() + 15_000;
  while (!(await probe(localPort))) {
    if (!broker.running) throw new Error(`broker exited:\n${broker.output()}`);
    if (Date.now() > deadline) throw new Error(`broker not listening within 15 s:\n${broker.output()}`);
    await sleep(50);
  }
}

before(async () => {
  lab = await Lab.create(['broker', 'clients']);
  await startBroker();
  mqttPort = await lab.expose('clients', 'broker', 1883);
  link = await lab.impair('clients', 'broker', { delay: 40, jitter: 30, loss: 0.05, reorder: 0.03, reorderMs: 60 }, 16);
}, { timeout: 60_000 });

after(async () => {
  endAll();
  await lab?.close();
}, { timeout: 30_000 });

/** Subscribers on the three libraries and two publishers, all persistent, on topics under `base`. */
async function startTraffic(tag: string): Promise<{ publishers: Publisher[]; subscribers: Deliveries[]; js: Subscriber; paho: ProcessSubscriber; mosquitto: ProcessSubscriber; close(): Promise<void> }> {
  const l = lab!;
  const base = `lossy-${tag}/`;
  const js = new Subscriber(`${tag}-sub-mqttjs`, [mqttPort], `${base}#`);
  const paho = ProcessSubscriber.paho(`${tag}-sub-paho`, l, 'broker', `${base}#`, 2);
  const mosquitto = ProcessSubscriber.mosquitto(`${tag}-sub-mosquitto`, l, 'broker', `${base}#`);
  await js.subscribed;
  const prober = client([mqttPort], { clientId: `${tag}-probe` });
  await connected(prober);
  await untilReceived(prober, `${base}probe`, [js, paho, mosquitto], 20_000);
  prober.end(true);
  const publishers = [
    new Publisher(client([mqttPort], { clientId: `${tag}-pub-q1`, clean: false }), `${base}q1`, 1, { paceMs: 20 }),
    new Publisher(client([mqttPort], { clientId: `${tag}-pub-q2`, clean: false }), `${base}q2`, 2, { paceMs: 20 }),
  ];
  return {
    publishers,
    subscribers: [js, paho, mosquitto],
    js,
    paho,
    mosquitto,
    close: async () => {
      await Promise.all(publishers.map((p) => p.stop(0)));
      for (const c of [js.client, ...publishers.map((p) => p.client)]) c.end(true);
      await Promise.all([paho.close(), mosquitto.close()]);
    },
  };
}

test('lossy, reordering link with full cuts longer than 1.5 × keep-alive: every acknowledged QoS 1/2 message reaches the persistent subscribers of MQTT.js, Paho and mosquitto_sub; no QoS 2 duplicate', { timeout: 150_000 }, async (t) => {
  const l = lab!;
  const traffic = await startTraffic('a');
  try {
    const before = await link!.stats();
    for (let cut = 0; cut < 3; cut++) {
      await sleep(5000);
      await l.cut('clients', 'broker');
      await sleep(8000);
      await l.heal('clients', 'broker');
    }
    await sleep(5000);
    const stats = await link!.stats();
    const verdict = await (async () => {
      await Promise.all(traffic.publishers.map((p) => p.stop(20_000)));
      return settle(traffic.publishers, traffic.subscribers, 40_000);
    })();
    const reconnects = traffic.js.connects.length - 1;
    const pahoConnacks = traffic.paho.notes().filter((line) => line.startsWith('C 0')).length;
    t.diagnostic(`link: ${stats.seen - before.seen} packets, ${stats.dropped - before.dropped} dropped, ${stats.reordered - before.reordered} held back for reordering`);
    t.diagnostic(`reconnections: MQTT.js subscriber ${reconnects}, Paho ${pahoConnacks - 1}, mosquitto_sub runs ${traffic.mosquitto.starts}; publishers: ${traffic.publishers.map((p) => `${p.topic} ${p.sent} sent, ${p.acked.size} acknowledged, ${p.closes.length} reconnections`).join('; ')}`);
    t.diagnostic(describe(verdict));
    assert.ok(stats.dropped - before.dropped > 0 && stats.reordered - before.reordered > 0, 'the link really lost and reordered packets');
    assert.ok(reconnects >= 3 && pahoConnacks >= 4, `every cut broke the connections (MQTT.js reconnected ${reconnects} times, Paho ${pahoConnacks - 1})`);
    assert.ok(verdict.acked > 300, `traffic flowed (${verdict.acked} acknowledged)`);
    assert.deepEqual(verdict.lost.slice(0, 10), [], `acknowledged messages lost: ${describe(verdict)}`);
    assert.deepEqual(verdict.duplicatedQos2.slice(0, 10), [], `QoS 2 messages delivered twice: ${describe(verdict)}`);
  } finally {
    await traffic.close();
  }
});

test('the same link, with the broker killed (SIGKILL) during a cut and restarted on the same data directory: nothing acknowledged is lost, no QoS 2 duplicate', { timeout: 150_000 }, async (t) => {
  const l = lab!;
  const traffic = await startTraffic('b');
  try {
    await sleep(5000);
    await l.cut('clients', 'broker');
    await sleep(2000);
    const ackedAtKill = traffic.publishers.map((p) => p.acked.size);
    await broker!.kill('SIGKILL');
    await startBroker();
    await sleep(6000);
    await l.heal('clients', 'broker');
    await sleep(8000);
    await Promise.all(traffic.publishers.map((p) => p.stop(20_000)));
    const verdict = await settle(traffic.publishers, traffic.subscribers, 40_000);
    t.diagnostic(`acknowledged before the kill: ${ackedAtKill.join('/')}; in all: ${traffic.publishers.map((p) => p.acked.size).join('/')}`);
    t.diagnostic(describe(verdict));
    assert.ok(ackedAtKill.every((n) => n > 20), 'both publishers had acknowledgements before the kill');
    assert.ok(traffic.publishers.every((p, i) => p.acked.size > ackedAtKill[i]! + 20), 'both publishers were acknowledged again after the restart');
    assert.deepEqual(verdict.lost.slice(0, 10), [], `acknowledged messages lost: ${describe(verdict)}`);
    assert.deepEqual(verdict.duplicatedQos2.slice(0, 10), [], `QoS 2 messages delivered twice: ${describe(verdict)}`);
  } finally {
    await traffic.close();
  }
});
