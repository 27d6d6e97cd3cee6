import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/broker.js';
import { inProcessOnly } from '../helpers/worker-broker.js';
import { TestClients, type ConnectFields, type RawClient } from '../helpers/raw-client.js';

describe('05 session', () => {
  let server: TestServer;
  let boundedServer: TestServer;
  let clients: TestClients;
  let boundedClients: TestClients;
  let idCounter = 0;

  before(async () => {
    server = await startTestServer();
    boundedServer = await startTestServer({ limits: { maxQueuedMessages: 10 } });
    clients = new TestClients(() => server.port);
    boundedClients = new TestClients(() => boundedServer.port);
  });

  after(async () => {
    await clients.closeAll();
    await boundedClients.closeAll();
    await Promise.all([server.close(), boundedServer.close()]);
  });

  function nextId(prefix: string): string {
    idCounter++;
    return `${prefix}-${idCounter}`;
  }

  /** Connects (raw) and returns the client with the CONNACK's session present flag. */
  async function connect(fields: ConnectFields, target: TestClients = clients): Promise<{ client: RawClient; sessionPresent: boolean }> {
    const client = await target.raw();
    const connack = await client.connectMqtt(fields);
    assert.equal(connack.reasonCode, 0, `CONNECT of ${fields.clientId ?? ''} accepted`);
    return { client, sessionPresent: connack.sessionPresent };
  }

  /** Sends DISCONNECT and waits for the server to close the connection. */
  async function leave(client: RawClient): Promise<void> {
    client.disconnect();
    await client.expectClosed();
  }

  /** Destroys the socket and gives the server a moment to notice (it sees the FIN on its next read). */
  async function drop(client: RawClient): Promise<void> {
    client.destroy();
    // The server notices the close asynchronously; a round trip on another connection orders it.
    const probe = await clients.rawConnected({ clientId: nextId('probe') });
    probe.send({ type: 'pingreq' });
    await probe.expect('pingresp');
    probe.destroy();
  }

  test('[MQTT-3.2.2-3] a first CleanSession=0 connect has session present 0', async () => {
    const { sessionPresent } = await connect({ clientId: nextId('fresh'), clean: false });
    assert.equal(sessionPresent, false);
  });

  test('[MQTT-3.1.2-4] [MQTT-3.2.2-2] [MQTT-3.1.4-3] [MQTT-4.1.0-1] CleanSession=0 keeps subscriptions across reconnect; session present 1', async () => {
    const id = nextId('keep');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('keep/t', 1);
    await leave(first.client);

    const second = await connect({ clientId: id, clean: false });
    assert.equal(second.sessionPresent, true);
    server.broker.publish({ topic: 'keep/t', payload: 'still subscribed', qos: 1 });
    const publish = await second.client.expect('publish');
    assert.equal(publish.payload.toString(), 'still subscribed');
    assert.equal(publish.qos, 1);
  });

  test('[MQTT-3.1.2-6] [MQTT-3.2.2-1] [MQTT-3.1.4-3] CleanSession=1 discards the stored session; session present 0', async () => {
    const id = nextId('discard');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('discard/t', 1);
    await leave(first.client);
    server.broker.publish({ topic: 'discard/t', payload: 'queued for the old session', qos: 1 });

    const second = await connect({ clientId: id, clean: true });
    assert.equal(second.sessionPresent, false);
    server.broker.publish({ topic: 'discard/t', payload: 'no subscription now', qos: 1 });
    await second.client.expectSilence(150);
    await leave(second.client);

    // [MQTT-3.1.2-6] the clean session is not kept after it ends either.
    const third = await connect({ clientId: id, clean: false });
    assert.equal(third.sessionPresent, false);
    await third.client.expectSilence(100);
  });

  test('[MQTT-3.1.2-5] QoS 1 and 2 messages published while offline are delivered on reconnect; QoS 0 is not', async () => {
    const id = nextId('offline');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('offline/t', 2);
    await leave(first.client);
    server.broker.publish({ topic: 'offline/t', payload: 'q0', qos: 0 });
    server.broker.publish({ topic: 'offline/t', payload: 'q1', qos: 1 });
    server.broker.publish({ topic: 'offline/t', payload: 'q2', qos: 2 });
    server.broker.publish({ topic: 'offline/t', payload: 'q1 again', qos: 1 });

    const second = await connect({ clientId: id, clean: false });
    assert.equal(second.sessionPresent, true);
    const publishes = await second.client.expectMany('publish', 3);
    assert.deepEqual(
      publishes.map((p) => [p.payload.toString(), p.qos]),
      [
        ['q1', 1],
        ['q2', 2],
        ['q1 again', 1],
      ],
    );
    for (const p of publishes) assert.equal(p.dup, false, 'first transmission has DUP=0');
    await second.client.expectSilence(100);
  });

  test('offline messages are queued at the subscription QoS', async () => {
    const id = nextId('offline-qos');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('offline-qos/t', 1);
    await leave(first.client);
    server.broker.publish({ topic: 'offline-qos/t', payload: 'x', qos: 2 });
    const second = await connect({ clientId: id, clean: false });
    assert.equal((await second.client.expect('publish')).qos, 1);
  });

  test('[MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-2.3.1-4] [MQTT-4.3.2-1] [MQTT-4.1.0-1] an unacknowledged QoS 1 message is resent with DUP=1 and the same id on reconnect', async () => {
    const id = nextId('resend1');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('resend1/t', 1);
    server.broker.publish({ topic: 'resend1/t', payload: 'ack me', qos: 1 });
    const original = await first.client.expect('publish');
    assert.equal(original.qos, 1);
    assert.equal(original.dup, false);
    assert.ok(original.packetId !== undefined && original.packetId > 0);
    await drop(first.client);

    const second = await connect({ clientId: id, clean: false });
    assert.equal(second.sessionPresent, true);
    const resent = await second.client.expect('publish');
    assert.equal(resent.dup, true);
    assert.equal(resent.packetId, original.packetId);
    assert.equal(resent.payload.toString(), 'ack me');
    assert.equal(resent.qos, 1);
    second.client.send({ type: 'puback', packetId: resent.packetId });
    await leave(second.client);

    // Acknowledged: not sent a third time.
    const third = await connect({ clientId: id, clean: false });
    await third.client.expectSilence(150);
  });

  test('[MQTT-4.4.0-1] [MQTT-3.3.1-1] a QoS 2 PUBLISH without PUBREC is resent with DUP=1 on reconnect', async () => {
    const id = nextId('resend2');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('resend2/t', 2);
    server.broker.publish({ topic: 'resend2/t', payload: 'exactly once', qos: 2 });
    const original = await first.client.expect('publish');
    await drop(first.client);

    const second = await connect({ clientId: id, clean: false });
    const resent = await second.client.expect('publish');
    assert.equal(resent.dup, true);
    assert.equal(resent.qos, 2);
    assert.equal(resent.packetId, original.packetId);
  });

  test('[MQTT-4.4.0-1] a PUBREL without PUBCOMP is resent on reconnect, and not the PUBLISH', async () => {
    const id = nextId('pubrel');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('pubrel/t', 2);
    server.broker.publish({ topic: 'pubrel/t', payload: 'x', qos: 2 });
    const publish = await first.client.expect('publish');
    const packetId = publish.packetId as number;
    first.client.send({ type: 'pubrec', packetId });
    assert.equal((await first.client.expect('pubrel')).packetId, packetId);
    await drop(first.client);

    const second = await connect({ clientId: id, clean: false });
    const pubrel = await second.client.expect('pubrel');
    assert.equal(pubrel.packetId, packetId);
    second.client.send({ type: 'pubcomp', packetId });
    await second.client.expectSilence(150);
    await leave(second.client);

    const third = await connect({ clientId: id, clean: false });
    await third.client.expectSilence(150);
  });

  test('[MQTT-4.3.3-2] incoming QoS 2 state survives reconnect: a resent PUBLISH is not delivered twice', async () => {
    const subscriber = await clients.rawConnected({ clientId: nextId('in2-sub') });
    await subscriber.subscribe('in2/t', 0);
    const id = nextId('in2-pub');
    const first = await connect({ clientId: id, clean: false });
    first.client.publish('in2/t', 'once', 2, { packetId: 77 });
    assert.equal((await first.client.expect('pubrec')).packetId, 77);
    await drop(first.client);

    const second = await connect({ clientId: id, clean: false });
    second.client.publish('in2/t', 'once', 2, { packetId: 77, dup: true });
    assert.equal((await second.client.expect('pubrec')).packetId, 77);
    second.client.send({ type: 'pubrel', packetId: 77 });
    assert.equal((await second.client.expect('pubcomp')).packetId, 77);

    assert.equal((await subscriber.expect('publish')).payload.toString(), 'once');
    await subscriber.expectSilence(150);
  });

  test('[MQTT-4.6.0-6] queued messages are delivered in the order they were published', async () => {
    const id = nextId('order');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('order/t', 1);
    await leave(first.client);
    for (let i = 0; i < 50; i++) server.broker.publish({ topic: 'order/t', payload: `${i}`, qos: 1 });
    const second = await connect({ clientId: id, clean: false });
    const publishes = await second.client.expectMany('publish', 50);
    assert.deepEqual(
      publishes.map((p) => p.payload.toString()),
      Array.from({ length: 50 }, (_, i) => `${i}`),
    );
  });

  test('[MQTT-3.1.3-2] the client id identifies the session: each id resumes its own state, and only it', async () => {
    const a = nextId('ident-a');
    const b = nextId('ident-b');
    for (const [id, topic] of [
      [a, 'ident/a'],
      [b, 'ident/b'],
    ] as const) {
      const { client } = await connect({ clientId: id, clean: false });
      await client.subscribe(topic, 1);
      await leave(client);
    }
    server.broker.publish({ topic: 'ident/a', payload: 'for a', qos: 1 });
    server.broker.publish({ topic: 'ident/b', payload: 'for b', qos: 1 });

    const resumedB = await connect({ clientId: b, clean: false });
    assert.equal(resumedB.sessionPresent, true);
    assert.equal((await resumedB.client.expect('publish')).payload.toString(), 'for b');
    await resumedB.client.expectSilence(100);
    const resumedA = await connect({ clientId: a, clean: false });
    assert.equal(resumedA.sessionPresent, true);
    assert.equal((await resumedA.client.expect('publish')).payload.toString(), 'for a');
    await resumedA.client.expectSilence(100);
    // An id never seen has no state.
    const other = await connect({ clientId: nextId('ident-c'), clean: false });
    assert.equal(other.sessionPresent, false);
    await other.client.expectSilence(100);
  });

  test('[MQTT-4.1.0-2] a clean session lasts as long as its connection: its state holds until the connection ends', async () => {
    const id = nextId('lasting');
    const { client } = await connect({ clientId: id, clean: true });
    await client.subscribe('lasting/t', 2);
    server.broker.publish({ topic: 'lasting/t', payload: 'held', qos: 2 });
    const held = await client.expect('publish');
    // Idle for a while with a QoS 2 flow half done: subscription and flow state are still there.
    await client.expectSilence(400);
    server.broker.publish({ topic: 'lasting/t', payload: 'later', qos: 2 });
    const later = await client.expect('publish');
    assert.equal(later.payload.toString(), 'later');
    client.send({ type: 'pubrec', packetId: held.packetId as number });
    assert.equal((await client.expect('pubrel')).packetId, held.packetId);
    client.send({ type: 'pubcomp', packetId: held.packetId as number });
    await leave(client);
    // Once the connection has ended, the clean session is gone.
    const after = await connect({ clientId: id, clean: false });
    assert.equal(after.sessionPresent, false);
  });

  test('[MQTT-4.5.0-1] a message is added to the session of every matching subscriber, online or offline', async () => {
    const online = await connect({ clientId: nextId('fan-online') });
    await online.client.subscribe('fan/+', 1);
    const wildcard = await connect({ clientId: nextId('fan-wild') });
    await wildcard.client.subscribe('fan/#', 2);
    const offlineId = nextId('fan-offline');
    const offline = await connect({ clientId: offlineId, clean: false });
    await offline.client.subscribe('fan/x', 1);
    await leave(offline.client);
    const elsewhere = await connect({ clientId: nextId('fan-elsewhere') });
    await elsewhere.client.subscribe('fan/y', 1);

    const publisher = await connect({ clientId: nextId('fan-pub') });
    publisher.client.publish('fan/x', 'to all', 1, { packetId: 1 });
    assert.equal((await publisher.client.expect('puback')).packetId, 1);

    assert.equal((await online.client.expect('publish')).payload.toString(), 'to all');
    assert.equal((await wildcard.client.expect('publish')).payload.toString(), 'to all');
    await elsewhere.client.expectSilence(100);
    const resumed = await connect({ clientId: offlineId, clean: false });
    assert.equal((await resumed.client.expect('publish')).payload.toString(), 'to all');
  });

  test('[MQTT-4.6.0-1] unacknowledged messages are resent in their original order on reconnect', async () => {
    const id = nextId('resend-order');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('resend-order/t', 2);
    for (let i = 0; i < 8; i++) server.broker.publish({ topic: 'resend-order/t', payload: `${i}`, qos: i % 2 === 0 ? 1 : 2 });
    const originals = await first.client.expectMany('publish', 8);
    await drop(first.client);

    const second = await connect({ clientId: id, clean: false });
    const resent = await second.client.expectMany('publish', 8);
    assert.deepEqual(
      resent.map((p) => [p.payload.toString(), p.packetId, p.qos, p.dup]),
      originals.map((p) => [p.payload.toString(), p.packetId, p.qos, true]),
    );
  });

  test('queue bound: with maxQueuedMessages 10, 25 messages while away give 10 and count 15 dropped', inProcessOnly('reads broker.stats right after in-process publishes'), async () => {
    const id = nextId('bounded');
    const first = await connect({ clientId: id, clean: false }, boundedClients);
    await first.client.subscribe('bounded/t', 1);
    await leave(first.client);
    const droppedBefore = boundedServer.broker.stats.droppedQueueFull;
    for (let i = 0; i < 25; i++) boundedServer.broker.publish({ topic: 'bounded/t', payload: `${i}`, qos: 1 });
    assert.equal(boundedServer.broker.stats.droppedQueueFull - droppedBefore, 15);

    const second = await connect({ clientId: id, clean: false }, boundedClients);
    const publishes = await second.client.expectMany('publish', 10);
    for (const p of publishes) second.client.send({ type: 'puback', packetId: p.packetId as number });
    await second.client.expectSilence(150);
    const numbers = publishes.map((p) => Number(p.payload.toString()));
    assert.deepEqual(
      numbers,
      [...numbers].sort((a, b) => a - b),
      'kept messages are in publish order',
    );
  });

  test('[MQTT-3.1.4-2] takeover with CleanSession=0 hands the session to the new connection', async () => {
    const id = nextId('handover');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('handover/t', 1);
    server.broker.publish({ topic: 'handover/t', payload: 'inflight', qos: 1 });
    const inflight = await first.client.expect('publish');

    const second = await connect({ clientId: id, clean: false });
    assert.equal(second.sessionPresent, true);
    await first.client.expectClosed();
    const resent = await second.client.expect('publish');
    assert.equal(resent.packetId, inflight.packetId);
    assert.equal(resent.dup, true);
    assert.equal(resent.payload.toString(), 'inflight');
    second.client.send({ type: 'puback', packetId: resent.packetId as number });

    server.broker.publish({ topic: 'handover/t', payload: 'after takeover', qos: 1 });
    const next = await second.client.expect('publish');
    assert.equal(next.payload.toString(), 'after takeover');
    assert.equal(next.dup, false);
  });

  test('[MQTT-3.1.2-6] takeover with CleanSession=1 starts a new session', async () => {
    const id = nextId('handover-clean');
    const first = await connect({ clientId: id, clean: false });
    await first.client.subscribe('handover-clean/t', 1);

    const second = await connect({ clientId: id, clean: true });
    assert.equal(second.sessionPresent, false);
    await first.client.expectClosed();
    server.broker.publish({ topic: 'handover-clean/t', payload: 'x', qos: 1 });
    await second.client.expectSilence(150);
  });
});
