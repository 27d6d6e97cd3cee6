/**
 * auth.http: authentication and authorization by a real HTTP service (node:http on port 0), with
 * raw clients, MQTT.js and mosquitto_pub / mosquitto_sub. Allow and deny for CONNECT, PUBLISH and
 * SUBSCRIBE; the cache (one request per question within the TTL); the service down with each
 * onFailure policy and one log line per state change; a slow service holding only its client; the
 * order with the password and ACL files; JSON, form and GET requests; keep-alive; /metrics.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PasswordFile } from '../../src/auth/password-file.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import type { Logger } from '../../src/broker/logger.js';
import type { HttpAuthConfig } from '../../src/config/schema.js';
import type { ProtocolVersion } from '../../src/protocol/types.js';
import type { ServerOptions, StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { killAll, runProcess, startProcess } from '../helpers/child-process.js';
import { answerJson, answerStatus, closedPort, TestHttpService, type ReceivedRequest } from '../helpers/http-service.js';
import { requireProgram } from '../helpers/programs.js';
import { collectMessages, RawClient, TestClients, type ConnectFields } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const servers: StarlingServer[] = [];
const services: TestHttpService[] = [];
const raws = new Set<RawClient>();
let clients: TestClients;
let current: StarlingServer | undefined;
/** Answers held back by the service ("slow" users and topics), released by the test. */
const held: Array<() => void> = [];

/** The fields of a request, whatever its form (JSON body, form body, query string). */
function fieldsOf(request: ReceivedRequest): Record<string, unknown> {
  if (request.method === 'GET') return Object.fromEntries(request.query);
  if (String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(request.body));
  return JSON.parse(request.body) as Record<string, unknown>;
}

/**
 * The service: users alice/secret (JSON allow), bob (204), carol (allowed as "carol-renamed"),
 * ok-* (any password), mallory (401), eve (403), slow (held), anyone else ignored; a client may
 * publish under its user name (slow/… held, ignored/… ignored) and subscribe there or under public/.
 */
async function authService(): Promise<TestHttpService> {
  const service = await TestHttpService.start((request, response) => {
    const f = fieldsOf(request);
    const user = typeof f['username'] === 'string' ? f['username'] : undefined;
    const topic = typeof f['topic'] === 'string' ? f['topic'] : '';
    const later = (answer: (r: ServerResponse) => void): void => {
      held.push(() => answer(response));
    };
    if (request.path === '/auth') {
      if (user === 'alice') return answerJson(response, 200, { result: f['password'] === 'secret' ? 'allow' : 'deny' });
      if (user === 'bob') return answerStatus(response, 204);
      if (user === 'carol') return answerJson(response, 200, { result: 'allow', username: 'carol-renamed' });
      if (user?.startsWith('ok-') === true) return answerJson(response, 200, { result: 'allow' });
      if (user === 'mallory') return answerStatus(response, 401);
      if (user === 'eve') return answerStatus(response, 403);
      if (user === 'slow') return later((r) => answerJson(r, 200, { result: 'allow' }));
      return answerJson(response, 200, { result: 'ignore' });
    }
    if (request.path === '/pub') {
      if (topic.startsWith('slow/')) return later((r) => answerJson(r, 200, { result: 'allow' }));
      if (topic.startsWith('ignored/')) return answerJson(response, 200, { result: 'ignore' });
      return answerJson(response, 200, { result: user !== undefined && topic.startsWith(`${user}/`) ? 'allow' : 'deny' });
    }
    if (request.path === '/sub') return answerStatus(response, (user !== undefined && topic.startsWith(`${user}/`)) || topic.startsWith('public/') ? 204 : 403);
    return answerStatus(response, 404);
  });
  services.push(service);
  return service;
}

function httpAuth(service: TestHttpService, extra: Partial<HttpAuthConfig> = {}): HttpAuthConfig {
  return { authenticateUrl: service.url('/auth'), publishUrl: service.url('/pub'), subscribeUrl: service.url('/sub'), ...extra };
}

async function broker(options: ServerOptions): Promise<StarlingServer> {
  const server = await startTestBroker(options);
  servers.push(server);
  current = server;
  return server;
}

async function raw(server: StarlingServer, version: ProtocolVersion = 4): Promise<RawClient> {
  const client = await RawClient.connect(server.port, { version });
  raws.add(client);
  return client;
}

/** CONNACK return code (3.1.1) or reason code (5.0) for a CONNECT with these fields. */
async function connack(server: StarlingServer, fields: ConnectFields, version: ProtocolVersion = 4): Promise<number> {
  const client = await raw(server);
  const answer = await client.connectMqtt({ clientId: `c${raws.size}`, protocolVersion: version, ...fields }, 7000);
  client.destroy();
  return answer.reasonCode;
}

function login(username: string, password?: string): ConnectFields {
  return password === undefined ? { username } : { username, password: Buffer.from(password) };
}

/** Requests to `path` whose fields have this user name (and topic). */
function asked(service: TestHttpService, path: string, username: string, topic?: string): number {
  return service.to(path).filter((r) => {
    const f = fieldsOf(r);
    return f['username'] === username && (topic === undefined || f['topic'] === topic);
  }).length;
}

/** A logger that keeps warn and info lines (messages only). */
function captureLogger(lines: string[]): Logger {
  const keep = (_obj: object, msg: string): void => {
    lines.push(msg);
  };
  return { debug: () => undefined, info: keep, warn: keep, error: keep };
}

before(() => {
  clients = new TestClients(() => current?.port ?? 0);
});

after(async () => {
  for (const release of held.splice(0)) release();
  for (const client of raws) client.destroy();
  await clients.closeAll();
  await killAll();
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(services.map((s) => s.close()));
});

describe('allow and deny', () => {
  let service: TestHttpService;
  let server: StarlingServer;
  before(async () => {
    service = await authService();
    server = await broker({ auth: { http: httpAuth(service), loginBackoff: { baseDelayMs: 0 } } });
  });

  test('CONNECT: allowed (JSON "allow" or 204), denied (JSON "deny" or 401: 4 / 0x86; 403: 5 / 0x87), ignored (anonymous policy: 5 / 0x87)', async () => {
    assert.equal(await connack(server, login('alice', 'secret')), 0);
    assert.equal(await connack(server, login('alice', 'secret'), 5), 0);
    assert.equal(await connack(server, login('bob', 'anything')), 0);
    assert.equal(await connack(server, login('alice', 'wrong')), 4);
    assert.equal(await connack(server, login('alice', 'wrong'), 5), 0x86);
    assert.equal(await connack(server, login('mallory', 'x'), 5), 0x86);
    assert.equal(await connack(server, login('eve', 'x')), 5);
    assert.equal(await connack(server, login('eve', 'x'), 5), 0x87);
    assert.equal(await connack(server, login('stranger', 'x'), 5), 0x87, 'ignored by the service, no other source: anonymous, refused');
    assert.equal(await connack(server, {}, 5), 0x87);
    const request = fieldsOf(service.to('/auth').find((r) => fieldsOf(r)['username'] === 'alice')!);
    assert.deepEqual(Object.keys(request).sort(), ['action', 'address', 'clientId', 'listener', 'password', 'protocolVersion', 'username']);
    assert.equal(request['action'], 'connect');
    assert.equal(request['address'], '127.0.0.1');
    assert.equal(service.to('/auth')[0]!.headers['content-type'], 'application/json');
  });

  test('the user name the service answers replaces the CONNECT one (what publish checks see)', async () => {
    const carol = await raw(server, 5);
    assert.equal((await carol.connectMqtt({ clientId: 'carol-1', protocolVersion: 5, ...login('carol', 'x') })).reasonCode, 0);
    carol.publish('carol-renamed/t', 'x', 1);
    assert.equal((await carol.expect('puback')).reasonCode ?? 0, 0x10, 'allowed (no subscribers)');
    assert.equal(asked(service, '/pub', 'carol-renamed', 'carol-renamed/t'), 1);
  });

  test('PUBLISH: allowed and delivered; denied: PUBACK 0x87 (MQTT 5), acknowledged and dropped (3.1.1)', async () => {
    const sub = await clients.mqtt({ clientId: 'alice-sub', username: 'alice', password: 'secret' });
    await sub.subscribeAsync('alice/#', { qos: 1 });
    const got = collectMessages(sub, 1, 5000);
    const pub = await raw(server, 5);
    await pub.connectMqtt({ clientId: 'alice-pub', protocolVersion: 5, ...login('alice', 'secret') });
    pub.publish('bob/x', 'denied', 1);
    assert.equal((await pub.expect('puback')).reasonCode, 0x87);
    pub.publish('alice/x', 'allowed', 1);
    assert.equal((await pub.expect('puback')).reasonCode ?? 0, 0);
    const [message] = await got;
    assert.equal(message!.topic, 'alice/x');
    assert.equal(message!.payload.toString(), 'allowed');
    const v3 = await raw(server);
    await v3.connectMqtt({ clientId: 'alice-v3', ...login('alice', 'secret') });
    v3.publish('bob/y', 'denied', 1);
    await v3.expect('puback');
    const request = fieldsOf(service.to('/pub').find((r) => fieldsOf(r)['topic'] === 'alice/x')!);
    assert.deepEqual(request, { action: 'publish', clientId: 'alice-pub', username: 'alice', address: '127.0.0.1', listener: 'tcp', topic: 'alice/x', qos: 1, retain: false });
  });

  test('SUBSCRIBE: each filter allowed or denied (SUBACK 0x80 in 3.1.1, 0x87 in MQTT 5)', async () => {
    const v3 = await raw(server);
    await v3.connectMqtt({ clientId: 'bob-sub3', ...login('bob', 'x') });
    assert.deepEqual((await v3.subscribe([['bob/#', 1], ['alice/#', 1], ['public/news', 0]])).reasonCodes, [1, 0x80, 0]);
    const v5 = await raw(server, 5);
    await v5.connectMqtt({ clientId: 'bob-sub5', protocolVersion: 5, ...login('bob', 'x') });
    assert.deepEqual((await v5.subscribe([['alice/#', 0], ['bob/+', 2]])).reasonCodes, [0x87, 2]);
  });

  test('mosquitto_sub and mosquitto_pub with -u -P: accepted and exchange a message; a wrong password makes mosquitto_pub fail', async () => {
    requireProgram('/usr/bin/mosquitto_sub');
    const port = String(server.port);
    const sub = startProcess('/usr/bin/stdbuf', ['-oL', '/usr/bin/mosquitto_sub', '-d', '-p', port, '-u', 'alice', '-P', 'secret', '-i', 'mosq-sub', '-t', 'alice/mosq', '-C', '1', '-v']);
    await sub.line(/received SUBACK/);
    const pub = await runProcess('/usr/bin/mosquitto_pub', ['-p', port, '-u', 'alice', '-P', 'secret', '-i', 'mosq-pub', '-t', 'alice/mosq', '-m', 'hello', '-q', '1']);
    assert.equal(pub.code, 0, pub.stderr);
    await sub.line(/^alice\/mosq hello$/);
    assert.equal(await sub.exited, 0);
    const refused = await runProcess('/usr/bin/mosquitto_pub', ['-p', port, '-u', 'alice', '-P', 'nope', '-t', 'alice/mosq', '-m', 'x']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /not authori[sz]ed|bad user name or password|Connection Refused/i);
  });
});

describe('cache', () => {
  test('repeated checks within the TTL: the service sees one request per question; with cacheTtlMs 0, one per check', async () => {
    for (const cacheTtlMs of [60_000, 0]) {
      const service = await authService();
      const server = await broker({ auth: { http: httpAuth(service, { cacheTtlMs }) } });
      for (let i = 0; i < 3; i++) assert.equal(await connack(server, { clientId: 'same-client', ...login('ok-cache', 'pw') }), 0);
      const client = await raw(server);
      await client.connectMqtt({ clientId: 'same-client', ...login('ok-cache', 'pw') });
      for (let i = 0; i < 5; i++) client.publish('ok-cache/t', `m${i}`, 1);
      await client.expectMany('puback', 5);
      // The same filter twice in one SUBSCRIBE is asked once (the second waits for the first request)…
      assert.deepEqual((await client.subscribe([['ok-cache/a', 0], ['ok-cache/a', 0]])).reasonCodes, [0, 0]);
      // …and again in another SUBSCRIBE only without a cache.
      assert.deepEqual((await client.subscribe('ok-cache/a')).reasonCodes, [0]);
      const expected = cacheTtlMs > 0 ? [1, 1, 1] : [4, 5, 2];
      assert.deepEqual([asked(service, '/auth', 'ok-cache'), asked(service, '/pub', 'ok-cache', 'ok-cache/t'), asked(service, '/sub', 'ok-cache', 'ok-cache/a')], expected, `cacheTtlMs ${cacheTtlMs}`);
    }
  });

  test('another client id or password is another question (asked again)', async () => {
    const service = await authService();
    const server = await broker({ auth: { http: httpAuth(service) } });
    assert.equal(await connack(server, { clientId: 'one', ...login('ok-keys', 'a') }), 0);
    assert.equal(await connack(server, { clientId: 'two', ...login('ok-keys', 'a') }), 0);
    assert.equal(await connack(server, { clientId: 'two', ...login('ok-keys', 'b') }), 0);
    assert.equal(await connack(server, { clientId: 'two', ...login('ok-keys', 'b') }), 0);
    assert.equal(asked(service, '/auth', 'ok-keys'), 3);
  });
});

describe('the service down', () => {
  test('onFailure deny: CONNACK 3 / 0x88, PUBLISH and SUBSCRIBE denied', async () => {
    const port = await closedPort();
    const down = `http://127.0.0.1:${port}`;
    const server = await broker({ auth: { http: { authenticateUrl: `${down}/auth`, onFailure: 'deny' } } });
    assert.equal(await connack(server, login('alice', 'secret')), 3);
    assert.equal(await connack(server, login('alice', 'secret'), 5), 0x88);
    const authz = await broker({ auth: { http: { publishUrl: `${down}/pub`, subscribeUrl: `${down}/sub` } } });
    const client = await raw(authz, 5);
    await client.connectMqtt({ clientId: 'deny-policy', protocolVersion: 5 });
    client.publish('a/b', 'x', 1);
    assert.equal((await client.expect('puback')).reasonCode, 0x87);
    assert.deepEqual((await client.subscribe('a/#', 1)).reasonCodes, [0x87]);
  });

  test('onFailure allow: accepted, published, subscribed', async () => {
    const down = `http://127.0.0.1:${await closedPort()}`;
    const server = await broker({ auth: { http: { authenticateUrl: `${down}/auth`, publishUrl: `${down}/pub`, subscribeUrl: `${down}/sub`, onFailure: 'allow' } } });
    const client = await raw(server, 5);
    assert.equal((await client.connectMqtt({ clientId: 'allow-policy', protocolVersion: 5, ...login('anyone', 'x') })).reasonCode, 0);
    assert.deepEqual((await client.subscribe('a/#', 1)).reasonCodes, [1]);
    client.publish('a/b', 'x', 1);
    const packets = [await client.next(), await client.next()].map((p) => p.type).sort();
    assert.deepEqual(packets, ['puback', 'publish']);
  });

  test('onFailure ignore: the next source decides (the password file, then the anonymous policy; no other authorizer: allowed)', async () => {
    const dir = tempDir('starling-http-auth-');
    const passwd = join(dir, 'passwd');
    const file = new PasswordFile();
    file.entries.set('filed', await hashPassword('filepw', 1000));
    writeFileSync(passwd, file.serialize());
    const down = `http://127.0.0.1:${await closedPort()}`;
    const server = await broker({ auth: { passwordFile: passwd, loginBackoff: { baseDelayMs: 0 }, http: { authenticateUrl: `${down}/auth`, publishUrl: `${down}/pub`, onFailure: 'ignore' } } });
    assert.equal(await connack(server, login('filed', 'filepw')), 0);
    assert.equal(await connack(server, login('filed', 'wrong')), 4);
    assert.equal(await connack(server, login('unknown', 'x'), 5), 0x87);
    const client = await raw(server, 5);
    await client.connectMqtt({ clientId: 'ignore-policy', protocolVersion: 5, ...login('filed', 'filepw') });
    client.publish('any/topic', 'x', 1);
    assert.equal((await client.expect('puback')).reasonCode, 0x10, 'allowed (no subscribers)');
  });

  test('no answer within timeoutMs is a failure too', async () => {
    const service = await TestHttpService.start(() => undefined);
    services.push(service);
    const server = await broker({ auth: { http: { authenticateUrl: service.url('/auth'), timeoutMs: 300 } } });
    const started = Date.now();
    assert.equal(await connack(server, login('alice', 'secret'), 5), 0x88);
    assert.ok(Date.now() - started >= 250, 'waited for the timeout');
  });

  test('one log line when the service goes down and one when it is back, however many requests fail', async () => {
    let up = true;
    const service = await TestHttpService.start((_request, response) => (up ? answerJson(response, 200, { result: 'allow' }) : answerStatus(response, 503)));
    services.push(service);
    const lines: string[] = [];
    const server = await broker({ logger: captureLogger(lines), auth: { http: { authenticateUrl: service.url('/auth'), cacheTtlMs: 0 } } });
    assert.equal(await connack(server, login('a', 'x')), 0);
    up = false;
    for (let i = 0; i < 3; i++) assert.equal(await connack(server, login('a', 'x')), 3);
    up = true;
    assert.equal(await connack(server, login('a', 'x')), 0);
    assert.equal(await connack(server, login('a', 'x')), 0);
    const down = lines.filter((l) => /HTTP authentication service "auth\.authenticate" is down/.test(l));
    const back = lines.filter((l) => /HTTP authentication service "auth\.authenticate" is up again/.test(l));
    assert.equal(down.length, 1, lines.join('\n'));
    assert.match(down[0]!, /status 503.*refused with CONNACK 3/);
    assert.equal(back.length, 1, lines.join('\n'));
  });
});

describe('a slow service', () => {
  test('a CONNECT and a PUBLISH waiting for the service hold only their own client; the rest flows; order is kept', async () => {
    const service = await authService();
    const server = await broker({ auth: { http: httpAuth(service) } });
    const slow = await raw(server, 5);
    slow.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'slow-1', ...login('slow', 'x') });
    await service.waitFor(() => asked(service, '/auth', 'slow') === 1);

    const publisher = await raw(server, 5);
    await publisher.connectMqtt({ clientId: 'ok-pub', protocolVersion: 5, ...login('ok-pub', 'x') });
    const first = publisher.publish('slow/a', 'first', 1);
    await service.waitFor(() => asked(service, '/pub', 'ok-pub', 'slow/a') === 1);
    const second = publisher.publish('ok-pub/b', 'second', 1);

    // Meanwhile another client connects, subscribes, publishes and receives.
    const other = await clients.mqtt({ clientId: 'ok-other', username: 'ok-other', password: 'x' });
    await other.subscribeAsync('ok-other/#', { qos: 1 });
    const got = collectMessages(other, 3, 5000);
    for (let i = 0; i < 3; i++) await other.publishAsync('ok-other/x', `n${i}`, { qos: 1 });
    assert.deepEqual((await got).map((m) => m.payload.toString()), ['n0', 'n1', 'n2']);
    assert.equal(slow.pending, 0, 'no CONNACK yet');
    assert.equal(publisher.pending, 0, 'no PUBACK yet: the second PUBLISH waits behind the first');

    for (const release of held.splice(0)) release();
    assert.equal((await slow.expect('connack', 5000)).reasonCode, 0);
    assert.equal((await publisher.expect('puback', 5000)).packetId, first);
    assert.equal((await publisher.expect('puback', 5000)).packetId, second);
  });
});

describe('with the password and ACL files', () => {
  test('the password file decides the users it knows (no request); the service decides the others; the ACL file is asked before the service, and both must allow', async () => {
    const dir = tempDir('starling-http-auth-');
    const passwd = join(dir, 'passwd');
    const file = new PasswordFile();
    file.entries.set('filed', await hashPassword('filepw', 1000));
    writeFileSync(passwd, file.serialize());
    const acl = join(dir, 'acl');
    writeFileSync(acl, 'user filed\ntopic readwrite filed/#\ntopic readwrite shared/#\n\nuser bob\ntopic readwrite bob/#\n');
    const service = await authService();
    const server = await broker({ auth: { passwordFile: passwd, aclFile: acl, loginBackoff: { baseDelayMs: 0 }, http: httpAuth(service) } });
    assert.equal(await connack(server, login('filed', 'filepw')), 0);
    assert.equal(await connack(server, login('filed', 'wrong')), 4);
    assert.equal(asked(service, '/auth', 'filed'), 0, 'users in the password file cost no request');
    assert.equal(await connack(server, login('bob', 'any')), 0);
    assert.equal(await connack(server, login('mallory', 'x')), 4);

    const client = await raw(server, 5);
    await client.connectMqtt({ clientId: 'filed-1', protocolVersion: 5, ...login('filed', 'filepw') });
    client.publish('filed/x', 'both allow', 1);
    assert.equal((await client.expect('puback')).reasonCode, 0x10);
    client.publish('shared/x', 'the service denies', 1);
    assert.equal((await client.expect('puback')).reasonCode, 0x87);
    client.publish('other/x', 'the ACL file denies', 1);
    assert.equal((await client.expect('puback')).reasonCode, 0x87);
    assert.equal(asked(service, '/pub', 'filed', 'other/x'), 0, 'denied by the ACL file: the service is not asked');
    assert.equal(asked(service, '/pub', 'filed', 'shared/x'), 1);
  });
});

describe('request forms, connections and metrics', () => {
  test('bodyFormat form and method GET carry the same fields; headers are sent', async () => {
    const service = await authService();
    const form = await broker({ auth: { http: { authenticateUrl: service.url('/auth'), bodyFormat: 'form', headers: { 'x-api-key': 'k1' } } } });
    assert.equal(await connack(form, { clientId: 'form-1', ...login('alice', 'secret') }), 0);
    const viaForm = service.to('/auth').at(-1)!;
    assert.equal(viaForm.method, 'POST');
    assert.equal(viaForm.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(viaForm.headers['x-api-key'], 'k1');
    assert.deepEqual(fieldsOf(viaForm), { action: 'connect', clientId: 'form-1', username: 'alice', password: 'secret', address: '127.0.0.1', listener: 'tcp', protocolVersion: '4' });
    const get = await broker({ auth: { http: { authenticateUrl: service.url('/auth'), method: 'GET' } } });
    assert.equal(await connack(get, { clientId: 'get-1', ...login('alice', 'wrong') }), 4);
    const viaGet = service.to('/auth').at(-1)!;
    assert.equal(viaGet.method, 'GET');
    assert.equal(viaGet.body, '');
    assert.equal(viaGet.query.get('clientId'), 'get-1');
    assert.equal(viaGet.query.get('password'), 'wrong');
  });

  test('requests reuse one keep-alive connection', async () => {
    const service = await authService();
    const server = await broker({ auth: { http: httpAuth(service, { cacheTtlMs: 0 }) } });
    for (let i = 0; i < 5; i++) assert.equal(await connack(server, { clientId: `ka-${i}`, ...login('ok-ka', 'x') }), 0);
    assert.equal(asked(service, '/auth', 'ok-ka'), 5);
    assert.equal(service.connections, 1);
  });

  test('/metrics: requests, failures, cache hits, answers, up, latency', async () => {
    const service = await authService();
    const server = await broker({ http: { port: 0, host: '127.0.0.1', dashboard: false }, auth: { http: httpAuth(service), loginBackoff: { baseDelayMs: 0 } } });
    for (let i = 0; i < 3; i++) assert.equal(await connack(server, { clientId: 'm-1', ...login('alice', 'secret') }), 0);
    assert.equal(await connack(server, { clientId: 'm-2', ...login('alice', 'wrong') }), 4);
    const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    const sample = (name: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      assert.ok(line !== undefined, `no sample ${name}`);
      return Number(line.slice(name.length + 1));
    };
    assert.equal(sample('starling_http_auth_requests_total{endpoint="authenticate"}'), 2);
    assert.equal(sample('starling_http_auth_cache_hits_total{endpoint="authenticate"}'), 2);
    assert.equal(sample('starling_http_auth_failures_total{endpoint="authenticate"}'), 0);
    assert.equal(sample('starling_http_auth_answers_total{endpoint="authenticate",result="allow"}'), 3);
    assert.equal(sample('starling_http_auth_answers_total{endpoint="authenticate",result="deny"}'), 1);
    assert.equal(sample('starling_http_auth_up{endpoint="authenticate"}'), 1);
    assert.equal(sample('starling_http_auth_request_duration_seconds_count{endpoint="authenticate"}'), 2);
    assert.equal(sample('starling_http_auth_request_duration_seconds_bucket{le="+Inf",endpoint="authenticate"}'), 2);
    assert.match(text, /# TYPE starling_http_auth_request_duration_seconds histogram/);
    assert.ok(sample('starling_http_auth_request_duration_seconds_sum{endpoint="authenticate"}') > 0);
    assert.equal(sample('starling_http_auth_requests_total{endpoint="publish"}'), 0);
  });
});
