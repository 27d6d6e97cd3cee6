import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryPersistence } from '../../src/persistence/memory.js';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { PublishPacket, QoS } from '../../src/protocol/types.js';
import { startTestServer, type TestServer } from '../helpers/broker.js';
import { inProcessOnly } from '../helpers/worker-broker.js';
import { collectMessages, TestClients, type RawClient } from '../helpers/raw-client.js';

const FLAGS_OFFSET = 9; // flags byte of a 3.1.1 CONNECT with a one-byte remaining length

describe('07 will', () => {
  let server: TestServer;
  let clients: TestClients;
  let idCounter = 0;

  before(async () => {
    server = await startTestServer();
    clients = new TestClients(() => server.port);
  });

  after(async () => {
    await clients.closeAll();
    await server.close();
  });

  function nextId(prefix: string): string {
    idCounter++;
    return `${prefix}-${idCounter}`;
  }

  /** A client subscribed to `topic` (at `qos`) and to a sentinel topic, to see the will or its absence. */
  async function watcher(topic: string, qos: QoS = 2): Promise<{ client: RawClient; sentinel: string }> {
    const id = nextId('watcher');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    await client.subscribe([
      [topic, qos],
      [sentinel, 0],
    ]);
    return { client, sentinel };
  }

  /** Publishes the sentinel and returns every PUBLISH the watcher got before it. */
  async function seenBefore(watch: { client: RawClient; sentinel: string }): Promise<PublishPacket[]> {
    server.broker.publish({ topic: watch.sentinel, payload: 'end' });
    const out: PublishPacket[] = [];
    for (;;) {
      const publish = await watch.client.expect('publish');
      if (publish.topic === watch.sentinel) return out;
      out.push(publish);
    }
  }

  /** A connected raw client with a will on `topic`. */
  function withWill(topic: string, payload: string, qos: QoS = 0, retain = false, keepalive = 0): Promise<RawClient> {
    return clients.rawConnected({ clientId: nextId('dying'), keepalive, will: { topic, payload: Buffer.from(payload), qos, retain } });
  }

  test('[MQTT-3.1.2-8] the will is published when the connection closes abruptly, with its QoS', async () => {
    const watch = await watcher('will/abrupt');
    const client = await withWill('will/abrupt', 'gone', 1);
    client.destroy();
    const publish = await watch.client.expect('publish');
    assert.equal(publish.topic, 'will/abrupt');
    assert.equal(publish.payload.toString(), 'gone');
    assert.equal(publish.qos, 1);
    assert.equal(publish.retain, false, '[MQTT-3.3.1-9] live delivery has RETAIN=0');
  });

  test('[MQTT-3.1.2-8] the will of an MQTT.js client is published when its socket is destroyed', async () => {
    const watch = await clients.mqtt({ clientId: nextId('mqttjs-watcher') });
    await watch.subscribeAsync('will/mqttjs', { qos: 2 });
    const received = collectMessages(watch, 1);
    const dying = await clients.mqtt({ clientId: nextId('mqttjs-dying'), will: { topic: 'will/mqttjs', payload: Buffer.from('bye'), qos: 2, retain: false } });
    dying.stream.destroy();
    const [message] = await received;
    assert.equal(message?.payload.toString(), 'bye');
    assert.equal(message?.qos, 2);
  });

  test('[MQTT-3.1.2-10] [MQTT-3.14.4-3] the will is not published after DISCONNECT', async () => {
    const watch = await watcher('will/clean');
    const client = await withWill('will/clean', 'should not appear', 1);
    client.disconnect();
    await client.expectClosed();
    assert.deepEqual(await seenBefore(watch), []);
  });

  test('[MQTT-3.1.2-8] the will is published on keep-alive timeout', async () => {
    const watch = await watcher('will/keepalive');
    const client = await withWill('will/keepalive', 'timed out', 0, false, 1);
    await client.expectClosed(2500);
    const publish = await watch.client.expect('publish');
    assert.equal(publish.payload.toString(), 'timed out');
  });

  test('[MQTT-3.1.2-8] the will is published when the server closes the connection for a protocol error', async () => {
    const watch = await watcher('will/protocol-error');
    const client = await withWill('will/protocol-error', 'broke the rules', 0);
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'again' });
    await client.expectClosed();
    const publish = await watch.client.expect('publish');
    assert.equal(publish.payload.toString(), 'broke the rules');
  });

  test('[MQTT-3.1.2-8] the will is published when the connection is taken over', async () => {
    const watch = await watcher('will/takeover');
    const id = nextId('taken');
    const first = await clients.rawConnected({ clientId: id, will: { topic: 'will/takeover', payload: Buffer.from('replaced'), qos: 0, retain: false } });
    const second = await clients.rawConnected({ clientId: id });
    await first.expectClosed();
    const publish = await watch.client.expect('publish');
    assert.equal(publish.payload.toString(), 'replaced');
    // The new connection has no will: its DISCONNECT or drop publishes nothing more.
    second.destroy();
    assert.deepEqual(await seenBefore(watch), []);
  });

  test('[MQTT-3.1.2-17] a will with retain=1 is stored as a retained message', async () => {
    const client = await withWill('will/retained', 'last words', 1, true);
    const watch = await watcher('will/retained', 1);
    client.destroy();
    const live = await watch.client.expect('publish');
    assert.equal(live.payload.toString(), 'last words');
    assert.equal(live.retain, false);

    const late = await clients.rawConnected({ clientId: nextId('late') });
    await late.subscribe('will/retained', 2);
    const retained = await late.expect('publish');
    assert.equal(retained.payload.toString(), 'last words');
    assert.equal(retained.retain, true);
    assert.equal(retained.qos, 1);
  });

  test('[MQTT-3.1.2-16] a will with retain=0 is not stored', async () => {
    const client = await withWill('will/not-retained', 'fleeting', 1, false);
    const watch = await watcher('will/not-retained');
    client.destroy();
    await watch.client.expect('publish');
    const late = await clients.rawConnected({ clientId: nextId('late') });
    await late.subscribe('will/not-retained', 2);
    await late.expectSilence(150);
  });

  test('[MQTT-4.5.0-1] the will goes to an offline persistent session like any QoS 1 message', async () => {
    const subscriberId = nextId('offline-sub');
    const first = await clients.rawConnected({ clientId: subscriberId, clean: false });
    await first.subscribe('will/offline', 1);
    first.disconnect();
    await first.expectClosed();
    const watch = await watcher('will/offline');
    const client = await withWill('will/offline', 'queued', 1);
    client.destroy();
    // Once a live watcher has the will, it has been routed to the offline session too.
    assert.equal((await watch.client.expect('publish')).payload.toString(), 'queued');
    const second = await clients.raw();
    const connack = await second.connectMqtt({ clientId: subscriberId, clean: false });
    assert.equal(connack.sessionPresent, true);
    const publish = await second.expect('publish');
    assert.equal(publish.payload.toString(), 'queued');
    assert.equal(publish.qos, 1);
  });

  test('[MQTT-3.1.2-12] without the Will Flag, nothing is published when the connection ends, however it ends', async () => {
    const watch = await watcher('#');
    const dropped = await clients.rawConnected({ clientId: nextId('no-will') });
    dropped.destroy();
    const broken = await clients.rawConnected({ clientId: nextId('no-will') });
    broken.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'again' });
    await broken.expectClosed();
    const timedOut = await clients.rawConnected({ clientId: nextId('no-will'), keepalive: 1 });
    await timedOut.expectClosed(2500);
    // Retained messages of earlier tests reach "#" on subscribe (RETAIN=1); anything published now is live.
    assert.deepEqual(
      (await seenBefore(watch)).filter((p) => !p.retain),
      [],
    );
  });

  test('[MQTT-3.14.1-1] DISCONNECT with reserved flags set closes the connection, and the will is published', async () => {
    const watch = await watcher('will/bad-disconnect');
    const client = await withWill('will/bad-disconnect', 'invalid DISCONNECT', 1);
    // DISCONNECT is e0 00; e1 00 sets a reserved flag bit, so it is not a valid DISCONNECT.
    client.send(Buffer.from([0xe1, 0x00]));
    await client.expectClosed();
    const publish = await watch.client.expect('publish');
    assert.equal(publish.topic, 'will/bad-disconnect');
    assert.equal(publish.payload.toString(), 'invalid DISCONNECT');
    assert.equal(publish.qos, 1);
  });

  function connectWithFlags(flags: number): Buffer {
    const bytes = encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: nextId('flags') }, 4);
    bytes[FLAGS_OFFSET] = flags;
    return bytes;
  }

  test('[MQTT-3.1.2-13] will flag 0 with will QoS 1 closes the connection', async () => {
    const client = await clients.raw();
    client.send(connectWithFlags(0x02 | 0x08));
    await client.expectClosed();
  });

  test('[MQTT-3.1.2-13] will flag 0 with will QoS 2 closes the connection', async () => {
    const client = await clients.raw();
    client.send(connectWithFlags(0x02 | 0x10));
    await client.expectClosed();
  });

  test('[MQTT-3.1.2-15] will flag 0 with will retain 1 closes the connection', async () => {
    const client = await clients.raw();
    client.send(connectWithFlags(0x02 | 0x20));
    await client.expectClosed();
  });

  test('[MQTT-3.1.2-14] will QoS 3 closes the connection', async () => {
    const client = await clients.raw();
    const bytes = encodePacket(
      { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: nextId('wq3'), will: { topic: 'w', payload: Buffer.from('x'), qos: 0, retain: false } },
      4,
    );
    bytes[FLAGS_OFFSET] = (bytes[FLAGS_OFFSET] as number) | 0x18;
    client.send(bytes);
    await client.expectClosed();
  });

  test('a will topic with a wildcard closes the connection', async () => {
    const client = await clients.raw();
    client.send(
      encodePacket(
        { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: nextId('wwild'), will: { topic: 'w/#', payload: Buffer.from('x'), qos: 0, retain: false } },
        4,
      ),
    );
    await client.expectClosed();
  });
});

describe('07 will at server shutdown', () => {
  test('[MQTT-3.1.2-8] a server shutdown is no DISCONNECT: the will is published, and a persistent subscriber gets it after the restart', inProcessOnly('restarts an in-process broker on a store object it passes in'), async () => {
    const store = new MemoryPersistence();
    const first = await startTestServer({ store });
    const firstClients = new TestClients(() => first.port);
    const watcher = await firstClients.rawConnected({ clientId: 'shutdown-watcher', clean: false });
    await watcher.subscribe('shutdown/will', 1);
    watcher.disconnect();
    await firstClients.rawConnected({ clientId: 'shutdown-dies', will: { topic: 'shutdown/will', payload: Buffer.from('gone'), qos: 1, retain: false } });
    const calm = await firstClients.rawConnected({ clientId: 'shutdown-calm', will: { topic: 'shutdown/will', payload: Buffer.from('never'), qos: 1, retain: false } });
    calm.disconnect(); // a normal DISCONNECT discards the will
    await new Promise((resolve) => setTimeout(resolve, 50));
    await first.close();
    await firstClients.closeAll();

    const second = await startTestServer({ store });
    const secondClients = new TestClients(() => second.port);
    try {
      const back = await secondClients.raw();
      const connack = await back.connectMqtt({ clientId: 'shutdown-watcher', clean: false });
      assert.equal(connack.sessionPresent, true);
      const will = await back.expect('publish');
      assert.equal(will.topic, 'shutdown/will');
      assert.equal(will.payload.toString(), 'gone');
      await back.expectSilence(200);
    } finally {
      await secondClients.closeAll();
      await second.close();
    }
  });
});
