/** The client against a scripted fake server (our codec on a real loopback socket): flows the real brokers hide. */
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  ConnectionRefusedError,
  KeepAliveTimeoutError,
  ServerDisconnectError,
  TimeoutError,
  connect,
  MqttClient,
  reasonName,
  resolveOptions,
  type Message,
} from '../../../src/client/index.js';
import { PacketDecoder, encodePacket, type Packet, type ProtocolVersion } from '../../../src/protocol/index.js';

interface FakeSession {
  socket: Socket;
  packets: Packet[];
  version: ProtocolVersion;
  send(p: Packet): void;
  next(type: Packet['type'], timeoutMs?: number): Promise<Packet>;
}

/** A server whose every connection calls `script`; packets are decoded with our codec. */
async function fakeServer(script: (s: FakeSession) => void | Promise<void>): Promise<{ server: Server; port: number; sessions: FakeSession[] }> {
  const sessions: FakeSession[] = [];
  const server = createServer((socket) => {
    const decoder = new PacketDecoder();
    const waiters: Array<() => void> = [];
    const s: FakeSession = {
      socket,
      packets: [],
      version: 4,
      send: (p) => socket.write(encodePacket(p, s.version)),
      async next(type, timeoutMs = 3000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const i = s.packets.findIndex((p) => p.type === type);
          if (i >= 0) return s.packets.splice(i, 1)[0]!;
          if (Date.now() > deadline) throw new Error(`no ${type} within ${timeoutMs} ms`);
          await new Promise<void>((resolve) => {
            waiters.push(resolve);
            setTimeout(resolve, 50);
          });
        }
      },
    };
    sessions.push(s);
    sockets.push(socket);
    socket.on('data', (chunk: Buffer) => {
      for (const p of decoder.push(chunk)) {
        if (p.type === 'connect') s.version = p.protocolVersion;
        s.packets.push(p);
      }
      waiters.splice(0).forEach((w) => w());
    });
    socket.on('error', () => undefined);
    void script(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(typeof address === 'object' && address !== null);
  return { server, port: address.port, sessions };
}

const servers: Server[] = [];
const sockets: Socket[] = [];
const clients: MqttClient[] = [];

after(() => {
  for (const c of clients) c.destroy();
  for (const s of servers) {
    s.close();
  }
  for (const socket of sockets) {
    socket.destroy();
  }
});

async function accept(s: FakeSession, sessionPresent = false): Promise<void> {
  await s.next('connect');
  s.send({ type: 'connack', sessionPresent, reasonCode: 0 });
}

describe('client (fake server)', () => {
  test('a refused CONNACK rejects connect() with ConnectionRefusedError naming the code in words', async () => {
    const fake = await fakeServer(async (s) => {
      await s.next('connect');
      s.send({ type: 'connack', sessionPresent: false, reasonCode: 5 });
    });
    servers.push(fake.server);
    await assert.rejects(connect(`mqtt://127.0.0.1:${fake.port}`, { reconnect: false }), (error: unknown) => {
      assert.ok(error instanceof ConnectionRefusedError);
      assert.equal(error.code, 'ERR_CONNECTION_REFUSED');
      assert.equal(error.reasonCode, 5);
      assert.equal(error.reasonName, 'not authorized');
      assert.match(error.message, /not authorized/);
      return true;
    });
    assert.equal(reasonName(0x86), 'bad user name or password');
    assert.equal(reasonName(4, 4, true), 'bad user name or password');
  });

  test('no CONNACK within connectTimeout rejects with TimeoutError', async () => {
    const fake = await fakeServer(() => undefined);
    servers.push(fake.server);
    await assert.rejects(connect({ host: '127.0.0.1', port: fake.port, connectTimeout: 300, reconnect: false }), TimeoutError);
  });

  test('an unacknowledged QoS 1 PUBLISH is resent with DUP and the same packet id after a reconnect [MQTT-4.4.0-1]', async () => {
    const fake = await fakeServer(async (s) => {
      await accept(s, true);
    });
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, clientId: 'dup-test', clean: false, reconnect: { initialDelay: 20, maxDelay: 50 } });
    clients.push(client);
    const done = client.publish('t', 'hello', { qos: 1 });
    const first = await fake.sessions[0]!.next('publish');
    assert.ok(first.type === 'publish' && !first.dup && first.packetId !== undefined);
    fake.sessions[0]!.socket.destroy();
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const again = await fake.sessions[1]!.next('publish');
    assert.ok(again.type === 'publish');
    assert.equal(again.dup, true);
    assert.equal(again.packetId, first.packetId);
    assert.equal(again.payload.toString(), 'hello');
    fake.sessions[1]!.send({ type: 'puback', packetId: again.packetId });
    assert.deepEqual(await done, { reasonCode: 0 });
    await client.end();
  });

  test('after PUBREC, a reconnect resends PUBREL, and publish resolves on PUBCOMP', async () => {
    const fake = await fakeServer(async (s) => accept(s, true));
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, clientId: 'q2', clean: false, reconnect: { initialDelay: 20, maxDelay: 50 } });
    clients.push(client);
    const done = client.publish('t', 'x', { qos: 2 });
    const p = await fake.sessions[0]!.next('publish');
    assert.ok(p.type === 'publish');
    fake.sessions[0]!.send({ type: 'pubrec', packetId: p.packetId! });
    await fake.sessions[0]!.next('pubrel');
    fake.sessions[0]!.socket.destroy();
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const rel = await fake.sessions[1]!.next('pubrel');
    assert.ok(rel.type === 'pubrel' && rel.packetId === p.packetId);
    fake.sessions[1]!.send({ type: 'pubcomp', packetId: p.packetId });
    assert.equal((await done).reasonCode, 0);
    await client.end();
  });

  test('resubscribes when the server has no session (Session Present 0)', async () => {
    const fake = await fakeServer(async (s) => {
      await accept(s, false);
      const sub = await s.next('subscribe');
      assert.ok(sub.type === 'subscribe');
      s.send({ type: 'suback', packetId: sub.packetId, reasonCodes: sub.subscriptions.map((r) => r.qos) });
    });
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, reconnect: { initialDelay: 20, maxDelay: 50 } });
    clients.push(client);
    const sub = await client.subscribe(['a/+', 'b'], { qos: 1 });
    assert.deepEqual(sub.reasonCodes, [1, 1]);
    fake.sessions[0]!.socket.destroy();
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(fake.sessions.length, 2);
    // the second session's script consumed the SUBSCRIBE; it must have held both filters
    fake.sessions[1]!.send({ type: 'publish', topic: 'a/x', payload: Buffer.from('m'), qos: 0, retain: false, dup: false });
    const it = sub[Symbol.asyncIterator]();
    const m = await it.next();
    assert.equal(m.value?.topic, 'a/x');
    await client.end();
  });

  test('an inbound QoS 2 duplicate is delivered once; PUBREC, then PUBCOMP on PUBREL', async () => {
    const fake = await fakeServer(async (s) => accept(s));
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, reconnect: false });
    clients.push(client);
    const got: string[] = [];
    client.on('message', (m) => got.push(m.payload.toString()));
    const s = fake.sessions[0]!;
    s.send({ type: 'publish', topic: 't', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, packetId: 7 });
    s.send({ type: 'publish', topic: 't', payload: Buffer.from('once'), qos: 2, retain: false, dup: true, packetId: 7 });
    assert.equal((await s.next('pubrec')).type, 'pubrec');
    await s.next('pubrec');
    s.send({ type: 'pubrel', packetId: 7 });
    const comp = await s.next('pubcomp');
    assert.ok(comp.type === 'pubcomp' && comp.packetId === 7);
    assert.deepEqual(got, ['once']);
    await client.end();
  });

  test('keep-alive: PINGREQ when idle, and a server that stops answering is detected as dead', async () => {
    const fake = await fakeServer(async (s) => accept(s)); // never answers PINGREQ
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, keepalive: 1, reconnect: false });
    clients.push(client);
    const closed = new Promise<Error | undefined>((resolve) => client.once('close', resolve));
    await fake.sessions[0]!.next('pingreq', 2000);
    const error = await closed;
    assert.ok(error instanceof KeepAliveTimeoutError, String(error));
    assert.equal(client.state, 'closed');
  });

  test('a v5 server DISCONNECT is surfaced as ServerDisconnectError with the reason in words', async () => {
    const fake = await fakeServer(async (s) => {
      await accept(s);
      await new Promise((resolve) => setTimeout(resolve, 50));
      s.send({ type: 'disconnect', reasonCode: 0x8b, properties: { reasonString: 'maintenance' } });
    });
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, protocolVersion: 5, reconnect: false });
    clients.push(client);
    const error = await new Promise<Error | undefined>((resolve) => client.once('close', resolve));
    assert.ok(error instanceof ServerDisconnectError);
    assert.equal(error.reasonCode, 0x8b);
    assert.equal(error.reasonName, 'server shutting down');
    assert.match(error.message, /maintenance/);
  });

  test('v5 incoming topic aliases are resolved', async () => {
    const fake = await fakeServer(async (s) => accept(s));
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, protocolVersion: 5, properties: { topicAliasMaximum: 5 }, reconnect: false });
    clients.push(client);
    const topics: string[] = [];
    client.on('message', (m) => topics.push(m.topic));
    const s = fake.sessions[0]!;
    s.send({ type: 'publish', topic: 'long/topic', payload: Buffer.from('1'), qos: 1, retain: false, dup: false, packetId: 1, properties: { topicAlias: 2 } });
    s.send({ type: 'publish', topic: '', payload: Buffer.from('2'), qos: 1, retain: false, dup: false, packetId: 2, properties: { topicAlias: 2 } });
    await s.next('puback');
    await s.next('puback');
    assert.deepEqual(topics, ['long/topic', 'long/topic']);
    await client.end();
  });

  test('manualAck, QoS 1: no PUBACK until acknowledge(), then one', async () => {
    const fake = await fakeServer(async (s) => accept(s));
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, manualAck: true, reconnect: false });
    clients.push(client);
    const received = new Promise<Message>((resolve) => client.once('message', resolve));
    const s = fake.sessions[0]!;
    s.send({ type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 3 });
    const message = await received;
    // A QoS 0 marker after receipt: a PUBACK sent on receipt would have arrived before it.
    await client.publish('marker', '');
    await s.next('publish');
    assert.equal(s.packets.filter((p) => p.type === 'puback').length, 0);
    assert.equal(client.acknowledge(message), true);
    const ack = await s.next('puback');
    assert.ok(ack.type === 'puback' && ack.packetId === 3);
    assert.equal(client.acknowledge(message), false, 'acknowledged once');
    await client.end();
  });

  test('manualAck, QoS 2: a duplicate is not delivered again nor acknowledged before the application; PUBREC, PUBREL, PUBCOMP after', async () => {
    const fake = await fakeServer(async (s) => accept(s));
    servers.push(fake.server);
    const client = await connect({ host: '127.0.0.1', port: fake.port, manualAck: true, reconnect: false });
    clients.push(client);
    const got: Message[] = [];
    client.on('message', (m) => got.push(m));
    const s = fake.sessions[0]!;
    s.send({ type: 'publish', topic: 't', payload: Buffer.from('once'), qos: 2, retain: false, dup: false, packetId: 9 });
    s.send({ type: 'publish', topic: 't', payload: Buffer.from('once'), qos: 2, retain: false, dup: true, packetId: 9 });
    await client.publish('marker', '');
    await s.next('publish');
    assert.equal(got.length, 1);
    assert.equal(s.packets.filter((p) => p.type === 'pubrec').length, 0);
    client.acknowledge(got[0]!);
    const rec = await s.next('pubrec');
    assert.ok(rec.type === 'pubrec' && rec.packetId === 9);
    s.send({ type: 'pubrel', packetId: 9 });
    const comp = await s.next('pubcomp');
    assert.ok(comp.type === 'pubcomp' && comp.packetId === 9);
    await client.end();
  });

  test('startInBackground over a custom stream: a refusal is retried (retryRefused), then connected', async () => {
    let attempts = 0;
    const fake = await fakeServer(async (s) => {
      await s.next('connect');
      attempts++;
      s.send({ type: 'connack', sessionPresent: false, reasonCode: attempts === 1 ? 5 : 0 });
    });
    servers.push(fake.server);
    const client = new MqttClient(
      resolveOptions({ host: 'fake', stream: () => netConnect(fake.port, '127.0.0.1'), reconnect: { initialDelay: 10, maxDelay: 20, retryRefused: true } }),
    );
    clients.push(client);
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const connected = new Promise((resolve) => client.once('connect', resolve));
    client.startInBackground();
    await connected;
    assert.equal(attempts, 2);
    assert.equal(client.state, 'connected');
    assert.ok(errors[0] instanceof ConnectionRefusedError && errors[0].reasonCode === 5);
    await client.end();
  });

  test("bridge: true sends Mosquitto's bridge flag, protocol level 0x84", async () => {
    const first = new Promise<Buffer>((resolve) => {
      const server = createServer((socket) => {
        sockets.push(socket);
        socket.once('data', resolve);
      });
      servers.push(server);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (typeof address !== 'object' || address === null) return;
        const client = new MqttClient(resolveOptions({ host: '127.0.0.1', port: address.port, bridge: true, reconnect: { initialDelay: 1000 } }));
        clients.push(client);
        client.startInBackground();
      });
    });
    const bytes = await first;
    // Fixed header (2), "MQTT" with its length (6), then the level.
    assert.equal(bytes.subarray(2, 8).toString('latin1'), '\x00\x04MQTT');
    assert.equal(bytes[8], 0x84);
  });
});
