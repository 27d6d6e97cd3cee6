/**
 * MQTT 5.0 SUBSCRIBE / UNSUBSCRIBE: subscription options (No Local, Retain As Published, Retain
 * Handling), Subscription Identifiers, SUBACK / UNSUBACK reason codes and shared subscriptions.
 * Black box over TCP with the raw client.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Packet, PublishPacket } from '../../src/protocol/types.js';
import { type ConnectFields, type RawClient } from '../helpers/raw-client.js';
import { connected5, expectServerDisconnect, nextId, publishPacket, receivedBefore, startBroker, subscribe5 } from '../helpers/broker-core.js';
import { notInWorkers } from '../helpers/worker-broker.js';

/** Every PUBLISH `client` receives within `ms`, acknowledging QoS 1 ones when `ack` is set. */
/** The client of the two that has a packet first (left queued), then the other one. */
async function firstToReceive(one: RawClient, two: RawClient, timeoutMs = 2000): Promise<[RawClient, RawClient]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (one.pending > 0) return [one, two];
    if (two.pending > 0) return [two, one];
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`neither member got a packet within ${timeoutMs} ms`);
}

async function drain(client: RawClient, ms: number, ack = true): Promise<PublishPacket[]> {
  const out: PublishPacket[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    let packet: Packet;
    try {
      packet = await client.next(Math.max(1, deadline - Date.now()));
    } catch {
      return out;
    }
    if (packet.type !== 'publish') continue;
    out.push(packet);
    if (ack && packet.qos === 1) client.send({ type: 'puback', packetId: packet.packetId! });
    if (ack && packet.qos === 2) client.send({ type: 'pubrec', packetId: packet.packetId! });
  }
}

const payloads = (packets: PublishPacket[]): string[] => packets.map((p) => p.payload.toString());

describe('32 MQTT 5 subscription options', () => {
  test('[MQTT-3.8.3-3] No Local: a client does not get its own messages; other publishers\' messages still arrive', async () => {
    const b = await startBroker();
    const self = (await connected5(b)).client;
    await subscribe5(self, [{ topicFilter: 'nl/t', qos: 0, noLocal: true }, { topicFilter: 'nl/sentinel', qos: 0 }]);
    const other = (await connected5(b)).client;
    self.send(publishPacket('nl/t', 'mine', 1, 1));
    await self.expect('puback');
    other.send(publishPacket('nl/t', 'theirs', 1, 1));
    await other.expect('puback');
    assert.deepEqual(payloads(await receivedBefore(b, self, 'nl/sentinel')), ['theirs']);
  });

  test('[MQTT-3.8.3-3] No Local on one filter does not hide the message matched by another filter without it', async () => {
    const b = await startBroker();
    const self = (await connected5(b)).client;
    await subscribe5(self, [
      { topicFilter: 'nl2/t', qos: 0, noLocal: true },
      { topicFilter: 'nl2/+', qos: 0 },
    ]);
    self.send(publishPacket('nl2/t', 'mine', 0, undefined));
    const got = await self.expect('publish');
    assert.equal(got.payload.toString(), 'mine');
  });

  test('[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error: DISCONNECT 0x82', async () => {
    const b = await startBroker();
    const client = (await connected5(b)).client;
    client.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '$share/g/nl', qos: 0, noLocal: true }] });
    await expectServerDisconnect(client, 0x82);
  });

  test('[MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published keeps the RETAIN flag on live delivery; without it RETAIN is 0', async () => {
    const b = await startBroker();
    const rap = (await connected5(b)).client;
    await subscribe5(rap, [{ topicFilter: 'rap/t', qos: 0, retainAsPublished: true }]);
    const plain = (await connected5(b)).client;
    await subscribe5(plain, [{ topicFilter: 'rap/t', qos: 0 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('rap/t', 'kept', 0, undefined, undefined, true));
    pub.send(publishPacket('rap/t', 'live', 0, undefined, undefined, false));
    const atRap = await rap.expectMany('publish', 2);
    const atPlain = await plain.expectMany('publish', 2);
    assert.deepEqual(atRap.map((p) => p.retain), [true, false]);
    assert.deepEqual(atPlain.map((p) => p.retain), [false, false]);
  });

  test('[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] [MQTT-3.8.4-4] Retain Handling 0 / 1 / 2', async () => {
    const b = await startBroker();
    b.broker.publish({ topic: 'rh/t', payload: 'stored', retain: true });
    const client = (await connected5(b)).client;
    // 0: sent at every subscribe, also when the subscription exists.
    await subscribe5(client, [{ topicFilter: 'rh/t', qos: 0, retainHandling: 0 }]);
    assert.equal((await client.expect('publish')).retain, true);
    await subscribe5(client, [{ topicFilter: 'rh/t', qos: 0, retainHandling: 0 }]);
    assert.equal((await client.expect('publish')).payload.toString(), 'stored');
    // 1: only for a new subscription.
    await subscribe5(client, [{ topicFilter: 'rh/+', qos: 0, retainHandling: 1 }]);
    assert.equal((await client.expect('publish')).payload.toString(), 'stored');
    await subscribe5(client, [{ topicFilter: 'rh/+', qos: 0, retainHandling: 1 }]);
    // 2: never.
    await subscribe5(client, [{ topicFilter: 'rh/#', qos: 0, retainHandling: 2 }]);
    await client.expectSilence(300);
  });
});

describe('32 MQTT 5 subscription identifiers', () => {
  test('[MQTT-3.3.4-3] a message carries the Subscription Identifier of the subscription it matched, retained ones too', async () => {
    const b = await startBroker();
    b.broker.publish({ topic: 'sid/retained', payload: 'r', retain: true });
    const client = (await connected5(b)).client;
    await subscribe5(client, [{ topicFilter: 'sid/retained', qos: 0 }], { subscriptionIdentifiers: [42] });
    const retained = await client.expect('publish');
    assert.deepEqual(retained.properties?.subscriptionIdentifiers, [42]);
    b.broker.publish({ topic: 'sid/retained', payload: 'live' });
    assert.deepEqual((await client.expect('publish')).properties?.subscriptionIdentifiers, [42]);
    // A subscription without an identifier adds none.
    await subscribe5(client, [{ topicFilter: 'sid/plain', qos: 0 }]);
    b.broker.publish({ topic: 'sid/plain', payload: 'p' });
    assert.equal((await client.expect('publish')).properties?.subscriptionIdentifiers, undefined);
  });

  test('[MQTT-3.3.4-4] [MQTT-3.3.4-2] [MQTT-3.8.4-3] overlapping subscriptions: one PUBLISH with every matching identifier; a resubscribe replaces the identifier', async () => {
    const b = await startBroker();
    const client = (await connected5(b)).client;
    await subscribe5(client, [{ topicFilter: 'sid2/a/b', qos: 1 }], { subscriptionIdentifiers: [1] });
    await subscribe5(client, [{ topicFilter: 'sid2/+/b', qos: 0 }], { subscriptionIdentifiers: [2] });
    await subscribe5(client, [{ topicFilter: 'sid2/#', qos: 0 }]);
    await subscribe5(client, [{ topicFilter: 'sid2/x', qos: 0 }], { subscriptionIdentifiers: [3] });
    b.broker.publish({ topic: 'sid2/a/b', payload: 'x', qos: 1 });
    const got = await client.expect('publish');
    assert.deepEqual([...(got.properties?.subscriptionIdentifiers ?? [])].sort(), [1, 2]);
    assert.equal(got.qos, 1, '[MQTT-3.3.4-2] the highest QoS of the matching subscriptions');
    client.send({ type: 'puback', packetId: got.packetId! });
    await client.expectSilence(200); // one copy only
    await subscribe5(client, [{ topicFilter: 'sid2/a/b', qos: 0 }], { subscriptionIdentifiers: [7] });
    b.broker.publish({ topic: 'sid2/a/b', payload: 'y' });
    assert.deepEqual([...((await client.expect('publish')).properties?.subscriptionIdentifiers ?? [])].sort(), [2, 7]);
  });
});

describe('32 MQTT 5 SUBACK and UNSUBACK reason codes', () => {
  test('[MQTT-3.9.3-1] [MQTT-3.8.4-7] [MQTT-3.2.2-10] SUBACK grants QoS up to Maximum QoS, one code per filter in order', async () => {
    const b = await startBroker({ maxQoS: 1 });
    const client = (await connected5(b)).client;
    const suback = await subscribe5(client, [
      { topicFilter: 'g/2', qos: 2 },
      { topicFilter: 'g/0', qos: 0 },
      { topicFilter: 'g/1', qos: 1 },
    ]);
    assert.deepEqual(suback.reasonCodes, [1, 0, 1]);
  });

  test('[MQTT-3.9.3-2] SUBACK 0x9E when shared subscriptions are disabled, 0xA2 for wildcards, 0xA1 for identifiers', async () => {
    const shared = await startBroker({ sharedSubscriptionAvailable: false });
    const c1 = (await connected5(shared)).client;
    assert.deepEqual((await subscribe5(c1, [{ topicFilter: '$share/g/t', qos: 1 }, { topicFilter: 'ok/t', qos: 1 }])).reasonCodes, [0x9e, 1]);
    const wild = await startBroker({ wildcardSubscriptionAvailable: false });
    const c2 = (await connected5(wild)).client;
    assert.deepEqual((await subscribe5(c2, [{ topicFilter: 'a/+', qos: 0 }, { topicFilter: 'a/#', qos: 0 }, { topicFilter: 'a/b', qos: 2 }])).reasonCodes, [0xa2, 0xa2, 2]);
    const ids = await startBroker({ subscriptionIdentifiersAvailable: false });
    const c3 = (await connected5(ids)).client;
    assert.deepEqual((await subscribe5(c3, [{ topicFilter: 'a/b', qos: 0 }], { subscriptionIdentifiers: [5] })).reasonCodes, [0xa1]);
    assert.deepEqual((await subscribe5(c3, [{ topicFilter: 'a/b', qos: 0 }])).reasonCodes, [0]);
    // A refused subscription delivers nothing.
    wild.broker.publish({ topic: 'a/x', payload: 'x' });
    await c2.expectSilence(200);
  });

  test('[MQTT-4.8.2-1] [MQTT-4.8.2-2] an invalid shared subscription filter is refused (DISCONNECT 0x8F)', async () => {
    const b = await startBroker();
    const client = (await connected5(b)).client;
    client.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '$share/gr+oup/t', qos: 0 }] });
    await expectServerDisconnect(client, 0x8f);
  });

  test('[MQTT-3.11.3-1] [MQTT-3.11.3-2] UNSUBACK 0x00 for a removed subscription, 0x11 when none existed; [MQTT-3.10.4-2] nothing after', async () => {
    const b = await startBroker();
    const client = (await connected5(b)).client;
    await subscribe5(client, [{ topicFilter: 'un/a', qos: 0 }, { topicFilter: '$share/g/un/b', qos: 0 }]);
    client.send({ type: 'unsubscribe', packetId: 9, topicFilters: ['un/a', 'un/none', '$share/g/un/b', 'un/a'] });
    const unsuback = await client.expect('unsuback');
    assert.equal(unsuback.packetId, 9);
    assert.deepEqual(unsuback.reasonCodes, [0x00, 0x11, 0x00, 0x11]);
    b.broker.publish({ topic: 'un/a', payload: 'x' });
    b.broker.publish({ topic: 'un/b', payload: 'x' });
    await client.expectSilence(200);
  });
});

describe('32 MQTT 5 shared subscriptions', () => {
  test('spec 4.8.2: each message goes to exactly one member of a group, round robin; every group gets every message', async () => {
    const b = await startBroker();
    const members = await Promise.all([0, 1, 2].map(async () => (await connected5(b)).client));
    for (const m of members) await subscribe5(m, [{ topicFilter: '$share/workers/jobs/#', qos: 1 }]);
    const audit = (await connected5(b)).client;
    await subscribe5(audit, [{ topicFilter: '$share/audit/jobs/#', qos: 0 }]);
    const plain = (await connected5(b)).client;
    await subscribe5(plain, [{ topicFilter: 'jobs/#', qos: 0 }]);
    const pub = (await connected5(b)).client;
    for (let i = 0; i < 30; i++) pub.send(publishPacket(`jobs/${i % 4}`, `job${i}`, 1, i + 1));
    await pub.expectMany('puback', 30);
    const perMember = await Promise.all(members.map((m) => drain(m, 600)));
    const all = perMember.flatMap(payloads).sort();
    assert.deepEqual(all, Array.from({ length: 30 }, (_, i) => `job${i}`).sort(), 'each message exactly once across the group');
    assert.deepEqual(perMember.map((p) => p.length), [10, 10, 10], 'round robin: an equal share each');
    assert.equal((await drain(audit, 300)).length, 30, 'a second group gets every message too');
    assert.equal((await drain(plain, 300)).length, 30, 'a non-shared subscriber gets every message');
  });

  test('[MQTT-4.8.2-3] a shared subscription delivers at its granted QoS', async () => {
    const b = await startBroker();
    const m = (await connected5(b)).client;
    await subscribe5(m, [{ topicFilter: '$share/q/sq/t', qos: 1 }]);
    b.broker.publish({ topic: 'sq/t', payload: 'x', qos: 2 });
    const got = await m.expect('publish');
    assert.equal(got.qos, 1);
  });

  test('spec 4.8.2: no retained messages on subscribe to a shared subscription (a non-shared one of the same client gets them)', async () => {
    const b = await startBroker();
    b.broker.publish({ topic: 'sr/t', payload: 'stored', retain: true });
    const client = (await connected5(b)).client;
    await subscribe5(client, [{ topicFilter: '$share/g/sr/t', qos: 0 }]);
    await client.expectSilence(300);
    await subscribe5(client, [{ topicFilter: 'sr/t', qos: 0 }]);
    assert.equal((await client.expect('publish')).payload.toString(), 'stored');
  });

  test('[MQTT-3.3.4-5] spec 4.8.2: a client with a shared and a non-shared subscription gets both deliveries, each with its identifier', async () => {
    const b = await startBroker();
    const client = (await connected5(b)).client;
    await subscribe5(client, [{ topicFilter: '$share/g/both/t', qos: 0 }], { subscriptionIdentifiers: [11] });
    await subscribe5(client, [{ topicFilter: 'both/t', qos: 0 }], { subscriptionIdentifiers: [22] });
    b.broker.publish({ topic: 'both/t', payload: 'x' });
    const got = await client.expectMany('publish', 2);
    assert.deepEqual(got.map((p) => p.properties?.subscriptionIdentifiers?.[0]).sort(), [11, 22]);
    await client.expectSilence(200);
  });

  test('spec 4.8.2: unacknowledged QoS 1 messages of a member that disconnects go to another member', notInWorkers("a member's unacknowledged messages go to another member on its own worker only (none here: the other member is on another worker)"), async () => {
    const b = await startBroker();
    const a = (await connected5(b, { properties: { receiveMaximum: 10 } })).client;
    await subscribe5(a, [{ topicFilter: '$share/ho/handoff/t', qos: 1 }]);
    const other = (await connected5(b)).client;
    await subscribe5(other, [{ topicFilter: '$share/ho/handoff/t', qos: 1 }]);
    for (let i = 0; i < 4; i++) b.broker.publish({ topic: 'handoff/t', payload: `m${i}`, qos: 1 });
    const atA = await a.expectMany('publish', 2);
    const atOtherFirst = await other.expectMany('publish', 2);
    a.destroy(); // no PUBACK for its two messages
    const atOtherLater = await other.expectMany('publish', 2);
    assert.deepEqual(payloads(atOtherLater).sort(), payloads(atA).sort(), 'A\'s unacknowledged messages went to the other member');
    assert.deepEqual([...payloads(atA), ...payloads(atOtherFirst)].sort(), ['m0', 'm1', 'm2', 'm3']);
  });

  test('[MQTT-4.8.2-6] a message refused with PUBACK >= 0x80 is not sent to another member', async () => {
    const b = await startBroker();
    const a = (await connected5(b)).client;
    await subscribe5(a, [{ topicFilter: '$share/rf/refuse/t', qos: 1 }]);
    const other = (await connected5(b)).client;
    await subscribe5(other, [{ topicFilter: '$share/rf/refuse/t', qos: 1 }]);
    b.broker.publish({ topic: 'refuse/t', payload: 'refused', qos: 1 });
    // Whichever member the group picked (in a worker group, a worker with members, round-robin).
    const [chosen, rest] = await firstToReceive(a, other);
    const got = await chosen.expect('publish');
    chosen.send({ type: 'puback', packetId: got.packetId!, reasonCode: 0x80 });
    chosen.send({ type: 'pingreq' });
    await chosen.expect('pingresp');
    chosen.destroy();
    await rest.expectSilence(400);
  });

  test('[MQTT-4.4.0-1] the only member of a group (persistent session) gets its unacknowledged QoS 1 message again when it reconnects', async () => {
    const b = await startBroker();
    const id = nextId('sole');
    const fields: ConnectFields = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = (await connected5(b, fields)).client;
    await subscribe5(first, [{ topicFilter: '$share/solo/sole/t', qos: 1 }]);
    b.broker.publish({ topic: 'sole/t', payload: 'precious', qos: 1 });
    const sent = await first.expect('publish');
    first.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const back = (await connected5(b, fields)).client;
    const again = await drain(back, 800);
    assert.equal(sent.payload.toString(), 'precious');
    assert.deepEqual(payloads(again), ['precious'], 'the unacknowledged message is not lost');
  });

  test('[MQTT-4.8.2-4] [MQTT-4.8.2-5] a QoS 2 message in delivery to a member (persistent session) is completed with that member, not given to another', async () => {
    const b = await startBroker();
    const id = nextId('q2member');
    const fields: ConnectFields = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } };
    const otherFields: ConnectFields = { clientId: `${id}-other`, clean: false, properties: { sessionExpiryInterval: 60 } };
    const a = (await connected5(b, fields)).client;
    await subscribe5(a, [{ topicFilter: '$share/q2/q2share/t', qos: 2 }]);
    const other = (await connected5(b, otherFields)).client;
    await subscribe5(other, [{ topicFilter: '$share/q2/q2share/t', qos: 2 }]);
    b.broker.publish({ topic: 'q2share/t', payload: 'once', qos: 2 });
    // Whichever member the group picked (in a worker group, a worker with members, round-robin).
    const [chosen, rest] = await firstToReceive(a, other);
    const atA = await chosen.expect('publish');
    assert.equal(atA.payload.toString(), 'once');
    chosen.destroy(); // connection breaks before PUBREC
    const atOther = await drain(rest, 400, false);
    const back = (await connected5(b, chosen === a ? fields : otherFields)).client;
    const resent = await drain(back, 600, false);
    assert.deepEqual(payloads(atOther), [], 'not sent to another member [MQTT-4.8.2-5]');
    assert.deepEqual(resent.map((p) => `${p.payload.toString()}${p.dup ? '(dup)' : ''}`), ['once(dup)'], 'resent to the same client on reconnect [MQTT-4.8.2-4]');
  });
});
