import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/broker.js';
import { groupMetric, notInWorkers, workerMode } from '../helpers/worker-broker.js';
import { TestClients } from '../helpers/raw-client.js';

/** A refusal counter: the broker's stats in process, the group's /metrics with STARLING_TEST_WORKERS. */
async function refusals(server: TestServer, stat: 'limitRefusals' | 'rateLimited'): Promise<number> {
  if (!workerMode) return server.broker.stats[stat];
  return groupMetric(server.httpPort!, stat === 'limitRefusals' ? 'starling_limit_refusals_total' : 'starling_rate_limited_total');
}

describe('44 limits: each gives the protocol answer and is counted', () => {
  let server: TestServer;
  const clients = new TestClients(() => server.port);

  before(async () => {
    server = await startTestServer({ limits: { maxSubscriptionsPerClient: 2, maxTopicLevels: 3, maxTopicLength: 40, maxPublishRate: 20 } });
  });
  after(async () => {
    await clients.closeAll();
    await server.close();
  });

  test('subscriptions per client: MQTT 5 gets SUBACK 0x97 (quota exceeded), 3.1.1 gets 0x80; replacing an existing one is allowed', async () => {
    const v5 = await clients.rawConnected({ clientId: 'limits-sub-v5', protocolVersion: 5 });
    const suback = await v5.subscribe([['a', 0], ['b', 1], ['c', 1]]);
    assert.deepEqual(suback.reasonCodes, [0, 1, 0x97]);
    const again = await v5.subscribe([['a', 1]]);
    assert.deepEqual(again.reasonCodes, [1]);
    const v4 = await clients.rawConnected({ clientId: 'limits-sub-v4' });
    assert.deepEqual((await v4.subscribe([['a', 0], ['b', 0], ['c', 0]])).reasonCodes, [0, 0, 0x80]);
    assert.ok((await refusals(server, 'limitRefusals')) >= 2);
  });

  test('topic levels and length: a deeper filter gets SUBACK 0x8F; a deeper PUBLISH gets PUBACK 0x90 (MQTT 5) or is dropped (3.1.1)', async () => {
    const watcher = await clients.rawConnected({ clientId: 'limits-watch' });
    await watcher.subscribe('#', 1);
    const v5 = await clients.rawConnected({ clientId: 'limits-topic-v5', protocolVersion: 5 });
    assert.deepEqual((await v5.subscribe([['x/y/z/w', 0]])).reasonCodes, [0x8f]);
    assert.deepEqual((await v5.subscribe([[`long/${'x'.repeat(50)}`, 0]])).reasonCodes, [0x8f]);
    // A shared subscription's levels are those of its filter: `$share/g/` is not counted.
    assert.deepEqual((await v5.subscribe([['$share/g/x/y/z', 1]])).reasonCodes, [1]);
    assert.deepEqual((await v5.subscribe([['$share/g/x/y/z/w', 1]])).reasonCodes, [0x8f]);
    const id = v5.publish('x/y/z/w', 'deep', 1);
    const puback = await v5.expect('puback');
    assert.equal(puback.packetId, id);
    assert.equal(puback.reasonCode, 0x90);
    const v4 = await clients.rawConnected({ clientId: 'limits-topic-v4' });
    v4.publish('x/y/z/w', 'deep', 1);
    await v4.expect('puback');
    v4.publish('x/y/z', 'ok', 1);
    await v4.expect('puback');
    const delivered = await watcher.expect('publish');
    assert.equal(delivered.topic, 'x/y/z', 'only the topic within limits was delivered');
    await watcher.expectSilence(200);
  });

  test('publish rate: a client publishing faster than maxPublishRate is slowed down, and nothing is lost', async () => {
    const subscriber = await clients.rawConnected({ clientId: 'limits-rate-sub' });
    await subscriber.subscribe('rate/t', 0);
    const publisher = await clients.rawConnected({ clientId: 'limits-rate-pub' });
    const before = await refusals(server, 'rateLimited');
    const started = Date.now();
    for (let i = 0; i < 50; i++) publisher.publish('rate/t', String(i), 0);
    const received = await subscriber.expectMany('publish', 50, 6000);
    const elapsed = Date.now() - started;
    assert.deepEqual(received.map((p) => p.payload.toString()), Array.from({ length: 50 }, (_, i) => String(i)));
    assert.ok((await refusals(server, 'rateLimited')) > before, 'the limit was applied');
    // 50 messages at 20 per second cannot all pass within the first second.
    assert.ok(elapsed >= 1000, `took ${elapsed} ms`);
  });
});

describe('44 limits: sessions', () => {
  test('maxSessions: a CONNECT that needs a new session beyond the limit gets CONNACK 3 (0x97 in MQTT 5); an existing one resumes', async () => {
    const server = await startTestServer({ limits: { maxSessions: 2 } });
    const clients = new TestClients(() => server.port);
    try {
      const a = await clients.rawConnected({ clientId: 'sess-a', clean: false });
      a.disconnect();
      await clients.rawConnected({ clientId: 'sess-b' });
      const v4 = await clients.raw();
      assert.equal((await v4.connectMqtt({ clientId: 'sess-c' })).reasonCode, 3);
      const v5 = await clients.raw();
      assert.equal((await v5.connectMqtt({ clientId: 'sess-d', protocolVersion: 5 })).reasonCode, 0x97);
      const back = await clients.raw();
      const connack = await back.connectMqtt({ clientId: 'sess-a', clean: false });
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.sessionPresent, true);
    } finally {
      await clients.closeAll();
      await server.close();
    }
  });
});

describe('44 limits: per listener, and counted in /metrics', () => {
  test('maxConnectionsPerListener: a CONNECT beyond the listener’s limit gets CONNACK 3 (0x89 in MQTT 5); a place frees up when a client leaves', notInWorkers('maxConnectionsPerListener counts the connections of each worker, not of the group'), async () => {
    const server = await startTestServer({ limits: { maxConnectionsPerListener: { tcp: 1 }, maxSubscriptionsPerClient: 1 }, http: { enabled: true, host: '127.0.0.1', port: 0 } });
    const clients = new TestClients(() => server.port);
    try {
      const first = await clients.rawConnected({ clientId: 'listener-1' });
      const v4 = await clients.raw();
      assert.equal((await v4.connectMqtt({ clientId: 'listener-2' })).reasonCode, 3);
      const v5 = await clients.raw();
      assert.equal((await v5.connectMqtt({ clientId: 'listener-3', protocolVersion: 5 })).reasonCode, 0x89);
      // A refused subscription counts as a limit refusal in /metrics.
      assert.deepEqual((await first.subscribe([['a', 0], ['b', 0]])).reasonCodes, [0, 0x80]);
      first.disconnect();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await clients.rawConnected({ clientId: 'listener-4' });
      const metrics = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
      assert.match(metrics, /^starling_limit_refusals_total 1$/m);
      assert.match(metrics, /^starling_connections_refused_total 2$/m);
      assert.match(metrics, /^starling_rate_limited_total 0$/m);
    } finally {
      await clients.closeAll();
      await server.close();
    }
  });
});
