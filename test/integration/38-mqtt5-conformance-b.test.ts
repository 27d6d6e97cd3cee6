/**
 * MQTT 5.0 conformance, part B: the QoS 1 and 2 protocol flows with the server as sender and as
 * receiver (4.3, 4.4), message receipt and ordering (4.5, 4.6), session state (4.1), flow control
 * (4.9), SUBSCRIBE / UNSUBSCRIBE / PINGREQ / DISCONNECT (3.6, 3.8, 3.10, 3.12, 3.14), proven over MQTT 5
 * connections. Black box over TCP: raw MQTT 5 clients against a broker core on a free port.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { Packet } from '../../src/protocol/types.js';
import { connected5, expectServerDisconnect, nextId, publishesUntil, publishPacket, startBroker, subscribe5, type TestBroker } from '../helpers/broker-core.js';
import { describePacket, sleep, type ConnectFields, type RawClient } from '../helpers/raw-client.js';


/** Every packet received within `ms` milliseconds (the connection must stay open). */
async function packetsWithin(client: RawClient, ms: number): Promise<Packet[]> {
  const out: Packet[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return out;
    try {
      out.push(await client.next(left));
    } catch (error) {
      if (client.closed) throw error;
      return out;
    }
  }
}

/** A persistent MQTT 5 session: connect (Clean Start 0, Session Expiry 60 s). */
async function persistent(b: TestBroker, clientId: string, extra: ConnectFields = {}): Promise<{ client: RawClient; sessionPresent: boolean }> {
  const { client, connack } = await connected5(b, { clientId, clean: false, ...extra, properties: { sessionExpiryInterval: 60, ...extra.properties } });
  return { client, sessionPresent: connack.sessionPresent };
}

/** Drops the connection without DISCONNECT and waits until the broker has seen it go. */
async function drop(b: TestBroker, client: RawClient, clientId: string): Promise<void> {
  client.destroy();
  const deadline = Date.now() + 2000;
  while (b.broker.query.isConnected(clientId) && Date.now() < deadline) await sleep(10);
  assert.equal(b.broker.query.isConnected(clientId), false, `${clientId} is offline`);
}

const label = (p: Packet): string => (p.type === 'publish' ? `publish:${p.payload.toString()}${p.dup ? '(dup)' : ''}` : `${p.type}:${'packetId' in p ? p.packetId : ''}`);

describe('38 MQTT 5 QoS flows, server as receiver (3.3.4, 4.3)', () => {
  test('[MQTT-3.3.4-1] the server answers QoS 0 with nothing, QoS 1 with PUBACK, QoS 2 with PUBREC then PUBCOMP', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'answer/#', qos: 2 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('answer/0', 'zero', 0, undefined));
    pub.send({ type: 'pingreq' });
    assert.equal((await pub.next()).type, 'pingresp', 'nothing answers a QoS 0 PUBLISH');
    pub.send(publishPacket('answer/1', 'one', 1, 10));
    const puback = await pub.expect('puback');
    assert.equal(puback.packetId, 10);
    pub.send(publishPacket('answer/2', 'two', 2, 11));
    const pubrec = await pub.expect('pubrec');
    assert.equal(pubrec.packetId, 11);
    await pub.expectSilence(200);
    pub.send({ type: 'pubrel', packetId: 11 });
    assert.equal((await pub.expect('pubcomp')).packetId, 11);
    const got = await sub.expectMany('publish', 3);
    assert.deepEqual(got.map((p) => p.payload.toString()), ['zero', 'one', 'two']);
  });

  test('[MQTT-4.3.2-5] after its PUBACK, a QoS 1 PUBLISH with the same identifier is a new message', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'reuse1', qos: 1 }]);
    const pub = (await connected5(b)).client;
    for (const payload of ['first', 'second', 'third']) {
      pub.send(publishPacket('reuse1', payload, 1, 42));
      assert.equal((await pub.expect('puback')).packetId, 42);
    }
    const got = await publishesUntil(b, sub, 'reuse1-sentinel');
    assert.deepEqual(got.map((p) => p.payload.toString()), ['first', 'second', 'third']);
  });

  test('[MQTT-4.3.3-10] until PUBREL, a repeated QoS 2 identifier gets PUBREC again and the message is not delivered twice', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'once2', qos: 2 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('once2', 'only once', 2, 7));
    assert.equal((await pub.expect('pubrec')).packetId, 7);
    pub.send({ ...publishPacket('once2', 'only once', 2, 7), dup: true });
    assert.equal((await pub.expect('pubrec')).packetId, 7, 'the retransmission is acknowledged again');
    pub.send({ ...publishPacket('once2', 'only once', 2, 7), dup: true });
    assert.equal((await pub.expect('pubrec')).packetId, 7);
    pub.send({ type: 'pubrel', packetId: 7 });
    assert.equal((await pub.expect('pubcomp')).packetId, 7);
    const got = await sub.expect('publish');
    sub.send({ type: 'pubrec', packetId: got.packetId! });
    await sub.expect('pubrel');
    sub.send({ type: 'pubcomp', packetId: got.packetId! });
    assert.deepEqual(await publishesUntil(b, sub, 'once2-sentinel'), [], 'delivered once');
  });

  test('[MQTT-4.3.3-12] after its PUBCOMP, a QoS 2 PUBLISH with the same identifier is a new message', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'reuse2', qos: 0 }]);
    const pub = (await connected5(b)).client;
    for (const payload of ['first', 'second']) {
      pub.send(publishPacket('reuse2', payload, 2, 9));
      assert.equal((await pub.expect('pubrec')).packetId, 9);
      pub.send({ type: 'pubrel', packetId: 9 });
      assert.equal((await pub.expect('pubcomp')).packetId, 9);
    }
    const got = await publishesUntil(b, sub, 'reuse2-sentinel');
    assert.deepEqual(got.map((p) => p.payload.toString()), ['first', 'second']);
  });

  test('[MQTT-4.3.3-9] after a PUBREC of 0x80 or more, a QoS 2 PUBLISH with the same identifier is a new message', async () => {
    const b = await startBroker({ validateUtf8Payload: true });
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'refused2', qos: 0 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('refused2', Buffer.from([0xff, 0xfe]), 2, 5, { payloadFormatIndicator: 1 }));
    const refused = await pub.expect('pubrec');
    assert.equal(refused.packetId, 5);
    assert.equal(refused.reasonCode, 0x99);
    // No PUBREL: the refusal ended the exchange. The same identifier now starts a new message.
    pub.send(publishPacket('refused2', 'valid now', 2, 5, { payloadFormatIndicator: 1 }));
    const accepted = await pub.expect('pubrec');
    assert.equal(accepted.packetId, 5);
    assert.equal(accepted.reasonCode ?? 0, 0);
    pub.send({ type: 'pubrel', packetId: 5 });
    assert.equal((await pub.expect('pubcomp')).reasonCode ?? 0, 0);
    const got = await publishesUntil(b, sub, 'refused2-sentinel');
    assert.deepEqual(got.map((p) => p.payload.toString()), ['valid now']);
  });

  test('[MQTT-4.3.3-13] the server completes a QoS 2 exchange (PUBCOMP 0x00) even when the message expired before PUBREL', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'expire2', qos: 0 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('expire2', 'short-lived', 2, 3, { messageExpiryInterval: 1 }));
    assert.equal((await pub.expect('pubrec')).reasonCode ?? 0, 0);
    await sleep(1500);
    pub.send({ type: 'pubrel', packetId: 3 });
    const comp = await pub.expect('pubcomp');
    assert.equal(comp.packetId, 3);
    assert.equal(comp.reasonCode ?? 0, 0, 'not 0x92: the identifier was still known');
    // And the identifier is free again.
    pub.send(publishPacket('expire2', 'next', 2, 3));
    assert.equal((await pub.expect('pubrec')).packetId, 3);
  });
});

describe('38 MQTT 5 QoS flows, server as sender (4.3, 4.4)', () => {
  test('[MQTT-4.3.2-2] [MQTT-4.3.2-3] QoS 1: first sent with QoS 1 and DUP 0; unacknowledged until PUBACK, so resent (DUP 1) on resumption, acknowledged ones not', async () => {
    const b = await startBroker();
    const id = nextId('q1-send');
    const { client: sub } = await persistent(b, id);
    await subscribe5(sub, [{ topicFilter: 'q1s', qos: 1 }]);
    b.broker.publish({ topic: 'q1s', payload: 'acked', qos: 1 });
    b.broker.publish({ topic: 'q1s', payload: 'unacked', qos: 1 });
    const [acked, unacked] = await sub.expectMany('publish', 2);
    for (const p of [acked!, unacked!]) {
      assert.equal(p.qos, 1);
      assert.equal(p.dup, false, 'first transmission: DUP 0');
    }
    sub.send({ type: 'puback', packetId: acked!.packetId! });
    sub.send({ type: 'pingreq' });
    await sub.expect('pingresp');
    await drop(b, sub, id);
    const { client: back, sessionPresent } = await persistent(b, id);
    assert.equal(sessionPresent, true);
    const again = await back.expect('publish');
    assert.deepEqual([again.payload.toString(), again.packetId, again.dup, again.qos], ['unacked', unacked!.packetId, true, 1]);
    back.send({ type: 'puback', packetId: again.packetId! });
    assert.deepEqual(await publishesUntil(b, back, 'q1s-sentinel'), [], 'the acknowledged message is not resent');
  });

  test('[MQTT-4.3.3-2] [MQTT-4.3.3-3] [MQTT-4.3.3-4] [MQTT-4.3.3-5] [MQTT-4.3.3-6] QoS 2: PUBLISH (DUP 0) until PUBREC, then PUBREL with its identifier until PUBCOMP, and never the PUBLISH again', async () => {
    const b = await startBroker();
    const id = nextId('q2-send');
    const { client: sub } = await persistent(b, id);
    await subscribe5(sub, [{ topicFilter: 'q2s', qos: 2 }]);
    b.broker.publish({ topic: 'q2s', payload: 'm', qos: 2 });
    const first = await sub.expect('publish');
    assert.equal(first.qos, 2);
    assert.equal(first.dup, false);
    // No PUBREC: the PUBLISH is still unacknowledged and comes again after a reconnect.
    await drop(b, sub, id);
    let { client } = await persistent(b, id);
    const resent = await client.expect('publish');
    assert.deepEqual([resent.packetId, resent.dup, resent.payload.toString()], [first.packetId, true, 'm']);
    client.send({ type: 'pubrec', packetId: resent.packetId! });
    const rel = await client.expect('pubrel');
    assert.equal(rel.packetId, first.packetId);
    assert.equal(rel.reasonCode ?? 0, 0);
    // No PUBCOMP: the PUBREL is unacknowledged; the resumption resends the PUBREL only.
    await drop(b, client, id);
    ({ client } = await persistent(b, id));
    const after = await packetsWithin(client, 400);
    assert.deepEqual(after.map(label), [`pubrel:${first.packetId}`], 'PUBREL again, not the PUBLISH');
    client.send({ type: 'pubcomp', packetId: first.packetId! });
    await drop(b, client, id);
    ({ client } = await persistent(b, id));
    assert.deepEqual((await packetsWithin(client, 300)).map(label), [], 'after PUBCOMP nothing is resent');
  });

  test('[MQTT-4.3.3-7] QoS 2: once the PUBLISH has gone out, message expiry no longer applies: it is resent, and the flow completes', async () => {
    const b = await startBroker();
    const id = nextId('q2-exp');
    const { client: sub } = await persistent(b, id);
    await subscribe5(sub, [{ topicFilter: 'q2exp', qos: 2 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('q2exp', 'sent', 2, 1, { messageExpiryInterval: 1 }));
    pub.send(publishPacket('q2exp', 'queued', 2, 2, { messageExpiryInterval: 1 }));
    await pub.expectMany('pubrec', 2);
    const first = await sub.expect('publish');
    assert.equal(first.payload.toString(), 'sent');
    const second = await sub.expect('publish');
    assert.equal(second.payload.toString(), 'queued');
    // Acknowledge the first with PUBREC, leave the second without; then let both expire offline.
    sub.send({ type: 'pubrec', packetId: first.packetId! });
    await sub.expect('pubrel');
    await drop(b, sub, id);
    await sleep(1500);
    const { client: back } = await persistent(b, id);
    const got = await packetsWithin(back, 500);
    assert.deepEqual(got.map(label).sort(), [`pubrel:${first.packetId}`, 'publish:queued(dup)'].sort());
    back.send({ type: 'pubcomp', packetId: first.packetId! });
    back.send({ type: 'pubrec', packetId: second.packetId! });
    assert.equal((await back.expect('pubrel')).packetId, second.packetId);
    back.send({ type: 'pubcomp', packetId: second.packetId! });
  });

  test('[MQTT-4.4.0-2] a PUBACK or PUBREC of 0x80 or more acknowledges the message: no PUBREL, and nothing resent on resumption', async () => {
    const b = await startBroker();
    const id = nextId('refuser');
    const { client: sub } = await persistent(b, id);
    await subscribe5(sub, [{ topicFilter: 'refuse/#', qos: 2 }]);
    b.broker.publish({ topic: 'refuse/1', payload: 'q1', qos: 1 });
    b.broker.publish({ topic: 'refuse/2', payload: 'q2', qos: 2 });
    const [q1, q2] = await sub.expectMany('publish', 2);
    sub.send({ type: 'puback', packetId: q1!.packetId!, reasonCode: 0x80 });
    sub.send({ type: 'pubrec', packetId: q2!.packetId!, reasonCode: 0x83 });
    assert.deepEqual((await packetsWithin(sub, 300)).map(label), [], 'no PUBREL after a failing PUBREC');
    await drop(b, sub, id);
    const { client: back } = await persistent(b, id);
    assert.deepEqual(await publishesUntil(b, back, 'refuse/sentinel'), [], 'neither message is resent');
  });

  test('[MQTT-3.6.2-1] the server\'s PUBREL uses a defined reason code: 0x00 in the flow and on resumption', async () => {
    const b = await startBroker();
    const id = nextId('pubrel-rc');
    const { client: sub, bytes } = await (async () => {
      const client = await b.clients.raw();
      const chunks: Buffer[] = [];
      client.socket.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
      const connack = await client.connectMqtt({ protocolVersion: 5, clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
      assert.equal(connack.reasonCode, 0);
      return { client, bytes: () => Buffer.concat(chunks) };
    })();
    await subscribe5(sub, [{ topicFilter: 'rel', qos: 2 }]);
    b.broker.publish({ topic: 'rel', payload: 'x', qos: 2 });
    const p = await sub.expect('publish');
    sub.send({ type: 'pubrec', packetId: p.packetId! });
    const rel = await sub.expect('pubrel');
    assert.ok([0x00, 0x92].includes(rel.reasonCode ?? 0));
    assert.equal(rel.reasonCode ?? 0, 0, 'the message is known: Success');
    // On the wire: 62 02 <id> (reason 0x00 omitted) or 62 03/04 <id> 00 …
    const raw = bytes();
    const at = raw.indexOf(0x62);
    assert.ok(at >= 0);
    assert.equal(raw.readUInt16BE(at + 2), p.packetId);
    if (raw[at + 1]! > 2) assert.equal(raw[at + 4], 0x00);
    await drop(b, sub, id);
    const { client: back } = await persistent(b, id);
    const again = await back.expect('pubrel');
    assert.equal(again.reasonCode ?? 0, 0);
    back.send({ type: 'pubcomp', packetId: again.packetId });
  });
});

describe('38 MQTT 5 SUBSCRIBE and UNSUBSCRIBE (3.8, 3.10)', () => {
  test('[MQTT-3.8.4-6] a SUBACK holds exactly one reason code per filter, in order, refused filters included', async () => {
    const b = await startBroker({ maxQoS: 1, maxTopicLevels: 4 });
    const client = (await connected5(b)).client;
    const suback = await subscribe5(client, [
      { topicFilter: 's/a', qos: 0 },
      { topicFilter: 's/b', qos: 1 },
      { topicFilter: 's/c', qos: 2 },
      { topicFilter: 's/d/e/f/g', qos: 1 },
      { topicFilter: '$share/g/s/+', qos: 2 },
      { topicFilter: 's/#', qos: 0 },
    ]);
    assert.deepEqual(suback.reasonCodes, [0, 1, 1, 0x8f, 1, 0]);
  });

  test('[MQTT-3.8.4-8] each message goes out at the lower of its QoS and the QoS granted to the subscription', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'g0/+', qos: 0 }, { topicFilter: 'g1/+', qos: 1 }, { topicFilter: 'g2/+', qos: 2 }]);
    const pub = (await connected5(b)).client;
    const expected: string[] = [];
    let id = 1;
    for (const granted of [0, 1, 2] as const) {
      for (const qos of [0, 1, 2] as const) {
        pub.send(publishPacket(`g${granted}/${qos}`, 'x', qos, qos > 0 ? id++ : undefined));
        expected.push(`g${granted}/${qos}@${Math.min(granted, qos)}`);
      }
    }
    const got: string[] = [];
    while (got.length < expected.length) {
      const p = await sub.next();
      if (p.type !== 'publish') continue;
      got.push(`${p.topic}@${p.qos}`);
      if (p.qos === 1) sub.send({ type: 'puback', packetId: p.packetId! });
      if (p.qos === 2) sub.send({ type: 'pubrec', packetId: p.packetId! });
    }
    assert.deepEqual(got, expected);
  });

  test('[MQTT-3.10.4-1] UNSUBSCRIBE removes only a subscription whose filter is the same string, character for character', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'u/+', qos: 0 }, { topicFilter: 'u/b', qos: 0 }, { topicFilter: 'v/#', qos: 0 }]);
    // Same meaning under some normalisation, but not the same string: nothing is removed.
    sub.send({ type: 'unsubscribe', packetId: 50, topicFilters: ['u/B', 'u/#', 'v/+', 'u/b/', 'u//b', 'V/#', ' u/b'] });
    assert.deepEqual((await sub.expect('unsuback')).reasonCodes, [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11]);
    sub.send({ type: 'unsubscribe', packetId: 51, topicFilters: ['u/b'] });
    assert.deepEqual((await sub.expect('unsuback')).reasonCodes, [0x00]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('u/b', 'still matched by u/+', 0, undefined));
    pub.send(publishPacket('v/x', 'still matched by v/#', 0, undefined));
    const got = await publishesUntil(b, sub, 'u-sentinel');
    assert.deepEqual(got.map((p) => p.payload.toString()), ['still matched by u/+', 'still matched by v/#'], 'one copy each: u/b is gone, u/+ and v/# remain');
  });

  test('[MQTT-3.10.4-3] QoS 1 and 2 deliveries already started for an unsubscribed filter are completed', async () => {
    const b = await startBroker();
    const id = nextId('unsub-inflight');
    const { client: sub } = await persistent(b, id);
    await subscribe5(sub, [{ topicFilter: 'ui/#', qos: 2 }]);
    b.broker.publish({ topic: 'ui/1', payload: 'q1', qos: 1 });
    b.broker.publish({ topic: 'ui/2', payload: 'q2', qos: 2 });
    const [q1, q2] = await sub.expectMany('publish', 2);
    sub.send({ type: 'unsubscribe', packetId: 60, topicFilters: ['ui/#'] });
    assert.deepEqual((await sub.expect('unsuback')).reasonCodes, [0x00]);
    // The QoS 2 flow goes on after the UNSUBACK.
    sub.send({ type: 'pubrec', packetId: q2!.packetId! });
    const rel = await sub.expect('pubrel');
    assert.equal(rel.packetId, q2!.packetId);
    sub.send({ type: 'pubcomp', packetId: q2!.packetId! });
    // The unacknowledged QoS 1 message is still owed: it comes again on resumption.
    await drop(b, sub, id);
    const { client: back } = await persistent(b, id);
    const again = await back.expect('publish');
    assert.deepEqual([again.payload.toString(), again.packetId, again.dup], ['q1', q1!.packetId, true]);
    back.send({ type: 'puback', packetId: again.packetId! });
    // Nothing new for the filter.
    b.broker.publish({ topic: 'ui/3', payload: 'new', qos: 1 });
    assert.deepEqual(await publishesUntil(b, back, 'ui-sentinel'), []);
  });

  test('[MQTT-3.10.4-6] several filters in one UNSUBSCRIBE: each handled as if alone, one UNSUBACK with a code per filter', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'mu/a', qos: 0 }, { topicFilter: 'mu/b', qos: 0 }, { topicFilter: 'mu/c', qos: 0 }]);
    sub.send({ type: 'unsubscribe', packetId: 70, topicFilters: ['mu/a', 'mu/none', 'mu/c', 'mu/a'] });
    const unsuback = await sub.expect('unsuback');
    assert.equal(unsuback.packetId, 70);
    assert.deepEqual(unsuback.reasonCodes, [0x00, 0x11, 0x00, 0x11]);
    const pub = (await connected5(b)).client;
    for (const t of ['mu/a', 'mu/b', 'mu/c']) pub.send(publishPacket(t, t, 0, undefined));
    const got = await publishesUntil(b, sub, 'mu-sentinel');
    assert.deepEqual(got.map((p) => p.topic), ['mu/b'], 'only the filter left out survives; a single UNSUBACK was sent');
  });
});

describe('38 MQTT 5 PINGREQ and DISCONNECT (3.12, 3.14)', () => {
  test('[MQTT-3.12.4-1] every PINGREQ is answered with a PINGRESP', async () => {
    const b = await startBroker();
    const client = (await connected5(b)).client;
    for (let i = 0; i < 3; i++) client.send({ type: 'pingreq' });
    const got = await packetsWithin(client, 300);
    assert.deepEqual(got.map((p) => p.type), ['pingresp', 'pingresp', 'pingresp']);
  });

  test('[MQTT-3.14.1-1] a DISCONNECT with reserved flags set is malformed: the connection closes as an error, so the will is published', async () => {
    const b = await startBroker();
    const watcher = (await connected5(b)).client;
    await subscribe5(watcher, [{ topicFilter: 'dflags/#', qos: 0 }]);
    const bad = (await connected5(b, { will: { topic: 'dflags/will', payload: Buffer.from('bad'), qos: 0, retain: false } })).client;
    bad.send(Buffer.from([0xe1, 0x00]));
    const packets = await bad.expectClosed(2000, { allowPackets: true });
    for (const p of packets) assert.ok(p.type === 'disconnect' && p.reasonCode === 0x81, `only DISCONNECT 0x81 before the close, got ${describePacket(p)}`);
    const will = await watcher.expect('publish');
    assert.equal(will.payload.toString(), 'bad');
    // Negative: a well-formed DISCONNECT 0x00 drops the will.
    const good = (await connected5(b, { will: { topic: 'dflags/will', payload: Buffer.from('good'), qos: 0, retain: false } })).client;
    good.send(Buffer.from([0xe0, 0x00]));
    await good.expectClosed();
    assert.deepEqual(await publishesUntil(b, watcher, 'dflags/sentinel'), []);
  });

  test('[MQTT-3.14.2-2] a DISCONNECT from the server never carries a Session Expiry Interval (takeover, protocol error, shutdown)', async () => {
    const b = await startBroker();
    const seen: number[] = [];
    const check = (packets: Packet[]): void => {
      const d = packets.at(-1);
      assert.ok(d?.type === 'disconnect');
      assert.equal(d.properties?.sessionExpiryInterval, undefined, `DISCONNECT 0x${(d.reasonCode ?? 0).toString(16)} has no Session Expiry Interval`);
      seen.push(d.reasonCode ?? 0);
    };
    const id = nextId('sei');
    const { client: first } = await persistent(b, id);
    await persistent(b, id);
    check(await expectServerDisconnect(first, 0x8e));
    const { client: proto } = await persistent(b, nextId('sei'));
    proto.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'again' });
    check(await expectServerDisconnect(proto, 0x82));
    const { client: last } = await persistent(b, nextId('sei'));
    await b.broker.close();
    check(await expectServerDisconnect(last, 0x8b));
    assert.deepEqual(seen, [0x8e, 0x82, 0x8b]);
  });
});

describe('38 MQTT 5 sessions, receipt and ordering (4.1, 4.2, 4.5, 4.6)', () => {
  test('[MQTT-4.1.0-1] session state is kept while the connection is open, longer than the Session Expiry Interval', async () => {
    const b = await startBroker();
    const id = nextId('kept');
    const { client } = await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 1, receiveMaximum: 1 } });
    await subscribe5(client, [{ topicFilter: 'kept/#', qos: 1 }]);
    b.broker.publish({ topic: 'kept/a', payload: 'inflight', qos: 1 });
    b.broker.publish({ topic: 'kept/b', payload: 'queued', qos: 1 });
    const inflight = await client.expect('publish');
    await sleep(1600);
    client.send({ type: 'pingreq' });
    await client.expect('pingresp');
    // Subscription, inflight message and queue are all still there.
    client.send({ type: 'puback', packetId: inflight.packetId! });
    const queued = await client.expect('publish');
    assert.equal(queued.payload.toString(), 'queued');
    client.send({ type: 'puback', packetId: queued.packetId! });
    b.broker.publish({ topic: 'kept/c', payload: 'new', qos: 1 });
    const fresh = await client.expect('publish');
    assert.equal(fresh.payload.toString(), 'new');
    client.send({ type: 'puback', packetId: fresh.packetId! });
    // Negative: once closed, the 1 s expiry does apply.
    client.disconnect();
    await client.expectClosed();
    await sleep(1600);
    const again = await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 1 } });
    assert.equal(again.connack.sessionPresent, false);
  });

  test('[MQTT-4.2.0-1] the TCP byte stream carries packets in order and without loss both ways, however it is cut', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'stream/#', qos: 1 }]);
    const pub = await b.clients.raw({ version: 5 });
    const connect = encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: nextId('stream') }, 5);
    const publishes = Array.from({ length: 300 }, (_, i) => encodePacket(publishPacket(`stream/${i % 7}`, `m${i}`, 1, i + 1), 5));
    const all = Buffer.concat([connect, ...publishes]);
    // Cut the stream at odd places: one byte, then pieces of 1..97 bytes.
    let pos = 0;
    let size = 1;
    while (pos < all.length) {
      pub.socket.write(all.subarray(pos, pos + size));
      pos += size;
      size = (size * 7 + 3) % 97 + 1;
    }
    assert.equal((await pub.expect('connack')).reasonCode, 0);
    const acks = await pub.expectMany('puback', 300, 5000);
    assert.deepEqual(acks.map((a) => a.packetId), publishes.map((_, i) => i + 1));
    const got: string[] = [];
    while (got.length < 300) {
      const p = await sub.expect('publish', 5000);
      got.push(p.payload.toString());
      sub.send({ type: 'puback', packetId: p.packetId! });
    }
    assert.deepEqual(got, publishes.map((_, i) => `m${i}`));
  });

  test('[MQTT-4.5.0-1] an accepted message goes to the session of every matching subscriber, connected or not', async () => {
    const b = await startBroker();
    const a = (await connected5(b)).client;
    await subscribe5(a, [{ topicFilter: 'fan/+', qos: 1 }]);
    const c = (await connected5(b)).client;
    await subscribe5(c, [{ topicFilter: 'fan/#', qos: 0 }, { topicFilter: 'fan/x', qos: 1 }]);
    const offId = nextId('fan-off');
    const { client: off } = await persistent(b, offId);
    await subscribe5(off, [{ topicFilter: 'fan/x', qos: 1 }]);
    off.disconnect();
    await off.expectClosed();
    const other = (await connected5(b)).client;
    await subscribe5(other, [{ topicFilter: 'elsewhere/#', qos: 1 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('fan/x', 'to all', 1, 1));
    assert.equal((await pub.expect('puback')).reasonCode, 0);
    assert.equal((await a.expect('publish')).payload.toString(), 'to all');
    const atC = await publishesUntil(b, c, 'fan-sentinel');
    assert.equal(atC.length, 1, 'one copy for overlapping subscriptions');
    assert.equal(atC[0]!.qos, 1);
    const { client: back } = await persistent(b, offId);
    assert.equal((await back.expect('publish')).payload.toString(), 'to all', 'kept in the offline session');
    assert.deepEqual(await publishesUntil(b, other, 'elsewhere/sentinel'), [], 'not for a subscriber that does not match');
  });

  test('[MQTT-4.6.0-5] [MQTT-4.6.0-6] each publisher\'s messages reach every (non-shared) subscriber in the order sent, per topic and QoS', async () => {
    const b = await startBroker();
    const subs = [(await connected5(b)).client, (await connected5(b)).client];
    await subscribe5(subs[0]!, [{ topicFilter: 'order/#', qos: 2 }]);
    await subscribe5(subs[1]!, [{ topicFilter: 'order/+', qos: 1 }, { topicFilter: 'order/a', qos: 2 }]);
    const pubs = [(await connected5(b)).client, (await connected5(b)).client];
    const n = 60;
    const owed = [0, 0];
    for (let i = 0; i < n; i++) {
      for (const [p, pub] of pubs.entries()) {
        const qos = ((i + p) % 3) as 0 | 1 | 2;
        if (qos > 0) owed[p]!++;
        pub.send(publishPacket(i % 2 === 0 ? 'order/a' : 'order/b', `${p}:${qos}:${i}`, qos, qos > 0 ? i + 1 : undefined));
      }
    }
    // The publishers finish their flows (PUBREL for each PUBREC) until every message is acknowledged.
    for (const [p, pub] of pubs.entries()) {
      while (owed[p]! > 0) {
        const a = await pub.next(5000);
        if (a.type === 'pubrec') pub.send({ type: 'pubrel', packetId: a.packetId });
        else if (a.type === 'puback' || a.type === 'pubcomp') owed[p]!--;
      }
    }
    for (const sub of subs) {
      const got: string[] = [];
      while (got.length < n * 2) {
        const p = await sub.next(5000);
        if (p.type === 'pubrel') sub.send({ type: 'pubcomp', packetId: p.packetId });
        if (p.type !== 'publish') continue;
        got.push(`${p.topic}|${p.payload.toString()}`);
        if (p.qos === 1) sub.send({ type: 'puback', packetId: p.packetId! });
        if (p.qos === 2) sub.send({ type: 'pubrec', packetId: p.packetId! });
      }
      // For each publisher, topic and QoS, the sequence numbers rise.
      const last = new Map<string, number>();
      for (const entry of got) {
        const [topic, payload] = entry.split('|') as [string, string];
        const [p, qos, i] = payload.split(':');
        const key = `${p}/${topic}/${qos}`;
        const seq = Number(i);
        assert.ok(seq > (last.get(key) ?? -1), `${key}: ${seq} after ${last.get(key)}`);
        last.set(key, seq);
      }
      // And across QoS levels too (Starling keeps one order per publisher and topic).
      for (const [p] of pubs.entries()) {
        for (const topic of ['order/a', 'order/b']) {
          const seqs = got.filter((e) => e.startsWith(`${topic}|${p}:`)).map((e) => Number(e.split(':')[2]));
          assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), `${p} on ${topic}`);
          assert.equal(seqs.length, n / 2);
        }
      }
    }
  });
});

describe('38 MQTT 5 flow control (3.3.4, 4.9)', () => {
  test('[MQTT-4.9.0-1] the initial send quota is above zero and at most the Receive Maximum (and the server\'s own inflight limit)', async () => {
    for (const [receiveMaximum, maxInflight, expected] of [
      [1, 100, 1],
      [3, 100, 3],
      [10, 4, 4],
    ] as const) {
      const b = await startBroker({ maxInflight });
      const sub = (await connected5(b, { properties: { receiveMaximum } })).client;
      await subscribe5(sub, [{ topicFilter: 'quota', qos: 1 }]);
      for (let i = 0; i < 12; i++) b.broker.publish({ topic: 'quota', payload: `m${i}`, qos: 1 });
      const got = await packetsWithin(sub, 400);
      assert.equal(got.filter((p) => p.type === 'publish').length, expected, `Receive Maximum ${receiveMaximum}, maxInflight ${maxInflight}`);
      await b.close();
    }
  });

  test('[MQTT-3.3.4-10] [MQTT-4.9.0-3] with the send quota at zero, other packets still flow: PINGRESP, SUBACK, UNSUBACK, PUBACK, QoS 0 PUBLISH', async () => {
    const b = await startBroker();
    const sub = (await connected5(b, { properties: { receiveMaximum: 1 } })).client;
    await subscribe5(sub, [{ topicFilter: 'zq/q1', qos: 1 }, { topicFilter: 'zq/q0', qos: 0 }]);
    b.broker.publish({ topic: 'zq/q1', payload: 'holds the quota', qos: 1 });
    b.broker.publish({ topic: 'zq/q1', payload: 'waits', qos: 1 });
    const held = await sub.expect('publish');
    assert.equal(held.payload.toString(), 'holds the quota');
    await sub.expectSilence(200);
    sub.send({ type: 'pingreq' });
    assert.equal((await sub.next()).type, 'pingresp');
    sub.send({ type: 'subscribe', packetId: 20, subscriptions: [{ topicFilter: 'zq/other', qos: 1 }] });
    assert.equal((await sub.expect('suback')).packetId, 20);
    sub.send({ type: 'unsubscribe', packetId: 21, topicFilters: ['zq/other'] });
    assert.equal((await sub.expect('unsuback')).packetId, 21);
    sub.send(publishPacket('zq/elsewhere', 'mine', 1, 22));
    assert.equal((await sub.expect('puback')).packetId, 22);
    b.broker.publish({ topic: 'zq/q0', payload: 'qos 0 still goes', qos: 0 });
    const q0 = await sub.expect('publish');
    assert.deepEqual([q0.payload.toString(), q0.qos], ['qos 0 still goes', 0]);
    await sub.expectSilence(200);
    sub.send({ type: 'puback', packetId: held.packetId! });
    assert.equal((await sub.expect('publish')).payload.toString(), 'waits');
  });
});
