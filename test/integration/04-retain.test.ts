import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PublishPacket } from '../../src/protocol/types.js';
import { startTestServer, type TestServer } from '../helpers/broker.js';
import { inProcessOnly, notInWorkers } from '../helpers/worker-broker.js';
import { TestClients, type RawClient } from '../helpers/raw-client.js';

describe('04 retain', () => {
  let server: TestServer;
  let dollarServer: TestServer;
  let clients: TestClients;
  let dollarClients: TestClients;
  let idCounter = 0;

  before(async () => {
    server = await startTestServer();
    dollarServer = await startTestServer();
    clients = new TestClients(() => server.port);
    dollarClients = new TestClients(() => dollarServer.port);
  });

  after(async () => {
    await clients.closeAll();
    await dollarClients.closeAll();
    await Promise.all([server.close(), dollarServer.close()]);
  });

  function nextId(prefix: string): string {
    idCounter++;
    return `${prefix}-${idCounter}`;
  }

  /** Publishes from a raw client and waits until the server has processed it (PUBACK, or PINGRESP for QoS 0). */
  async function publishProcessed(client: RawClient, topic: string, payload: string, qos: 0 | 1 | 2, retain: boolean): Promise<void> {
    const packetId = client.publish(topic, payload, qos, { retain });
    if (qos === 1) {
      assert.equal((await client.expect('puback')).packetId, packetId);
    } else if (qos === 2) {
      assert.equal((await client.expect('pubrec')).packetId, packetId);
      client.send({ type: 'pubrel', packetId });
      await client.expect('pubcomp');
    } else {
      client.send({ type: 'pingreq' });
      await client.expect('pingresp');
    }
  }

  /** Subscribes a new client and returns the retained messages it gets right after SUBACK. */
  async function retainedFor(filter: string, qos: 0 | 1 | 2 = 2, expected = 1, target: TestClients = clients): Promise<PublishPacket[]> {
    const client = await target.rawConnected({ clientId: nextId('late-sub') });
    await client.subscribe(filter, qos);
    const publishes = await client.expectMany('publish', expected);
    await client.expectSilence(100);
    return publishes;
  }

  test('[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] a retained message is sent to a new subscriber with RETAIN=1', async () => {
    const publisher = await clients.rawConnected({ clientId: nextId('pub') });
    await publishProcessed(publisher, 'ret/basic', 'kept', 1, true);
    const [publish] = await retainedFor('ret/basic');
    assert.equal(publish?.topic, 'ret/basic');
    assert.equal(publish?.payload.toString(), 'kept');
    assert.equal(publish?.retain, true);
    assert.equal(publish?.qos, 1);
  });

  test('[MQTT-3.3.1-8] the retained message is sent after the SUBACK', async () => {
    server.broker.publish({ topic: 'ret/after-suback', payload: 'x', retain: true });
    const client = await clients.rawConnected({ clientId: nextId('order') });
    client.send({ type: 'subscribe', packetId: 3, subscriptions: [{ topicFilter: 'ret/after-suback', qos: 0 }] });
    assert.equal((await client.next()).type, 'suback');
    assert.equal((await client.next()).type, 'publish');
  });

  test('[MQTT-3.3.1-9] a retained message is delivered to existing subscribers with RETAIN=0', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('live') });
    await subscriber.subscribe('ret/live', 1);
    const publisher = await clients.rawConnected({ clientId: nextId('pub') });
    await publishProcessed(publisher, 'ret/live', 'live', 1, true);
    const publish = await subscriber.expect('publish');
    assert.equal(publish.payload.toString(), 'live');
    assert.equal(publish.retain, false);
  });

  test('[MQTT-3.3.1-5] a new retained message replaces the previous one', async () => {
    const publisher = await clients.rawConnected({ clientId: nextId('pub') });
    await publishProcessed(publisher, 'ret/replace', 'v1', 1, true);
    await publishProcessed(publisher, 'ret/replace', 'v2', 1, true);
    const publishes = await retainedFor('ret/replace');
    assert.deepEqual(
      publishes.map((p) => p.payload.toString()),
      ['v2'],
    );
  });

  test('[MQTT-3.3.1-7] a retained QoS 0 message replaces the previous one and is stored', notInWorkers("a retained QoS 0 message reaches the other workers with its worker's next commit, which no answer to the publisher waits for"), async () => {
    const publisher = await clients.rawConnected({ clientId: nextId('pub') });
    await publishProcessed(publisher, 'ret/qos0', 'qos1 value', 1, true);
    await publishProcessed(publisher, 'ret/qos0', 'qos0 value', 0, true);
    const [publish] = await retainedFor('ret/qos0');
    assert.equal(publish?.payload.toString(), 'qos0 value');
    assert.equal(publish?.qos, 0);
  });

  test('[MQTT-3.3.1-12] a message without RETAIN is not stored and does not replace or remove the retained one', async () => {
    const publisher = await clients.rawConnected({ clientId: nextId('pub') });
    await publishProcessed(publisher, 'ret/not-replaced', 'retained', 1, true);
    await publishProcessed(publisher, 'ret/not-replaced', 'plain', 1, false);
    await publishProcessed(publisher, 'ret/not-replaced', '', 0, false);
    const [publish] = await retainedFor('ret/not-replaced');
    assert.equal(publish?.payload.toString(), 'retained');
    assert.equal(publish?.retain, true);
    // On a topic with nothing retained, a RETAIN=0 message is not stored either.
    await publishProcessed(publisher, 'ret/never-retained', 'plain', 2, false);
    await retainedFor('ret/never-retained', 2, 0);
  });

  test('[MQTT-3.1.2-7] retained messages are not session state: they outlive the session that published them', async () => {
    // A clean session publishes and ends with DISCONNECT.
    const cleanPublisher = await clients.rawConnected({ clientId: nextId('clean-pub') });
    await publishProcessed(cleanPublisher, 'ret/outlives/clean', 'from a clean session', 1, true);
    cleanPublisher.disconnect();
    await cleanPublisher.expectClosed();
    // A persistent session publishes, then its session is discarded by a CleanSession=1 connect.
    const id = nextId('persistent-pub');
    const persistentPublisher = await clients.rawConnected({ clientId: id, clean: false });
    await publishProcessed(persistentPublisher, 'ret/outlives/persistent', 'from a persistent session', 1, true);
    persistentPublisher.destroy();
    const discarding = await clients.raw();
    assert.equal((await discarding.connectMqtt({ clientId: id, clean: true })).sessionPresent, false);
    discarding.disconnect();
    await discarding.expectClosed();

    const publishes = await retainedFor('ret/outlives/+', 1, 2);
    assert.deepEqual(publishes.map((p) => p.payload.toString()).sort(), ['from a clean session', 'from a persistent session']);
  });

  test('[MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty retained payload clears the topic and is not stored', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('clear-live') });
    await subscriber.subscribe('ret/clear', 0);
    const publisher = await clients.rawConnected({ clientId: nextId('pub') });
    await publishProcessed(publisher, 'ret/clear', 'something', 1, true);
    await publishProcessed(publisher, 'ret/clear', '', 1, true);
    // Existing subscribers still get both, as live messages.
    assert.equal((await subscriber.expect('publish')).payload.toString(), 'something');
    const cleared = await subscriber.expect('publish');
    assert.equal(cleared.payload.length, 0);
    assert.equal(cleared.retain, false);
    // A new subscriber gets nothing: neither the old message nor the empty one.
    await retainedFor('ret/clear', 2, 0);
  });

  test('[MQTT-3.3.1-11] an empty retained payload on a topic with nothing retained stores nothing', async () => {
    const publisher = await clients.rawConnected({ clientId: nextId('pub') });
    await publishProcessed(publisher, 'ret/never', '', 0, true);
    await retainedFor('ret/never', 2, 0);
  });

  test('[MQTT-3.3.1-6] retained messages matching a wildcard filter are all sent on subscribe', async () => {
    for (const topic of ['wild/a', 'wild/b/c', 'wild', 'wildly/x', 'other/wild']) {
      server.broker.publish({ topic, payload: topic, retain: true });
    }
    const hash = await retainedFor('wild/#', 0, 3);
    assert.deepEqual(hash.map((p) => p.topic).sort(), ['wild', 'wild/a', 'wild/b/c']);
    for (const p of hash) assert.equal(p.retain, true);
    const plus = await retainedFor('wild/+', 0, 1);
    assert.deepEqual(
      plus.map((p) => p.topic),
      ['wild/a'],
    );
    const leading = await retainedFor('+/wild', 0, 1);
    assert.deepEqual(
      leading.map((p) => p.topic),
      ['other/wild'],
    );
  });

  test('[MQTT-3.3.5-1] a retained message is sent at min(its QoS, the subscription QoS)', async () => {
    server.broker.publish({ topic: 'ret/down/2', payload: 'q2', qos: 2, retain: true });
    server.broker.publish({ topic: 'ret/down/0', payload: 'q0', qos: 0, retain: true });
    const [downgraded] = await retainedFor('ret/down/2', 1);
    assert.equal(downgraded?.qos, 1);
    assert.equal(downgraded?.retain, true);
    const [zero] = await retainedFor('ret/down/0', 2);
    assert.equal(zero?.qos, 0);
    const [full] = await retainedFor('ret/down/2', 2);
    assert.equal(full?.qos, 2);
  });

  test('[MQTT-3.8.4-3] subscribing again re-sends the matching retained messages', async () => {
    server.broker.publish({ topic: 'ret/resub', payload: 'again', retain: true });
    const client = await clients.rawConnected({ clientId: nextId('resub') });
    await client.subscribe('ret/resub', 0);
    assert.equal((await client.expect('publish')).payload.toString(), 'again');
    await client.subscribe('ret/resub', 0);
    const resent = await client.expect('publish');
    assert.equal(resent.payload.toString(), 'again');
    assert.equal(resent.retain, true);
  });

  test('a retained message is sent to every new subscriber, not only the first', async () => {
    server.broker.publish({ topic: 'ret/many', payload: 'for all', retain: true });
    for (let i = 0; i < 3; i++) {
      const [publish] = await retainedFor('ret/many', 0);
      assert.equal(publish?.payload.toString(), 'for all');
    }
  });

  test('[MQTT-4.7.2-1] retained $ topics are not matched by "#" or "+/..." but are by "$SYS/#"', inProcessOnly('a broker without $SYS topics (the starling command publishes $SYS/broker/… at start)'), async () => {
    dollarServer.broker.publish({ topic: '$SYS/broker/uptime', payload: '1', retain: true });
    dollarServer.broker.publish({ topic: 'visible/topic', payload: '2', retain: true });
    const hash = await retainedFor('#', 0, 1, dollarClients);
    assert.deepEqual(
      hash.map((p) => p.topic),
      ['visible/topic'],
    );
    await retainedFor('+/broker/uptime', 0, 0, dollarClients);
    const sys = await retainedFor('$SYS/#', 0, 1, dollarClients);
    assert.deepEqual(
      sys.map((p) => p.topic),
      ['$SYS/broker/uptime'],
    );
  });
});
