/**
 * `starling --workers 3` when processes die (issue 13), black-box: SIGKILL of the worker holding a
 * persistent subscriber, and of the publisher's worker, under continuous QoS 1 traffic (every
 * acknowledged message reaches the subscriber); SIGKILL of the whole group and a restart on the same
 * data directory (nothing acknowledged is lost); limits that hold for the group, not per worker; and
 * a worker that cannot start (its port taken) failing the group's start with the reason.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { runProcess, STARLING_CLI } from '../helpers/child-process.js';
import { closeClients, connect, inbox, publishAll, publishUntilReceived, waitUntil } from '../helpers/cluster.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startGroup, type Group } from '../helpers/worker-group.js';

const groups: Group[] = [];
after(async () => {
  await closeClients();
  for (const g of groups) await g.stop();
});

async function group(...args: Parameters<typeof startGroup>): Promise<Group> {
  const started = await startGroup(...args);
  groups.push(started);
  return started;
}

/** Publishes QoS 1 on `topic` without pause until `stop()`, reconnecting after a lost connection; returns the payloads acknowledged. */
function publishing(port: number, clientId: string, topic: string): { acked: string[]; stop: () => Promise<void> } {
  const acked: string[] = [];
  let running = true;
  const loop = (async () => {
    let n = 0;
    while (running) {
      let client: MqttClient;
      try {
        client = (await connect(port, { clientId, clean: true })).client;
      } catch {
        continue;
      }
      const closed = new Promise<'closed'>((resolve) => client.once('close', () => resolve('closed')));
      while (running && client.connected) {
        const payload = String(n++);
        // A connection lost before the PUBACK: this one was not acknowledged (MQTT.js would keep it waiting).
        const outcome = await Promise.race([client.publishAsync(topic, payload, { qos: 1 }).then(() => 'acked' as const, () => 'failed' as const), closed]);
        if (outcome !== 'acked') break;
        acked.push(payload);
      }
      client.end(true);
    }
  })();
  return {
    acked,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** Connects a persistent subscriber, resuming (and reconnecting after a loss) until `stop()`; returns every payload it got on `topic`. */
function subscribing(port: number, clientId: string, topic: string): { got: () => string[]; stop: () => void; ready: Promise<MqttClient> } {
  const clients: MqttClient[] = [];
  let running = true;
  let first: (client: MqttClient) => void = () => {};
  const ready = new Promise<MqttClient>((resolve) => (first = resolve));
  void (async () => {
    while (running) {
      let client: MqttClient;
      try {
        client = (await connect(port, { clientId, clean: false })).client;
      } catch {
        continue;
      }
      if (!running) {
        client.end(true);
        break;
      }
      clients.push(client);
      if (clients.length === 1) {
        await client.subscribeAsync(topic, { qos: 1 });
        first(client);
      }
      await new Promise<void>((resolve) => client.once('close', () => resolve()));
    }
  })();
  return {
    ready,
    got: () => clients.flatMap((c) => inbox(c).messages.filter((m) => m.topic === topic).map((m) => m.payload)),
    stop: () => {
      running = false;
      for (const c of clients) c.end(true);
    },
  };
}

for (const victim of ['subscriber', 'publisher'] as const) {
  test(`SIGKILL of the ${victim}'s worker under continuous QoS 1 traffic: every acknowledged message reaches the persistent subscriber`, { timeout: 90_000 }, async (t) => {
    const g = await group({ workers: 3 });
    const topic = `flow/${victim}`;
    const sub = subscribing(g.port, `keeper-${victim}`, topic);
    t.after(() => sub.stop());
    const subscriber = await sub.ready;
    const pub = publishing(g.port, `feeder-${victim}`, topic);
    t.after(() => pub.stop());
    await waitUntil(() => pub.acked.length >= 200 && sub.got().length > 0, 20_000, () => `${pub.acked.length} acknowledged, ${sub.got().length} received`);
    const worker = victim === 'subscriber' ? await g.workerOf(`keeper-${victim}`) : await g.workerOf(`feeder-${victim}`);
    assert.ok(worker !== undefined);
    assert.ok(subscriber.connected);
    await g.killWorker(worker);
    const afterKill = pub.acked.length;
    await waitUntil(() => pub.acked.length >= afterKill + 300, 30_000, () => `${pub.acked.length - afterKill} acknowledged since the kill`);
    await pub.stop();
    const acked = [...pub.acked];
    await waitUntil(
      () => {
        const got = new Set(sub.got());
        return acked.every((p) => got.has(p));
      },
      30_000,
      () => `missing ${acked.filter((p) => !new Set(sub.got()).has(p)).length} of ${acked.length} acknowledged, e.g. ${acked.filter((p) => !new Set(sub.got()).has(p)).slice(0, 10).join(',')}`,
    );
  });
}

test('SIGKILL of the whole group, then a restart on the same data directory: every acknowledged QoS 1 and 2 message reaches the persistent subscriber', { timeout: 90_000 }, async () => {
  const first = await group({ workers: 3 });
  const subscriber = await connect(first.port, { clientId: 'survivor', clean: false });
  await subscriber.client.subscribeAsync('crash/#', { qos: 2 });
  const publisher = await connect(first.port, { clientId: 'crash-pub' });
  await publishUntilReceived(publisher.client, 'crash/probe', [subscriber.client], { qos: 1 });
  subscriber.client.end(true);
  await waitUntil(async () => ((await first.api('/api/clients/survivor')) as { connected?: boolean }).connected === false, 5000, () => 'the subscriber seen offline');
  await publishAll(publisher.client, 'crash/1', Array.from({ length: 100 }, (_, i) => `q1-${i}`), 1);
  await publishAll(publisher.client, 'crash/2', Array.from({ length: 100 }, (_, i) => `q2-${i}`), 2);
  publisher.client.end(true);
  await first.killAll();
  const second = await group({ workers: 3, dataDir: first.dataDir }, { port: first.port, httpPort: first.httpPort });
  const back = await connect(second.port, { clientId: 'survivor', clean: false });
  assert.equal(back.connack.sessionPresent, true);
  await waitUntil(() => inbox(back.client).messages.filter((m) => m.topic.startsWith('crash/') && m.topic !== 'crash/probe').length >= 200, 20_000, () => `${inbox(back.client).messages.length} messages after the restart`);
  const got = inbox(back.client).messages;
  assert.deepEqual(got.filter((m) => m.topic === 'crash/1').map((m) => m.payload).filter((p, i, all) => all.indexOf(p) === i), Array.from({ length: 100 }, (_, i) => `q1-${i}`), 'QoS 1: every one, in order');
  assert.deepEqual(got.filter((m) => m.topic === 'crash/2').map((m) => m.payload), Array.from({ length: 100 }, (_, i) => `q2-${i}`), 'QoS 2: every one, once, in order');
});

test('maxConnections holds for the whole group: the connection beyond it is refused, whichever worker it lands on', { timeout: 60_000 }, async () => {
  const g = await group({ workers: 3, env: { STARLING_LIMITS__MAX_CONNECTIONS: '4' } });
  const kept: string[] = [];
  for (let i = 0; i < 4; i++) {
    await connect(g.port, { clientId: `limit-${i}` });
    kept.push((await g.workerOf(`limit-${i}`))!);
  }
  assert.equal(new Set(kept).size, 3, 'the four clients are on all three workers');
  await waitUntil(async () => ((await g.api('/api/overview')) as { totals: { clientsConnected: number } }).totals.clientsConnected === 4, 5000, () => 'four clients counted');
  for (const protocolVersion of [4, 5] as const) {
    for (let i = 0; i < 3; i++) {
      // Three attempts: one lands on each worker (round-robin).
      await assert.rejects(connect(g.port, { clientId: `over-${protocolVersion}-${i}`, protocolVersion }), (error: Error & { code?: number }) => {
        assert.equal(error.code, protocolVersion === 5 ? 0x89 : 3, `refused as busy (${error.message})`);
        return true;
      });
    }
  }
});

test('a worker that cannot start (its port is taken) stops the group\'s start, which says why and exits with an error', { timeout: 60_000 }, async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as AddressInfo).port;
  const run = await runProcess(process.execPath, [STARLING_CLI, '--workers', '2', '--host', '127.0.0.1', '--port', String(port), '--no-http', '--data-dir', tempDir(), '--log-format', 'json'], { timeoutMs: 30_000 });
  assert.notEqual(run.code, 0);
  const output = run.stdout + run.stderr;
  assert.match(output, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`), 'the worker names the port');
  assert.match(output, /worker w\d exited during start/, 'the primary says which worker failed');
});

test('SIGKILL of a worker: the wills of the clients it had are published once it is back, to subscribers on the other workers', { timeout: 60_000 }, async () => {
  const g = await group({ workers: 3 });
  const watcher = await connect(g.port, { clientId: 'will-watcher' });
  await watcher.client.subscribeAsync('lost/#', { qos: 1 });
  const doomed = await connect(g.port, { clientId: 'doomed', will: { topic: 'lost/doomed', payload: Buffer.from('worker died'), qos: 1, retain: false } });
  const worker = await g.workerOf('doomed');
  assert.ok(worker !== undefined && worker !== (await g.workerOf('will-watcher')), 'the watcher is on another worker');
  await publishUntilReceived(doomed.client, 'lost/probe', [watcher.client], { qos: 1 });
  await g.killWorker(worker);
  await waitUntil(() => inbox(watcher.client).messages.some((m) => m.topic === 'lost/doomed'), 15_000, () => 'the will of the client of the killed worker');
  assert.deepEqual(inbox(watcher.client).messages.filter((m) => m.topic === 'lost/doomed').map((m) => m.payload), ['worker died'], 'published once');
});
