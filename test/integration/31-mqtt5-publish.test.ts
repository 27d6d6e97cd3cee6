/**
 * MQTT 5.0 PUBLISH: properties forwarded (and dropped for 3.1.1), message expiry, topic aliases in
 * both directions, Receive Maximum both ways, Maximum Packet Size both ways, PUBACK / PUBREC /
 * PUBCOMP reason codes, and the protocol errors a PUBLISH can raise. Black box over TCP.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Packet, Properties } from '../../src/protocol/types.js';
import { sleep } from '../helpers/raw-client.js';
import { connected5, expectServerDisconnect, nextId, publishPacket, receivedBefore, startBroker, subscribe5 } from '../helpers/broker-core.js';

describe('31 MQTT 5 publish properties', () => {
  test('[MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] properties are forwarded unchanged, user properties in order with duplicates', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'props/#', qos: 1 }]);
    const pub = (await connected5(b)).client;
    const properties: Properties = {
      payloadFormatIndicator: 1,
      contentType: 'application/json; charset=utf-8',
      responseTopic: 'props/reply/ß',
      correlationData: Buffer.from([0, 1, 2, 0xff]),
      userProperties: [
        ['b', '2'],
        ['a', '1'],
        ['b', 'again'],
        ['', ''],
      ],
    };
    pub.send(publishPacket('props/all', '{"x":1}', 1, 7, properties));
    const puback = await pub.expect('puback');
    assert.equal(puback.reasonCode, 0);
    const got = await sub.expect('publish');
    assert.equal(got.payload.toString(), '{"x":1}');
    assert.deepEqual(got.properties, properties);
    // Negative: a message without properties arrives without any.
    pub.send(publishPacket('props/none', 'plain', 0, undefined));
    const plain = await sub.expect('publish');
    assert.equal(plain.properties, undefined);
  });

  test('[MQTT-3.3.2-4] a 3.1.1 subscriber gets the message of an MQTT 5 publisher, without properties; a 3.1.1 publisher reaches MQTT 5 subscribers', async () => {
    const b = await startBroker();
    const v4 = await b.clients.rawConnected({ clientId: nextId('v4') });
    await v4.subscribe('mixed/#', 1);
    const v5 = (await connected5(b)).client;
    await subscribe5(v5, [{ topicFilter: 'mixed/#', qos: 1 }]);
    const pub5 = (await connected5(b)).client;
    pub5.send(publishPacket('mixed/from5', 'five', 1, 3, { contentType: 'text/plain', userProperties: [['k', 'v']], messageExpiryInterval: 100 }));
    await pub5.expect('puback');
    const at4 = await v4.expect('publish');
    assert.equal(at4.topic, 'mixed/from5');
    assert.equal(at4.payload.toString(), 'five');
    assert.equal(at4.properties, undefined);
    const at5 = await v5.expect('publish');
    assert.equal(at5.properties?.contentType, 'text/plain');
    // 3.1.1 publisher → MQTT 5 subscriber: no properties to forward.
    const pub4 = await b.clients.rawConnected({ clientId: nextId('v4pub') });
    pub4.publish('mixed/from4', 'four', 1);
    await pub4.expect('puback');
    const from4 = await v5.expect('publish');
    assert.equal(from4.payload.toString(), 'four');
    assert.equal(from4.properties, undefined);
  });
});

describe('31 MQTT 5 message expiry', () => {
  test('[MQTT-3.3.2-6] the Message Expiry Interval is forwarded, reduced by the time the message waited', async () => {
    const b = await startBroker();
    const online = (await connected5(b)).client;
    await subscribe5(online, [{ topicFilter: 'exp/fwd', qos: 1 }]);
    const offlineId = nextId('exp-off');
    const off = (await connected5(b, { clientId: offlineId, clean: false, properties: { sessionExpiryInterval: 60 } })).client;
    await subscribe5(off, [{ topicFilter: 'exp/fwd', qos: 1 }]);
    off.disconnect();
    await off.expectClosed();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('exp/fwd', 'ages', 1, 1, { messageExpiryInterval: 10 }));
    await pub.expect('puback');
    const live = await online.expect('publish');
    assert.equal(live.properties?.messageExpiryInterval, 10, 'sent at once: the full interval');
    await sleep(2100);
    const back = (await connected5(b, { clientId: offlineId, clean: false, properties: { sessionExpiryInterval: 60 } })).client;
    const late = await back.expect('publish');
    const remaining = late.properties?.messageExpiryInterval ?? 0;
    assert.ok(remaining >= 7 && remaining <= 8, `after ~2 s waiting, 10 s became ${remaining} s`);
  });

  test('[MQTT-3.3.2-5] an expired message is not delivered to a session that reconnects later; an unexpired one is', async () => {
    const b = await startBroker();
    const id = nextId('exp-gone');
    const sub = (await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).client;
    await subscribe5(sub, [{ topicFilter: 'exp/gone/#', qos: 1 }]);
    sub.disconnect();
    await sub.expectClosed();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('exp/gone/short', 'short-lived', 1, 1, { messageExpiryInterval: 1 }));
    pub.send(publishPacket('exp/gone/long', 'long-lived', 1, 2, { messageExpiryInterval: 60 }));
    pub.send(publishPacket('exp/gone/none', 'immortal', 1, 3));
    await pub.expectMany('puback', 3);
    await sleep(1600);
    const back = (await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).client;
    const got = await receivedBefore(b, back, 'exp/gone/sentinel');
    assert.deepEqual(got.map((p) => p.payload.toString()), ['long-lived', 'immortal']);
  });

  test('[MQTT-3.3.2-5] an expired retained message is not sent to a new subscriber', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('exp/retained/short', 'old', 0, undefined, { messageExpiryInterval: 1 }, true));
    pub.send(publishPacket('exp/retained/long', 'fresh', 0, undefined, { messageExpiryInterval: 60 }, true));
    await sleep(1300);
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'exp/retained/#', qos: 0 }]);
    const got = await receivedBefore(b, sub, 'exp/retained/sentinel');
    assert.deepEqual(got.map((p) => p.payload.toString()), ['fresh']);
    assert.ok((got[0]?.properties?.messageExpiryInterval ?? 0) <= 59, 'retained copy carries the reduced interval');
  });

  test('[MQTT-4.3.3-7] [MQTT-4.4.0-1] a QoS 1 message already sent (unacknowledged) is resent on reconnect even if its expiry passed', async () => {
    const b = await startBroker();
    const id = nextId('exp-inflight');
    const sub = (await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 1 } })).client;
    await subscribe5(sub, [{ topicFilter: 'exp/inflight', qos: 1 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('exp/inflight', 'first', 1, 1, { messageExpiryInterval: 1 }));
    const first = await sub.expect('publish');
    sub.destroy(); // no PUBACK: the delivery has started and is unacknowledged
    await sleep(1600);
    const back = (await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 1 } })).client;
    pub.send(publishPacket('exp/inflight', 'second', 1, 2));
    const got: string[] = [];
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline && got.length < 2) {
      let p: Packet;
      try {
        p = await back.next(Math.max(1, deadline - Date.now()));
      } catch {
        break;
      }
      if (p.type !== 'publish') continue;
      got.push(`${p.payload.toString()}${p.dup ? '(dup)' : ''}`);
      if (p.packetId !== undefined) back.send({ type: 'puback', packetId: p.packetId });
    }
    assert.equal(first.payload.toString(), 'first');
    assert.deepEqual(got, ['first(dup)', 'second'], 'the unacknowledged message is resent, and the inflight slot is not lost');
  });

  test('[MQTT-3.3.2-5] message expiry also applies to a 3.1.1 subscriber\'s queued copy', async () => {
    const b = await startBroker();
    const id = nextId('exp-v4');
    const v4 = await b.clients.rawConnected({ clientId: id, clean: false });
    await v4.subscribe('exp/v4/#', 1);
    v4.disconnect();
    await v4.expectClosed();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('exp/v4/short', 'short-lived', 1, 1, { messageExpiryInterval: 1 }));
    pub.send(publishPacket('exp/v4/none', 'immortal', 1, 2));
    await pub.expectMany('puback', 2);
    await sleep(1600);
    const back = await b.clients.rawConnected({ clientId: id, clean: false });
    const got = await receivedBefore(b, back, 'exp/v4/sentinel');
    assert.deepEqual(got.map((p) => p.payload.toString()), ['immortal']);
  });
});

/** Raw MQTT 5 QoS 0 PUBLISH bytes with a Topic Alias property of any value (the encoder refuses 0). */
function rawAliasPublish(topic: string, alias: number, payload: string): Buffer {
  const topicBytes = Buffer.from(topic);
  const props = Buffer.from([0x03, 0x23, alias >> 8, alias & 0xff]);
  const body = Buffer.concat([Buffer.from([topicBytes.length >> 8, topicBytes.length & 0xff]), topicBytes, props, Buffer.from(payload)]);
  assert.ok(body.length < 128);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

describe('31 MQTT 5 topic aliases, client to server', () => {
  test('[MQTT-3.3.2-12] an alias set with a topic is reused with an empty topic, and can be remapped', async () => {
    const b = await startBroker({ topicAliasMaximum: 3 });
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'alias/#', qos: 0 }]);
    const { client: pub, connack } = await connected5(b);
    assert.equal(connack.properties?.topicAliasMaximum, 3);
    pub.send(publishPacket('alias/one', 'a', 0, undefined, { topicAlias: 1 }));
    pub.send(publishPacket('', 'b', 0, undefined, { topicAlias: 1 }));
    pub.send(publishPacket('alias/three', 'c', 0, undefined, { topicAlias: 3 }));
    pub.send(publishPacket('alias/remapped', 'd', 0, undefined, { topicAlias: 1 }));
    pub.send(publishPacket('', 'e', 0, undefined, { topicAlias: 1 }));
    pub.send(publishPacket('', 'f', 0, undefined, { topicAlias: 3 }));
    const got = await sub.expectMany('publish', 6);
    assert.deepEqual(
      got.map((p) => `${p.topic}=${p.payload.toString()}`),
      ['alias/one=a', 'alias/one=b', 'alias/three=c', 'alias/remapped=d', 'alias/remapped=e', 'alias/three=f'],
    );
    assert.ok(got.every((p) => p.properties?.topicAlias === undefined), 'the publisher\'s aliases are not forwarded');
  });

  test('[MQTT-3.3.2-8] Topic Alias 0 gets DISCONNECT 0x94', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send(rawAliasPublish('alias/zero', 0, 'x'));
    await expectServerDisconnect(pub, 0x94);
  });

  test('[MQTT-3.3.2-9] [MQTT-3.2.2-17] a Topic Alias above our Topic Alias Maximum gets DISCONNECT 0x94', async () => {
    const b = await startBroker({ topicAliasMaximum: 2 });
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('alias/ok', 'x', 0, undefined, { topicAlias: 2 })); // the maximum itself is fine
    pub.send(publishPacket('alias/high', 'x', 0, undefined, { topicAlias: 3 }));
    await expectServerDisconnect(pub, 0x94);
  });

  test('[MQTT-3.2.2-18] with Topic Alias Maximum 0 any alias gets DISCONNECT 0x94', async () => {
    const b = await startBroker({ topicAliasMaximum: 0 });
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('alias/off', 'x', 0, undefined, { topicAlias: 1 }));
    await expectServerDisconnect(pub, 0x94);
  });

  test('spec 3.3.2.3.4: an empty topic with an alias never set gets DISCONNECT 0x82 (Protocol Error)', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('', 'x', 0, undefined, { topicAlias: 5 }));
    await expectServerDisconnect(pub, 0x82);
  });

  test('[MQTT-3.3.2-7] aliases are not carried from one connection to the next', async () => {
    const b = await startBroker();
    const id = nextId('alias-conn');
    const first = (await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).client;
    first.send(publishPacket('alias/conn', 'x', 0, undefined, { topicAlias: 1 }));
    first.send({ type: 'pingreq' });
    await first.expect('pingresp');
    first.disconnect();
    await first.expectClosed();
    const second = (await connected5(b, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } })).client;
    second.send(publishPacket('', 'y', 0, undefined, { topicAlias: 1 }));
    await expectServerDisconnect(second, 0x82);
  });
});

describe('31 MQTT 5 topic aliases, server to client', () => {
  test('[MQTT-3.3.2-11] [MQTT-3.1.2-26] a repeated topic is sent as its alias alone; never more aliases than the client allows', async () => {
    const b = await startBroker();
    const sub = (await connected5(b, { properties: { topicAliasMaximum: 2 } })).client;
    await subscribe5(sub, [{ topicFilter: 'sa/#', qos: 1 }]);
    const topics = ['sa/one', 'sa/one', 'sa/two', 'sa/three', 'sa/two', 'sa/three', 'sa/one'];
    for (const topic of topics) b.broker.publish({ topic, payload: topic, qos: 0 });
    const got = await sub.expectMany('publish', topics.length);
    const aliasOf = new Map<number, string>();
    for (const [i, p] of got.entries()) {
      const alias = p.properties?.topicAlias;
      if (alias !== undefined) {
        assert.ok(alias >= 1 && alias <= 2, `alias ${alias} within 1..2`);
        if (p.topic !== '') aliasOf.set(alias, p.topic);
      }
      const resolved = p.topic === '' ? aliasOf.get(alias ?? -1) : p.topic;
      assert.equal(resolved, topics[i], `message ${i} resolves to its topic`);
      assert.equal(p.payload.toString(), topics[i]);
    }
    assert.equal(got[1]?.topic, '', 'second message on sa/one: empty topic');
    assert.equal(got[1]?.properties?.topicAlias, got[0]?.properties?.topicAlias, 'and the alias of the first');
    assert.equal(got[3]?.topic, 'sa/three', 'a third topic with two aliases used: full topic');
    assert.equal(got[3]?.properties?.topicAlias, undefined, 'and no alias');
    assert.equal(new Set(got.map((p) => p.properties?.topicAlias).filter((a) => a !== undefined)).size, 2);
    // QoS 1 deliveries use aliases too.
    b.broker.publish({ topic: 'sa/one', payload: 'q1', qos: 1 });
    const q1 = await sub.expect('publish');
    assert.equal(q1.topic, '');
    assert.equal(q1.properties?.topicAlias, got[0]?.properties?.topicAlias);
  });

  test('[MQTT-3.1.2-27] a client without Topic Alias Maximum never gets an alias', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'sa-none/#', qos: 0 }]);
    for (let i = 0; i < 3; i++) b.broker.publish({ topic: 'sa-none/t', payload: 'x' });
    const got = await sub.expectMany('publish', 3);
    assert.ok(got.every((p) => p.topic === 'sa-none/t' && p.properties?.topicAlias === undefined));
  });
});

describe('31 MQTT 5 Receive Maximum', () => {
  test('[MQTT-3.3.4-9] [MQTT-4.9.0-2] never more unacknowledged QoS 1 PUBLISH to a client than its Receive Maximum', async () => {
    const b = await startBroker();
    const sub = (await connected5(b, { properties: { receiveMaximum: 2 } })).client;
    await subscribe5(sub, [{ topicFilter: 'rm/q1', qos: 1 }]);
    for (let i = 1; i <= 5; i++) b.broker.publish({ topic: 'rm/q1', payload: `m${i}`, qos: 1 });
    const firstTwo = await sub.expectMany('publish', 2);
    await sub.expectSilence(300);
    // [MQTT-4.9.0-3] other packets still flow while the quota is zero.
    sub.send({ type: 'pingreq' });
    await sub.expect('pingresp');
    const seen = firstTwo.map((p) => p.payload.toString());
    const outstanding = firstTwo.map((p) => p.packetId!);
    while (seen.length < 5) {
      sub.send({ type: 'puback', packetId: outstanding.shift()! });
      const next = await sub.expect('publish');
      seen.push(next.payload.toString());
      outstanding.push(next.packetId!);
      if (seen.length < 5) await sub.expectSilence(100);
    }
    assert.deepEqual(seen, ['m1', 'm2', 'm3', 'm4', 'm5']);
  });

  test('[MQTT-3.3.4-9] a QoS 2 message counts until PUBCOMP (PUBREC alone does not free the slot); PUBREC >= 0x80 does', async () => {
    const b = await startBroker();
    const sub = (await connected5(b, { properties: { receiveMaximum: 1 } })).client;
    await subscribe5(sub, [{ topicFilter: 'rm/q2', qos: 2 }]);
    for (let i = 1; i <= 3; i++) b.broker.publish({ topic: 'rm/q2', payload: `m${i}`, qos: 2 });
    const m1 = await sub.expect('publish');
    sub.send({ type: 'pubrec', packetId: m1.packetId! });
    const rel = await sub.expect('pubrel');
    assert.equal(rel.packetId, m1.packetId);
    await sub.expectSilence(300);
    sub.send({ type: 'pubcomp', packetId: m1.packetId! });
    const m2 = await sub.expect('publish');
    assert.equal(m2.payload.toString(), 'm2');
    // A PUBREC with a failure reason ends the flow [MQTT-4.3.3-4] and frees the slot: no PUBREL.
    sub.send({ type: 'pubrec', packetId: m2.packetId!, reasonCode: 0x80 });
    const m3 = await sub.expect('publish');
    assert.equal(m3.payload.toString(), 'm3');
  });

  test('[MQTT-3.3.4-7] a client exceeding our Receive Maximum with unacknowledged QoS 2 gets DISCONNECT 0x93', async () => {
    const b = await startBroker({ receiveMaximum: 2 });
    const { client: ok, connack } = await connected5(b);
    assert.equal(connack.properties?.receiveMaximum, 2);
    // Negative first: releasing one keeps the client within the limit.
    ok.send(publishPacket('rm/in', 'a', 2, 1));
    ok.send(publishPacket('rm/in', 'b', 2, 2));
    await ok.expectMany('pubrec', 2);
    ok.send({ type: 'pubrel', packetId: 1 });
    await ok.expect('pubcomp');
    ok.send(publishPacket('rm/in', 'c', 2, 3));
    await ok.expect('pubrec');
    // Now a client that never sends PUBREL.
    const bad = (await connected5(b)).client;
    bad.send(publishPacket('rm/in', 'a', 2, 1));
    bad.send(publishPacket('rm/in', 'b', 2, 2));
    bad.send(publishPacket('rm/in', 'c', 2, 3));
    const packets = await expectServerDisconnect(bad, 0x93);
    assert.deepEqual(packets.filter((p) => p.type === 'pubrec').map((p) => (p.type === 'pubrec' ? p.packetId : 0)), [1, 2]);
  });
});

describe('31 MQTT 5 Maximum Packet Size', () => {
  test('[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message larger than the client\'s Maximum Packet Size is not sent to it; others still get it', async () => {
    const b = await startBroker();
    const small = (await connected5(b, { properties: { maximumPacketSize: 64, receiveMaximum: 1 } })).client;
    await subscribe5(small, [{ topicFilter: 'mps/#', qos: 1 }]);
    const big = (await connected5(b)).client;
    await subscribe5(big, [{ topicFilter: 'mps/#', qos: 1 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('mps/large', Buffer.alloc(200, 0x61), 1, 1));
    pub.send(publishPacket('mps/small', 'tiny', 1, 2));
    await pub.expectMany('puback', 2);
    const atBig = await big.expectMany('publish', 2);
    assert.deepEqual(atBig.map((p) => p.topic), ['mps/large', 'mps/small']);
    // The dropped QoS 1 message behaves as if delivered: it does not hold the only inflight slot.
    const atSmall = await small.expect('publish');
    assert.equal(atSmall.topic, 'mps/small');
    await small.expectSilence(200);
  });

  test('[MQTT-3.2.2-15] a packet larger than our Maximum Packet Size gets DISCONNECT 0x95', async () => {
    const b = await startBroker({ maxPacketSize: 256 });
    const { client, connack } = await connected5(b);
    assert.equal(connack.properties?.maximumPacketSize, 256);
    client.send(publishPacket('mps/in', Buffer.alloc(200), 0, undefined)); // fits
    client.send({ type: 'pingreq' });
    await client.expect('pingresp');
    client.send(publishPacket('mps/in', Buffer.alloc(300), 0, undefined));
    await expectServerDisconnect(client, 0x95);
  });
});

describe('31 MQTT 5 acknowledgement reason codes', () => {
  test('[MQTT-3.4.2-1] [MQTT-3.5.2-1] PUBACK / PUBREC 0x10 when no one is subscribed, 0x00 when someone is', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('ack/nobody', 'x', 1, 1));
    assert.equal((await pub.expect('puback')).reasonCode, 0x10);
    pub.send(publishPacket('ack/nobody', 'x', 2, 2));
    assert.equal((await pub.expect('pubrec')).reasonCode, 0x10);
    pub.send({ type: 'pubrel', packetId: 2 });
    assert.equal((await pub.expect('pubcomp')).reasonCode, 0);
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'ack/somebody', qos: 0 }]);
    pub.send(publishPacket('ack/somebody', 'x', 1, 3));
    assert.equal((await pub.expect('puback')).reasonCode, 0);
    pub.send(publishPacket('ack/somebody', 'x', 2, 4));
    assert.equal((await pub.expect('pubrec')).reasonCode, 0);
  });

  test('[MQTT-3.7.2-1] PUBREL for an unknown packet id gets PUBCOMP 0x92', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send({ type: 'pubrel', packetId: 999 });
    const comp = await pub.expect('pubcomp');
    assert.equal(comp.packetId, 999);
    assert.equal(comp.reasonCode, 0x92);
  });

  test('[MQTT-3.2.2-11] a PUBLISH above Maximum QoS gets DISCONNECT 0x9B', async () => {
    const b = await startBroker({ maxQoS: 1 });
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('maxqos/ok', 'x', 1, 1));
    await pub.expect('puback');
    pub.send(publishPacket('maxqos/high', 'x', 2, 2));
    await expectServerDisconnect(pub, 0x9b);
  });

  test('[MQTT-3.2.2-14] a retained PUBLISH when Retain Available is 0 gets DISCONNECT 0x9A', async () => {
    const b = await startBroker({ retainAvailable: false });
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('noretain/x', 'x', 1, 1));
    await pub.expect('puback');
    pub.send(publishPacket('noretain/x', 'x', 1, 2, undefined, true));
    await expectServerDisconnect(pub, 0x9a);
  });

  test('[MQTT-3.3.4-6] a Subscription Identifier in a client PUBLISH gets DISCONNECT 0x82', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('subid/in', 'x', 0, undefined, { subscriptionIdentifiers: [4] }));
    await expectServerDisconnect(pub, 0x82);
  });

  test('spec 3.3.2.3.2: with validateUtf8Payload, a payload declared UTF-8 that is not gets PUBACK 0x99 and is not delivered', async () => {
    const b = await startBroker({ validateUtf8Payload: true });
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'utf8/#', qos: 1 }]);
    const pub = (await connected5(b)).client;
    const invalid = Buffer.from([0x61, 0xff, 0xfe]);
    pub.send(publishPacket('utf8/bad', invalid, 1, 1, { payloadFormatIndicator: 1 }));
    assert.equal((await pub.expect('puback')).reasonCode, 0x99);
    pub.send(publishPacket('utf8/bad2', invalid, 2, 2, { payloadFormatIndicator: 1 }));
    assert.equal((await pub.expect('pubrec')).reasonCode, 0x99);
    pub.send(publishPacket('utf8/good', 'grüße', 1, 3, { payloadFormatIndicator: 1 }));
    assert.equal((await pub.expect('puback')).reasonCode, 0);
    pub.send(publishPacket('utf8/binary', invalid, 1, 4)); // not declared UTF-8: not checked
    assert.equal((await pub.expect('puback')).reasonCode, 0);
    const got = await sub.expectMany('publish', 2);
    assert.deepEqual(got.map((p) => p.topic), ['utf8/good', 'utf8/binary']);
    for (const p of got) sub.send({ type: 'puback', packetId: p.packetId! });
    await sub.expectSilence(200);
    // QoS 0 has no acknowledgement to carry the refusal: DISCONNECT 0x99.
    pub.send(publishPacket('utf8/bad0', invalid, 0, undefined, { payloadFormatIndicator: 1 }));
    await expectServerDisconnect(pub, 0x99);
  });
});
