import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { QoS } from '../../src/protocol/types.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { collectMessages, TestClients } from '../helpers/raw-client.js';

describe('03 publish and QoS', () => {
  let server: StarlingServer;
  let windowServer: StarlingServer;
  let clients: TestClients;
  let windowClients: TestClients;
  let idCounter = 0;

  before(async () => {
    server = await startTestBroker();
    windowServer = await startTestBroker({ limits: { maxInflight: 5 } });
    clients = new TestClients(() => server.port);
    windowClients = new TestClients(() => windowServer.port);
  });

  after(async () => {
    await clients.closeAll();
    await windowClients.closeAll();
    await Promise.all([server.close(), windowServer.close()]);
  });

  function nextId(prefix: string): string {
    idCounter++;
    return `${prefix}-${idCounter}`;
  }

  test('QoS 0 end to end: MQTT.js publisher to raw subscriber', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('q0-sub') });
    await subscriber.subscribe('q0/t', 2);
    const publisher = await clients.mqtt({ clientId: nextId('q0-pub') });
    await publisher.publishAsync('q0/t', 'zero', { qos: 0 });
    const publish = await subscriber.expect('publish');
    assert.equal(publish.topic, 'q0/t');
    assert.equal(publish.payload.toString(), 'zero');
    assert.equal(publish.qos, 0);
    assert.equal(publish.packetId, undefined);
    assert.equal(publish.retain, false);
    assert.equal(publish.dup, false);
  });

  test('[MQTT-4.3.2-2] QoS 1: PUBACK carries the PUBLISH packet id; the message is delivered', async () => {
    const subscriber = await clients.mqtt({ clientId: nextId('q1-sub') });
    await subscriber.subscribeAsync('q1/t', { qos: 1 });
    const received = collectMessages(subscriber, 1);
    const publisher = await clients.rawConnected({ clientId: nextId('q1-pub') });
    publisher.publish('q1/t', 'one', 1, { packetId: 0x4242 });
    const puback = await publisher.expect('puback');
    assert.equal(puback.packetId, 0x4242);
    const [message] = await received;
    assert.equal(message?.payload.toString(), 'one');
    assert.equal(message?.qos, 1);
  });

  test('[MQTT-4.3.3-2] QoS 2 sender flow: PUBREC, then PUBCOMP for PUBREL, same packet id', async () => {
    const subscriber = await clients.mqtt({ clientId: nextId('q2-sub') });
    await subscriber.subscribeAsync('q2/t', { qos: 2 });
    const received = collectMessages(subscriber, 1);
    const publisher = await clients.rawConnected({ clientId: nextId('q2-pub') });
    publisher.publish('q2/t', 'two', 2, { packetId: 9 });
    assert.equal((await publisher.expect('pubrec')).packetId, 9);
    publisher.send({ type: 'pubrel', packetId: 9 });
    assert.equal((await publisher.expect('pubcomp')).packetId, 9);
    const [message] = await received;
    assert.equal(message?.payload.toString(), 'two');
    assert.equal(message?.qos, 2);
  });

  test('[MQTT-4.3.3-2] a duplicate QoS 2 PUBLISH before PUBREL is acknowledged but delivered once', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('dup-sub') });
    await subscriber.subscribe('dup/t', 0);
    const publisher = await clients.rawConnected({ clientId: nextId('dup-pub') });
    publisher.publish('dup/t', 'original', 2, { packetId: 5 });
    assert.equal((await publisher.expect('pubrec')).packetId, 5);
    publisher.publish('dup/t', 'original', 2, { packetId: 5, dup: true });
    assert.equal((await publisher.expect('pubrec')).packetId, 5);
    publisher.send({ type: 'pubrel', packetId: 5 });
    assert.equal((await publisher.expect('pubcomp')).packetId, 5);
    assert.equal((await subscriber.expect('publish')).payload.toString(), 'original');
    await subscriber.expectSilence(150);

    // Once released, the id may carry a new message, which is delivered.
    publisher.publish('dup/t', 'new message', 2, { packetId: 5 });
    assert.equal((await publisher.expect('pubrec')).packetId, 5);
    assert.equal((await subscriber.expect('publish')).payload.toString(), 'new message');
  });

  test('[MQTT-4.3.3-2] PUBREL for an unknown packet id is still answered with PUBCOMP', async () => {
    const client = await clients.rawConnected({ clientId: nextId('pubrel-unknown') });
    client.send({ type: 'pubrel', packetId: 999 });
    assert.equal((await client.expect('pubcomp')).packetId, 999);
  });

  test('PUBACK, PUBREC and PUBCOMP for unknown packet ids are ignored; the connection stays open', async () => {
    const client = await clients.rawConnected({ clientId: nextId('unknown-acks') });
    client.send({ type: 'puback', packetId: 1234 });
    client.send({ type: 'pubrec', packetId: 1235 });
    client.send({ type: 'pubcomp', packetId: 1236 });
    client.send({ type: 'pingreq' });
    await client.expect('pingresp');
  });

  test('[MQTT-3.3.5-1] delivered QoS is min(published QoS, subscription QoS)', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('minqos-sub') });
    await subscriber.subscribe([
      ['minqos/0', 0],
      ['minqos/1', 1],
      ['minqos/2', 2],
    ]);
    const publisher = await clients.rawConnected({ clientId: nextId('minqos-pub') });
    const expected: string[] = [];
    for (const pub of [0, 1, 2] as QoS[]) {
      for (const sub of [0, 1, 2] as QoS[]) {
        publisher.publish(`minqos/${sub}`, `${pub}`, pub);
        expected.push(`pub ${pub} sub ${sub} -> ${Math.min(pub, sub)}`);
      }
    }
    const actual: string[] = [];
    for (let i = 0; i < expected.length; i++) {
      const publish = await subscriber.expect('publish');
      actual.push(`pub ${publish.payload.toString()} sub ${publish.topic.slice(-1)} -> ${publish.qos}`);
      if (publish.qos === 1) subscriber.send({ type: 'puback', packetId: publish.packetId as number });
      if (publish.qos === 2) subscriber.send({ type: 'pubrec', packetId: publish.packetId as number });
    }
    assert.deepEqual(actual, expected);
  });

  test('[MQTT-2.3.1-1] [MQTT-2.3.1-2] outgoing QoS 1/2 packet ids are non-zero and unique among inflight', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('ids-sub') });
    await subscriber.subscribe('ids/t', 2);
    for (let i = 0; i < 30; i++) server.broker.publish({ topic: 'ids/t', payload: `${i}`, qos: i % 2 === 0 ? 1 : 2 });
    const publishes = await subscriber.expectMany('publish', 30);
    const ids = publishes.map((p) => p.packetId);
    for (const id of ids) assert.ok(id !== undefined && id > 0 && id <= 0xffff, `packet id ${String(id)}`);
    assert.equal(new Set(ids).size, ids.length, `ids unique among inflight: ${ids.join(',')}`);
    assert.deepEqual(
      publishes.map((p) => p.payload.toString()),
      Array.from({ length: 30 }, (_, i) => `${i}`),
    );
  });

  test('[MQTT-4.6.0-6] order is preserved per topic for 1,000 QoS 1 messages', async () => {
    const count = 1000;
    const subscriber = await clients.mqtt({ clientId: nextId('order-sub') });
    await subscriber.subscribeAsync('order/t', { qos: 1 });
    const received = collectMessages(subscriber, count, 15_000);
    const publisher = await clients.mqtt({ clientId: nextId('order-pub') });
    await Promise.all(Array.from({ length: count }, (_, i) => publisher.publishAsync('order/t', `${i}`, { qos: 1 })));
    const messages = await received;
    assert.deepEqual(
      messages.map((m) => Number(m.payload.toString())),
      Array.from({ length: count }, (_, i) => i),
    );
    for (const m of messages) assert.equal(m.qos, 1);
  });

  test('[MQTT-4.3.3-1] QoS 2 receiver flow: PUBLISH, PUBREC, PUBREL, PUBCOMP', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('q2r-sub') });
    await subscriber.subscribe('q2r/t', 2);
    const publisher = await clients.mqtt({ clientId: nextId('q2r-pub') });
    await publisher.publishAsync('q2r/t', 'exactly once', { qos: 2 });
    const publish = await subscriber.expect('publish');
    assert.equal(publish.qos, 2);
    assert.equal(publish.dup, false);
    assert.equal(publish.payload.toString(), 'exactly once');
    const packetId = publish.packetId as number;
    subscriber.send({ type: 'pubrec', packetId });
    assert.equal((await subscriber.expect('pubrel')).packetId, packetId);
    subscriber.send({ type: 'pubcomp', packetId });
    // The flow is complete: the next message comes normally and the first is not resent.
    await publisher.publishAsync('q2r/t', 'next', { qos: 2 });
    const next = await subscriber.expect('publish');
    assert.equal(next.payload.toString(), 'next');
    assert.equal(next.dup, false);
  });

  test('QoS 2 receiver: the server does not send PUBREL before PUBREC', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('q2wait-sub') });
    await subscriber.subscribe('q2wait/t', 2);
    server.broker.publish({ topic: 'q2wait/t', payload: 'x', qos: 2 });
    const publish = await subscriber.expect('publish');
    await subscriber.expectSilence(150);
    subscriber.send({ type: 'pubrec', packetId: publish.packetId as number });
    assert.equal((await subscriber.expect('pubrel')).packetId, publish.packetId);
  });

  test('[MQTT-3.3.1-4] PUBLISH with QoS 3 closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('qos3') });
    const bytes = encodePacket({ type: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 1 }, 4);
    bytes[0] = 0x36;
    client.send(bytes);
    await client.expectClosed();
  });

  test('[MQTT-3.3.1-2] PUBLISH QoS 0 with DUP=1 closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('dup0') });
    client.publish('a', 'x', 0, { dup: true });
    await client.expectClosed();
  });

  for (const topic of ['a/+', 'a/#', '+', '#']) {
    test(`[MQTT-3.3.2-2] PUBLISH to a topic name with a wildcard ("${topic}") closes the connection`, async () => {
      const subscriber = await clients.rawConnected({ clientId: nextId('wild-sub') });
      await subscriber.subscribe('#', 0);
      const client = await clients.rawConnected({ clientId: nextId('wild') });
      client.publish(topic, 'x', 0);
      await client.expectClosed();
      await subscriber.expectSilence(100);
    });
  }

  test('[MQTT-4.7.3-1] PUBLISH with an empty topic name closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('empty-topic') });
    client.publish('', 'x', 0);
    await client.expectClosed();
  });

  test('[MQTT-2.3.1-1] PUBLISH QoS 1 with packet id 0 closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('id0') });
    client.publish('a', 'x', 1, { packetId: 0 });
    await client.expectClosed();
  });

  test('in-process API: server.broker.publish reaches subscribers with QoS and payload', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('api-sub') });
    await subscriber.subscribe('api/+', 2);
    server.broker.publish({ topic: 'api/x', payload: Buffer.from([0, 1, 2, 255]), qos: 1 });
    server.broker.publish({ topic: 'api/y', payload: 'text' });
    const first = await subscriber.expect('publish');
    assert.equal(first.topic, 'api/x');
    assert.deepEqual([...first.payload], [0, 1, 2, 255]);
    assert.equal(first.qos, 1);
    const second = await subscriber.expect('publish');
    assert.equal(second.topic, 'api/y');
    assert.equal(second.payload.toString(), 'text');
    assert.equal(second.qos, 0);
  });

  test('in-process API: an invalid topic name throws', () => {
    assert.throws(() => server.broker.publish({ topic: 'a/#', payload: 'x' }));
    assert.throws(() => server.broker.publish({ topic: '', payload: 'x' }));
  });

  test('a 1 MiB payload passes intact', async () => {
    const payload = randomBytes(1024 * 1024);
    const subscriber = await clients.rawConnected({ clientId: nextId('big-sub') });
    await subscriber.subscribe('big/t', 1);
    const publisher = await clients.mqtt({ clientId: nextId('big-pub') });
    await publisher.publishAsync('big/t', payload, { qos: 1 });
    const publish = await subscriber.expect('publish', 5000);
    assert.equal(publish.payload.length, payload.length);
    assert.ok(publish.payload.equals(payload), 'payload bytes are identical');
  });

  test('inflight window: at most maxInflight unacknowledged QoS 1 messages, the rest after PUBACK', async () => {
    const subscriber = await windowClients.rawConnected({ clientId: nextId('window-sub') });
    await subscriber.subscribe('window/t', 1);
    for (let i = 0; i < 12; i++) windowServer.broker.publish({ topic: 'window/t', payload: `${i}`, qos: 1 });
    const firstFive = await subscriber.expectMany('publish', 5);
    await subscriber.expectSilence(200);

    // One acknowledgement opens exactly one place.
    subscriber.send({ type: 'puback', packetId: firstFive[0]?.packetId as number });
    const sixth = await subscriber.expect('publish');
    await subscriber.expectSilence(150);
    const inflightIds = [...firstFive.slice(1), sixth].map((p) => p.packetId);
    assert.equal(new Set(inflightIds).size, 5, 'inflight ids are unique');

    // Five acknowledgements open five places: messages 6-10; message 11 waits for the next one.
    for (const p of [...firstFive.slice(1), sixth]) subscriber.send({ type: 'puback', packetId: p.packetId as number });
    const nextFive = await subscriber.expectMany('publish', 5);
    await subscriber.expectSilence(150);
    subscriber.send({ type: 'puback', packetId: nextFive[0]?.packetId as number });
    const last = await subscriber.expect('publish');
    assert.deepEqual(
      [...firstFive, sixth, ...nextFive, last].map((p) => p.payload.toString()),
      Array.from({ length: 12 }, (_, i) => `${i}`),
    );
    for (const p of [...nextFive.slice(1), last]) subscriber.send({ type: 'puback', packetId: p.packetId as number });
    await subscriber.expectSilence(100);
  });
});
