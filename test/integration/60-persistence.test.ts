/**
 * Persistence across a restart, in one process: a broker runs on a store, clients do things, the
 * broker is closed, a new broker starts on the same store and the clients come back. The key
 * cases run on both backends: a MemoryPersistence instance handed to the next broker, and the
 * embedded LMDB store on a temporary data directory. Crashes are simulated with a store wrapper
 * that stops writing (test/integration/61-crash.test.ts kills real processes).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { Broker, type BrokerInit } from '../../src/broker/broker.js';
import type { BrokerPlugin } from '../../src/broker/hooks.js';
import { LmdbPersistence } from '../../src/persistence/lmdb.js';
import { MemoryPersistence } from '../../src/persistence/memory.js';
import type { Persistence, StoreOp, StoredState } from '../../src/persistence/types.js';
import type { Packet, Properties, PublishPacket, QoS } from '../../src/protocol/types.js';
import type { ServerOptions, StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { RawClient, sleep, TestClients, type ConnectFields } from '../helpers/raw-client.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'starling-60-'));
let dirCounter = 0;
let idCounter = 0;
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

/** Every raw client a test opened, destroyed after it. */
const openClients = new Set<RawClient>();
/** Brokers a test started and did not stop (a failing test leaves them running). */
const running = new Set<{ stop(): Promise<void> }>();
afterEach(async () => {
  for (const client of openClients) client.destroy();
  openClients.clear();
  for (const broker of [...running]) await broker.stop();
  running.clear();
});

function nextId(prefix: string): string {
  return `${prefix}-${++idCounter}`;
}

type Kind = 'memory' | 'lmdb';
const KINDS: readonly Kind[] = ['memory', 'lmdb'];

/** Reads what an LMDB data directory holds (the broker on it must be stopped). */
async function loadLmdb(dataDir: string): Promise<StoredState> {
  const store = new LmdbPersistence({ dataDir });
  try {
    return await store.load();
  } finally {
    await store.close();
  }
}

/** A broker that can be stopped and started again on the same stored data. */
class Restartable {
  server: StarlingServer | undefined;
  readonly memory = new MemoryPersistence();
  readonly dataDir = join(tmpRoot, `data-${++dirCounter}`);

  constructor(
    readonly kind: Kind,
    private readonly options: ServerOptions = {},
  ) {}

  get port(): number {
    assert.ok(this.server !== undefined, 'broker running');
    return this.server.port;
  }

  async start(): Promise<StarlingServer> {
    const store: ServerOptions = this.kind === 'memory' ? { store: this.memory } : { store: 'embedded', dataDir: this.dataDir };
    this.server = await startTestBroker({ ...this.options, ...store });
    running.add(this);
    return this.server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    running.delete(this);
    await server?.close();
  }

  async restart(): Promise<StarlingServer> {
    await this.stop();
    return this.start();
  }

  /** The stored state; the broker must be stopped. */
  async stored(): Promise<StoredState> {
    assert.equal(this.server, undefined, 'stop the broker before reading its store');
    return this.kind === 'memory' ? this.memory.load() : loadLmdb(this.dataDir);
  }
}

/** Connects a raw client and returns it with its CONNACK's session present flag. */
async function connect(port: number, fields: ConnectFields): Promise<{ client: RawClient; sessionPresent: boolean; properties: Properties | undefined }> {
  const client = await RawClient.connect(port);
  openClients.add(client);
  const connack = await client.connectMqtt(fields);
  assert.equal(connack.reasonCode, 0, `CONNECT of ${fields.clientId ?? ''} accepted`);
  return { client, sessionPresent: connack.sessionPresent, properties: connack.properties };
}

/** 3.1.1, CleanSession=0. */
function persistent311(clientId: string): ConnectFields {
  return { clientId, clean: false };
}

/** MQTT 5, Clean Start=0 with a session expiry. */
function persistent5(clientId: string, sessionExpiryInterval: number): ConnectFields {
  return { clientId, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval } };
}

/** Sends DISCONNECT and waits for the close. */
async function leave(client: RawClient): Promise<void> {
  client.disconnect();
  await client.expectClosed();
}

/** Publishes QoS 1 and waits for the PUBACK. */
async function publish1(client: RawClient, topic: string, payload: string, properties?: Properties): Promise<void> {
  const packetId = client.allocatePacketId();
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false, packetId };
  if (properties !== undefined) packet.properties = properties;
  client.send(packet);
  const puback = await client.expect('puback');
  assert.equal(puback.packetId, packetId);
}

/** Runs a whole QoS 2 publish flow (PUBLISH, PUBREC, PUBREL, PUBCOMP). */
async function publish2(client: RawClient, topic: string, payload: string, packetId = client.allocatePacketId()): Promise<void> {
  client.publish(topic, payload, 2, { packetId });
  assert.equal((await client.expect('pubrec')).packetId, packetId);
  client.send({ type: 'pubrel', packetId });
  assert.equal((await client.expect('pubcomp')).packetId, packetId);
}

/** Publishes a retained message at QoS 1 (empty payload: clears the topic). */
async function publishRetained(client: RawClient, topic: string, payload: string): Promise<void> {
  const packetId = client.publish(topic, payload, 1, { retain: true });
  assert.equal((await client.expect('puback')).packetId, packetId);
}

/** Receives `count` PUBLISH packets and acknowledges each, completing QoS 2 flows (PUBREC, PUBREL, PUBCOMP). */
async function receiveAndAck(client: RawClient, count: number, timeoutMs = 3000): Promise<PublishPacket[]> {
  const out: PublishPacket[] = [];
  const awaitingRelease = new Set<number>();
  const deadline = Date.now() + timeoutMs;
  while (out.length < count || awaitingRelease.size > 0) {
    const packet = await client.next(Math.max(1, deadline - Date.now()));
    if (packet.type === 'pubrel') {
      awaitingRelease.delete(packet.packetId);
      client.send({ type: 'pubcomp', packetId: packet.packetId });
      continue;
    }
    assert.equal(packet.type, 'publish', `expected PUBLISH ${out.length + 1} of ${count}`);
    const publish = packet;
    out.push(publish);
    if (publish.qos === 1) client.send({ type: 'puback', packetId: publish.packetId! });
    if (publish.qos === 2) {
      awaitingRelease.add(publish.packetId!);
      client.send({ type: 'pubrec', packetId: publish.packetId! });
    }
  }
  return out;
}

/** Collects what arrives within `ms`, completing QoS 2 flows; returns the PUBLISH packets. */
async function drainFor(client: RawClient, ms: number): Promise<PublishPacket[]> {
  const out: PublishPacket[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    let packet: Packet;
    try {
      packet = await client.next(Math.max(1, deadline - Date.now()));
    } catch {
      return out;
    }
    if (packet.type === 'publish') {
      out.push(packet);
      if (packet.qos === 1) client.send({ type: 'puback', packetId: packet.packetId! });
      if (packet.qos === 2) client.send({ type: 'pubrec', packetId: packet.packetId! });
    } else if (packet.type === 'pubrel') client.send({ type: 'pubcomp', packetId: packet.packetId });
  }
}

function payloads(packets: readonly PublishPacket[]): string[] {
  return packets.map((p) => p.payload.toString());
}

for (const kind of KINDS) {
  describe(`60 persistence across a restart (${kind})`, () => {
    test('3.1.1 CleanSession=0: session present 1, queued QoS 1/2 messages in order, subscriptions active without resubscribing', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const id = nextId('p311');
      const first = await connect(broker.port, persistent311(id));
      await first.client.subscribe([
        ['q/one', 1],
        ['q/two', 2],
      ]);
      await leave(first.client);
      const publisher = await connect(broker.port, { clientId: nextId('pub') });
      for (let i = 1; i <= 6; i++) {
        if (i % 2 === 1) await publish1(publisher.client, 'q/one', `m${i}`);
        else await publish2(publisher.client, 'q/two', `m${i}`);
      }
      await broker.restart();

      const back = await connect(broker.port, persistent311(id));
      assert.equal(back.sessionPresent, true, 'session present 1 after the restart');
      const received = await receiveAndAck(back.client, 6);
      assert.deepEqual(payloads(received), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
      assert.deepEqual(received.map((p) => p.qos), [1, 2, 1, 2, 1, 2]);
      assert.ok(received.every((p) => !p.dup), 'never sent before: DUP=0');
      await back.client.expectSilence(100);

      // No SUBSCRIBE since the restart: the stored subscriptions route new messages.
      const again = await connect(broker.port, { clientId: nextId('pub') });
      await publish1(again.client, 'q/one', 'after restart');
      await publish2(again.client, 'q/two', 'after restart 2');
      assert.deepEqual(payloads(await receiveAndAck(back.client, 2)), ['after restart', 'after restart 2']);
      await broker.stop();
    });

    test('MQTT 5 Session Expiry > 0: session present 1 and the subscription is active after a restart', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const id = nextId('p5');
      const first = await connect(broker.port, persistent5(id, 3600));
      await first.client.subscribe('v5/t', 1);
      await leave(first.client);
      await broker.restart();

      const back = await connect(broker.port, persistent5(id, 3600));
      assert.equal(back.sessionPresent, true);
      const publisher = await connect(broker.port, { clientId: nextId('pub') });
      await publish1(publisher.client, 'v5/t', 'hello again');
      assert.deepEqual(payloads(await receiveAndAck(back.client, 1)), ['hello again']);
      await broker.stop();
    });

    test('[MQTT-4.4.0-1] messages sent but not acknowledged before the restart are resent with DUP=1 and the same packet id', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const id = nextId('dup');
      const subscriber = await connect(broker.port, persistent311(id));
      await subscriber.client.subscribe('dup/#', 2);
      const publisher = await connect(broker.port, { clientId: nextId('pub') });
      await publish1(publisher.client, 'dup/1', 'one');
      await publish2(publisher.client, 'dup/2', 'two');
      const sent = [await subscriber.client.expect('publish'), await subscriber.client.expect('publish')];
      // Neither is acknowledged. Let the broker store the sent state, then restart.
      await sleep(50);
      await broker.restart();

      const back = await connect(broker.port, persistent311(id));
      assert.equal(back.sessionPresent, true);
      const resent = [await back.client.expect('publish'), await back.client.expect('publish')];
      for (let i = 0; i < 2; i++) {
        assert.equal(resent[i]!.dup, true, `resend ${i + 1} has DUP=1`);
        assert.equal(resent[i]!.packetId, sent[i]!.packetId, `resend ${i + 1} keeps its packet id`);
        assert.equal(resent[i]!.payload.toString(), sent[i]!.payload.toString());
        assert.equal(resent[i]!.qos, sent[i]!.qos);
      }
      back.client.send({ type: 'puback', packetId: resent[0]!.packetId! });
      back.client.send({ type: 'pubrec', packetId: resent[1]!.packetId! });
      assert.equal((await back.client.expect('pubrel')).packetId, resent[1]!.packetId);
      back.client.send({ type: 'pubcomp', packetId: resent[1]!.packetId! });
      await back.client.expectSilence(150);
      await leave(back.client);
      await broker.stop();
      const stored = await broker.stored();
      assert.deepEqual(stored.deliveries.filter((d) => d.clientId === id), [], 'acknowledged: nothing left for the session');
    });

    test('[MQTT-4.3.3] an outgoing QoS 2 message awaiting PUBCOMP: PUBREL is resent after the restart and the message is not delivered again', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const id = nextId('rel');
      const subscriber = await connect(broker.port, persistent311(id));
      await subscriber.client.subscribe('rel/t', 2);
      const publisher = await connect(broker.port, { clientId: nextId('pub') });
      await publish2(publisher.client, 'rel/t', 'exactly once');
      const publish = await subscriber.client.expect('publish');
      subscriber.client.send({ type: 'pubrec', packetId: publish.packetId! });
      assert.equal((await subscriber.client.expect('pubrel')).packetId, publish.packetId);
      // No PUBCOMP: the flow is at its last step when the broker stops.
      await sleep(50);
      await broker.restart();

      const back = await connect(broker.port, persistent311(id));
      assert.equal(back.sessionPresent, true);
      const packet = await back.client.next();
      assert.equal(packet.type, 'pubrel', `PUBREL resent, not the message (got ${packet.type})`);
      assert.equal((packet as { packetId: number }).packetId, publish.packetId);
      back.client.send({ type: 'pubcomp', packetId: publish.packetId! });
      await back.client.expectSilence(200);
      await leave(back.client);
      const third = await connect(broker.port, persistent311(id));
      await third.client.expectSilence(200);
      await broker.stop();
    });

    test('[MQTT-4.3.3-2] incoming QoS 2: an id awaiting PUBREL survives the restart, so the duplicate PUBLISH is not delivered again', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const subscriberId = nextId('in2-sub');
      const subscriber = await connect(broker.port, persistent311(subscriberId));
      await subscriber.client.subscribe('in2/t', 2);
      const publisherId = nextId('in2-pub');
      const publisher = await connect(broker.port, persistent311(publisherId));
      publisher.client.publish('in2/t', 'once only', 2, { packetId: 9 });
      assert.equal((await publisher.client.expect('pubrec')).packetId, 9);
      // The publisher goes away before sending PUBREL.
      assert.deepEqual(payloads(await receiveAndAck(subscriber.client, 1)), ['once only']);
      await broker.restart();

      const subscriberBack = await connect(broker.port, persistent311(subscriberId));
      const publisherBack = await connect(broker.port, persistent311(publisherId));
      assert.equal(publisherBack.sessionPresent, true);
      // The publisher did not see PUBREC as far as it knows: it resends the PUBLISH with DUP=1, then releases it.
      publisherBack.client.publish('in2/t', 'once only', 2, { packetId: 9, dup: true });
      assert.equal((await publisherBack.client.expect('pubrec')).packetId, 9);
      publisherBack.client.send({ type: 'pubrel', packetId: 9 });
      assert.equal((await publisherBack.client.expect('pubcomp')).packetId, 9);
      const again = await drainFor(subscriberBack.client, 300);
      assert.deepEqual(payloads(again), [], 'the duplicate is not delivered a second time');
      await broker.stop();
    });

    test('[MQTT-3.3.1-5] retained messages are there after a restart; cleared ones are not', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const publisher = await connect(broker.port, { clientId: nextId('pub') });
      await publishRetained(publisher.client, 'ret/a', 'A');
      await publishRetained(publisher.client, 'ret/b', 'B');
      await publishRetained(publisher.client, 'ret/c', 'C');
      await publishRetained(publisher.client, 'ret/b', '');
      await publishRetained(publisher.client, 'ret/c', 'C2');
      await broker.restart();

      const subscriber = await connect(broker.port, { clientId: nextId('sub') });
      await subscriber.client.subscribe('ret/#', 1);
      const received = await receiveAndAck(subscriber.client, 2);
      assert.deepEqual(received.map((p) => `${p.topic}=${p.payload.toString()}`).sort(), ['ret/a=A', 'ret/c=C2']);
      assert.ok(received.every((p) => p.retain), 'RETAIN=1 on messages sent for a new subscription');
      await subscriber.client.expectSilence(100);
      await broker.stop();
      const stored = await broker.stored();
      assert.deepEqual(stored.retained.map((r) => r.topic).sort(), ['ret/a', 'ret/c']);
    });

    test('a session that expired while the broker was down is gone, with its messages (Session Expiry 1 s)', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const id = nextId('gone');
      const first = await connect(broker.port, persistent5(id, 1));
      await first.client.subscribe('gone/t', 1);
      await leave(first.client);
      const publisher = await connect(broker.port, { clientId: nextId('pub') });
      await publish1(publisher.client, 'gone/t', 'for an expired session');
      await broker.stop();
      await sleep(1300);
      await broker.start();

      // Reconnecting as soon as the broker is up (as a client retrying its connection does).
      const back = await connect(broker.port, persistent5(id, 60));
      assert.equal(back.sessionPresent, false, 'the session expired while the broker was down');
      assert.deepEqual(payloads(await drainFor(back.client, 200)), [], 'its messages went with it');
      await leave(back.client);
      await broker.stop();
      const stored = await broker.stored();
      assert.deepEqual(stored.deliveries.filter((d) => d.clientId === id), []);
      assert.equal(stored.messages.length, 0, 'no message body is left behind');
    });

    test('a session that expired while down is gone once the broker has swept it', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const id = nextId('gone-late');
      const first = await connect(broker.port, persistent5(id, 1));
      await first.client.subscribe('gone-late/t', 1);
      await leave(first.client);
      const publisher = await connect(broker.port, { clientId: nextId('pub') });
      await publish1(publisher.client, 'gone-late/t', 'for an expired session');
      await broker.stop();
      await sleep(1300);
      await broker.start();
      await sleep(400);
      await broker.stop();
      const stored = await broker.stored();
      assert.deepEqual(stored.sessions.filter((s) => s.clientId === id), []);
      assert.deepEqual(stored.deliveries.filter((d) => d.clientId === id), []);
      assert.equal(stored.messages.length, 0);
    });

    test('[MQTT-3.3.2-5] a message whose expiry passed while the broker was down is not delivered after the restart', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      const id = nextId('mexp');
      const first = await connect(broker.port, persistent5(id, 3600));
      await first.client.subscribe('mexp/t', 1);
      await leave(first.client);
      const publisher = await connect(broker.port, { clientId: nextId('pub'), protocolVersion: 5 });
      await publish1(publisher.client, 'mexp/t', 'short-lived', { messageExpiryInterval: 1 });
      await publish1(publisher.client, 'mexp/t', 'long-lived', { messageExpiryInterval: 3600 });
      await publish1(publisher.client, 'mexp/t', 'forever');
      await broker.stop();
      await sleep(1300);
      await broker.start();

      const back = await connect(broker.port, persistent5(id, 3600));
      assert.equal(back.sessionPresent, true);
      const received = await receiveAndAck(back.client, 2);
      assert.deepEqual(payloads(received), ['long-lived', 'forever']);
      const remaining = received[0]!.properties?.messageExpiryInterval;
      assert.ok(remaining !== undefined && remaining <= 3599 && remaining > 3500, `expiry counts down across the restart (${String(remaining)})`);
      await back.client.expectSilence(100);
      await broker.stop();
    });

    test('[MQTT-3.1.2-6] clean sessions leave nothing in the store', async () => {
      const broker = new Restartable(kind);
      await broker.start();
      // 3.1.1 CleanSession=1 subscriber with an unacknowledged message, MQTT 5 Session Expiry 0 subscriber.
      const clean311 = await connect(broker.port, { clientId: nextId('clean'), clean: true });
      await clean311.client.subscribe('clean/#', 2);
      const clean5 = await connect(broker.port, { clientId: nextId('clean5'), clean: true, protocolVersion: 5 });
      await clean5.client.subscribe('clean/#', 1);
      // A clean publisher leaves an incoming QoS 2 id awaiting PUBREL.
      const publisher = await connect(broker.port, { clientId: nextId('pub'), clean: true });
      await publish1(publisher.client, 'clean/1', 'q1');
      publisher.client.publish('clean/2', 'q2', 2, { packetId: 3 });
      await publisher.client.expect('pubrec');
      await clean311.client.expect('publish');
      // A persistent session that comes back clean: its stored state goes too.
      const id = nextId('was-persistent');
      const persistent = await connect(broker.port, persistent311(id));
      await persistent.client.subscribe('clean/#', 1);
      await leave(persistent.client);
      await publish1(publisher.client, 'clean/3', 'queued for the persistent session');
      await connect(broker.port, { clientId: id, clean: true });
      await broker.stop();
      const stored = await broker.stored();
      assert.deepEqual(stored, { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [] });
    });

    test('limits.maxQueuedMessages: a full queue of a stored session refuses new messages (drop-new) across a restart', async () => {
      const broker = new Restartable(kind, { limits: { maxQueuedMessages: 3 } });
      await broker.start();
      const id = nextId('full');
      const first = await connect(broker.port, persistent311(id));
      await first.client.subscribe('full/t', 1);
      await leave(first.client);
      const publisher = await connect(broker.port, { clientId: nextId('pub') });
      for (let i = 1; i <= 5; i++) await publish1(publisher.client, 'full/t', `m${i}`);
      await broker.stop();
      const stored = await broker.stored();
      assert.equal(stored.deliveries.filter((d) => d.clientId === id).length, 3);
      assert.equal(stored.messages.length, 3, 'refused messages are not stored');
      await broker.start();
      const back = await connect(broker.port, persistent311(id));
      assert.deepEqual(payloads(await receiveAndAck(back.client, 3)), ['m1', 'm2', 'm3']);
      await back.client.expectSilence(100);
      await broker.stop();
    });
  });
}

/** A broker built directly on a store and a net server (the broker core alone, no composition root). */
class DirectBroker {
  broker: Broker | undefined;
  private server: net.Server | undefined;
  port = 0;

  constructor(
    private readonly openStore: () => Persistence,
    private readonly init: BrokerInit,
  ) {}

  async start(): Promise<Broker> {
    const store = this.openStore();
    const broker = new Broker({ ...this.init, store });
    await broker.restore();
    const server = net.createServer((socket) => {
      broker.accept(socket, socket.remoteAddress === undefined ? { listener: 'tcp' } : { listener: 'tcp', remoteAddress: socket.remoteAddress });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.broker = broker;
    this.server = server;
    running.add(this);
    return broker;
  }

  async stop(): Promise<void> {
    const { broker, server } = this;
    this.broker = undefined;
    this.server = undefined;
    running.delete(this);
    if (broker === undefined || server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await broker.close();
    await closed;
    await broker.options.store?.close();
  }
}

function storeFactory(kind: Kind): { open: () => Persistence; load: () => Promise<StoredState> } {
  if (kind === 'memory') {
    const memory = new MemoryPersistence();
    return { open: () => memory, load: () => memory.load() };
  }
  const dataDir = join(tmpRoot, `direct-${++dirCounter}`);
  return { open: () => new LmdbPersistence({ dataDir }), load: () => loadLmdb(dataDir) };
}

for (const kind of KINDS) {
  describe(`60 persistence limits and policies (${kind}; a Broker built directly on the store)`, () => {
    test('queueFullPolicy drop-oldest: the newest messages are kept, stored and delivered after a restart', async () => {
      const factory = storeFactory(kind);
      const direct = new DirectBroker(factory.open, { maxQueuedMessages: 3, queueFullPolicy: 'drop-oldest' });
      await direct.start();
      const id = nextId('oldest');
      const first = await connect(direct.port, persistent311(id));
      await first.client.subscribe('oldest/t', 1);
      await leave(first.client);
      const publisher = await connect(direct.port, { clientId: nextId('pub') });
      for (let i = 1; i <= 5; i++) await publish1(publisher.client, 'oldest/t', `m${i}`);
      await direct.stop();
      const stored = await factory.load();
      assert.equal(stored.deliveries.filter((d) => d.clientId === id).length, 3);
      assert.equal(stored.messages.length, 3, 'dropped messages are deleted from the store');
      await direct.start();
      const back = await connect(direct.port, persistent311(id));
      assert.deepEqual(payloads(await receiveAndAck(back.client, 3)), ['m3', 'm4', 'm5']);
      await direct.stop();
    });

    test('queueFullPolicy drop-oldest: each dropped message is counted in the broker metrics', async () => {
      const factory = storeFactory(kind);
      const direct = new DirectBroker(factory.open, { maxQueuedMessages: 3, queueFullPolicy: 'drop-oldest' });
      const broker = await direct.start();
      const id = nextId('oldest-count');
      const first = await connect(direct.port, persistent311(id));
      await first.client.subscribe('oldest-count/t', 1);
      await leave(first.client);
      const publisher = await connect(direct.port, { clientId: nextId('pub') });
      for (let i = 1; i <= 5; i++) await publish1(publisher.client, 'oldest-count/t', `m${i}`);
      assert.equal(broker.query.client(id)?.droppedQueueFull, 2, 'the session counts them');
      assert.equal(broker.stats.droppedQueueFull, 2, 'the broker metrics (queue_full) count them too');
      await direct.stop();
    });

    test('queueFullPolicy drop-new: the oldest messages are kept', async () => {
      const factory = storeFactory(kind);
      const direct = new DirectBroker(factory.open, { maxQueuedMessages: 3, queueFullPolicy: 'drop-new' });
      await direct.start();
      const id = nextId('new');
      const first = await connect(direct.port, persistent311(id));
      await first.client.subscribe('new/t', 1);
      await leave(first.client);
      const publisher = await connect(direct.port, { clientId: nextId('pub') });
      for (let i = 1; i <= 5; i++) await publish1(publisher.client, 'new/t', `m${i}`);
      assert.equal(direct.broker!.stats.droppedQueueFull, 2);
      await direct.stop();
      await direct.start();
      const back = await connect(direct.port, persistent311(id));
      assert.deepEqual(payloads(await receiveAndAck(back.client, 3)), ['m1', 'm2', 'm3']);
      await direct.stop();
    });

    test('maxRetainedMessages with drop-new: a retained message on a new topic is not kept, before or after a restart', async () => {
      const factory = storeFactory(kind);
      const direct = new DirectBroker(factory.open, { maxRetainedMessages: 2, retainedFullPolicy: 'drop-new' });
      await direct.start();
      const publisher = await connect(direct.port, { clientId: nextId('pub') });
      await publishRetained(publisher.client, 'rn/a', 'A');
      await publishRetained(publisher.client, 'rn/b', 'B');
      await publishRetained(publisher.client, 'rn/c', 'C');
      assert.equal(direct.broker!.stats.droppedRetainedFull, 1);
      await direct.stop();
      await direct.start();
      const again = await connect(direct.port, { clientId: nextId('pub') });
      await publishRetained(again.client, 'rn/d', 'D');
      await publishRetained(again.client, 'rn/a', 'A2');
      const subscriber = await connect(direct.port, { clientId: nextId('sub') });
      await subscriber.client.subscribe('rn/#', 0);
      const received = await subscriber.client.expectMany('publish', 2);
      assert.deepEqual(received.map((p) => `${p.topic}=${p.payload.toString()}`).sort(), ['rn/a=A2', 'rn/b=B']);
      await direct.stop();
    });

    test('maxRetainedMessages with drop-oldest: the least recently set topic goes, and that order survives a restart', async () => {
      const factory = storeFactory(kind);
      const direct = new DirectBroker(factory.open, { maxRetainedMessages: 2, retainedFullPolicy: 'drop-oldest' });
      await direct.start();
      const publisher = await connect(direct.port, { clientId: nextId('pub') });
      // Set in an order that is not the alphabetical one.
      await publishRetained(publisher.client, 'ro/z', 'Z');
      await publishRetained(publisher.client, 'ro/y', 'Y');
      await direct.stop();
      await direct.start();
      const again = await connect(direct.port, { clientId: nextId('pub') });
      await publishRetained(again.client, 'ro/x', 'X');
      const subscriber = await connect(direct.port, { clientId: nextId('sub') });
      await subscriber.client.subscribe('ro/#', 0);
      const received = await subscriber.client.expectMany('publish', 2);
      assert.deepEqual(received.map((p) => p.topic).sort(), ['ro/x', 'ro/y'], 'ro/z was set first, so it is the one dropped');
      await direct.stop();
    });
  });
}

/** Wraps a store: applies can be delayed, and what became durable is recorded. */
class DelayedStore implements Persistence {
  readonly name = 'delayed';
  delayMs = 0;
  /** Operations whose apply has resolved, in order. */
  readonly durable: StoreOp[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly inner: Persistence) {}

  load(): Promise<StoredState> {
    return this.inner.load();
  }

  apply(ops: readonly StoreOp[]): Promise<void> {
    const delay = this.delayMs;
    const done = this.chain
      .then(() => this.inner.apply(ops))
      .then(() => sleep(delay))
      .then(() => {
        this.durable.push(...ops);
      });
    this.chain = done;
    return done;
  }

  close(): Promise<void> {
    return this.chain.then(() => this.inner.close());
  }
}

/**
 * Wraps a memory store to simulate a crash: while `held`, applies wait (not yet on disk); `crash()`
 * throws away everything waiting and lets nothing through afterwards; `fail` rejects the next apply.
 */
class CrashableStore implements Persistence {
  readonly name = 'crashable';
  held = false;
  failNext = false;
  private crashed = false;
  private waiting: { ops: readonly StoreOp[]; resolve: () => void }[] = [];

  constructor(readonly inner: MemoryPersistence) {}

  load(): Promise<StoredState> {
    return this.inner.load();
  }

  apply(ops: readonly StoreOp[]): Promise<void> {
    if (this.crashed) return Promise.resolve();
    if (this.failNext && ops.length > 0) {
      this.failNext = false;
      return Promise.reject(new Error('simulated write failure'));
    }
    if (!this.held && this.waiting.length === 0) return this.inner.apply(ops);
    return new Promise((resolve) => this.waiting.push({ ops, resolve }));
  }

  /** Lets the waiting applies through, in order. */
  async release(): Promise<void> {
    this.held = false;
    const waiting = this.waiting;
    this.waiting = [];
    for (const { ops, resolve } of waiting) {
      await this.inner.apply(ops);
      resolve();
    }
  }

  /** The process dies: what was waiting never reaches the disk. */
  crash(): void {
    this.crashed = true;
    this.waiting = [];
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** True when a packet of `type` with `packetId` arrives within `ms` (other packets are kept aside). */
async function arrives(client: RawClient, type: 'puback' | 'pubrec' | 'pubcomp', packetId: number, ms: number, seen: Packet[] = []): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    let packet: Packet;
    try {
      packet = await client.next(Math.max(1, deadline - Date.now()));
    } catch {
      return false;
    }
    seen.push(packet);
    if (packet.type === type && packet.packetId === packetId) return true;
  }
}

describe('60 durable acknowledgements', () => {
  async function offlineSubscriber(port: number, topic: string, qos: QoS): Promise<string> {
    const id = nextId('offline');
    const first = await connect(port, persistent311(id));
    await first.client.subscribe(topic, qos);
    await leave(first.client);
    return id;
  }

  test('durability full (LMDB): a PUBACK for a message to an offline persistent session comes only after the commit', async () => {
    const store = new DelayedStore(new LmdbPersistence({ dataDir: join(tmpRoot, `ack-${++dirCounter}`), sync: true }));
    const server = await startTestBroker({ store, durability: 'full' });
    const stopper = { stop: () => server.close() };
    running.add(stopper);
    const id = await offlineSubscriber(server.port, 'dur/t', 1);
    const publisher = await connect(server.port, { clientId: nextId('pub') });
    store.delayMs = 300;
    const started = Date.now();
    const packetId = publisher.client.publish('dur/t', 'durable', 1);
    const puback = await publisher.client.expect('puback', 3000);
    const elapsed = Date.now() - started;
    assert.equal(puback.packetId, packetId);
    assert.ok(elapsed >= 280, `PUBACK after the delayed commit (${elapsed} ms)`);
    assert.ok(
      store.durable.some((op) => op.op === 'putDelivery' && op.delivery.clientId === id),
      'the delivery to the offline session was durable when the PUBACK arrived',
    );

    // QoS 2: PUBREC waits the same way.
    const started2 = Date.now();
    const id2 = publisher.client.publish('dur/t', 'durable 2', 2);
    assert.equal((await publisher.client.expect('pubrec', 3000)).packetId, id2);
    assert.ok(Date.now() - started2 >= 280, 'PUBREC after the delayed commit');
    publisher.client.send({ type: 'pubrel', packetId: id2 });
    await publisher.client.expect('pubcomp', 3000);
    store.delayMs = 0;
    running.delete(stopper);
    await server.close();
  });

  test('[MQTT-4.3.3-2] exactly once with an ONLINE persistent subscriber: a first QoS 2 delivery waits for its commit, later deliveries keep their order', async () => {
    const store = new DelayedStore(new MemoryPersistence());
    const server = await startTestBroker({ store, durability: 'full' });
    const stopper = { stop: () => server.close() };
    running.add(stopper);
    const subscriber = await connect(server.port, { clientId: nextId('online'), clean: false });
    await subscriber.client.subscribe([['q2/t', 2], ['q0/t', 0]]);
    const publisher = await connect(server.port, { clientId: nextId('pub') });
    store.delayMs = 300;
    const started = Date.now();
    publisher.client.publish('q2/t', 'exactly once', 2);
    await sleep(20);
    server.publish({ topic: 'q0/t', payload: 'after it' });
    const first = await subscriber.client.expect('publish', 3000);
    const elapsed = Date.now() - started;
    assert.equal(first.payload.toString(), 'exactly once');
    assert.ok(elapsed >= 280, `the QoS 2 PUBLISH waited for the commit (${elapsed} ms)`);
    assert.ok(store.durable.some((op) => op.op === 'putDelivery' && op.delivery.qos === 2), 'its delivery record was durable first');
    const second = await subscriber.client.expect('publish', 3000);
    assert.equal(second.payload.toString(), 'after it', 'the QoS 0 message sent later did not overtake it');
    store.delayMs = 0;
    running.delete(stopper);
    await server.close();
  });

  test('acknowledgements stay in order: a non-durable PUBACK waits behind a durable one on the same connection', async () => {
    const store = new DelayedStore(new LmdbPersistence({ dataDir: join(tmpRoot, `order-${++dirCounter}`), sync: true }));
    const server = await startTestBroker({ store, durability: 'full' });
    const stopper = { stop: () => server.close() };
    running.add(stopper);
    await offlineSubscriber(server.port, 'ord/durable', 1);
    const publisher = await connect(server.port, { clientId: nextId('pub') });
    store.delayMs = 300;
    const durableId = publisher.client.publish('ord/durable', 'stored', 1);
    const plainId = publisher.client.publish('ord/nobody', 'not stored', 1);
    const started = Date.now();
    const first = await publisher.client.expect('puback', 3000);
    const second = await publisher.client.expect('puback', 3000);
    assert.deepEqual([first.packetId, second.packetId], [durableId, plainId], '[MQTT-4.6.0-2] PUBACKs in the order of the PUBLISHes');
    assert.ok(Date.now() - started >= 250, 'the second PUBACK waited for the first');
    store.delayMs = 0;
    running.delete(stopper);
    await server.close();
  });

  test('durability relaxed: the PUBACK does not wait for the store', async () => {
    const store = new DelayedStore(new MemoryPersistence());
    const server = await startTestBroker({ store, durability: 'relaxed' });
    const stopper = { stop: () => server.close() };
    running.add(stopper);
    await offlineSubscriber(server.port, 'rlx/t', 1);
    const publisher = await connect(server.port, { clientId: nextId('pub') });
    store.delayMs = 500;
    const started = Date.now();
    publisher.client.publish('rlx/t', 'fast', 1);
    await publisher.client.expect('puback', 3000);
    assert.ok(Date.now() - started < 400, 'acknowledged before the commit');
    store.delayMs = 0;
    running.delete(stopper);
    await server.close();
  });

  test('[MQTT-4.3.3] PUBCOMP is sent only once the released QoS 2 id is durably forgotten', async () => {
    const store = new CrashableStore(new MemoryPersistence());
    const server = await startTestBroker({ store, durability: 'full' });
    const stopper = { stop: () => server.close() };
    running.add(stopper);
    await offlineSubscriber(server.port, 'pc/t', 2);
    const publisher = await connect(server.port, persistent311(nextId('pc-pub')));
    publisher.client.publish('pc/t', 'first', 2, { packetId: 7 });
    await publisher.client.expect('pubrec');
    store.held = true;
    publisher.client.send({ type: 'pubrel', packetId: 7 });
    const early = await arrives(publisher.client, 'pubcomp', 7, 300);
    await store.release();
    assert.equal(early, false, 'PUBCOMP arrived while the deletion of the QoS 2 id was not yet stored');
    running.delete(stopper);
    await server.close();
  });

  test('exactly once across a crash: a packet id the broker completed (PUBCOMP) may be reused by the publisher', async () => {
    const memory = new MemoryPersistence();
    let store = new CrashableStore(memory);
    let server = await startTestBroker({ store, durability: 'full' });
    let stopper = { stop: () => server.close() };
    running.add(stopper);
    const subscriberId = await offlineSubscriber(server.port, 'reuse/t', 2);
    const publisherId = nextId('reuse-pub');
    const publisher = await connect(server.port, persistent311(publisherId));
    publisher.client.publish('reuse/t', 'first', 2, { packetId: 7 });
    await publisher.client.expect('pubrec');
    store.held = true;
    publisher.client.send({ type: 'pubrel', packetId: 7 });
    const completed = await arrives(publisher.client, 'pubcomp', 7, 300);
    // The broker dies before the release of id 7 reaches the disk.
    store.crash();
    running.delete(stopper);
    await server.close();
    store = new CrashableStore(memory);
    server = await startTestBroker({ store, durability: 'full' });
    stopper = { stop: () => server.close() };
    running.add(stopper);

    const back = await connect(server.port, persistent311(publisherId));
    if (!completed) {
      // Never completed: the publisher resends its PUBREL [MQTT-4.4.0-1].
      back.client.send({ type: 'pubrel', packetId: 7 });
      await back.client.expect('pubcomp');
    }
    // Id 7 is free as far as the publisher knows: a new message may use it.
    await publish2(back.client, 'reuse/t', 'second', 7);
    const subscriber = await connect(server.port, persistent311(subscriberId));
    const received = await drainFor(subscriber.client, 500);
    assert.deepEqual(payloads(received), ['first', 'second'], 'the second message (same packet id, new message) is delivered');
    running.delete(stopper);
    await server.close();
  });

  test('a failed commit never releases the acknowledgements that depended on it', async () => {
    const store = new CrashableStore(new MemoryPersistence());
    const server = await startTestBroker({ store, durability: 'full' });
    const stopper = { stop: () => server.close() };
    running.add(stopper);
    await offlineSubscriber(server.port, 'fail/t', 1);
    const publisher = await connect(server.port, { clientId: nextId('pub') });
    store.failNext = true;
    const lost = publisher.client.publish('fail/t', 'not stored', 1);
    await sleep(100);
    publisher.client.publish('fail/t', 'stored', 1);
    const seen: Packet[] = [];
    const acked = await arrives(publisher.client, 'puback', lost, 500, seen);
    assert.equal(acked, false, `PUBACK ${lost} was sent for a message the store failed to write (saw ${seen.map((p) => p.type).join(', ')})`);
    running.delete(stopper);
    await server.close();
  });
});

describe('60 store contents (lmdb)', () => {
  test('a Clean Start over a stored session: the old session’s deliveries do not come back after a restart', async () => {
    const broker = new Restartable('lmdb');
    await broker.start();
    const id = nextId('cs');
    const first = await connect(broker.port, persistent5(id, 3600));
    await first.client.subscribe('cs/t', 1);
    await leave(first.client);
    // Messages for the old session, then, before their commit is known to be done, a Clean Start.
    const fresh = await RawClient.connect(broker.port);
    openClients.add(fresh);
    for (let i = 0; i < 50; i++) broker.server!.publish({ topic: 'cs/t', payload: `old ${i}`, qos: 1 });
    // connectMqtt sends the CONNECT before its first await: in the same turn as the publications.
    const connack = await fresh.connectMqtt({ clientId: id, clean: true, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
    assert.equal(connack.sessionPresent, false);
    await leave(fresh);
    await broker.stop();
    const stored = await broker.stored();
    assert.equal(stored.deliveries.filter((d) => d.clientId === id).length, 0, 'the discarded session’s deliveries were deleted with it');

    await broker.start();
    const back = await connect(broker.port, persistent5(id, 3600));
    assert.equal(back.sessionPresent, true);
    assert.deepEqual(payloads(await drainFor(back.client, 300)), [], 'nothing of the discarded session is delivered');
    await broker.stop();
  });

  test('LmdbPersistence: deleteSession removes deliveries written by an apply that is not yet committed', async () => {
    const dataDir = join(tmpRoot, `del-${++dirCounter}`);
    const store = new LmdbPersistence({ dataDir });
    const put = store.apply([
      { op: 'putSession', session: { clientId: 'c', expiryInterval: 60, subscriptions: [] } },
      { op: 'putDelivery', delivery: { clientId: 'c', seq: 1, messageId: 1, qos: 1, retain: false, state: 'queued' } },
      { op: 'putIncomingQos2', clientId: 'c', packetId: 4 },
    ]);
    const deleted = store.apply([{ op: 'deleteSession', clientId: 'c' }]);
    await Promise.all([put, deleted]);
    await store.close();
    const state = await loadLmdb(dataDir);
    assert.deepEqual(state.sessions, []);
    assert.deepEqual(state.deliveries, [], 'no delivery outlives its session');
    assert.deepEqual(state.incomingQos2, []);
  });
});

describe('60 identity across a restart', () => {
  test('receive authorization still applies to an offline session restored after a restart (its client identity is stored)', async () => {
    const store = new MemoryPersistence();
    const plugin: BrokerPlugin = { name: 'no-secrets-for-bob', authorizeReceive: (client, topic) => (client.username === 'bob' && topic.startsWith('secret/') ? false : undefined) };
    const first = await startTestBroker({ store, plugins: [plugin] });
    const firstClients = new TestClients(() => first.port);
    const bob = await firstClients.rawConnected({ clientId: 'bob-device', clean: false, username: 'bob' });
    await bob.subscribe('#', 1);
    bob.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await firstClients.closeAll();
    await first.close();

    const second = await startTestBroker({ store, plugins: [plugin] });
    const secondClients = new TestClients(() => second.port);
    try {
      second.publish({ topic: 'secret/plans', payload: 'no', qos: 1 });
      second.publish({ topic: 'public/news', payload: 'yes', qos: 1 });
      const back = await secondClients.raw();
      const connack = await back.connectMqtt({ clientId: 'bob-device', clean: false, username: 'bob' });
      assert.equal(connack.sessionPresent, true);
      const delivered = await back.expect('publish');
      assert.equal(delivered.topic, 'public/news');
      back.send({ type: 'puback', packetId: delivered.packetId! });
      await back.expectSilence(200);
    } finally {
      await secondClients.closeAll();
      await second.close();
    }
  });
});
