/**
 * MQTT 5.0 sessions and wills: Session Expiry Interval (0, > 0, 0xFFFFFFFF, capped, changed at
 * DISCONNECT), session resumption, Will Delay Interval, DISCONNECT 0x04 and will properties.
 * Timing tests use 1–2 s intervals (the broker sweeps every 250 ms) and run side by side.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Properties, QoS, Will } from '../../src/protocol/types.js';
import { sleep, type ConnectFields, type RawClient } from '../helpers/raw-client.js';
import { type TestBroker, connected5, expectServerDisconnect, nextId, startBroker, subscribe5 } from '../helpers/broker-core.js';

/** CONNECT (MQTT 5) and return Session Present. */
async function sessionPresent(target: TestBroker, fields: ConnectFields): Promise<{ client: RawClient; present: boolean }> {
  const { client, connack } = await connected5(target, fields);
  return { client, present: connack.sessionPresent };
}

/** Sends DISCONNECT (with a reason code and properties) and waits for the close. */
async function disconnect5(client: RawClient, reasonCode = 0, properties?: Properties): Promise<void> {
  client.send(properties === undefined ? { type: 'disconnect', reasonCode } : { type: 'disconnect', reasonCode, properties });
  await client.expectClosed();
}

/** A watcher subscribed to `topic` at QoS 1. */
async function watcher(target: TestBroker, topic: string): Promise<RawClient> {
  const client = (await connected5(target)).client;
  await subscribe5(client, [{ topicFilter: topic, qos: 1 }]);
  return client;
}

/** A will on `topic`. */
function will(topic: string, payload: string, properties?: Properties, qos: QoS = 1): Will {
  return properties === undefined ? { topic, payload: Buffer.from(payload), qos, retain: false } : { topic, payload: Buffer.from(payload), qos, retain: false, properties };
}

let shared: TestBroker | undefined;
async function broker(): Promise<TestBroker> {
  shared ??= await startBroker();
  return shared;
}

describe('33 MQTT 5 session expiry', { concurrency: true }, () => {
  test('[MQTT-3.1.2-23] Session Expiry Interval 0 (absent): the session ends with the connection', async () => {
    const b = await broker();
    const id = nextId('se0');
    const first = (await connected5(b, { clientId: id, clean: false })).client;
    await subscribe5(first, [{ topicFilter: 'se0/t', qos: 1 }]);
    await disconnect5(first);
    const again = await sessionPresent(b, { clientId: id, clean: false });
    assert.equal(again.present, false);
    b.broker.publish({ topic: 'se0/t', payload: 'x', qos: 1 });
    await again.client.expectSilence(200); // the subscription went with the session
  });

  test('[MQTT-3.1.2-23] [MQTT-4.1.0-2] Session Expiry Interval 1 s: kept (with its queue) while it lasts, discarded after', async () => {
    const b = await broker();
    const id = nextId('se1');
    const fields: ConnectFields = { clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } };
    const first = (await connected5(b, fields)).client;
    await subscribe5(first, [{ topicFilter: 'se1/t', qos: 1 }]);
    await disconnect5(first);
    b.broker.publish({ topic: 'se1/t', payload: 'queued', qos: 1 });
    await sleep(300);
    const resumed = await sessionPresent(b, fields);
    assert.equal(resumed.present, true, 'within the interval: Session Present 1');
    const queued = await resumed.client.expect('publish');
    assert.equal(queued.payload.toString(), 'queued');
    resumed.client.send({ type: 'puback', packetId: queued.packetId! });
    await disconnect5(resumed.client);
    b.broker.publish({ topic: 'se1/t', payload: 'lost', qos: 1 });
    await sleep(1800);
    const expired = await sessionPresent(b, fields);
    assert.equal(expired.present, false, 'after the interval: Session Present 0');
    await expired.client.expectSilence(200);
  });

  test('spec 3.1.2.11.2: Session Expiry Interval 0xFFFFFFFF does not expire', async () => {
    const b = await broker();
    const id = nextId('seinf');
    const fields: ConnectFields = { clientId: id, clean: false, properties: { sessionExpiryInterval: 0xffffffff } };
    await disconnect5((await connected5(b, fields)).client);
    await sleep(1800);
    assert.equal((await sessionPresent(b, fields)).present, true);
  });

  test('spec 3.2.2.3.2: maxSessionExpiry caps 0xFFFFFFFF, and the capped session expires', async () => {
    const b = await startBroker({ maxSessionExpiry: 1 });
    const id = nextId('secap');
    const fields: ConnectFields = { clientId: id, clean: false, properties: { sessionExpiryInterval: 0xffffffff } };
    const { client, connack } = await connected5(b, fields);
    assert.equal(connack.properties?.sessionExpiryInterval, 1);
    await disconnect5(client);
    await sleep(300);
    const early = await sessionPresent(b, fields);
    assert.equal(early.present, true);
    await disconnect5(early.client);
    await sleep(1800);
    assert.equal((await sessionPresent(b, fields)).present, false);
  });

  test('spec 3.14.2.2.2: DISCONNECT sets a new Session Expiry Interval (0 ends the session, a longer one keeps it)', async () => {
    const b = await broker();
    const endId = nextId('sedis0');
    await disconnect5((await connected5(b, { clientId: endId, clean: false, properties: { sessionExpiryInterval: 60 } })).client, 0, { sessionExpiryInterval: 0 });
    assert.equal((await sessionPresent(b, { clientId: endId, clean: false })).present, false);
    const keepId = nextId('sedis60');
    await disconnect5((await connected5(b, { clientId: keepId, clean: false, properties: { sessionExpiryInterval: 1 } })).client, 0, { sessionExpiryInterval: 60 });
    await sleep(1800);
    assert.equal((await sessionPresent(b, { clientId: keepId, clean: false })).present, true);
  });

  test('spec 3.14.2.2.2: a non-zero Session Expiry Interval on DISCONNECT after CONNECT had 0 is a Protocol Error (DISCONNECT 0x82)', async () => {
    const b = await broker();
    const id = nextId('sebad');
    const client = (await connected5(b, { clientId: id, clean: false })).client;
    client.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 30 } });
    await expectServerDisconnect(client, 0x82);
    assert.equal((await sessionPresent(b, { clientId: id, clean: false })).present, false, 'and the session still ended');
  });

  test('[MQTT-4.4.0-1] [MQTT-3.3.1-1] a resumed session resends unacknowledged PUBLISH (DUP=1) and PUBREL, then queued messages', async () => {
    const b = await broker();
    const id = nextId('resume');
    const fields: ConnectFields = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = (await connected5(b, fields)).client;
    await subscribe5(first, [{ topicFilter: 'resume/q1', qos: 1 }, { topicFilter: 'resume/q2', qos: 2 }]);
    b.broker.publish({ topic: 'resume/q1', payload: 'one', qos: 1 });
    b.broker.publish({ topic: 'resume/q2', payload: 'two', qos: 2 });
    const [p1, p2] = await first.expectMany('publish', 2);
    first.send({ type: 'pubrec', packetId: p2!.packetId! });
    await first.expect('pubrel');
    first.destroy();
    await sleep(100); // the broker has seen the close: 'three' is queued, not sent
    b.broker.publish({ topic: 'resume/q1', payload: 'three', qos: 1 });
    await sleep(100);
    const back = (await connected5(b, fields)).client;
    const packets: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await back.next();
      packets.push(p.type === 'publish' ? `publish:${p.payload.toString()}:dup=${p.dup}:id=${p.packetId === p1!.packetId ? 'same' : 'new'}` : `${p.type}:${p.type === 'pubrel' && p.packetId === p2!.packetId ? 'same' : 'other'}`);
    }
    assert.deepEqual(packets, ['publish:one:dup=true:id=same', 'pubrel:same', 'publish:three:dup=false:id=new']);
  });
});

describe('33 MQTT 5 will', { concurrency: true }, () => {
  test('[MQTT-3.1.3-9] [MQTT-3.1.2-8] no will when the session is resumed within the Will Delay Interval', async () => {
    const b = await broker();
    const w = await watcher(b, 'wd/resumed');
    const id = nextId('wd-res');
    const fields: ConnectFields = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 }, will: will('wd/resumed', 'bye', { willDelayInterval: 2 }) };
    (await connected5(b, fields)).client.destroy();
    await sleep(500);
    const back = await sessionPresent(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(back.present, true);
    await w.expectSilence(2300);
  });

  test('[MQTT-3.1.2-7] [MQTT-3.1.2-8] the will is sent once the Will Delay Interval has passed, not before', async () => {
    const b = await broker();
    const w = await watcher(b, 'wd/elapsed');
    const fields: ConnectFields = { clientId: nextId('wd-el'), clean: false, properties: { sessionExpiryInterval: 60 }, will: will('wd/elapsed', 'late', { willDelayInterval: 1 }) };
    (await connected5(b, fields)).client.destroy();
    const start = Date.now();
    await w.expectSilence(700);
    const got = await w.expect('publish', 2000);
    assert.equal(got.payload.toString(), 'late');
    assert.ok(Date.now() - start >= 900, 'not before the 1 s delay');
  });

  test('[MQTT-3.1.2-8] the will is sent when the session ends, if that comes before the Will Delay Interval', async () => {
    const b = await broker();
    const w = await watcher(b, 'wd/session-end');
    const fields: ConnectFields = { clientId: nextId('wd-se'), clean: false, properties: { sessionExpiryInterval: 1 }, will: will('wd/session-end', 'ended', { willDelayInterval: 30 }) };
    (await connected5(b, fields)).client.destroy();
    const start = Date.now();
    const got = await w.expect('publish', 2500);
    assert.equal(got.payload.toString(), 'ended');
    assert.ok(Date.now() - start >= 700, 'at the session end (1 s), not at once');
  });

  test('[MQTT-3.1.2-8] Session Expiry 0: the session ends at the close, so a delayed will is sent at once', async () => {
    const b = await broker();
    const w = await watcher(b, 'wd/no-session');
    (await connected5(b, { clientId: nextId('wd-ns'), will: will('wd/no-session', 'now', { willDelayInterval: 30 }) })).client.destroy();
    const got = await w.expect('publish', 800);
    assert.equal(got.payload.toString(), 'now');
  });

  test('[MQTT-3.1.2-4] [MQTT-3.1.2-8] a Clean Start reconnect within the delay ends the old session: its will is sent', async () => {
    const b = await broker();
    const w = await watcher(b, 'wd/clean');
    const id = nextId('wd-cl');
    (await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 }, will: will('wd/clean', 'replaced', { willDelayInterval: 30 }) })).client.destroy();
    await sleep(200);
    await connected5(b, { clientId: id, clean: true });
    const got = await w.expect('publish', 800);
    assert.equal(got.payload.toString(), 'replaced');
  });

  test('spec 3.14.2.1: DISCONNECT 0x04 (with will) publishes the will; [MQTT-3.14.4-3] [MQTT-3.1.2-10] DISCONNECT 0x00 discards it', async () => {
    const b = await broker();
    const w = await watcher(b, 'wd/disc/#');
    await disconnect5((await connected5(b, { will: will('wd/disc/normal', 'no') })).client, 0x00);
    await disconnect5((await connected5(b, { will: will('wd/disc/with-will', 'yes') })).client, 0x04);
    const got = await w.expect('publish');
    assert.equal(got.topic, 'wd/disc/with-will');
    w.send({ type: 'puback', packetId: got.packetId! });
    await w.expectSilence(300);
  });

  test('[MQTT-3.1.3-10] will properties are forwarded (user properties in order); the Will Delay Interval is not', async () => {
    const b = await broker();
    const w = await watcher(b, 'wd/props');
    const properties: Properties = {
      willDelayInterval: 0,
      payloadFormatIndicator: 1,
      messageExpiryInterval: 120,
      contentType: 'text/plain',
      responseTopic: 'wd/props/reply',
      correlationData: Buffer.from('corr'),
      userProperties: [
        ['z', '1'],
        ['a', '2'],
        ['z', '3'],
      ],
    };
    (await connected5(b, { will: will('wd/props', 'gone', properties) })).client.destroy();
    const got = await w.expect('publish');
    const { willDelayInterval: _delay, messageExpiryInterval: _expiry, ...forwarded } = properties;
    const { messageExpiryInterval, ...rest } = got.properties ?? {};
    assert.deepEqual(rest, forwarded);
    assert.ok(messageExpiryInterval !== undefined && messageExpiryInterval <= 120 && messageExpiryInterval >= 119);
  });
});
