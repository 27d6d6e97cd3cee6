/**
 * The HTTP server: /metrics (Prometheus text; values move with traffic), /healthz, /readyz, the REST
 * API (bearer token required on every route but the OpenAPI document; each route exercised), the
 * loopback-only rule without a token, and the --ws-port / --http-port / --http-host flags.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { loadConfig } from '../../src/config/config.js';
import { HttpServer } from '../../src/http/http-server.js';
import { silentLogger } from '../../src/broker/logger.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/temp-dir.js';

const TOKEN = 'test-token-52';
const WAIT_MS = 3000;

let server: StarlingServer;
let base: string;
const clients = new Set<MqttClient>();

async function connect(clientId: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.port}`, { clientId, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options });
  clients.add(client);
  return client;
}

interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON replies, checked field by field
  body: any;
  headers: Headers;
}

async function call(method: string, path: string, options: { token?: string | null; body?: unknown; contentType?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, ...(options.body === undefined ? {} : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics, 204)
  }
  return { status: response.status, body, headers: response.headers };
}

/** Value of one sample in Prometheus text, e.g. metric('starling_messages_received_total{qos="1"}'). */
async function metric(sample: string): Promise<number> {
  const text = (await call('GET', '/metrics', { token: null })).body as string;
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  assert.ok(line !== undefined, `no sample ${sample}`);
  return Number(line.slice(sample.length + 1));
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function nextMessage(client: MqttClient, topic: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message on ${topic}`)), WAIT_MS);
    client.on('message', (t, payload) => {
      if (t !== topic) return;
      clearTimeout(timer);
      resolve(payload);
    });
  });
}

describe('52 metrics and REST API', () => {
  before(async () => {
    server = await startTestBroker({ http: { port: 0, apiToken: TOKEN } });
    base = `http://127.0.0.1:${server.httpPort}`;
  });
  after(async () => {
    for (const client of clients) client.end(true);
    await server.close();
  });

  test('/healthz and /readyz answer without a token', async () => {
    assert.deepEqual((await call('GET', '/healthz', { token: null })).body, { status: 'ok' });
    assert.deepEqual((await call('GET', '/readyz', { token: null })).body, { status: 'ready' });
  });

  test('/metrics: Prometheus text whose values move as traffic flows', async () => {
    const reply = await call('GET', '/metrics', { token: null });
    assert.equal(reply.status, 200);
    assert.match(reply.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = reply.body as string;
    for (const name of [
      'starling_connections',
      'starling_connections_accepted_total',
      'starling_messages_received_total',
      'starling_messages_sent_total',
      'starling_messages_dropped_total',
      'starling_bytes_received_total',
      'starling_bytes_sent_total',
      'starling_inflight_messages',
      'starling_queued_messages',
      'starling_retained_messages',
      'starling_subscriptions',
      'starling_auth_failures_total',
      'nodejs_eventloop_lag_seconds',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exported`);
    }
    const before = {
      accepted: await metric('starling_connections_accepted_total'),
      qos1: await metric('starling_messages_received_total{qos="1"}'),
      sent1: await metric('starling_messages_sent_total{qos="1"}'),
      bytes: await metric('starling_bytes_received_total'),
      subscriptions: await metric('starling_subscriptions'),
      retained: await metric('starling_retained_messages'),
    };
    const client = await connect('metrics-client');
    await client.subscribeAsync('metrics/#', { qos: 1 });
    for (let i = 0; i < 10; i++) await client.publishAsync(`metrics/${i}`, 'x', { qos: 1, retain: i === 0 });
    await until('ten QoS 1 deliveries', async () => (await metric('starling_messages_sent_total{qos="1"}')) >= before.sent1 + 10);
    assert.equal(await metric('starling_connections_accepted_total'), before.accepted + 1);
    assert.equal(await metric('starling_messages_received_total{qos="1"}'), before.qos1 + 10);
    assert.ok((await metric('starling_bytes_received_total')) > before.bytes);
    assert.equal(await metric('starling_subscriptions'), before.subscriptions + 1);
    assert.equal(await metric('starling_retained_messages'), before.retained + 1);
    assert.ok((await metric('starling_clients_connected{listener="tcp"}')) >= 1);
  });

  test('auth failures are counted', async () => {
    const refusing = await startTestBroker({ http: { port: 0 }, authenticate: (request) => (request.username === 'bad' ? 'bad-credentials' : undefined) });
    try {
      await assert.rejects(mqtt.connectAsync(`mqtt://127.0.0.1:${refusing.port}`, { username: 'bad', password: 'x', reconnectPeriod: 0, connectTimeout: WAIT_MS }));
      const text = await (await fetch(`http://127.0.0.1:${refusing.httpPort}/metrics`)).text();
      assert.match(text, /^starling_auth_failures_total 1$/m);
    } finally {
      await refusing.close();
    }
  });

  test('every API route needs the bearer token (401 without, 401 with a wrong one); the OpenAPI document is public', async () => {
    const routes: [string, string][] = [
      ['GET', '/api/overview'],
      ['GET', '/api/clients'],
      ['GET', '/api/clients/someone'],
      ['POST', '/api/clients/someone/disconnect'],
      ['GET', '/api/subscriptions'],
      ['GET', '/api/retained'],
      ['GET', '/api/retained/a%2Fb'],
      ['DELETE', '/api/retained/a%2Fb'],
      ['POST', '/api/publish'],
    ];
    for (const [method, path] of routes) {
      const none = await call(method, path, { token: null, ...(method === 'POST' ? { body: {} } : {}) });
      assert.equal(none.status, 401, `${method} ${path} without a token`);
      assert.equal(none.body.error, 'unauthorized');
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      const wrong = await call(method, path, { token: 'nope', ...(method === 'POST' ? { body: {} } : {}) });
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
    }
    const doc = await call('GET', '/api/openapi.json', { token: null });
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.1.0');
    const documented = Object.entries(doc.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    for (const [method, path] of routes) {
      const templated = path.replace('/someone', '/{clientId}').replace('/a%2Fb', '/{topic}');
      assert.ok(documented.includes(`${method} ${templated}`), `${method} ${templated} is in the OpenAPI document`);
    }
  });

  test('GET /api/access answers without a token (never 401): token mode, whether this request is authorized, and why not', async () => {
    const none = await call('GET', '/api/access', { token: null });
    assert.equal(none.status, 200);
    assert.deepEqual(none.body, { access: 'token', authorized: false, reason: 'unauthorized', methods: ['token'] });
    assert.deepEqual((await call('GET', '/api/access', { token: 'nope' })).body, { access: 'token', authorized: false, reason: 'unauthorized', methods: ['token'] });
    assert.deepEqual((await call('GET', '/api/access')).body, { access: 'token', authorized: true, methods: ['token'], caller: { name: 'api-token', role: 'administrator', via: 'api-token' } });
    const doc = await call('GET', '/api/openapi.json', { token: null });
    assert.ok(doc.body.paths['/api/access']?.get, 'documented in the OpenAPI document');
  });

  test('the dashboard\'s Content-Security-Policy: own scripts and styles, MQTT.js\'s blob: worker, WebSockets to its own host only', async () => {
    const response = await fetch(`${base}/`);
    await response.arrayBuffer();
    assert.equal(response.status, 200);
    const host = `127.0.0.1:${server.httpPort}`;
    assert.equal(
      response.headers.get('content-security-policy'),
      `default-src 'self'; img-src 'self' data:; connect-src 'self' ws://${host} wss://${host}; worker-src blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    // A Host header that could inject into the header value is left out, not copied.
    const policy = await new Promise<string | undefined>((resolve, reject) => {
      get({ host: '127.0.0.1', port: server.httpPort, path: '/', headers: { host: 'a b;script-src *' } }, (r) => {
        r.resume();
        resolve(r.headers['content-security-policy'] as string | undefined);
      }).once('error', reject);
    });
    assert.match(policy ?? '', /connect-src 'self'; worker-src blob:/);
  });

  test('GET /api/overview', async () => {
    const { status, body } = await call('GET', '/api/overview');
    assert.equal(status, 200);
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.ok(body.uptimeSeconds >= 0);
    assert.ok(body.memory.rss > 0);
    assert.equal(typeof body.totals.clientsConnected, 'number');
    assert.equal(typeof body.counters.messagesReceived, 'number');
    assert.ok(body.listeners.some((l: { name: string }) => l.name === 'tcp'));
    assert.ok(body.listeners.some((l: { name: string; port: number }) => l.name === 'http' && l.port === server.httpPort));
  });

  test('GET /api/clients: search, connected filter, sort, paging; GET /api/clients/{id}', async () => {
    const a = await connect('api-alpha', { username: 'alice' });
    await connect('api-beta');
    await connect('api-gamma', { clean: false });
    await a.subscribeAsync(['api/one', 'api/two'], { qos: 1 });
    (await connect('api-gamma-2', { clientId: 'api-gamma', clean: false })).end(true); // takes over, then drops: an offline session
    await until('api-gamma offline', () => !server.broker.query.isConnected('api-gamma'));
    const all = await call('GET', '/api/clients?search=api-&sort=clientId&order=asc');
    assert.equal(all.status, 200);
    assert.deepEqual(
      all.body.items.map((c: { clientId: string }) => c.clientId),
      ['api-alpha', 'api-beta', 'api-gamma'],
    );
    const desc = await call('GET', '/api/clients?search=api-&sort=clientId&order=desc');
    assert.equal(desc.body.items[0].clientId, 'api-gamma');
    const bySubs = await call('GET', '/api/clients?search=api-&sort=subscriptions&order=desc');
    assert.equal(bySubs.body.items[0].clientId, 'api-alpha');
    const byUser = await call('GET', '/api/clients?search=alice');
    assert.deepEqual(byUser.body.items.map((c: { clientId: string }) => c.clientId), ['api-alpha']);
    const offline = await call('GET', '/api/clients?search=api-&connected=false');
    assert.deepEqual(offline.body.items.map((c: { clientId: string; connected: boolean }) => [c.clientId, c.connected]), [['api-gamma', false]]);
    const paged = await call('GET', '/api/clients?search=api-&sort=clientId&limit=2&page=2');
    assert.deepEqual({ total: paged.body.total, page: paged.body.page, limit: paged.body.limit, ids: paged.body.items.map((c: { clientId: string }) => c.clientId) }, { total: 3, page: 2, limit: 2, ids: ['api-gamma'] });
    assert.equal((await call('GET', '/api/clients?sort=nonsense')).status, 400);
    assert.equal((await call('GET', '/api/clients?page=0')).status, 400);
    const detail = await call('GET', '/api/clients/api-alpha');
    assert.equal(detail.status, 200);
    assert.equal(detail.body.username, 'alice');
    assert.equal(detail.body.connected, true);
    assert.equal(detail.body.listener, 'tcp');
    assert.deepEqual(detail.body.subscriptionList.map((s: { topicFilter: string }) => s.topicFilter).sort(), ['api/one', 'api/two']);
    assert.deepEqual(detail.body.inflightMessages, []);
    assert.equal(detail.body.queued, 0);
    assert.equal((await call('GET', '/api/clients/nobody')).status, 404);
  });

  test('POST /api/clients/{id}/disconnect: the client is disconnected (MQTT 5: DISCONNECT 0x98); with discardSession its session ends', async () => {
    const v5 = await connect('api-kick-v5', { protocolVersion: 5 });
    const reason = new Promise<number | undefined>((resolve) => v5.once('disconnect', (packet) => resolve(packet.reasonCode)));
    const kicked = await call('POST', '/api/clients/api-kick-v5/disconnect', { body: {} });
    assert.equal(kicked.status, 200);
    assert.equal(await reason, 0x98);
    await until('the session to go', () => !server.broker.query.isConnected('api-kick-v5'));
    const persistent = await connect('api-kick-keep', { clean: false });
    await persistent.subscribeAsync('keep/#', { qos: 1 });
    assert.equal((await call('POST', '/api/clients/api-kick-keep/disconnect', { body: {} })).status, 200);
    await until('api-kick-keep offline', () => !server.broker.query.isConnected('api-kick-keep'));
    assert.equal((await call('GET', '/api/clients/api-kick-keep')).body.connected, false, 'the session outlives the kick');
    assert.equal((await call('POST', '/api/clients/api-kick-keep/disconnect', { body: { discardSession: true } })).status, 200);
    assert.equal((await call('GET', '/api/clients/api-kick-keep')).status, 404);
    assert.equal((await call('POST', '/api/clients/nobody/disconnect', { body: {} })).status, 404);
    assert.equal((await call('POST', '/api/clients/nobody/disconnect', { body: 'x=1', contentType: 'application/x-www-form-urlencoded' })).status, 415, 'form posts are refused (no cross-site requests)');
  });

  test('GET /api/subscriptions: all, by client, by filter text', async () => {
    const client = await connect('api-subs');
    await client.subscribeAsync({ 'subs/a/+': { qos: 1 }, 'subs/b/#': { qos: 0 } });
    const mine = await call('GET', '/api/subscriptions?clientId=api-subs');
    assert.deepEqual(mine.body.items.map((s: { topicFilter: string; qos: number }) => [s.topicFilter, s.qos]), [['subs/a/+', 1], ['subs/b/#', 0]]);
    const search = await call('GET', '/api/subscriptions?search=subs/b');
    assert.deepEqual(search.body.items.map((s: { topicFilter: string }) => s.topicFilter), ['subs/b/#']);
    const all = await call('GET', '/api/subscriptions?limit=1000');
    assert.ok(all.body.total >= 2);
  });

  test('retained: list (filter), get, delete', async () => {
    const client = await connect('api-retain');
    await client.publishAsync('kept/a', 'first', { qos: 1, retain: true });
    await client.publishAsync('kept/b/c', Buffer.from([0, 1, 2, 255]), { qos: 1, retain: true });
    const list = await call('GET', `/api/retained?filter=${encodeURIComponent('kept/#')}`);
    assert.deepEqual(list.body.items.map((m: { topic: string }) => m.topic), ['kept/a', 'kept/b/c']);
    assert.equal((await call('GET', `/api/retained?filter=${encodeURIComponent('kept/+')}`)).body.total, 1);
    assert.equal((await call('GET', `/api/retained?filter=${encodeURIComponent('bad/#/x')}`)).status, 400);
    const one = await call('GET', `/api/retained/${encodeURIComponent('kept/b/c')}`);
    assert.equal(one.status, 200);
    assert.deepEqual(Buffer.from(one.body.payloadBase64, 'base64'), Buffer.from([0, 1, 2, 255]));
    assert.equal(one.body.qos, 1);
    assert.equal((await call('GET', '/api/retained/kept/a')).body.topic, 'kept/a', 'unencoded slashes work too');
    assert.equal((await call('DELETE', `/api/retained/${encodeURIComponent('kept/a')}`)).status, 204);
    assert.equal((await call('GET', `/api/retained/${encodeURIComponent('kept/a')}`)).status, 404);
    assert.equal((await call('DELETE', `/api/retained/${encodeURIComponent('kept/a')}`)).status, 404);
  });

  test('POST /api/publish reaches an MQTT subscriber (text and base64, QoS, retain); bad input is 400', async () => {
    const subscriber = await connect('api-pub-sub');
    await subscriber.subscribeAsync('from/api/#', { qos: 2 });
    const text = nextMessage(subscriber, 'from/api/text');
    const reply = await call('POST', '/api/publish', { body: { topic: 'from/api/text', payload: 'héllo', qos: 1 } });
    assert.equal(reply.status, 202);
    assert.deepEqual(reply.body, { published: 'from/api/text', bytes: 6 });
    assert.equal((await text).toString(), 'héllo');
    const binary = nextMessage(subscriber, 'from/api/bin');
    await call('POST', '/api/publish', { body: { topic: 'from/api/bin', payload: Buffer.from([9, 8, 7]).toString('base64'), encoding: 'base64', qos: 2, retain: true } });
    assert.deepEqual(await binary, Buffer.from([9, 8, 7]));
    assert.equal((await call('GET', `/api/retained/${encodeURIComponent('from/api/bin')}`)).status, 200);
    for (const body of [{}, { topic: 'a/+' }, { topic: 'a', qos: 3 }, { topic: 'a', payload: 5 }, { topic: 'a', retain: 'yes' }, { topic: 'a', encoding: 'hex' }]) {
      assert.equal((await call('POST', '/api/publish', { body })).status, 400, JSON.stringify(body));
    }
    assert.equal((await call('POST', '/api/publish', { body: '{not json' })).status, 400);
  });

  test('unknown routes are 404, wrong methods 405', async () => {
    assert.equal((await call('GET', '/api/nothing')).status, 404);
    const wrong = await call('PUT', '/api/clients');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET');
  });

  test('without a token: the API is open on loopback (loopback Host names only) and disabled elsewhere', async () => {
    const open = await startTestBroker({ http: { port: 0 } });
    try {
      const url = `http://127.0.0.1:${open.httpPort}`;
      assert.equal((await fetch(`${url}/api/overview`)).status, 200);
      // A web page reaching us through DNS rebinding sends its own Host name.
      const status = await new Promise<number | undefined>((resolve, reject) => {
        get({ host: '127.0.0.1', port: open.httpPort, path: '/api/overview', headers: { host: 'attacker.example' } }, (response) => {
          response.resume();
          resolve(response.statusCode);
        }).once('error', reject);
      });
      assert.equal(status, 403);
      const access = await new Promise<string>((resolve, reject) => {
        get({ host: '127.0.0.1', port: open.httpPort, path: '/api/access', headers: { host: 'attacker.example' } }, (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () => resolve(body));
        }).once('error', reject);
      });
      assert.deepEqual(JSON.parse(access), { access: 'open-loopback', authorized: false, reason: 'bad-host', methods: [] });
      assert.deepEqual(await (await fetch(`${url}/api/access`)).json(), { access: 'open-loopback', authorized: true, methods: [], caller: { name: 'loopback', role: 'administrator', via: 'loopback' } });
    } finally {
      await open.close();
    }
    const admin = server.broker.query;
    const exposed = new HttpServer({ host: '0.0.0.0', port: 0, admin, version: '0', logger: silentLogger, listeners: () => [], ready: () => true });
    assert.equal(exposed.apiAccess, 'disabled');
    const withToken = new HttpServer({ host: '0.0.0.0', port: 0, admin, version: '0', logger: silentLogger, listeners: () => [], ready: () => true, apiToken: 'x' });
    assert.equal(withToken.apiAccess, 'token');
  });

  test('flags and config keys: --ws-port, --http-port, --http-host, --sys-interval, --no-http', () => {
    const parsed = loadConfig(['--ws-port', '9001', '--http-port', '18084', '--http-host', '127.0.0.2', '--sys-interval', '5']);
    assert.ok(!parsed.help);
    if (parsed.help) return;
    assert.equal(parsed.config.websocket?.enabled, true);
    assert.equal(parsed.config.websocket?.port, 9001);
    assert.equal(parsed.config.websocket?.path, '/mqtt');
    assert.equal(parsed.config.http?.port, 18084);
    assert.equal(parsed.config.http?.host, '127.0.0.2');
    assert.equal(parsed.config.sys?.interval, 5);
    const defaults = loadConfig([]);
    assert.ok(!defaults.help);
    if (defaults.help) return;
    assert.equal(defaults.config.websocket, undefined, 'WebSocket is off unless asked for');
    assert.deepEqual({ host: defaults.config.http?.host, port: defaults.config.http?.port }, { host: '127.0.0.1', port: 18083 });
    const off = loadConfig(['--no-http']);
    assert.ok(!off.help && off.config.http?.enabled === false);
    assert.throws(() => loadConfig(['--ws-tls-cert', 'a.pem']), /both a certificate and a key/);
    assert.throws(() => loadConfig(['--http-port', 'x']), /--http-port/);
  });
});

describe('52 a retained message cleared through the REST API stays cleared after a restart', () => {
  test('DELETE /api/retained/{topic} goes through the store (embedded store, broker restarted)', async (t) => {
    const dataDir = tempDir('starling-52-retained-');
    const options = { store: 'embedded' as const, dataDir, http: { enabled: true, host: '127.0.0.1', port: 0, apiToken: TOKEN } };
    let broker = await startTestBroker(options);
    t.after(() => broker.close());
    const publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'api-restart-pub', reconnectPeriod: 0, connectTimeout: WAIT_MS });
    await publisher.publishAsync('restart/cleared', 'gone soon', { qos: 1, retain: true });
    await publisher.publishAsync('restart/kept', 'stays', { qos: 1, retain: true });
    await publisher.endAsync();
    const api = `http://127.0.0.1:${broker.httpPort}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await fetch(`${api}/api/retained/${encodeURIComponent('restart/cleared')}`, { method: 'DELETE', headers: auth })).status, 204);
    await broker.close();
    broker = await startTestBroker(options);
    const after = `http://127.0.0.1:${broker.httpPort}`;
    assert.equal((await fetch(`${after}/api/retained/${encodeURIComponent('restart/cleared')}`, { headers: auth })).status, 404, 'the cleared topic did not come back');
    assert.equal((await fetch(`${after}/api/retained/${encodeURIComponent('restart/kept')}`, { headers: auth })).status, 200, 'the other retained message survived');
    // And an MQTT subscriber sees only the one that was kept.
    const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'api-restart-sub', reconnectPeriod: 0, connectTimeout: WAIT_MS });
    t.after(() => subscriber.endAsync(true));
    const topics: string[] = [];
    subscriber.on('message', (topic) => topics.push(topic));
    await subscriber.subscribeAsync('restart/#', { qos: 1 });
    await subscriber.publishAsync('restart/marker', 'end', { qos: 1 });
    await until('the marker', () => topics.includes('restart/marker'));
    assert.deepEqual(topics.filter((topic) => topic !== 'restart/marker'), ['restart/kept']);
  });
});
