/**
 * What a bridge shows and how it is driven (issue 15): GET /api/bridges and /api/bridges/{name},
 * POST …/stop and …/start (messages sent while stopped wait in the bridge's session and go out on
 * start), the Prometheus series, $SYS/broker/bridges/{name}/…; and its security: the bridge works
 * when every network client must authenticate, and no network client may take a `$bridge/` client id.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, ConnectionRefusedError, type MqttClient } from '../../src/client/index.js';
import type { BridgeStatus } from '../../src/model/bridge.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { bridgeConfig, bridgeState, collect, probe, waitUntil } from '../helpers/bridges.js';

let cloud: StarlingServer;
let edge: StarlingServer;
const clients: MqttClient[] = [];

before(async () => {
  cloud = await startTestBroker();
  // Every network client needs the user name "user": the bridge's local side is not a network client.
  edge = await startTestBroker({
    http: { port: 0 },
    sys: { interval: 1 },
    authenticate: (request) => (request.username === 'user' ? 'accept' : 'not-authorized'),
    bridges: [
      bridgeConfig({
        name: 'cloud',
        url: `mqtt://user:secret@127.0.0.1:${cloud.port}`,
        clientId: 'edge-api',
        protocolVersion: 5,
        topics: [{ pattern: 'api/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: 'edge/' }],
      }),
    ],
  });
});

after(async () => {
  for (const c of clients) c.destroy();
  await edge?.close();
  await cloud?.close();
});

async function client(port: number, options: Parameters<typeof connect>[1] = {}): Promise<MqttClient> {
  const c = await connect(`mqtt://127.0.0.1:${port}`, { reconnect: false, ...options });
  clients.push(c);
  return c;
}

async function api(method: string, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:${edge.httpPort}${path}`, { method, headers: method === 'POST' ? { 'content-type': 'application/json' } : {} });
  return { status: response.status, body: await response.json() };
}

test('REST API: list, one bridge, 404; stop keeps messages in the bridge session, start sends them in order', async () => {
  await bridgeState(edge.bridges, 'cloud', 'up');
  const list = await api('GET', '/api/bridges');
  assert.equal(list.status, 200);
  const items = (list.body as { items: BridgeStatus[]; total: number }).items;
  assert.equal(items.length, 1);
  assert.equal(items[0]?.name, 'cloud');
  assert.equal(items[0]?.url, `mqtt://127.0.0.1:${cloud.port}`, 'no credentials in the URL shown');
  assert.equal(items[0]?.state, 'up');
  assert.equal(items[0]?.localClientId, '$bridge/cloud');
  assert.deepEqual((await api('GET', '/api/bridges/nope')).status, 404);
  const doc = (await api('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
  for (const path of ['/api/bridges', '/api/bridges/{name}', '/api/bridges/{name}/stop', '/api/bridges/{name}/start']) assert.ok(doc.paths[path] !== undefined, `${path} in the OpenAPI document`);
  assert.equal((await api('POST', '/api/bridges/nope/stop')).status, 404);

  const sink = await client(cloud.port);
  const got = collect(sink);
  await sink.subscribe('edge/api/#', { qos: 1 });
  const local = await client(edge.port, { username: 'user' });
  await probe(local, 'api/probe', got, 'edge/api/probe');

  const stopped = await api('POST', '/api/bridges/cloud/stop');
  assert.equal(stopped.status, 200);
  assert.equal((stopped.body as BridgeStatus).state, 'stopped');
  for (let i = 0; i < 10; i++) await local.publish('api/m', `s${i}`, { qos: 1 });
  const held = await api('GET', '/api/bridges/cloud');
  assert.equal((held.body as BridgeStatus).queued, 10, 'held in the bridge session while stopped');
  assert.equal(got.payloads('edge/api/m').length, 0);

  const started = await api('POST', '/api/bridges/cloud/start');
  assert.equal(started.status, 200);
  await bridgeState(edge.bridges, 'cloud', 'up');
  await got.count(10, 'edge/api/m');
  assert.deepEqual(got.payloads('edge/api/m'), Array.from({ length: 10 }, (_, i) => `s${i}`));
  await waitUntil(() => edge.bridges.get('cloud')?.queued === 0, 'the bridge session to be empty');
});

test('metrics and $SYS show each bridge', async () => {
  await bridgeState(edge.bridges, 'cloud', 'up');
  const text = await (await fetch(`http://127.0.0.1:${edge.httpPort}/metrics`)).text();
  assert.match(text, /starling_bridge_state\{bridge="cloud",state="up"\} 1/);
  assert.match(text, /starling_bridge_state\{bridge="cloud",state="down"\} 0/);
  assert.match(text, /starling_bridge_queued_messages\{bridge="cloud"\} 0/);
  const out = /starling_bridge_messages_total\{bridge="cloud",direction="out"\} (\d+)/.exec(text);
  assert.ok(out !== null && Number(out[1]) >= 11, text);
  assert.match(text, /starling_bridge_connects_total\{bridge="cloud"\} 2/);
  assert.match(text, /starling_bridge_dropped_total\{bridge="cloud"\} 0/);

  const watcher = await client(edge.port, { username: 'user' });
  const got = collect(watcher);
  await watcher.subscribe('$SYS/broker/bridges/cloud/#');
  await got.count(1, '$SYS/broker/bridges/cloud/messages/out');
  // Published every second (sys.interval 1), retained: the retained value may be an older state, then "up" follows.
  await waitUntil(() => got.payloads('$SYS/broker/bridges/cloud/state').at(-1) === 'up', '$SYS/broker/bridges/cloud/state "up"');
  assert.ok(got.payloads('$SYS/broker/bridges/cloud/queued').length > 0);
});

test('no network client may take a $bridge/ client id (it would take the bridge session over)', async () => {
  await assert.rejects(client(edge.port, { username: 'user', clientId: '$bridge/cloud' }), (error: unknown) => error instanceof ConnectionRefusedError);
  await bridgeState(edge.bridges, 'cloud', 'up');
});
