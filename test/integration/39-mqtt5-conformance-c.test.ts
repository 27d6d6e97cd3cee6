/**
 * MQTT 5.0 conformance, part C: AUTH reason codes and the refusals of enhanced authentication (3.15,
 * 4.12), and MQTT 5 over WebSocket (6). Black box: raw MQTT 5 clients over TCP, and raw WebSockets
 * carrying MQTT 5 bytes, against a server started on free ports.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import type { AuthExchange, BrokerPlugin, EnhancedAuthResult } from '../../src/broker/hooks.js';
import { PacketDecoder } from '../../src/protocol/decoder.js';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { ConnectPacket, Packet } from '../../src/protocol/types.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { describePacket, TestClients, type RawClient } from '../helpers/raw-client.js';

const METHOD = 'TEST-HMAC';
const SECRETS = new Map([['alice', 'alice-secret']]);

/** Challenge-response: the server sends a nonce, the client answers HMAC-SHA256(secret, nonce). */
const hmacPlugin: BrokerPlugin = {
  name: 'test-hmac',
  authMethods: [METHOD],
  authenticateEnhanced(exchange: AuthExchange, data: Buffer | undefined): EnhancedAuthResult {
    const secret = SECRETS.get(exchange.client.username ?? '');
    if (secret === undefined) return 'not-authorized';
    const nonce = exchange.state['nonce'];
    if (!(nonce instanceof Buffer)) {
      const fresh = randomBytes(8);
      exchange.state['nonce'] = fresh;
      return { continue: fresh };
    }
    if (data === undefined || !data.equals(answer(secret, nonce))) return 'bad-credentials';
    return { accept: true };
  },
};

function answer(secret: string, nonce: Buffer): Buffer {
  return createHmac('sha256', secret).update(nonce).digest();
}

function connectPacket(clientId: string, extra: Partial<ConnectPacket> = {}): ConnectPacket {
  return { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId, username: 'alice', properties: { authenticationMethod: METHOD }, ...extra };
}

/** The Authenticate Reason Codes of MQTT 5.0 (spec 3.15.2.1). */
const AUTH_REASON_CODES = [0x00, 0x18, 0x19];

describe('39 MQTT 5 AUTH and enhanced authentication (3.15, 4.12)', () => {
  let server: StarlingServer;
  const clients = new TestClients(() => server.port);

  before(async () => {
    server = await startTestBroker({ plugins: [hmacPlugin] });
  });
  after(async () => {
    await clients.closeAll();
    await server.close();
  });

  /** Runs the exchange; returns the client and every AUTH the server sent. */
  async function authenticate(clientId: string): Promise<{ client: RawClient; auths: Packet[] }> {
    const client = await clients.raw({ version: 5 });
    client.send(connectPacket(clientId));
    const challenge = await client.expect('auth');
    client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: answer('alice-secret', challenge.properties!.authenticationData!) } });
    const connack = await client.expect('connack');
    assert.equal(connack.reasonCode, 0);
    return { client, auths: [challenge] };
  }

  test('[MQTT-3.15.2-1] every AUTH the server sends has a defined Authenticate Reason Code: 0x18 to continue, 0x00 when re-authentication succeeds', async () => {
    const { client, auths } = await authenticate('auth-rc');
    assert.equal(auths[0]?.type === 'auth' ? auths[0].reasonCode : -1, 0x18);
    client.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } });
    const challenge = await client.expect('auth');
    assert.equal(challenge.reasonCode, 0x18);
    client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: answer('alice-secret', challenge.properties!.authenticationData!) } });
    const done = await client.expect('auth');
    assert.equal(done.reasonCode ?? 0, 0x00);
    for (const a of [...auths, challenge, done]) {
      assert.ok(a.type === 'auth' && AUTH_REASON_CODES.includes(a.reasonCode ?? 0), `defined reason code: ${describePacket(a)}`);
      assert.notEqual(a.type === 'auth' ? a.reasonCode : undefined, 0x19, 'the server never asks to re-authenticate');
    }
  });

  test('[MQTT-4.12.0-4] a refusal at the first or a later step of the exchange is a CONNACK of 0x80 or more (Session Present 0), then the close', async () => {
    // At the first step: a user the method does not know.
    const stranger = await clients.raw({ version: 5 });
    stranger.send(connectPacket('auth-stranger', { username: 'mallory' }));
    const first = await stranger.expectClosed(2000, { allowPackets: true });
    assert.deepEqual(first.map(describePacket), ['CONNACK(rc=135, sp=false)'], 'CONNACK 0x87 and nothing else');
    // At the second step: a wrong answer to the challenge.
    const wrong = await clients.raw({ version: 5 });
    wrong.send(connectPacket('auth-wrong'));
    await wrong.expect('auth');
    wrong.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('guess') } });
    const second = await wrong.expectClosed(2000, { allowPackets: true });
    assert.deepEqual(second.map(describePacket), ['CONNACK(rc=134, sp=false)'], 'CONNACK 0x86 and nothing else');
    assert.equal(server.broker.query.isConnected('auth-wrong'), false);
  });

  test('[MQTT-4.12.0-6] without an Authentication Method in CONNECT the server sends no AUTH and no Authentication Method or Data in CONNACK', async () => {
    const client = await clients.raw({ version: 5 });
    const connack = await client.connectMqtt({ protocolVersion: 5, clientId: 'auth-none', username: 'alice' });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.authenticationMethod, undefined);
    assert.equal(connack.properties?.authenticationData, undefined);
    client.send({ type: 'pingreq' });
    assert.equal((await client.next()).type, 'pingresp', 'no AUTH came before or after the CONNACK');
    // Negative: with the method, the server does start an exchange.
    const withMethod = await clients.raw({ version: 5 });
    withMethod.send(connectPacket('auth-with'));
    assert.equal((await withMethod.next()).type, 'auth');
  });
});

/** A WebSocket carrying raw MQTT 5 bytes, decoding what the broker sends. */
class RawWs5 {
  readonly packets: Packet[] = [];
  readonly frames: { binary: boolean; length: number }[] = [];
  private readonly decoder = new PacketDecoder({ version: 5 });
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.frames.push({ binary: isBinary, length: data.length });
      this.decoder.push(data, this.packets);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  }

  static open(url: string, protocols: string[]): Promise<RawWs5> {
    const ws = new WebSocket(url, protocols);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawWs5(ws)));
      ws.once('error', reject);
    });
  }

  send(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(bytes, { binary: true }, (error) => (error ? reject(error) : resolve())));
  }

  async next(ms = 2000): Promise<Packet> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const p = this.packets.shift();
      if (p !== undefined) return p;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`no packet within ${ms} ms`);
  }
}

const connect5 = (clientId: string): Buffer => encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId, properties: { receiveMaximum: 10 } }, 5);

describe('39 MQTT 5 over WebSocket (6)', () => {
  let server: StarlingServer;
  const sockets = new Set<WebSocket>();
  const url = (): string => `ws://127.0.0.1:${server.wsPort}/mqtt`;
  const open = async (protocols: string[]): Promise<RawWs5> => {
    const raw = await RawWs5.open(url(), protocols);
    sockets.add(raw.ws);
    return raw;
  };

  before(async () => {
    server = await startTestBroker({ websocket: { port: 0 } });
  });
  after(async () => {
    for (const ws of sockets) ws.terminate();
    await server.close();
  });

  test('[MQTT-6.0.0-4] the server selects the "mqtt" subprotocol offered by an MQTT 5 client, and MQTT 5 works over it', async () => {
    const raw = await open(['mqtt']);
    assert.equal(raw.ws.protocol, 'mqtt');
    await raw.send(connect5('ws5-proto'));
    const connack = await raw.next();
    assert.ok(connack.type === 'connack' && connack.reasonCode === 0, describePacket(connack));
    assert.equal(server.broker.query.client('ws5-proto')?.protocolVersion, 5);
    // Offered among others, "mqtt" is still the one chosen.
    const among = await open(['other', 'mqtt']);
    assert.equal(among.ws.protocol, 'mqtt');
  });

  test('[MQTT-6.0.0-2] MQTT 5 packets split over frames, and several in one frame, are read as one stream; the server sends binary frames', async () => {
    const raw = await open(['mqtt']);
    const connect = connect5('ws5-split');
    for (let i = 0; i < connect.length; i += 3) await raw.send(connect.subarray(i, i + 3));
    const connack = await raw.next();
    assert.equal(connack.type, 'connack');
    const batch = Buffer.concat([
      encodePacket({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'ws5/+', qos: 1 }], properties: { subscriptionIdentifiers: [5] } }, 5),
      encodePacket({ type: 'publish', topic: 'ws5/a', payload: Buffer.from('one frame'), qos: 1, packetId: 2, retain: false, dup: false, properties: { userProperties: [['k', 'v']] } }, 5),
      encodePacket({ type: 'pingreq' }, 5),
    ]);
    // The batch cut in two in the middle of the PUBLISH's properties.
    const cut = batch.length - 12;
    await raw.send(batch.subarray(0, cut));
    await raw.send(batch.subarray(cut));
    const got: Packet[] = [];
    for (let i = 0; i < 4; i++) got.push(await raw.next());
    const suback = got.find((p) => p.type === 'suback');
    assert.ok(suback?.type === 'suback' && suback.packetId === 1);
    const puback = got.find((p) => p.type === 'puback');
    assert.ok(puback?.type === 'puback' && puback.packetId === 2);
    assert.ok(got.some((p) => p.type === 'pingresp'));
    const delivered = got.find((p) => p.type === 'publish');
    assert.ok(delivered?.type === 'publish');
    assert.equal(delivered.payload.toString(), 'one frame');
    assert.deepEqual(delivered.properties?.userProperties, [['k', 'v']]);
    assert.deepEqual(delivered.properties?.subscriptionIdentifiers, [5]);
    assert.ok(raw.frames.length > 0 && raw.frames.every((f) => f.binary), 'every frame from the server is binary');
  });

  test('[MQTT-6.0.0-1] an MQTT 5 connection that receives a text frame is closed', async () => {
    const raw = await open(['mqtt']);
    await raw.send(connect5('ws5-text'));
    assert.equal((await raw.next()).type, 'connack');
    // Negative first: binary frames keep the connection alive.
    await raw.send(encodePacket({ type: 'pingreq' }, 5));
    assert.equal((await raw.next()).type, 'pingresp');
    raw.ws.send(encodePacket({ type: 'pingreq' }, 5).toString('latin1'));
    const code = await Promise.race([raw.closed, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('still open after a text frame')), 3000))]);
    assert.ok(code === 1003 || code === 1006 || code === 1002, `close code ${code}`);
    const deadline = Date.now() + 2000;
    while (server.broker.query.isConnected('ws5-text') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(server.broker.query.isConnected('ws5-text'), false);
  });
});
