/**
 * `starling --workers 3` (issue 13), black-box: the real command, MQTT.js clients landing on different
 * workers (the primary hands connections out round-robin: consecutive connections go to different
 * workers, checked through the API's per-worker view), and every MQTT guarantee that could differ
 * across workers: routing, QoS 1/2 order and exactly once, retained messages, takeover (0x8E), sessions
 * resumed on another worker with their queued messages, wills and Will Delay, shared subscriptions
 * over members on every worker, and `$SYS`/metrics/API of the whole group.
 *
 * A subscription made on one worker reaches the others a little after its SUBACK (as between Redis
 * nodes), so tests that count messages first publish probes until every subscriber has one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { closeClients, collect, connect, endClient, inbox, publishAll, publishUntilReceived, waitUntil, type Connected } from '../helpers/cluster.js';
import { startGroup, type Group } from '../helpers/worker-group.js';

let group: Group;

before(async () => {
  group = await startGroup({ workers: 3, args: ['--sys-interval', '1'] });
}, { timeout: 60_000 });

after(async () => {
  await closeClients();
  await group?.stop();
});

let ids = 0;
/** A client id unique in this file. */
function id(name: string): string {
  return `${name}-${++ids}`;
}

/** Connects `n` clients one after the other; returns them with the worker each landed on. */
async function spread(n: number, name: string, options: Parameters<typeof connect>[1] = {}): Promise<(Connected & { clientId: string; worker: string })[]> {
  const out: (Connected & { clientId: string; worker: string })[] = [];
  for (let i = 0; i < n; i++) {
    const clientId = id(name);
    const connected = await connect(group.port, { clientId, ...options });
    const worker = await group.workerOf(clientId);
    assert.ok(worker !== undefined, `${clientId} is listed with its worker`);
    out.push({ ...connected, clientId, worker });
  }
  return out;
}

test('consecutive connections land on different workers; the API and /metrics count every worker\'s clients', async () => {
  const clients = await spread(6, 'spread');
  const workers = clients.map((c) => c.worker);
  for (let i = 1; i < workers.length; i++) assert.notEqual(workers[i], workers[i - 1], `connection ${i} went to another worker than connection ${i - 1} (${workers.join(' ')})`);
  assert.equal(new Set(workers).size, 3, 'all three workers hold clients');
  const view = await group.workers();
  assert.deepEqual(view.map((w) => w.worker), ['w1', 'w2', 'w3']);
  for (const w of view) {
    const here = workers.filter((x) => x === w.worker).length;
    assert.ok(w.connections >= here, `${w.worker} counts at least its ${here} clients`);
    assert.ok(w.pid > 0 && w.cpuSeconds > 0);
  }
  const overview = (await group.api('/api/overview')) as { totals: { clientsConnected: number } };
  assert.ok(overview.totals.clientsConnected >= 6, 'the overview counts the whole group');
  const text = await (await fetch(`http://127.0.0.1:${group.httpPort}/metrics`)).text();
  for (const w of ['w1', 'w2', 'w3']) assert.match(text, new RegExp(`starling_worker_connections\\{worker="${w}"\\} \\d+`));
  const listed = (await group.api('/api/clients?search=spread-&limit=100')) as { total: number; items: { clientId: string; worker: string }[] };
  assert.equal(listed.total, 6, 'the client list holds every worker\'s clients');
  assert.deepEqual(new Set(listed.items.map((c) => c.worker)), new Set(['w1', 'w2', 'w3']));
  for (const c of clients) await endClient(c.client);
});

test('a message published on any worker reaches subscribers on every worker, QoS 0/1/2 in order and (QoS 2) once', async () => {
  const subs = await spread(3, 'sub');
  for (const s of subs) await s.client.subscribeAsync('fan/#', { qos: 2 });
  const [pub] = await spread(1, 'pub');
  await publishUntilReceived(pub!.client, 'fan/probe', subs.map((s) => s.client), { qos: 1 });
  for (const qos of [0, 1, 2] as const) await publishAll(pub!.client, `fan/${qos}`, Array.from({ length: 50 }, (_, i) => `${qos}:${i}`), qos);
  for (const s of subs) {
    for (const qos of [1, 2]) {
      const got = await collect(s.client, 50, 10_000, `fan/${qos}`);
      assert.deepEqual(got.map((m) => m.payload), Array.from({ length: 50 }, (_, i) => `${qos}:${i}`), `QoS ${qos} on ${s.worker}: all, in order, once`);
    }
    const zeros = inbox(s.client).messages.filter((m) => m.topic === 'fan/0').map((m) => m.payload);
    assert.deepEqual(zeros, [...zeros].sort((a, b) => Number(a.slice(2)) - Number(b.slice(2))), 'QoS 0 in order');
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (const s of subs) assert.equal(inbox(s.client).messages.filter((m) => m.topic === 'fan/2').length, 50, 'QoS 2: no duplicate arrived later');
});

test('a retained message set on one worker is sent to a subscriber that subscribes on another', async () => {
  const [setter, reader] = await spread(2, 'ret');
  assert.notEqual(setter!.worker, reader!.worker);
  await setter!.client.publishAsync('ret/x', 'kept', { qos: 1, retain: true });
  await waitUntil(async () => ((await group.api('/api/retained?filter=ret/%23')) as { total: number }).total === 1, 5000, () => 'the retained message in the API');
  await reader!.client.subscribeAsync('ret/#', { qos: 1 });
  const [got] = await collect(reader!.client, 1, 5000, 'ret/x');
  assert.equal(got!.payload, 'kept');
  assert.equal(got!.retain, true);
});

test('the same client id connecting on another worker takes the session over: 3.1.1 closes the old connection, MQTT 5 sends it DISCONNECT 0x8E', async () => {
  for (const protocolVersion of [4, 5] as const) {
    const clientId = id(`take-v${protocolVersion}`);
    const first = await connect(group.port, { clientId, protocolVersion, clean: true });
    const firstWorker = await group.workerOf(clientId);
    const second = await connect(group.port, { clientId, protocolVersion, clean: true });
    await waitUntil(() => inbox(first.client).closed, 5000, () => 'the first connection closed');
    const secondWorker = await group.workerOf(clientId);
    assert.notEqual(secondWorker, firstWorker, 'the takeover crossed workers');
    if (protocolVersion === 5) assert.deepEqual(inbox(first.client).disconnects.map((d) => d.reasonCode), [0x8e], 'Session taken over');
    assert.equal(second.client.connected, true);
    await endClient(second.client);
  }
});

test('a persistent session resumes on another worker with the messages queued while it was away, QoS 1 and 2, in order', async () => {
  const clientId = id('roamer');
  const first = await connect(group.port, { clientId, clean: false });
  await first.client.subscribeAsync('roam/#', { qos: 2 });
  const firstWorker = await group.workerOf(clientId);
  await first.client.endAsync();
  const [pub] = await spread(1, 'roam-pub');
  await publishAll(pub!.client, 'roam/1', ['a', 'b', 'c'], 1);
  await publishAll(pub!.client, 'roam/2', ['d', 'e'], 2);
  let back = await connect(group.port, { clientId, clean: false });
  // Land the resumed session on another worker than it left (round-robin: a spare connection moves it on).
  if ((await group.workerOf(clientId)) === firstWorker) {
    await spread(1, 'spacer');
    back = await connect(group.port, { clientId, clean: false });
  }
  assert.notEqual(await group.workerOf(clientId), firstWorker, 'resumed on another worker');
  assert.equal(back.connack.sessionPresent, true);
  const got = await collect(back.client, 5, 10_000, (t) => t.startsWith('roam/'));
  assert.deepEqual(got.map((m) => `${m.topic} ${m.payload}`), ['roam/1 a', 'roam/1 b', 'roam/1 c', 'roam/2 d', 'roam/2 e']);
});

test('a will is published to subscribers on other workers when its client goes away, and a Will Delay lets a client that resumes elsewhere in time keep it unsent', async () => {
  const [watcher] = await spread(1, 'watch');
  await watcher!.client.subscribeAsync('wills/#', { qos: 1 });
  const dying = await connect(group.port, { clientId: id('dying'), will: { topic: 'wills/dying', payload: Buffer.from('gone'), qos: 1, retain: false } });
  await publishUntilReceived(dying.client, 'wills/probe', [watcher!.client], { qos: 1 });
  dying.client.stream.destroy();
  const [will] = await collect(watcher!.client, 1, 10_000, 'wills/dying');
  assert.equal(will!.payload, 'gone');

  const delayedWill = (name: string) => {
    const clientId = id(name);
    return { clientId, protocolVersion: 5 as const, clean: false, properties: { sessionExpiryInterval: 60 }, will: { topic: `wills/${name}`, payload: Buffer.from(name), qos: 1 as const, retain: false, properties: { willDelayInterval: 2 } } };
  };
  const offline = async (clientId: string): Promise<void> =>
    waitUntil(async () => ((await group.api(`/api/clients/${clientId}`)) as { connected?: boolean }).connected === false, 5000, () => `${clientId} seen offline`);
  const stays = delayedWill('stays-away');
  const comes = delayedWill('comes-back');
  const away = await connect(group.port, stays);
  const back = await connect(group.port, comes);
  const leftFrom = await group.workerOf(comes.clientId);
  away.client.stream.destroy();
  back.client.stream.destroy();
  await offline(comes.clientId);
  const resumed = await connect(group.port, { ...comes, will: undefined });
  assert.equal(resumed.connack.sessionPresent, true);
  assert.notEqual(await group.workerOf(comes.clientId), leftFrom, 'resumed on another worker');
  // The will of the client that stays away comes after its delay; by then the other's would have too.
  const [late] = await collect(watcher!.client, 1, 10_000, 'wills/stays-away');
  assert.equal(late!.payload, 'stays-away');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(inbox(watcher!.client).messages.filter((m) => m.topic === 'wills/comes-back').length, 0, 'the will of a client that came back in time is not sent');
  await resumed.client.endAsync();
});

test('a shared subscription with members on every worker gets each message once, spread over the members', async () => {
  const members = await spread(3, 'member');
  assert.equal(new Set(members.map((m) => m.worker)).size, 3, 'one member per worker');
  for (const m of members) await m.client.subscribeAsync('$share/g/jobs/#', { qos: 1 });
  const [pub] = await spread(1, 'jobs-pub');
  // Until every member has been given one probe, the other workers' members may be unknown yet.
  await waitUntil(
    async () => {
      await pub!.client.publishAsync('jobs/probe', 'p', { qos: 1 });
      return members.every((m) => inbox(m.client).messages.some((x) => x.topic === 'jobs/probe'));
    },
    10_000,
    () => 'a probe at every member',
  );
  await publishAll(pub!.client, 'jobs/work', Array.from({ length: 90 }, (_, i) => String(i)), 1);
  await waitUntil(() => members.reduce((n, m) => n + inbox(m.client).messages.filter((x) => x.topic === 'jobs/work').length, 0) >= 90, 10_000, () => 'all 90 jobs delivered');
  const per = members.map((m) => inbox(m.client).messages.filter((x) => x.topic === 'jobs/work').map((x) => Number(x.payload)));
  assert.deepEqual(per.flat().sort((a, b) => a - b), Array.from({ length: 90 }, (_, i) => i), 'each job exactly once');
  for (const [i, got] of per.entries()) assert.ok(got.length >= 10, `member on ${members[i]!.worker} got ${got.length} of 90`);
});

test('$SYS shows the whole group: clients connected on every worker, published once, seen from any worker', async () => {
  const clients = await spread(6, 'sys');
  const [watcher] = await spread(1, 'sys-watch');
  const expected = ((await group.api('/api/overview')) as { totals: { clientsConnected: number } }).totals.clientsConnected;
  assert.ok(expected >= 7);
  await watcher!.client.subscribeAsync('$SYS/broker/clients/connected', { qos: 0 });
  // More clients than any one worker holds: only the group's total can reach it.
  await waitUntil(() => inbox(watcher!.client).messages.some((m) => m.topic === '$SYS/broker/clients/connected' && Number(m.payload) >= expected), 10_000, () => `$SYS values seen: ${inbox(watcher!.client).messages.map((m) => m.payload).join(' ')}`);
  const perWorker = await group.workers();
  assert.ok(perWorker.every((w) => w.connections < expected), 'no single worker holds them all');
  for (const c of clients) await endClient(c.client);
});

/** POST `body` to the group's API (open on loopback without a token); the status and the JSON answer. */
async function post(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`http://127.0.0.1:${group.httpPort}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  return { status: response.status, json: await response.json().catch(() => undefined) };
}

/** The CONNACK return code of a 3.1.1 CONNECT (0 accepted), and the worker an accepted client landed on. */
async function attempt(options: Parameters<typeof connect>[1]): Promise<{ code: number; worker?: string }> {
  try {
    const connected = await connect(group.port, options);
    const worker = await group.workerOf(String(options?.clientId));
    await endClient(connected.client);
    return { code: 0, ...(worker === undefined ? {} : { worker }) };
  } catch (error) {
    return { code: Number((error as { code?: unknown }).code ?? -1) };
  }
}

/** Attempts `options`-made CONNECTs until `times` in a row (landing on different workers) give `code`; false after `withinMs`. */
async function consistently(make: () => Parameters<typeof connect>[1], code: number, times: number, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  let row = 0;
  while (Date.now() < until) {
    row = (await attempt(make())).code === code ? row + 1 : 0;
    if (row >= times) return true;
  }
  return false;
}

test('users and bans made at runtime through one worker hold on every worker (the hub keeps them and tells each worker)', async () => {
  const made = await post('/api/users', { username: 'fleet', password: 'Tr4ck-and-trace-91' });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  // Each worker hears of the change from the hub a moment after the API answered: within a second, every worker refuses.
  assert.ok(await consistently(() => ({ clientId: id('rt-wrong'), username: 'fleet', password: 'nope' }), 4, 6, 3000), 'a wrong password for the runtime user is refused (CONNACK 4) by every worker');
  const accepted = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const right = await attempt({ clientId: id('rt-right'), username: 'fleet', password: 'Tr4ck-and-trace-91' });
    assert.equal(right.code, 0, 'the runtime user is accepted');
    if (right.worker !== undefined) accepted.add(right.worker);
  }
  assert.ok(accepted.size >= 2, `accepted on several workers (${[...accepted].join(' ')})`);
  const ban = await post('/api/bans', { clientId: 'rt-banned', reason: 'test' });
  assert.equal(ban.status, 201, JSON.stringify(ban.json));
  assert.ok(await consistently(() => ({ clientId: 'rt-banned' }), 5, 6, 3000), '[MQTT-3.2.2-6] a banned client id gets CONNACK 5 on every worker');
});
