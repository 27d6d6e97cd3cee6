/** Small pure parts: URL parsing, the bench histogram, -F formatting, -D parsing, the loopback guard. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseUrl, resolveOptions } from '../../../src/client/index.js';
import { MessageQueue } from '../../../src/client/message-queue.js';
import { Histogram } from '../../../src/cli/bench/histogram.js';
import { assertLoopback, parseBenchArgs } from '../../../src/cli/bench/options.js';
import { connectOptions, extractProperties } from '../../../src/cli/client-args.js';
import { formatMessage, messageToJson } from '../../../src/cli/format.js';

describe('client units', () => {
  test('parseUrl reads scheme, credentials, host, port and ws path', () => {
    assert.deepEqual(parseUrl('mqtt://u%40x:p%3A@127.0.0.1:1884'), { protocol: 'mqtt', host: '127.0.0.1', port: 1884, username: 'u@x', password: 'p:' });
    assert.deepEqual(parseUrl('wss://[::1]:9001/ws'), { protocol: 'wss', host: '::1', port: 9001, path: '/ws' });
    assert.throws(() => parseUrl('http://x'), /unsupported URL scheme/);
    const r = resolveOptions('ws://localhost');
    assert.equal(r.port, 80);
    assert.equal(r.path, '/mqtt');
    assert.equal(resolveOptions('mqtts://h').port, 8883);
  });

  test('histogram percentiles stay within 1% of exact values', () => {
    const h = new Histogram();
    const values: number[] = [];
    for (let i = 1; i <= 100_000; i++) {
      const v = Math.floor((i * 7919) % 1_000_000) + 1;
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const p of [50, 90, 99]) {
      const exact = values[Math.ceil((p / 100) * values.length) - 1]!;
      const got = h.percentile(p);
      assert.ok(Math.abs(got - exact) / exact < 0.01, `p${p}: ${got} vs ${exact}`);
    }
    assert.equal(h.max, values.at(-1));
    const merged = new Histogram();
    merged.merge(h.toData());
    merged.merge(h.toData());
    assert.equal(merged.count, 200_000);
    assert.equal(merged.percentile(50), h.percentile(50));
    const small = new Histogram();
    for (const v of [1, 2, 3, 200]) small.record(v);
    assert.equal(small.percentile(50), 2);
    assert.equal(small.percentile(100), 200);
  });

  test('-F format fields and --json lines', () => {
    const m = { topic: 'a/b', payload: Buffer.from('hi'), qos: 1 as const, retain: true, dup: false };
    assert.equal(formatMessage('%t|%p|%q|%r|%l|%%|%x\\n', m, 'id').toString(), 'a/b|hi|1|1|2|%|6869\n');
    assert.match(formatMessage('%I', m, 'id').toString(), /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(JSON.parse(messageToJson(m)), { topic: 'a/b', payload: 'hi', qos: 1, retain: true });
    const binary = { ...m, payload: Buffer.from([0xff, 0xfe]), properties: { correlationData: Buffer.from('c'), userProperties: [['k', 'v'] as const] } };
    assert.deepEqual(JSON.parse(messageToJson(binary)), {
      topic: 'a/b',
      payload: '//4=',
      encoding: 'base64',
      qos: 1,
      retain: true,
      properties: { correlationData: 'Yw==', userProperties: [['k', 'v']] },
    });
  });

  test('-D in mosquitto syntax becomes MQTT 5 properties, and needs -V 5', () => {
    const { rest, properties } = extractProperties(['-t', 'x', '-D', 'publish', 'user-property', 'k', 'v', '-D', 'connect', 'session-expiry-interval', '60', '-D', 'publish', 'content-type', 'text/plain']);
    assert.deepEqual(rest, ['-t', 'x']);
    assert.deepEqual(properties, { publish: { userProperties: [['k', 'v']], contentType: 'text/plain' }, connect: { sessionExpiryInterval: 60 } });
    assert.throws(() => connectOptions({}, properties), /needs -V 5/);
    assert.equal(connectOptions({ 'protocol-version': '5' }, properties).properties?.sessionExpiryInterval, 60);
    assert.throws(() => extractProperties(['-D', 'publish', 'bogus', '1']), /unknown property/);
  });

  test('bench refuses non-loopback targets and unbounded runs get a default duration', async () => {
    await assertLoopback('127.0.0.1');
    await assertLoopback('localhost');
    await assert.rejects(assertLoopback('10.1.2.3'), /not a loopback address/);
    const config = parseBenchArgs(['pub', '-c', '2']);
    assert.ok(config !== 'help');
    assert.equal(config.duration, 10);
    assert.equal(config.allowRemote, false);
    assert.throws(() => parseBenchArgs(['pubsub', '-s', '8']), />= 16/);
  });

  test('a message queue drops the oldest past its limit and ends with an error when asked', async () => {
    const q = new MessageQueue<number>(2);
    q.push(1);
    q.push(2);
    q.push(3);
    assert.equal(q.dropped, 1);
    assert.deepEqual(await q.next(), { value: 2, done: false });
    assert.deepEqual(await q.next(), { value: 3, done: false });
    const pending = q.next();
    q.end(new Error('gone'));
    await assert.rejects(pending, /gone/);
  });
});
