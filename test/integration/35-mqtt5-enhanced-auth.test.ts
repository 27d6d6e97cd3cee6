import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { AuthExchange, BrokerPlugin, EnhancedAuthResult } from '../../src/broker/hooks.js';
import type { ConnectPacket } from '../../src/protocol/types.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { TestClients, type RawClient } from '../helpers/raw-client.js';

const METHOD = 'HMAC-CHALLENGE';
const SECRETS = new Map([['alice', 'alice-secret']]);

/**
 * A small challenge-response method for the tests: the server sends a nonce, the client answers
 * HMAC-SHA256(secret, nonce); the server proves itself with HMAC(secret, "server" + nonce).
 */
const hmacPlugin: BrokerPlugin = {
  name: 'hmac-challenge',
  authMethods: [METHOD],
  async authenticateEnhanced(exchange: AuthExchange, data: Buffer | undefined): Promise<EnhancedAuthResult> {
    await new Promise((resolve) => setTimeout(resolve, 5)); // asynchronous on purpose
    const secret = SECRETS.get(exchange.client.username ?? '');
    if (secret === undefined) return 'not-authorized';
    const nonce = exchange.state['nonce'];
    if (!(nonce instanceof Buffer)) {
      const fresh = randomBytes(16);
      exchange.state['nonce'] = fresh;
      return { continue: fresh };
    }
    const expected = createHmac('sha256', secret).update(nonce).digest();
    if (data === undefined || !data.equals(expected)) return 'bad-credentials';
    return { accept: true, data: createHmac('sha256', secret).update('server').update(nonce).digest() };
  },
};

function answer(secret: string, challenge: Buffer): Buffer {
  return createHmac('sha256', secret).update(challenge).digest();
}

function connectPacket(clientId: string, extra: Partial<ConnectPacket> = {}): ConnectPacket {
  return { type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId, username: 'alice', properties: { authenticationMethod: METHOD }, ...extra };
}

describe('35 MQTT 5 enhanced authentication (AUTH)', () => {
  let server: StarlingServer;
  const clients = new TestClients(() => server.port);

  before(async () => {
    server = await startTestBroker({ plugins: [hmacPlugin] });
  });
  after(async () => {
    await clients.closeAll();
    await server.close();
  });

  async function authenticated(clientId: string): Promise<RawClient> {
    const client = await clients.raw({ version: 5 });
    client.send(connectPacket(clientId));
    const challenge = await client.expect('auth');
    assert.equal(challenge.reasonCode, 0x18);
    client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: answer('alice-secret', challenge.properties!.authenticationData!) } });
    const connack = await client.expect('connack');
    assert.equal(connack.reasonCode, 0);
    return client;
  }

  test('[MQTT-4.12.0-2] [MQTT-4.12.0-4] challenge, response, then CONNACK 0 with the method and the server’s final data', async () => {
    const client = await clients.raw({ version: 5 });
    client.send(connectPacket('ea-ok'));
    const challenge = await client.expect('auth');
    assert.equal(challenge.reasonCode, 0x18, 'continue authentication');
    assert.equal(challenge.properties?.authenticationMethod, METHOD, 'same method as CONNECT');
    const nonce = challenge.properties.authenticationData!;
    assert.equal(nonce.length, 16);
    client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: answer('alice-secret', nonce) } });
    const connack = await client.expect('connack');
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.authenticationMethod, METHOD);
    assert.deepEqual(connack.properties?.authenticationData, createHmac('sha256', 'alice-secret').update('server').update(nonce).digest());
    // The session works.
    await client.subscribe('ea/t', 1);
    client.publish('ea/t', 'hi', 1);
    assert.equal((await client.expect('publish')).payload.toString(), 'hi');
  });

  test('a wrong response gets CONNACK 0x86; an unknown user 0x87; an unknown method 0x8C', async () => {
    const wrong = await clients.raw({ version: 5 });
    wrong.send(connectPacket('ea-wrong'));
    await wrong.expect('auth');
    wrong.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('guess') } });
    assert.equal((await wrong.expect('connack')).reasonCode, 0x86);
    await wrong.expectClosed();

    const stranger = await clients.raw({ version: 5 });
    stranger.send(connectPacket('ea-stranger', { username: 'mallory' }));
    assert.equal((await stranger.expect('connack')).reasonCode, 0x87);

    const other = await clients.raw({ version: 5 });
    other.send(connectPacket('ea-method', { properties: { authenticationMethod: 'SCRAM-SHA-1' } }));
    assert.equal((await other.expect('connack')).reasonCode, 0x8c);
  });

  test('[MQTT-3.1.2-30] a packet other than AUTH or DISCONNECT during the exchange closes the connection', async () => {
    const client = await clients.raw({ version: 5 });
    client.send(connectPacket('ea-eager'));
    await client.expect('auth');
    client.send({ type: 'pingreq' });
    await client.expectClosed();
  });

  test('[MQTT-4.12.0-5] an AUTH with another method during the exchange closes the connection', async () => {
    const client = await clients.raw({ version: 5 });
    client.send(connectPacket('ea-switch'));
    await client.expect('auth');
    client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'OTHER', authenticationData: Buffer.from('x') } });
    await client.expectClosed();
  });

  test('[MQTT-4.12.1-1] re-authentication (AUTH 0x19) with the same method succeeds with AUTH 0x00 while the session keeps working', async () => {
    const client = await authenticated('ea-reauth');
    await client.subscribe('ea/re', 0);
    client.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } });
    const challenge = await client.expect('auth');
    assert.equal(challenge.reasonCode, 0x18);
    client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: answer('alice-secret', challenge.properties!.authenticationData!) } });
    const done = await client.expect('auth');
    assert.equal(done.reasonCode, 0);
    client.publish('ea/re', 'still here', 0);
    assert.equal((await client.expect('publish')).payload.toString(), 'still here');
  });

  test('[MQTT-4.12.1-2] a failed re-authentication ends the connection with DISCONNECT; another method is a protocol error', async () => {
    const failing = await authenticated('ea-reauth-bad');
    failing.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } });
    await failing.expect('auth');
    failing.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: Buffer.from('nope') } });
    const disconnect = await failing.expect('disconnect');
    assert.equal(disconnect.reasonCode, 0x86);
    await failing.expectClosed();

    const switching = await authenticated('ea-reauth-switch');
    switching.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'OTHER' } });
    assert.equal((await switching.expect('disconnect')).reasonCode, 0x82);
  });

  test('AUTH from a client that did not use enhanced authentication is a protocol error', async () => {
    const client = await clients.rawConnected({ clientId: 'ea-plain', protocolVersion: 5 });
    client.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD } });
    assert.equal((await client.expect('disconnect')).reasonCode, 0x82);
  });
});
