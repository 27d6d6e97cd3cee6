import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AuthenticateRequest, AuthenticateResult } from '../../src/broker/options.js';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { ConnectPacket } from '../../src/protocol/types.js';
import { startTestServer, type TestServer } from '../helpers/broker.js';
import { inProcessOnly } from '../helpers/worker-broker.js';
import { collectMessages, sleep, TestClients } from '../helpers/raw-client.js';

/** Offsets inside an encoded 3.1.1 CONNECT with a one-byte remaining length. */
const LEVEL_OFFSET = 8; // 0x10, len, 0x00 0x04 'M' 'Q' 'T' 'T', level
const FLAGS_OFFSET = 9;

function connectBytes(fields: Partial<Omit<ConnectPacket, 'type'>> = {}): Buffer {
  return encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'raw', ...fields }, 4);
}

/** A copy of a 3.1.1 CONNECT with one byte changed. */
function patched(bytes: Buffer, offset: number, value: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset] = value;
  return copy;
}

/** Sends `bytes` on a plain socket and resolves with everything received until the server closes. */
function exchangeBytes(port: number, bytes: Buffer, timeoutMs = 2000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    });
  });
}

describe('01 connect', () => {
  let server: TestServer;
  let authServer: TestServer;
  let asyncAuthServer: TestServer;
  let limitedServer: TestServer;
  let timeoutServer: TestServer;
  let shortIdServer: TestServer;
  const authCalls: AuthenticateRequest[] = [];
  let clients: TestClients;
  let authClients: TestClients;
  let asyncClients: TestClients;
  let limitedClients: TestClients;
  let timeoutClients: TestClients;
  let shortIdClients: TestClients;

  before(async () => {
    server = await startTestServer();
    authServer = await startTestServer({
      authenticate: (request): AuthenticateResult => {
        authCalls.push(request);
        const password = request.password?.toString();
        if (request.username === 'blocked') return 'not-authorized';
        if (request.username === 'down') return 'server-unavailable';
        return request.username === 'alice' && password === 'secret' ? 'accept' : 'bad-credentials';
      },
    });
    asyncAuthServer = await startTestServer({
      authenticate: async (request): Promise<AuthenticateResult> => {
        await sleep(100);
        return request.username === 'alice' ? 'accept' : 'not-authorized';
      },
    });
    limitedServer = await startTestServer({ limits: { maxConnections: 1 } });
    timeoutServer = await startTestServer({ limits: { connectTimeout: 1 } });
    // The lowest client id limit the configuration allows: the 23 bytes every server must accept.
    shortIdServer = await startTestServer({ limits: { maxClientIdLength: 23 } });
    clients = new TestClients(() => server.port);
    authClients = new TestClients(() => authServer.port);
    asyncClients = new TestClients(() => asyncAuthServer.port);
    limitedClients = new TestClients(() => limitedServer.port);
    timeoutClients = new TestClients(() => timeoutServer.port);
    shortIdClients = new TestClients(() => shortIdServer.port);
  });

  after(async () => {
    for (const set of [clients, authClients, asyncClients, limitedClients, timeoutClients, shortIdClients]) await set.closeAll();
    await Promise.all([server, authServer, asyncAuthServer, limitedServer, timeoutServer, shortIdServer].map((s) => s.close()));
  });

  test('[MQTT-3.1.4-4] CONNACK for an accepted 3.1.1 CONNECT is byte-exact 20 02 00 00', async () => {
    const reply = await exchangeBytes(server.port, Buffer.concat([connectBytes({ clientId: 'bytes' }), encodePacket({ type: 'disconnect' }, 4)]));
    assert.deepEqual([...reply], [0x20, 0x02, 0x00, 0x00]);
  });

  test('[MQTT-3.2.2-2] CONNACK resuming a stored session is byte-exact 20 02 01 00', async () => {
    const first = await clients.rawConnected({ clientId: 'bytes-persistent', clean: false });
    first.disconnect();
    await first.expectClosed();
    const reply = await exchangeBytes(
      server.port,
      Buffer.concat([connectBytes({ clientId: 'bytes-persistent', clean: false }), encodePacket({ type: 'disconnect' }, 4)]),
    );
    assert.deepEqual([...reply], [0x20, 0x02, 0x01, 0x00]);
  });

  test('[MQTT-3.1.0-1] first packet must be CONNECT: PINGREQ first closes the connection', async () => {
    const client = await clients.raw();
    client.send({ type: 'pingreq' });
    await client.expectClosed();
  });

  test('[MQTT-3.1.0-1] first packet must be CONNECT: SUBSCRIBE first closes the connection', async () => {
    const client = await clients.raw();
    client.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'a', qos: 0 }] });
    await client.expectClosed();
  });

  test('[MQTT-3.1.0-2] a second CONNECT closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: 'twice' });
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'twice' });
    await client.expectClosed();
  });

  test('[MQTT-3.1.2-2] unsupported protocol level (7 with name MQTT) gets CONNACK 0x01 then close', async () => {
    const client = await clients.raw();
    client.send(patched(connectBytes({ clientId: 'level7' }), LEVEL_OFFSET, 7));
    const connack = await client.expect('connack');
    assert.equal(connack.reasonCode, 0x01);
    assert.equal(connack.sessionPresent, false);
    await client.expectClosed();
  });

  test('[MQTT-3.1.2-2] CONNACK 0x01 is byte-exact 20 02 00 01', async () => {
    const reply = await exchangeBytes(server.port, patched(connectBytes({ clientId: 'level7b' }), LEVEL_OFFSET, 7));
    assert.deepEqual([...reply], [0x20, 0x02, 0x00, 0x01]);
  });

  test('[MQTT-3.1.2-1] [MQTT-3.2.2-6] unknown protocol name closes the connection without CONNACK', async () => {
    const client = await clients.raw();
    // 'MQTT' → 'MQTX': same length, so the rest of the packet stays well formed.
    client.send(patched(connectBytes({ clientId: 'badname' }), 7, 0x58));
    await client.expectClosed();
  });

  test('[MQTT-3.1.2-3] [MQTT-3.1.4-1] CONNECT with the reserved flag set closes the connection without CONNACK', async () => {
    const client = await clients.raw();
    const bytes = connectBytes({ clientId: 'reserved' });
    client.send(patched(bytes, FLAGS_OFFSET, (bytes[FLAGS_OFFSET] as number) | 0x01));
    await client.expectClosed();
  });

  test('[MQTT-3.1.2-22] password flag without user name flag closes the connection', async () => {
    const client = await clients.raw();
    const bytes = connectBytes({ clientId: 'pwonly' });
    // Flag 0x40 with no password field: both malformed and forbidden in 3.1.1.
    client.send(patched(bytes, FLAGS_OFFSET, (bytes[FLAGS_OFFSET] as number) | 0x40));
    await client.expectClosed();
  });

  test('MQTT 3.1 (MQIsdp, level 3) connects and publishes end to end', async () => {
    const raw = await clients.raw();
    const connack = await raw.connectMqtt({ protocolVersion: 3, protocolName: 'MQIsdp', clientId: 'v31-raw' });
    assert.equal(connack.reasonCode, 0);
    const suback = await raw.subscribe('v31/topic', 1);
    assert.deepEqual(suback.reasonCodes, [1]);

    const publisher = await clients.mqtt({ protocolVersion: 3, protocolId: 'MQIsdp', clientId: 'v31-mqttjs' });
    const sub = await publisher.subscribeAsync('v31/topic', { qos: 1 });
    assert.equal(sub[0]?.qos, 1);
    const received = collectMessages(publisher, 1);
    await publisher.publishAsync('v31/topic', 'hello 3.1', { qos: 1 });

    const publish = await raw.expect('publish');
    assert.equal(publish.topic, 'v31/topic');
    assert.equal(publish.payload.toString(), 'hello 3.1');
    assert.equal(publish.qos, 1);
    raw.send({ type: 'puback', packetId: publish.packetId as number });
    const [message] = await received;
    assert.equal(message?.payload.toString(), 'hello 3.1');
  });

  test('MQTT 3.1 with an empty client identifier gets CONNACK 0x02', async () => {
    const client = await clients.raw();
    const connack = await client.connectMqtt({ protocolVersion: 3, protocolName: 'MQIsdp', clientId: '' });
    assert.equal(connack.reasonCode, 0x02);
    await client.expectClosed();
  });

  test('[MQTT-3.1.3-8] empty client identifier with CleanSession=0 gets CONNACK 0x02 and close', async () => {
    const client = await clients.raw();
    const connack = await client.connectMqtt({ clientId: '', clean: false });
    assert.equal(connack.reasonCode, 0x02);
    assert.equal(connack.sessionPresent, false);
    await client.expectClosed();
  });

  test('[MQTT-3.1.3-5] client ids of 1 to 23 bytes of [0-9a-zA-Z] are accepted, even with the lowest id limit', async () => {
    const ids = ['0', 'z', 'Z', '0123456789abcdefghijklm', 'nopqrstuvwxyzABCDEFGHIJ', 'KLMNOPQRSTUVWXYZ0123456'];
    for (const clientId of ids) {
      const client = await shortIdClients.raw();
      const connack = await client.connectMqtt({ clientId });
      assert.equal(connack.reasonCode, 0, `client id "${clientId}" refused`);
      client.send({ type: 'pingreq' });
      await client.expect('pingresp');
      client.disconnect();
      await client.expectClosed();
    }
  });

  test('[MQTT-3.1.3-9] a client id the server rejects (over maxClientIdLength) gets CONNACK 0x02, then close', async () => {
    const client = await shortIdClients.raw();
    const connack = await client.connectMqtt({ clientId: 'a'.repeat(24) });
    assert.equal(connack.reasonCode, 0x02);
    assert.equal(connack.sessionPresent, false);
    await client.expectClosed();
  });

  test('[MQTT-3.1.3-6] empty client identifier with CleanSession=1 is accepted with a unique id', async () => {
    const a = await clients.rawConnected({ clientId: '' });
    const b = await clients.rawConnected({ clientId: '' });
    // Neither took the other over: both still answer PINGREQ.
    a.send({ type: 'pingreq' });
    b.send({ type: 'pingreq' });
    await a.expect('pingresp');
    await b.expect('pingresp');
    // And each receives only what it subscribed to.
    await a.subscribe('anon/a', 0);
    await b.subscribe('anon/b', 0);
    server.broker.publish({ topic: 'anon/a', payload: 'for a' });
    const got = await a.expect('publish');
    assert.equal(got.payload.toString(), 'for a');
    await b.expectSilence(150);
  });

  test('[MQTT-3.1.4-2] a second client with the same id makes the server close the first', async () => {
    const first = await clients.rawConnected({ clientId: 'takeover' });
    const second = await clients.rawConnected({ clientId: 'takeover' });
    await first.expectClosed();
    second.send({ type: 'pingreq' });
    await second.expect('pingresp');
  });

  test('accepted credentials: the authenticate hook sees client id, user name and password', inProcessOnly('an authenticate hook (a function)'), async () => {
    const client = await authClients.raw();
    const connack = await client.connectMqtt({ clientId: 'auth-ok', username: 'alice', password: Buffer.from('secret') });
    assert.equal(connack.reasonCode, 0);
    const call = authCalls.find((c) => c.clientId === 'auth-ok');
    assert.ok(call, 'authenticate was called');
    assert.equal(call.username, 'alice');
    assert.equal(call.password?.toString(), 'secret');
    client.send({ type: 'pingreq' });
    await client.expect('pingresp');
  });

  test('[MQTT-3.2.2-5] bad user name or password gets CONNACK 0x04 and close', inProcessOnly('an authenticate hook (a function)'), async () => {
    const client = await authClients.raw();
    const connack = await client.connectMqtt({ clientId: 'auth-bad', username: 'alice', password: Buffer.from('wrong') });
    assert.equal(connack.reasonCode, 0x04);
    await client.expectClosed();
  });

  test('[MQTT-3.2.2-5] not authorized gets CONNACK 0x05 and close', inProcessOnly('an authenticate hook (a function)'), async () => {
    const client = await authClients.raw();
    const connack = await client.connectMqtt({ clientId: 'auth-blocked', username: 'blocked', password: Buffer.from('x') });
    assert.equal(connack.reasonCode, 0x05);
    await client.expectClosed();
  });

  test('[MQTT-3.2.2-5] authentication hook saying server-unavailable gets CONNACK 0x03 and close', inProcessOnly('an authenticate hook (a function)'), async () => {
    const client = await authClients.raw();
    const connack = await client.connectMqtt({ clientId: 'auth-down', username: 'down', password: Buffer.from('x') });
    assert.equal(connack.reasonCode, 0x03);
    await client.expectClosed();
  });

  test('[MQTT-3.2.2-4] session present is 0 on a refused CONNECT even when a session is stored', inProcessOnly('an authenticate hook (a function)'), async () => {
    const good = await authClients.rawConnected({ clientId: 'auth-sp', clean: false, username: 'alice', password: Buffer.from('secret') });
    await good.subscribe('keep/me', 1);
    good.disconnect();
    await good.expectClosed();
    const bad = await authClients.raw();
    const connack = await bad.connectMqtt({ clientId: 'auth-sp', clean: false, username: 'alice', password: Buffer.from('wrong') });
    assert.equal(connack.reasonCode, 0x04);
    assert.equal(connack.sessionPresent, false);
    await bad.expectClosed();
    // The refused attempt left the stored session alone.
    const again = await authClients.raw();
    const resumed = await again.connectMqtt({ clientId: 'auth-sp', clean: false, username: 'alice', password: Buffer.from('secret') });
    assert.equal(resumed.reasonCode, 0);
    assert.equal(resumed.sessionPresent, true);
  });

  test('[MQTT-3.2.2-4] [MQTT-3.2.2-5] CONNACK 0x03 when maxConnections is reached; the first client is untouched', async () => {
    const first = await limitedClients.rawConnected({ clientId: 'only-one' });
    const second = await limitedClients.raw();
    const connack = await second.connectMqtt({ clientId: 'one-too-many' });
    assert.equal(connack.reasonCode, 0x03);
    assert.equal(connack.sessionPresent, false);
    await second.expectClosed();
    first.send({ type: 'pingreq' });
    await first.expect('pingresp');
    first.disconnect();
    await first.expectClosed();
  });

  test('async authenticate: packets sent right after CONNECT are processed in order after CONNACK', inProcessOnly('an authenticate hook (a function)'), async () => {
    const client = await asyncClients.raw();
    client.send(
      Buffer.concat([
        encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'async-ok', username: 'alice' }, 4),
        encodePacket({ type: 'subscribe', packetId: 7, subscriptions: [{ topicFilter: 'async/t', qos: 1 }] }, 4),
        encodePacket({ type: 'publish', topic: 'async/t', payload: Buffer.from('first'), qos: 1, retain: false, dup: false, packetId: 8 }, 4),
        encodePacket({ type: 'pingreq' }, 4),
      ]),
    );
    const connack = await client.expect('connack');
    assert.equal(connack.reasonCode, 0);
    const suback = await client.expect('suback');
    assert.equal(suback.packetId, 7);
    assert.deepEqual(suback.reasonCodes, [1]);
    const rest = [await client.next(), await client.next(), await client.next()];
    const publish = rest.find((p) => p.type === 'publish');
    assert.ok(publish?.type === 'publish', 'own message delivered');
    assert.equal(publish.payload.toString(), 'first');
    const puback = rest.find((p) => p.type === 'puback');
    assert.ok(puback?.type === 'puback' && puback.packetId === 8, 'PUBACK for packet 8');
    assert.equal(rest[2]?.type, 'pingresp', 'PINGRESP answers the last packet sent');
  });

  test('[MQTT-3.1.4-5] async authenticate refusal: CONNACK 0x05, and packets sent after CONNECT are not processed', inProcessOnly('an authenticate hook (a function)'), async () => {
    const client = await asyncClients.raw();
    client.send(
      Buffer.concat([
        encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'async-no', username: 'mallory' }, 4),
        encodePacket({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '#', qos: 0 }] }, 4),
        encodePacket({ type: 'pingreq' }, 4),
      ]),
    );
    const connack = await client.expect('connack');
    assert.equal(connack.reasonCode, 0x05);
    await client.expectClosed();
  });

  test('[MQTT-3.1.4-5] after a refused CONNECT, packets sent behind it are not processed', inProcessOnly('an authenticate hook (a function)'), async () => {
    const watcher = await authClients.rawConnected({ clientId: 'refused-watcher', username: 'alice', password: Buffer.from('secret') });
    await watcher.subscribe('refused/#', 1);
    const client = await authClients.raw();
    client.send(
      Buffer.concat([
        encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'refused', username: 'alice', password: Buffer.from('wrong') }, 4),
        encodePacket({ type: 'publish', topic: 'refused/t', payload: Buffer.from('must not arrive'), qos: 1, retain: false, dup: false, packetId: 1 }, 4),
        encodePacket({ type: 'subscribe', packetId: 2, subscriptions: [{ topicFilter: '#', qos: 0 }] }, 4),
        encodePacket({ type: 'pingreq' }, 4),
      ]),
    );
    const connack = await client.expect('connack');
    assert.equal(connack.reasonCode, 0x04);
    // No PUBACK, SUBACK or PINGRESP: the close follows the CONNACK directly.
    await client.expectClosed();
    await watcher.expectSilence(150);
  });

  test('[MQTT-3.2.0-1] the first packet the server sends is CONNACK, even with queued messages waiting', async () => {
    const first = await clients.rawConnected({ clientId: 'connack-first', clean: false });
    await first.subscribe('connack-first/t', 1);
    first.disconnect();
    await first.expectClosed();
    for (let i = 0; i < 5; i++) server.broker.publish({ topic: 'connack-first/t', payload: `${i}`, qos: 1 });
    const client = await clients.raw();
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: false, keepalive: 0, clientId: 'connack-first' });
    const packet = await client.next();
    assert.equal(packet.type, 'connack');
    const publishes = await client.expectMany('publish', 5);
    assert.deepEqual(
      publishes.map((p) => p.payload.toString()),
      ['0', '1', '2', '3', '4'],
    );
  });

  test('[MQTT-3.1.0-2] a second CONNECT sent while an async authentication runs closes the connection', inProcessOnly('an authenticate hook (a function)'), async () => {
    const client = await asyncClients.raw();
    const connect = encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'async-twice', username: 'alice' }, 4);
    client.send(Buffer.concat([connect, connect]));
    const [connack] = await client.expectClosed(2000, { allowPackets: true });
    if (connack !== undefined) assert.equal(connack.type, 'connack');
  });

  test('DISCONNECT: the server closes the network connection (the SHOULD of 3.14.4)', async () => {
    const client = await clients.rawConnected({ clientId: 'disconnecting' });
    // Only the packet: the socket is left open for the server to close.
    client.send({ type: 'disconnect' });
    await client.expectClosed();
  });

  test('connect timeout: a socket that sends nothing is closed', async () => {
    const client = await timeoutClients.raw();
    await sleep(500);
    assert.equal(client.closed, false, 'still open before the 1 s connect timeout');
    await client.expectClosed(2500);
  });

  test('server.close() disconnects connected clients and resolves', async () => {
    const own = await startTestServer();
    const ownClients = new TestClients(() => own.port);
    try {
      const client = await ownClients.rawConnected({ clientId: 'shutdown' });
      const closing = own.close();
      const outcome = await Promise.race([closing.then(() => 'resolved'), sleep(2000).then(() => 'pending')]);
      assert.equal(outcome, 'resolved', 'server.close() still pending 2 s after being called with one client connected');
      await client.expectClosed(500);
    } finally {
      // Unblock a hung close() so the file can end.
      await ownClients.closeAll();
    }
  });

  test('connect timeout: a client that connected in time is not closed by it', async () => {
    const client = await timeoutClients.rawConnected({ clientId: 'in-time' });
    await client.expectSilence(1500);
    client.send({ type: 'pingreq' });
    await client.expect('pingresp');
  });
});
