/**
 * Webhooks against a real HTTP receiver (node:http on port 0) with real clients (MQTT.js,
 * mosquitto_pub): events batched and in order, wills, retries after a 500 with back-off, drops
 * counted when the queue is full while message delivery goes on, HMAC signatures, payload encoding
 * and size cap, the last send at shutdown, /metrics, bad configuration refused naming the key, and
 * examples/http-auth-and-webhooks.jsonc run by the `starling` command.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Logger } from '../../src/broker/logger.js';
import type { WebhookConfig } from '../../src/config/schema.js';
import type { ServerOptions, StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { killAll, runProcess, startProcess, STARLING_CLI } from '../helpers/child-process.js';
import { answerJson, answerStatus, TestHttpService, type Handler, type ReceivedRequest } from '../helpers/http-service.js';
import { requireProgram } from '../helpers/programs.js';
import { collectMessages, RawClient, TestClients } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '../..');
const servers = new Set<StarlingServer>();
const services: TestHttpService[] = [];
const raws = new Set<RawClient>();
let current: StarlingServer | undefined;
const clients = new TestClients(() => current?.port ?? 0);

/** One event as the receiver reads it. */
interface Event {
  seq: number;
  event: string;
  timestamp: number;
  clientId: string | null;
  username: string | null;
  [field: string]: unknown;
}

/** A request body: the webhook's name, the batch number and its events. */
interface Batch {
  webhook: string;
  batch: number;
  events: Event[];
}

function batchOf(request: ReceivedRequest): Batch {
  return JSON.parse(request.body) as Batch;
}

async function receiver(handler?: Handler): Promise<TestHttpService> {
  const service = await TestHttpService.start(handler);
  services.push(service);
  return service;
}

/** Every event of the requests the receiver got (retries included), in arrival order. */
function events(service: TestHttpService): Event[] {
  return service.requests.flatMap((r) => batchOf(r).events);
}

/** A webhook to `service`: every event (sensors/# messages) unless `extra` says otherwise. */
function webhook(service: TestHttpService, extra: Partial<WebhookConfig> = {}): WebhookConfig {
  const events = extra.events ?? ['client.connected', 'client.disconnected', 'client.subscribed', 'client.unsubscribed', 'message.published'];
  return { name: 'test', url: service.url('/hook'), events, ...(events.includes('message.published') ? { topics: ['sensors/#'] } : {}), ...extra };
}

async function broker(options: ServerOptions): Promise<StarlingServer> {
  const server = await startTestBroker(options);
  servers.add(server);
  current = server;
  return server;
}

/** Value of one sample of the server's /metrics. */
async function metric(server: StarlingServer, sample: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  assert.ok(line !== undefined, `no sample ${sample} in:\n${text.split('\n').filter((l) => l.includes('webhook')).join('\n')}`);
  return Number(line.slice(sample.length + 1));
}

/**
 * Resolves once a sample of /metrics has `value`. A counter moves when the broker has read the
 * receiver's answer, a moment after the receiver saw the request: there is no event to await.
 */
async function metricReaches(server: StarlingServer, sample: string, value: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await metric(server, sample);
    if (now === value) return;
    if (Date.now() > deadline) assert.fail(`${sample} is ${now}, not ${value}, after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const HTTP = { port: 0, host: '127.0.0.1', dashboard: false };

after(async () => {
  for (const client of raws) client.destroy();
  await clients.closeAll();
  await killAll();
  await Promise.all([...servers].map((s) => s.close()));
  await Promise.all(services.map((s) => s.close()));
});

describe('events', () => {
  test('client and message events arrive batched (at most batch.maxEvents per request) and in order, seq counting up by one', async () => {
    const service = await receiver();
    const server = await broker({ webhooks: [webhook(service, { batch: { maxEvents: 4, maxWaitMs: 50 } })] });
    const client = await clients.mqtt({ clientId: 'wh-1', username: 'u1', protocolVersion: 5 });
    await client.subscribeAsync('sensors/#', { qos: 1 });
    for (let i = 0; i < 6; i++) await client.publishAsync('sensors/t', `m${i}`, { qos: 1 });
    await client.publishAsync('other/x', 'not matched', { qos: 1 });
    await client.unsubscribeAsync('sensors/#');
    await client.endAsync();
    await service.waitFor(() => events(service).some((e) => e.event === 'client.disconnected'), 5000, 'client.disconnected event');
    const got = events(service);
    assert.deepEqual(
      got.map((e) => e.event),
      ['client.connected', 'client.subscribed', ...Array<string>(6).fill('message.published'), 'client.unsubscribed', 'client.disconnected'],
    );
    assert.deepEqual(
      got.map((e) => e.seq),
      got.map((_e, i) => i + 1),
    );
    assert.ok(service.requests.length >= 3, `batched: ${service.requests.length} requests`);
    for (const request of service.requests) {
      assert.ok(batchOf(request).events.length <= 4);
      assert.equal(request.headers['content-type'], 'application/json');
      assert.equal(request.headers['x-starling-attempt'], '1');
      assert.equal(batchOf(request).webhook, 'test');
    }
    assert.deepEqual(
      service.requests.map((r) => batchOf(r).batch),
      service.requests.map((_r, i) => i + 1),
    );
    const [connected, subscribed] = got;
    assert.deepEqual({ ...connected, timestamp: 0 }, { seq: 1, event: 'client.connected', timestamp: 0, clientId: 'wh-1', username: 'u1', address: '127.0.0.1', listener: 'tcp' });
    assert.deepEqual({ ...subscribed, timestamp: 0 }, { seq: 2, event: 'client.subscribed', timestamp: 0, clientId: 'wh-1', username: 'u1', address: '127.0.0.1', listener: 'tcp', topic: 'sensors/#', qos: 1 });
    const published = got.filter((e) => e.event === 'message.published');
    assert.deepEqual(
      published.map((e) => e.payload),
      ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'],
    );
    assert.deepEqual({ ...published[0], timestamp: 0 }, {
      seq: 3,
      event: 'message.published',
      timestamp: 0,
      clientId: 'wh-1',
      username: 'u1',
      topic: 'sensors/t',
      qos: 1,
      retain: false,
      payload: 'm0',
      payloadEncoding: 'utf8',
      payloadSize: 2,
      payloadTruncated: false,
    });
    assert.equal(got.at(-1)!['reason'], 'client-disconnect');
    assert.equal(got.at(-2)!['topic'], 'sensors/#');
    assert.ok(Math.abs(connected!.timestamp - Date.now()) < 60_000);
    assert.equal(server.broker.stats.messagesReceived, 7);
  });

  test('a will is a published message (clientId of its client, no user name); mosquitto_pub publishes are seen too', async () => {
    const service = await receiver();
    const server = await broker({ webhooks: [webhook(service, { events: ['message.published', 'client.disconnected'], batch: { maxEvents: 10, maxWaitMs: 20 } })] });
    const doomed = await RawClient.connect(server.port);
    raws.add(doomed);
    await doomed.connectMqtt({ clientId: 'doomed', username: 'd', will: { topic: 'sensors/will', payload: Buffer.from('gone'), qos: 0, retain: false } });
    doomed.destroy();
    await service.waitFor(() => events(service).some((e) => e.topic === 'sensors/will'), 5000, 'the will');
    const will = events(service).find((e) => e.topic === 'sensors/will')!;
    assert.equal(will.clientId, 'doomed');
    assert.equal(will.username, null);
    assert.equal(will['payload'], 'gone');
    assert.equal(events(service).find((e) => e.event === 'client.disconnected')!['reason'], 'socket-closed');

    requireProgram('/usr/bin/mosquitto_pub');
    const pub = await runProcess('/usr/bin/mosquitto_pub', ['-p', String(server.port), '-i', 'mosq', '-t', 'sensors/mosq', '-m', 'from mosquitto', '-q', '1']);
    assert.equal(pub.code, 0, pub.stderr);
    await service.waitFor(() => events(service).some((e) => e.topic === 'sensors/mosq'), 5000, 'the mosquitto_pub message');
    assert.equal(events(service).find((e) => e.topic === 'sensors/mosq')!['payload'], 'from mosquitto');
  });

  test('payloads in base64, cut at maxPayloadBytes (payloadSize is the whole size)', async () => {
    const service = await receiver();
    await broker({ webhooks: [webhook(service, { events: ['message.published'], payloadEncoding: 'base64', maxPayloadBytes: 4, batch: { maxEvents: 2, maxWaitMs: 20 } })] });
    const client = await clients.mqtt({ clientId: 'b64' });
    await client.publishAsync('sensors/bin', Buffer.from([0, 1, 2, 3, 4, 5, 255]), { qos: 1 });
    await client.publishAsync('sensors/short', Buffer.from([7]), { qos: 1 });
    await service.waitFor(() => events(service).length === 2, 5000, 'two events');
    const [cut, whole] = events(service);
    assert.deepEqual([cut!['payload'], cut!['payloadEncoding'], cut!['payloadSize'], cut!['payloadTruncated']], ['AAECAw==', 'base64', 7, true]);
    assert.deepEqual([whole!['payload'], whole!['payloadSize'], whole!['payloadTruncated']], ['Bw==', 1, false]);
  });

  test('HMAC-SHA256 of the body in the signature header, verifiable with the secret; configured headers sent', async () => {
    const service = await receiver();
    await broker({ webhooks: [webhook(service, { events: ['client.connected'], secret: 's3cret', headers: { authorization: 'Bearer hook-token' }, batch: { maxEvents: 1, maxWaitMs: 0 } })] });
    await clients.mqtt({ clientId: 'signed' });
    await service.waitFor((r) => r.length === 1);
    const request = service.requests[0]!;
    const expected = `sha256=${createHmac('sha256', 's3cret').update(request.body).digest('hex')}`;
    assert.equal(request.headers['x-starling-signature'], expected);
    assert.notEqual(request.headers['x-starling-signature'], `sha256=${createHmac('sha256', 'other').update(request.body).digest('hex')}`);
    assert.equal(request.headers['authorization'], 'Bearer hook-token');
  });
});

describe('delivery', () => {
  test('a 500 is retried with the same body (same batch number, x-starling-attempt 2); the events are then sent once', async () => {
    let failures = 1;
    const service = await receiver((_request, response) => answerStatus(response, failures-- > 0 ? 500 : 204));
    const server = await broker({ http: HTTP, webhooks: [webhook(service, { events: ['client.connected'], batch: { maxEvents: 1, maxWaitMs: 0 }, retry: { maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 1000 } })] });
    await clients.mqtt({ clientId: 'retried' });
    await service.waitFor((r) => r.length === 2, 5000, 'the retry');
    const [first, second] = service.requests;
    assert.equal(first!.body, second!.body);
    assert.deepEqual([first!.headers['x-starling-attempt'], second!.headers['x-starling-attempt']], ['1', '2']);
    assert.equal(batchOf(second!).events[0]!.clientId, 'retried');
    await metricReaches(server, 'starling_webhook_events_sent_total{webhook="test"}', 1);
    assert.equal(await metric(server, 'starling_webhook_requests_total{webhook="test"}'), 2);
    assert.equal(await metric(server, 'starling_webhook_failures_total{webhook="test"}'), 1);
    assert.equal(await metric(server, 'starling_webhook_events_sent_total{webhook="test"}'), 1);
    assert.equal(await metric(server, 'starling_webhook_up{webhook="test"}'), 1);
    assert.equal(await metric(server, 'starling_webhook_request_duration_seconds_count{webhook="test"}'), 2);
  });

  test('after maxAttempts the events are dropped (retries_exhausted); a 4xx is not retried (rejected); one log line down, one up', async () => {
    let status = 500;
    const service = await receiver((_request, response) => answerStatus(response, status));
    const lines: string[] = [];
    const keep = (_obj: object, msg: string): void => {
      lines.push(msg);
    };
    const logger: Logger = { debug: () => undefined, info: keep, warn: keep, error: keep };
    const server = await broker({ logger, http: HTTP, webhooks: [webhook(service, { events: ['client.connected'], batch: { maxEvents: 1, maxWaitMs: 0 }, retry: { maxAttempts: 2, initialDelayMs: 20, maxDelayMs: 20 } })] });
    await clients.mqtt({ clientId: 'exhausted' });
    await service.waitFor((r) => r.length === 2, 5000, 'two attempts');
    status = 400;
    await clients.mqtt({ clientId: 'rejected' });
    await service.waitFor((r) => r.length === 3, 5000, 'one attempt');
    status = 204;
    await clients.mqtt({ clientId: 'accepted' });
    await service.waitFor((r) => r.length === 4, 5000, 'the last event');
    await metricReaches(server, 'starling_webhook_events_sent_total{webhook="test"}', 1);
    assert.equal(await metric(server, 'starling_webhook_events_dropped_total{webhook="test",reason="retries_exhausted"}'), 1);
    assert.equal(await metric(server, 'starling_webhook_events_dropped_total{webhook="test",reason="rejected"}'), 1);
    assert.equal(await metric(server, 'starling_webhook_events_sent_total{webhook="test"}'), 1);
    assert.equal(lines.filter((l) => /webhook "test" is down \(status 500\)/.test(l)).length, 1, lines.join('\n'));
    assert.equal(lines.filter((l) => /webhook "test" is up again/.test(l)).length, 1, lines.join('\n'));
  });

  test('a full queue drops new events and counts them; message delivery goes on while the webhook hangs; a gap in seq shows the drop', async () => {
    const held: Array<() => void> = [];
    let hang = true;
    const service = await receiver((_request, response) => {
      if (hang) held.push(() => answerStatus(response, 204));
      else answerStatus(response, 204);
    });
    const server = await broker({
      http: HTTP,
      webhooks: [webhook(service, { events: ['message.published'], topics: ['load/#'], maxQueuedEvents: 5, timeoutMs: 20_000, batch: { maxEvents: 1, maxWaitMs: 0 } })],
    });
    const subscriber = await clients.mqtt({ clientId: 'load-sub' });
    await subscriber.subscribeAsync('load/#', { qos: 1 });
    const received = collectMessages(subscriber, 50, 10_000);
    const publisher = await clients.mqtt({ clientId: 'load-pub' });
    for (let i = 0; i < 50; i++) await publisher.publishAsync('load/x', `n${i}`, { qos: 1 });
    assert.equal((await received).length, 50, 'every message delivered');
    assert.equal(service.requests.length, 1, 'the webhook is still on its first request');
    assert.equal(held.length, 1);
    assert.equal(await metric(server, 'starling_webhook_queue_depth{webhook="test"}'), 5);
    assert.equal(await metric(server, 'starling_webhook_events_dropped_total{webhook="test",reason="queue_full"}'), 45);
    assert.equal(await metric(server, 'starling_webhook_events_total{webhook="test"}'), 5);

    hang = false;
    held.shift()!();
    await service.waitFor((r) => r.length === 5, 5000, 'the queued events');
    await publisher.publishAsync('load/x', 'after', { qos: 1 });
    await service.waitFor((r) => r.length === 6, 5000, 'the next event');
    assert.deepEqual(
      events(service).map((e) => [e.seq, e['payload']]),
      [[1, 'n0'], [2, 'n1'], [3, 'n2'], [4, 'n3'], [5, 'n4'], [51, 'after']],
    );
  });

  test('at shutdown what is queued is sent once more, with the disconnect events of the shutdown', async () => {
    const service = await receiver();
    const server = await broker({ webhooks: [webhook(service, { events: ['client.connected', 'client.disconnected'], batch: { maxEvents: 100, maxWaitMs: 60_000 } })] });
    await clients.mqtt({ clientId: 'at-shutdown' });
    assert.equal(service.requests.length, 0, 'nothing sent before the batch fills or waits 60 s');
    servers.delete(server);
    await server.close();
    assert.equal(service.requests.length, 1);
    assert.deepEqual(
      events(service).map((e) => [e.event, e.clientId, e['reason']]),
      [
        ['client.connected', 'at-shutdown', undefined],
        ['client.disconnected', 'at-shutdown', 'server-shutdown'],
      ],
    );
  });
});

describe('configuration', () => {
  test('bad webhooks and auth.http are refused with a message naming the key, the value and what was expected', async () => {
    const refused = async (options: ServerOptions, pattern: RegExp): Promise<void> => {
      await assert.rejects(startTestBroker(options), (error: Error) => {
        assert.match(error.message, pattern);
        return true;
      });
    };
    const hook = { name: 'h', url: 'http://127.0.0.1:1/x', events: ['client.connected' as const] };
    await refused({ webhooks: [{ ...hook, url: 'ftp://example.com/' }] }, /webhooks\[0\]\.url must be an http:\/\/ or https:\/\/ URL; got "ftp:\/\/example\.com\/"/);
    await refused({ webhooks: [{ ...hook, events: ['client.kicked'] } as unknown as WebhookConfig] }, /webhooks\[0\]\.events\[0\] must be one of client\.connected, .*; got "client\.kicked"/);
    await refused({ webhooks: [{ ...hook, events: ['message.published'] }] }, /webhooks\[0\] \("h"\)\.topics must list the topic filters/);
    await refused({ webhooks: [{ ...hook, topics: ['a/#'] }] }, /webhooks\[0\] \("h"\)\.topics is for message\.published events/);
    await refused({ webhooks: [{ ...hook, events: ['message.published'], topics: ['a/#/b'] }] }, /webhooks\[0\]\.topics\[0\] must be a valid MQTT topic filter/);
    await refused({ webhooks: [hook, hook] }, /webhooks\[1\] \("h"\)\.name: "h" is already the name of webhooks\[0\]/);
    await refused({ webhooks: [{ ...hook, batch: { maxEvents: 0 } }] }, /webhooks\[0\]\.batch\.maxEvents must be an integer from 1 to 100000; got 0/);
    await refused({ webhooks: [{ ...hook, headers: { 'bad header': 'x' } }] }, /webhooks\[0\] \("h"\)\.headers: "bad header" is not a header name/);
    await refused({ webhooks: [{ ...hook, bogus: 1 } as unknown as WebhookConfig] }, /webhooks\[0\]\.bogus is an unknown key/);
    await refused({ auth: { http: { authenticateUrl: 'not a url' } } }, /auth\.http\.authenticateUrl must be an http:\/\/ or https:\/\/ URL; got "not a url"/);
    await refused({ auth: { http: { onFailure: 'maybe' } as unknown as Record<string, never> } }, /auth\.http\.onFailure must be one of deny, allow, ignore; got "maybe"/);
    await refused({ auth: { http: {} } }, /auth\.http needs at least one of authenticateUrl, publishUrl and subscribeUrl/);
  });
});

describe('examples/http-auth-and-webhooks.jsonc', () => {
  test('runs with the `starling` command against a service: clients are authenticated by it and the webhook gets signed events', async () => {
    requireProgram('/usr/bin/mosquitto_pub');
    const service = await receiver((request, response) => {
      if (request.path === '/mqtt/auth') {
        const fields = JSON.parse(request.body) as { username?: string; password?: string };
        return answerJson(response, 200, { result: fields.username === 'alice' && fields.password === 'secret' ? 'allow' : 'deny' });
      }
      return answerStatus(response, 204);
    });
    const dir = tempDir('starling-54-');
    const file = join(dir, 'example.jsonc');
    const text = readFileSync(join(ROOT, 'examples/http-auth-and-webhooks.jsonc'), 'utf8')
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${service.port}`)
      .replace('"port": 1883', '"port": 0')
      .replace('"port": 18083', '"port": 0');
    writeFileSync(file, text);
    const check = await runProcess(process.execPath, [STARLING_CLI, 'check-config', file]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /HTTP service for connect \/ publish \/ subscribe \(on failure: deny\)/);
    assert.match(check.stdout, /^webhook events: http:\/\/127\.0\.0\.1:\d+\/mqtt\/events, client\.connected, .* on sensors\/#, signed$/m);

    const broker = startProcess(process.execPath, [STARLING_CLI, '--config', file, '--log-format', 'json']);
    const listening = await broker.line(/MQTT listening on mqtt:\/\/127\.0\.0\.1:\d+/);
    const port = /mqtt:\/\/127\.0\.0\.1:(\d+)/.exec(listening)![1]!;
    const denied = await runProcess('/usr/bin/mosquitto_pub', ['-p', port, '-u', 'alice', '-P', 'wrong', '-t', 'sensors/a', '-m', 'x']);
    assert.notEqual(denied.code, 0);
    const pub = await runProcess('/usr/bin/mosquitto_pub', ['-p', port, '-i', 'example-pub', '-u', 'alice', '-P', 'secret', '-t', 'sensors/a', '-m', '21.5', '-q', '1']);
    assert.equal(pub.code, 0, pub.stderr);
    await service.waitFor(() => service.to('/mqtt/events').some((r) => batchOf(r).events.some((e) => e.event === 'client.disconnected')), 5000, 'the events of mosquitto_pub');
    const hooks = service.to('/mqtt/events');
    assert.deepEqual(
      hooks.flatMap((r) => batchOf(r).events).map((e) => [e.event, e['topic'] ?? null]),
      [
        ['client.connected', null],
        ['message.published', 'sensors/a'],
        ['client.disconnected', null],
      ],
    );
    for (const request of hooks) assert.equal(request.headers['x-starling-signature'], `sha256=${createHmac('sha256', 'change-me-too').update(request.body).digest('hex')}`);
    const auth = service.to('/mqtt/auth');
    assert.equal(auth.length, 2);
    assert.equal(auth[0]!.headers['authorization'], 'Bearer change-me');
    assert.equal(service.to('/mqtt/acl').length, 1);
    broker.child.kill('SIGTERM');
    assert.equal(await broker.exited, 0);
  });
});
