/**
 * MQTT 5.0 CONNECT / CONNACK and server-sent DISCONNECT, black box over TCP with the raw client.
 * Each group starts its own broker core (`new Broker(...)` behind a net server) because the MQTT 5
 * options (receiveMaximum, maxKeepAlive, retainAvailable, …) do not pass through startServer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuthenticateResult } from '../../src/broker/options.js';
import type { ConnackPacket, Packet } from '../../src/protocol/types.js';
import { startBroker, nextId, type TestBroker } from '../helpers/broker-core.js';
import { describePacket, sleep, type ConnectFields, type RawClient } from '../helpers/raw-client.js';
import { inProcessOnly } from '../helpers/worker-broker.js';

/** Sends an MQTT 5 CONNECT and returns the client with its CONNACK (accepted or not). */
async function connect5(target: TestBroker, fields: ConnectFields = {}): Promise<{ client: RawClient; connack: ConnackPacket }> {
  const client = await target.clients.raw();
  const connack = await client.connectMqtt({ protocolVersion: 5, clientId: nextId('c5'), ...fields });
  return { client, connack };
}

/** Like connect5, and asserts CONNACK 0x00. */
async function connected5(target: TestBroker, fields: ConnectFields = {}): Promise<{ client: RawClient; connack: ConnackPacket }> {
  const result = await connect5(target, fields);
  assert.equal(result.connack.reasonCode, 0, `CONNECT accepted: ${describePacket(result.connack)}`);
  return result;
}

/** Waits for the server to close, asserting the last packet before the close is DISCONNECT with `reasonCode`. */
async function expectServerDisconnect(client: RawClient, reasonCode: number, timeoutMs = 2000): Promise<void> {
  const packets: Packet[] = await client.expectClosed(timeoutMs, { allowPackets: true });
  const last = packets.at(-1);
  assert.ok(last?.type === 'disconnect', `expected DISCONNECT 0x${reasonCode.toString(16)}, got [${packets.map(describePacket).join(', ')}]`);
  assert.equal(last.reasonCode, reasonCode, `DISCONNECT reason 0x${(last.reasonCode ?? 0).toString(16)}, expected 0x${reasonCode.toString(16)}`);
}

/** Asserts a refusing CONNACK: the reason code, Session Present 0 [MQTT-3.2.2-6], then the close [MQTT-3.2.2-7]. */
async function expectRefused(client: RawClient, connack: ConnackPacket, reasonCode: number): Promise<void> {
  assert.equal(connack.reasonCode, reasonCode, `CONNACK reason 0x${connack.reasonCode.toString(16)}, expected 0x${reasonCode.toString(16)}`);
  assert.equal(connack.sessionPresent, false, '[MQTT-3.2.2-6] Session Present is 0 with a non-zero reason code');
  // [MQTT-3.14.0-1] no DISCONNECT after a refusing CONNACK: the connection just closes.
  await client.expectClosed();
}

describe('30 MQTT 5 CONNACK properties', () => {
  test('[MQTT-3.2.2-16] [MQTT-3.1.3-6] [MQTT-3.1.3-7] an empty client id gets a unique Assigned Client Identifier', async () => {
    const b = await startBroker();
    const first = await connected5(b, { clientId: '' });
    const second = await connected5(b, { clientId: '' });
    const a1 = first.connack.properties?.assignedClientIdentifier;
    const a2 = second.connack.properties?.assignedClientIdentifier;
    assert.ok(a1 !== undefined && a1.length > 0, 'Assigned Client Identifier present');
    assert.ok(a2 !== undefined && a2.length > 0, 'Assigned Client Identifier present');
    assert.notEqual(a1, a2, 'two assigned identifiers differ');
    // Clean Start 0 with an empty id is allowed in MQTT 5 and also gets an identifier.
    const persistent = await connected5(b, { clientId: '', clean: false, properties: { sessionExpiryInterval: 10 } });
    assert.ok((persistent.connack.properties?.assignedClientIdentifier ?? '').length > 0);
    // Negative: a client that chose its id is not given one.
    const named = await connected5(b, { clientId: 'named-client' });
    assert.equal(named.connack.properties?.assignedClientIdentifier, undefined);
  });

  test('[MQTT-3.2.2-17] CONNACK carries our Topic Alias Maximum; none when aliases are disabled', async () => {
    const b = await startBroker({ topicAliasMaximum: 7 });
    const { connack } = await connected5(b);
    assert.equal(connack.properties?.topicAliasMaximum, 7);
    const off = await startBroker({ topicAliasMaximum: 0 });
    const none = await connected5(off);
    assert.equal(none.connack.properties?.topicAliasMaximum, undefined, '[MQTT-3.2.2-18] absent means 0: no aliases');
  });

  test('[MQTT-3.2.2-21] Server Keep Alive is sent when maxKeepAlive is lower than (or replaces 0 in) the client keep alive', async () => {
    const b = await startBroker({ maxKeepAlive: 10 });
    const high = await connected5(b, { keepalive: 60 });
    assert.equal(high.connack.properties?.serverKeepAlive, 10);
    const zero = await connected5(b, { keepalive: 0 });
    assert.equal(zero.connack.properties?.serverKeepAlive, 10, 'keep alive 0 (disabled) is replaced by the maximum');
    // [MQTT-3.2.2-22] a keep alive within the limit is used as sent: no Server Keep Alive.
    const low = await connected5(b, { keepalive: 5 });
    assert.equal(low.connack.properties?.serverKeepAlive, undefined);
  });

  test('[MQTT-3.2.2-21] [MQTT-3.1.2-22] the Server Keep Alive is enforced: DISCONNECT 0x8D after 1.5 x 1 s', async () => {
    const b = await startBroker({ maxKeepAlive: 1 });
    const { client, connack } = await connected5(b, { keepalive: 600 });
    assert.equal(connack.properties?.serverKeepAlive, 1);
    const start = Date.now();
    await expectServerDisconnect(client, 0x8d, 3000);
    assert.ok(Date.now() - start >= 1200, 'not closed before 1.5 x the server keep alive (minus timer slack)');
  });

  test('[MQTT-3.2.2-9] limits and unavailable features are advertised: Maximum QoS, Retain / Wildcard / Subscription Identifier / Shared Available, Receive Maximum, Maximum Packet Size', async () => {
    const b = await startBroker({
      maxQoS: 1,
      retainAvailable: false,
      wildcardSubscriptionAvailable: false,
      subscriptionIdentifiersAvailable: false,
      sharedSubscriptionAvailable: false,
      receiveMaximum: 20,
      maxPacketSize: 4096,
    });
    const { connack } = await connected5(b);
    const p = connack.properties ?? {};
    assert.equal(p.maximumQoS, 1);
    assert.equal(p.retainAvailable, 0);
    assert.equal(p.wildcardSubscriptionAvailable, 0);
    assert.equal(p.subscriptionIdentifiersAvailable, 0);
    assert.equal(p.sharedSubscriptionAvailable, 0);
    assert.equal(p.receiveMaximum, 20);
    assert.equal(p.maximumPacketSize, 4096);
    // Negative: a default broker supports everything and says nothing about it.
    const d = await startBroker();
    const dp = (await connected5(d)).connack.properties ?? {};
    for (const key of ['maximumQoS', 'retainAvailable', 'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable', 'receiveMaximum', 'maximumPacketSize', 'sessionExpiryInterval', 'serverKeepAlive'] as const) {
      assert.equal(dp[key], undefined, `default CONNACK has no ${key}`);
    }
  });

  test('[MQTT-3.2.2-9] Maximum QoS 0 is advertised as 0', async () => {
    const b = await startBroker({ maxQoS: 0 });
    const { connack } = await connected5(b);
    assert.equal(connack.properties?.maximumQoS, 0);
  });

  test('spec 3.2.2.3.2: the Session Expiry Interval is capped by maxSessionExpiry and the granted value is returned', async () => {
    const b = await startBroker({ maxSessionExpiry: 30 });
    const capped = await connected5(b, { clean: false, properties: { sessionExpiryInterval: 3600 } });
    assert.equal(capped.connack.properties?.sessionExpiryInterval, 30);
    const within = await connected5(b, { clean: false, properties: { sessionExpiryInterval: 20 } });
    assert.equal(within.connack.properties?.sessionExpiryInterval, undefined, 'a granted request is not echoed');
  });

  test('[MQTT-3.1.2-28] Response Information is returned only when requested', async () => {
    const b = await startBroker({ responseInformation: 'reply/' });
    const asked = await connected5(b, { clientId: 'rri-client', properties: { requestResponseInformation: 1 } });
    assert.equal(asked.connack.properties?.responseInformation, 'reply/rri-client');
    const notAsked = await connected5(b, { properties: { requestResponseInformation: 0 } });
    assert.equal(notAsked.connack.properties?.responseInformation, undefined, 'request 0: the server MUST NOT return it');
    const silent = await connected5(b);
    assert.equal(silent.connack.properties?.responseInformation, undefined);
  });
});

describe('30 MQTT 5 CONNACK reason codes', () => {
  test('[MQTT-3.1.3-8] a client id longer than maxClientIdLength gets CONNACK 0x85 and the close', inProcessOnly('sets maxClientIdLength 8, below the 23 a configuration accepts'), async () => {
    const b = await startBroker({ maxClientIdLength: 8 });
    const { client, connack } = await connect5(b, { clientId: 'much-too-long-client-id' });
    await expectRefused(client, connack, 0x85);
    await connected5(b, { clientId: 'short' }); // negative: within the limit
  });

  test('[MQTT-3.1.4-2] [MQTT-3.2.2-8] [MQTT-3.2.2-6] [MQTT-3.2.2-7] [MQTT-3.14.0-1] authentication hook results map to 0x86 / 0x87 / 0x88 (and 3.1.1 return codes 4 / 5 / 3)', inProcessOnly('an authenticate hook (a function)'), async () => {
    const decisions: Record<string, AuthenticateResult> = { bad: 'bad-credentials', nope: 'not-authorized', down: 'server-unavailable', ok: 'accept' };
    const b = await startBroker({
      authenticate: ({ username }) => {
        if (username === 'throws') throw new Error('hook failure');
        if (username === 'async-nope') return Promise.resolve('not-authorized');
        return decisions[username ?? ''] ?? 'not-authorized';
      },
    });
    for (const [username, v5, v4] of [
      ['bad', 0x86, 4],
      ['nope', 0x87, 5],
      ['async-nope', 0x87, 5],
      ['down', 0x88, 3],
      ['throws', 0x88, 3],
    ] as const) {
      const r5 = await connect5(b, { username });
      await expectRefused(r5.client, r5.connack, v5);
      const c4 = await b.clients.raw();
      const connack4 = await c4.connectMqtt({ protocolVersion: 4, clientId: nextId('c4'), username });
      assert.equal(connack4.reasonCode, v4, `3.1.1 return code for ${username}`);
      await c4.expectClosed();
    }
    await connected5(b, { username: 'ok' });
  });

  test('[MQTT-3.2.2-8] CONNACK 0x89 Server busy when maxConnections is reached', async () => {
    const b = await startBroker({ maxConnections: 1 });
    const first = await connected5(b, { clientId: 'only-one' });
    const { client, connack } = await connect5(b);
    await expectRefused(client, connack, 0x89);
    // The same client id may still reconnect (it replaces the existing connection).
    await connected5(b, { clientId: 'only-one' });
    await expectServerDisconnect(first.client, 0x8e);
  });

  test('[MQTT-4.12.0-1] an Authentication Method no plugin handles gets CONNACK 0x8C', async () => {
    const b = await startBroker();
    const { client, connack } = await connect5(b, { properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('n,,n=user,r=abc') } });
    await expectRefused(client, connack, 0x8c);
  });

  test('[MQTT-3.2.2-12] a Will QoS above Maximum QoS gets CONNACK 0x9B', async () => {
    const b = await startBroker({ maxQoS: 1 });
    const { client, connack } = await connect5(b, { will: { topic: 'will/q', payload: Buffer.from('x'), qos: 2, retain: false } });
    await expectRefused(client, connack, 0x9b);
    await connected5(b, { will: { topic: 'will/q', payload: Buffer.from('x'), qos: 1, retain: false } }); // negative
  });

  test('[MQTT-3.2.2-13] a retained will when Retain Available is 0 gets CONNACK 0x9A', async () => {
    const b = await startBroker({ retainAvailable: false });
    const { client, connack } = await connect5(b, { will: { topic: 'will/r', payload: Buffer.from('x'), qos: 0, retain: true } });
    await expectRefused(client, connack, 0x9a);
    await connected5(b, { will: { topic: 'will/r', payload: Buffer.from('x'), qos: 0, retain: false } }); // negative
  });

  test('[MQTT-3.1.4-6] packets sent after a refused CONNECT are not processed', inProcessOnly('an authenticate hook (a function)'), async () => {
    const b = await startBroker({ authenticate: () => Promise.resolve('not-authorized') });
    const client = await b.clients.raw();
    // CONNECT and PUBLISH leave together, before the (asynchronous) refusal.
    const pending = client.connectMqtt({ protocolVersion: 5, clientId: 'refused-then-publish' });
    client.send({ type: 'publish', topic: 'refused/retained', payload: Buffer.from('x'), qos: 0, retain: true, dup: false });
    const connack = await pending;
    await expectRefused(client, connack, 0x87);
    await sleep(50);
    assert.equal(b.broker.query.retainedMessage('refused/retained'), undefined, 'the retained PUBLISH sent after the refused CONNECT was not stored');
  });
});

describe('30 MQTT 5 Clean Start and Session Present', () => {
  test('[MQTT-3.1.2-4] [MQTT-3.2.2-2] [MQTT-3.1.4-4] Clean Start 1 discards an existing session: Session Present 0', async () => {
    const b = await startBroker();
    const first = await connected5(b, { clientId: 'cs-1', clean: false, properties: { sessionExpiryInterval: 60 } });
    first.client.disconnect();
    await first.client.expectClosed();
    const again = await connected5(b, { clientId: 'cs-1', clean: true, properties: { sessionExpiryInterval: 60 } });
    assert.equal(again.connack.sessionPresent, false);
  });

  test('[MQTT-3.1.2-5] [MQTT-3.2.2-3] [MQTT-3.1.3-2] Clean Start 0 resumes a stored session: Session Present 1', async () => {
    const b = await startBroker();
    const first = await connected5(b, { clientId: 'cs-2', clean: false, properties: { sessionExpiryInterval: 60 } });
    first.client.disconnect();
    await first.client.expectClosed();
    const again = await connected5(b, { clientId: 'cs-2', clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(again.connack.sessionPresent, true);
  });

  test('[MQTT-3.1.2-6] [MQTT-3.2.2-3] [MQTT-3.1.4-5] Clean Start 0 without a stored session creates one: Session Present 0', async () => {
    const b = await startBroker();
    const fresh = await connected5(b, { clientId: 'cs-3', clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(fresh.connack.sessionPresent, false);
  });
});

describe('30 MQTT 5 server DISCONNECT', () => {
  test('[MQTT-3.1.4-3] a second connection with the same client id gives the first DISCONNECT 0x8E', async () => {
    const b = await startBroker();
    const first = await connected5(b, { clientId: 'taken' });
    await connected5(b, { clientId: 'taken' });
    await expectServerDisconnect(first.client, 0x8e);
  });

  test('[MQTT-3.1.4-3] a 3.1.1 client taken over is closed without a DISCONNECT (3.1.1 has no server DISCONNECT)', async () => {
    const b = await startBroker();
    const old = await b.clients.rawConnected({ clientId: 'taken-v4' });
    await connected5(b, { clientId: 'taken-v4' });
    const packets = await old.expectClosed(2000, { allowPackets: true });
    assert.deepEqual(packets.map(describePacket), []);
  });

  test('[MQTT-3.1.2-22] [MQTT-3.2.2-22] keep-alive timeout: DISCONNECT 0x8D; a client that pings stays connected', async () => {
    const b = await startBroker();
    const idle = await connected5(b, { keepalive: 1 });
    const busy = await connected5(b, { keepalive: 1 });
    const pinger = setInterval(() => busy.client.send({ type: 'pingreq' }), 400);
    try {
      await expectServerDisconnect(idle.client, 0x8d, 3000);
      assert.equal(busy.client.closed, false, 'the pinging client is still connected');
    } finally {
      clearInterval(pinger);
    }
  });

  test('[MQTT-4.13.1-1] a malformed packet gets DISCONNECT 0x81 (Malformed Packet)', async () => {
    const b = await startBroker();
    const { client } = await connected5(b);
    // PUBREL with fixed-header flags 0 instead of 0b0010 [MQTT-3.6.1-1].
    client.send(Buffer.from([0x60, 0x02, 0x00, 0x01]));
    await expectServerDisconnect(client, 0x81);
  });

  test('[MQTT-3.1.0-2] [MQTT-4.13.1-1] [MQTT-4.13.2-1] [MQTT-3.14.4-1] [MQTT-3.14.4-2] a protocol error (second CONNECT) gets DISCONNECT 0x82 (Protocol Error)', async () => {
    const b = await startBroker();
    const { client } = await connected5(b);
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'again' });
    await expectServerDisconnect(client, 0x82);
  });

  test('[MQTT-4.12.0-7] an AUTH packet without an authentication exchange gets DISCONNECT 0x82', async () => {
    const b = await startBroker();
    const { client } = await connected5(b);
    client.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'SCRAM-SHA-256' } });
    await expectServerDisconnect(client, 0x82);
  });

  test('[MQTT-3.14.2-1] server shutdown gives every MQTT 5 client DISCONNECT 0x8B (Server shutting down)', inProcessOnly('stops the broker core itself (broker.close)'), async () => {
    const b = await startBroker();
    const one = await connected5(b);
    const two = await connected5(b);
    const v4 = await b.clients.rawConnected({ clientId: 'shutdown-v4' });
    await b.broker.close();
    await expectServerDisconnect(one.client, 0x8b);
    await expectServerDisconnect(two.client, 0x8b);
    assert.deepEqual((await v4.expectClosed(2000, { allowPackets: true })).map(describePacket), [], 'a 3.1.1 client is closed without DISCONNECT');
  });
});
