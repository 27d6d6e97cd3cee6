/**
 * MQTT 5.0 conformance, part A: the normative statements that MQTT 5 shares with 3.1.1 (data
 * representation, packet identifiers, CONNECT / CONNACK, PUBLISH and retained messages, topic names
 * and filters), proven here over MQTT 5 connections. Black box over TCP: raw MQTT 5 clients against a
 * broker core on a free port; where the decoder would hide what is on the wire (a missing Packet
 * Identifier, the length of a Variable Byte Integer) the raw bytes the server sent are read.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuthenticateResult } from '../../src/broker/options.js';
import type { Packet, PublishPacket } from '../../src/protocol/types.js';
import { connected5, expectServerDisconnect, nextId, publishesUntil, publishPacket, startBroker, subscribe5, type TestBroker } from '../helpers/broker-core.js';
import { describePacket, sleep, type RawClient } from '../helpers/raw-client.js';
import { varint } from '../fuzz/harness.js';


/** A length-prefixed string of raw bytes (not checked: the point is to send bad ones). */
function str(bytes: Buffer | string): Buffer {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

/** A packet from its first byte and body. */
function frame(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), varint(body.length), body]);
}

/** A raw MQTT 5 PUBLISH with any topic bytes and any property bytes. */
function rawPublish5(topic: Buffer | string, properties: Buffer, payload: string, qos: 0 | 1 | 2 = 0, packetId = 1, retain = false): Buffer {
  const id = qos > 0 ? Buffer.from([packetId >> 8, packetId & 0xff]) : Buffer.alloc(0);
  return frame(0x30 | (qos << 1) | (retain ? 1 : 0), Buffer.concat([str(topic), id, varint(properties.length), properties, Buffer.from(payload)]));
}

/** A User Property (0x26) with raw name and value bytes. */
function userProperty(name: Buffer | string, value: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from([0x26]), str(name), str(value)]);
}

/** A raw MQTT 5 CONNECT: any protocol name, level, flags and property bytes. */
function rawConnect5(o: { name?: string; level?: number; flags?: number; properties?: Buffer; clientId?: string; rest?: Buffer } = {}): Buffer {
  const props = o.properties ?? Buffer.alloc(0);
  const body = Buffer.concat([
    str(o.name ?? 'MQTT'),
    Buffer.from([o.level ?? 5, o.flags ?? 0x02, 0, 0]),
    varint(props.length),
    props,
    str(o.clientId ?? nextId('raw')),
    o.rest ?? Buffer.alloc(0),
  ]);
  return frame(0x10, body);
}

/** Reads a Variable Byte Integer at `pos`: its value and how many bytes it took. */
function readVbi(buf: Buffer, pos: number): { value: number; bytes: number } {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 4; i++) {
    const b = buf[pos + i];
    assert.ok(b !== undefined, 'truncated Variable Byte Integer');
    value += (b & 0x7f) * mul;
    if (b < 0x80) return { value, bytes: i + 1 };
    mul *= 128;
  }
  throw new Error('Variable Byte Integer longer than 4 bytes');
}

/** Bytes needed for `n` as a minimal Variable Byte Integer. */
function minimalVbiBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Records every byte the server sends to `client`; `packets()` splits them into raw packets. */
function recordBytes(client: RawClient): { packets(): Buffer[] } {
  const chunks: Buffer[] = [];
  client.socket.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
  return {
    packets(): Buffer[] {
      const all = Buffer.concat(chunks);
      const out: Buffer[] = [];
      let pos = 0;
      while (pos < all.length) {
        const { value, bytes } = readVbi(all, pos + 1);
        out.push(all.subarray(pos, pos + 1 + bytes + value));
        pos += 1 + bytes + value;
      }
      return out;
    },
  };
}

/** An MQTT 5 client whose received bytes are recorded from the start (CONNACK included). */
async function recorded5(b: TestBroker, fields: Parameters<RawClient['connectMqtt']>[0] = {}): Promise<{ client: RawClient; bytes: { packets(): Buffer[] } }> {
  const client = await b.clients.raw();
  const bytes = recordBytes(client);
  const connack = await client.connectMqtt({ protocolVersion: 5, clientId: nextId('rec'), ...fields });
  assert.equal(connack.reasonCode, 0);
  return { client, bytes };
}


/** The connection is closed; any packet sent before is a DISCONNECT (or CONNACK) with a reason of 0x80 or more. */
async function expectRefusedOrClosed(client: RawClient): Promise<Packet[]> {
  const packets = await client.expectClosed(2000, { allowPackets: true });
  for (const p of packets) {
    assert.ok(p.type === 'disconnect' || p.type === 'connack', `only a refusal before the close, got ${describePacket(p)}`);
    assert.ok((p.reasonCode ?? 0) >= 0x80, `${describePacket(p)} has a failure reason code (0x${(p.reasonCode ?? 0).toString(16)})`);
  }
  return packets;
}

describe('37 MQTT 5 data representation (1.5)', () => {
  test('[MQTT-1.5.4-1] [MQTT-3.3.2-1] a topic with an encoded surrogate (ED A0 80) is a Malformed Packet: DISCONNECT 0x81, nothing delivered', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: '#', qos: 0 }]);
    // Negative first: a well-formed multi-byte topic is accepted and delivered byte for byte.
    const good = (await connected5(b)).client;
    const topic = 'utf/é€𝄞';
    good.send(rawPublish5(topic, Buffer.alloc(0), 'fine', 1, 1));
    assert.equal((await good.expect('puback')).packetId, 1);
    const delivered = await sub.expect('publish');
    assert.deepEqual(Buffer.from(delivered.topic), Buffer.from(topic));
    const bad = (await connected5(b)).client;
    bad.send(rawPublish5(Buffer.concat([Buffer.from('utf/'), Buffer.from([0xed, 0xa0, 0x80])]), Buffer.alloc(0), 'surrogate', 1, 2));
    await expectServerDisconnect(bad, 0x81);
    const overlong = (await connected5(b)).client;
    overlong.send(rawPublish5(Buffer.from([0x75, 0xc0, 0xaf]), Buffer.alloc(0), 'overlong', 0));
    await expectServerDisconnect(overlong, 0x81);
    assert.deepEqual(await publishesUntil(b, sub, 'utf-sentinel'), [], 'neither ill-formed message was delivered');
  });

  test('[MQTT-1.5.4-2] [MQTT-4.7.3-2] U+0000 in a topic name or a topic filter is a Malformed Packet: DISCONNECT 0x81', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: '#', qos: 0 }]);
    const pub = (await connected5(b)).client;
    pub.send(rawPublish5(Buffer.from('nul/\u0000/x'), Buffer.alloc(0), 'nul', 0));
    await expectServerDisconnect(pub, 0x81);
    const subscriber = (await connected5(b)).client;
    // SUBSCRIBE id 1, no properties, filter "nul/<NUL>", options QoS 0.
    subscriber.send(frame(0x82, Buffer.concat([Buffer.from([0, 1, 0]), str(Buffer.from('nul/\u0000')), Buffer.from([0])])));
    await expectServerDisconnect(subscriber, 0x81);
    // In a User Property as well (any UTF-8 string field).
    const prop = (await connected5(b)).client;
    prop.send(rawPublish5('nul/prop', userProperty('k', Buffer.from('a\u0000b')), 'x', 0));
    await expectServerDisconnect(prop, 0x81);
    assert.deepEqual(await publishesUntil(b, sub, 'nul-sentinel'), []);
  });

  test('[MQTT-1.5.4-3] a leading U+FEFF (EF BB BF) is kept: in the topic, in a User Property, and it is not stripped for matching', async () => {
    const b = await startBroker();
    const bomTopic = '\uFEFFbom/t';
    const withBom = (await connected5(b)).client;
    await subscribe5(withBom, [{ topicFilter: bomTopic, qos: 0 }]);
    const withoutBom = (await connected5(b)).client;
    await subscribe5(withoutBom, [{ topicFilter: 'bom/t', qos: 0 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket(bomTopic, 'x', 0, undefined, { userProperties: [['\uFEFFname', '\uFEFFvalue']] }));
    const got = await withBom.expect('publish');
    assert.deepEqual(Buffer.from(got.topic).subarray(0, 3), Buffer.from([0xef, 0xbb, 0xbf]));
    assert.equal(got.topic, bomTopic);
    assert.deepEqual(got.properties?.userProperties, [['\uFEFFname', '\uFEFFvalue']]);
    assert.deepEqual(await publishesUntil(b, withoutBom, 'bom-sentinel'), [], 'the BOM is part of the topic: "bom/t" does not match');
  });

  test('[MQTT-1.5.5-1] the server encodes Remaining Length, Property Length and Subscription Identifier in the fewest bytes', async () => {
    const b = await startBroker();
    const { client: sub, bytes } = await recorded5(b);
    await subscribe5(sub, [{ topicFilter: 'vbi/a', qos: 0 }], { subscriptionIdentifiers: [127] });
    await subscribe5(sub, [{ topicFilter: 'vbi/b', qos: 0 }], { subscriptionIdentifiers: [128] });
    await subscribe5(sub, [{ topicFilter: 'vbi/c', qos: 0 }], { subscriptionIdentifiers: [16_384] });
    await subscribe5(sub, [{ topicFilter: 'vbi/d', qos: 0 }]);
    const pub = (await connected5(b)).client;
    const sizes = [0, 100, 120, 127, 128, 200, 16_300, 16_383, 16_384, 70_000];
    for (const size of sizes) pub.send(publishPacket('vbi/d', Buffer.alloc(size, 0x61), 0, undefined));
    pub.send(publishPacket('vbi/d', 'props', 0, undefined, { userProperties: [['k', 'v'.repeat(200)]] }));
    for (const t of ['vbi/a', 'vbi/b', 'vbi/c']) pub.send(publishPacket(t, 'id', 0, undefined));
    const got = await sub.expectMany('publish', sizes.length + 4, 4000);
    assert.equal(got.at(-1)?.properties?.subscriptionIdentifiers?.[0], 16_384);
    const publishes = bytes.packets().filter((p) => p[0] === 0x30);
    assert.equal(publishes.length, sizes.length + 4);
    let checkedTwoByte = false;
    let checkedThreeByte = false;
    for (const p of bytes.packets()) {
      const rl = readVbi(p, 1);
      assert.equal(rl.bytes, minimalVbiBytes(rl.value), `Remaining Length ${rl.value} in ${rl.bytes} bytes (packet type ${p[0]! >> 4})`);
      if (rl.bytes === 2) checkedTwoByte = true;
      if (rl.bytes === 3) checkedThreeByte = true;
      if (p[0] !== 0x30) continue;
      const afterTopic = 1 + rl.bytes + 2 + p.readUInt16BE(1 + rl.bytes);
      const pl = readVbi(p, afterTopic);
      assert.equal(pl.bytes, minimalVbiBytes(pl.value), `Property Length ${pl.value} in ${pl.bytes} bytes`);
      let q = afterTopic + pl.bytes;
      const end = q + pl.value;
      while (q < end) {
        const id = p[q]!;
        if (id === 0x0b) {
          const sid = readVbi(p, q + 1);
          assert.equal(sid.bytes, minimalVbiBytes(sid.value), `Subscription Identifier ${sid.value} in ${sid.bytes} bytes`);
          q += 1 + sid.bytes;
        } else if (id === 0x26) {
          q += 1;
          q += 2 + p.readUInt16BE(q);
          q += 2 + p.readUInt16BE(q);
        } else {
          assert.fail(`unexpected property 0x${id.toString(16)}`);
        }
      }
    }
    assert.ok(checkedTwoByte && checkedThreeByte, 'two- and three-byte Remaining Lengths were seen');
  });

  test('[MQTT-1.5.7-1] a User Property whose name or value is ill-formed UTF-8 is a Malformed Packet; a well-formed pair is forwarded', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'pair/#', qos: 0 }]);
    const ok = (await connected5(b)).client;
    ok.send(rawPublish5('pair/ok', userProperty('naïve', 'värde'), 'ok', 1, 1));
    await ok.expect('puback');
    const got = await sub.expect('publish');
    assert.deepEqual(got.properties?.userProperties, [['naïve', 'värde']]);
    const badName = (await connected5(b)).client;
    badName.send(rawPublish5('pair/bad-name', userProperty(Buffer.from([0x6b, 0xff]), 'v'), 'x', 1, 1));
    await expectServerDisconnect(badName, 0x81);
    const badValue = (await connected5(b)).client;
    badValue.send(rawPublish5('pair/bad-value', userProperty('k', Buffer.from([0xed, 0xbf, 0xbf])), 'x', 1, 1));
    await expectServerDisconnect(badValue, 0x81);
    // In a CONNECT the refusal comes before any CONNACK: no CONNACK 0x00, the connection is closed.
    const badConnect = await b.clients.raw({ version: 5 });
    badConnect.send(rawConnect5({ properties: userProperty(Buffer.from([0xc3]), 'v') }));
    await expectRefusedOrClosed(badConnect);
    assert.deepEqual(await publishesUntil(b, sub, 'pair-sentinel'), []);
  });
});

describe('37 MQTT 5 packet identifiers and properties (2.2)', () => {
  test('[MQTT-2.2.1-2] [MQTT-4.3.1-1] a QoS 0 PUBLISH from the server has no Packet Identifier and DUP 0, whatever the published QoS', async () => {
    const b = await startBroker();
    const { client: sub, bytes } = await recorded5(b);
    await subscribe5(sub, [{ topicFilter: 'q0/#', qos: 0 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('q0/from0', 'zero', 0, undefined));
    pub.send(publishPacket('q0/from1', 'one', 1, 1));
    pub.send(publishPacket('q0/from2', 'two', 2, 2));
    await pub.expect('puback');
    await pub.expect('pubrec');
    pub.send({ type: 'pubrel', packetId: 2 });
    await pub.expect('pubcomp');
    const got = await sub.expectMany('publish', 3);
    assert.deepEqual(got.map((p) => [p.topic, p.qos, p.dup, p.packetId]), [
      ['q0/from0', 0, false, undefined],
      ['q0/from1', 0, false, undefined],
      ['q0/from2', 0, false, undefined],
    ]);
    const raws = bytes.packets().filter((p) => p[0]! >> 4 === 3);
    assert.equal(raws.length, 3);
    for (const [i, raw] of raws.entries()) {
      assert.equal(raw[0]! & 0x0f, 0, 'flags: DUP 0, QoS 0, RETAIN 0');
      const rl = readVbi(raw, 1);
      const topicLen = raw.readUInt16BE(1 + rl.bytes);
      // Topic, then directly the Property Length (0) and the payload: no two-byte identifier in between.
      const afterTopic = 1 + rl.bytes + 2 + topicLen;
      assert.equal(raw[afterTopic], 0, 'Property Length 0 right after the topic');
      assert.equal(raw.subarray(afterTopic + 1).toString(), ['zero', 'one', 'two'][i]);
    }
  });

  test('[MQTT-2.2.1-4] [MQTT-4.3.2-1] [MQTT-4.3.3-1] the server gives each new QoS 1 / 2 PUBLISH a non-zero identifier not in use', async () => {
    const b = await startBroker();
    const sub = (await connected5(b, { properties: { receiveMaximum: 8 } })).client;
    await subscribe5(sub, [{ topicFilter: 'ids/#', qos: 2 }]);
    const inUse = new Set<number>();
    const seen: number[] = [];
    const take = async (n: number): Promise<PublishPacket[]> => {
      const got = await sub.expectMany('publish', n);
      for (const p of got) {
        assert.ok(p.packetId !== undefined && p.packetId > 0, 'non-zero identifier');
        assert.ok(!inUse.has(p.packetId), `identifier ${p.packetId} is still in use`);
        inUse.add(p.packetId);
        seen.push(p.packetId);
      }
      return got;
    };
    for (let i = 0; i < 8; i++) b.broker.publish({ topic: `ids/${i}`, payload: `m${i}`, qos: i % 2 === 0 ? 1 : 2 });
    const first = await take(8);
    // Free some out of order (QoS 1 with PUBACK, QoS 2 only after PUBCOMP), keep the rest in flight.
    const q2 = first.filter((p) => p.qos === 2);
    const q1 = first.filter((p) => p.qos === 1);
    for (const p of [q1[2]!, q1[0]!]) {
      sub.send({ type: 'puback', packetId: p.packetId! });
      inUse.delete(p.packetId!);
    }
    sub.send({ type: 'pubrec', packetId: q2[1]!.packetId! });
    assert.equal((await sub.expect('pubrel')).packetId, q2[1]!.packetId, 'still in use until PUBCOMP');
    for (let i = 8; i < 11; i++) b.broker.publish({ topic: `ids/${i}`, payload: `m${i}`, qos: 1 });
    await take(2);
    await sub.expectSilence(200);
    sub.send({ type: 'pubcomp', packetId: q2[1]!.packetId! });
    inUse.delete(q2[1]!.packetId!);
    await take(1);
    assert.equal(seen.length, 11);
  });

  test('[MQTT-2.2.1-5] [MQTT-4.3.2-4] [MQTT-4.3.3-8] [MQTT-4.3.3-11] PUBACK, PUBREC and PUBCOMP carry the identifier of the PUBLISH or PUBREL they answer; PUBREL that of its PUBLISH', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'ackid/#', qos: 2 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('ackid/1', 'a', 1, 4321));
    pub.send(publishPacket('ackid/2', 'b', 2, 65535));
    pub.send(publishPacket('ackid/1', 'c', 1, 1));
    const acks = [await pub.next(), await pub.next(), await pub.next()];
    assert.deepEqual(acks.map((p) => `${p.type}:${'packetId' in p ? p.packetId : '-'}`), ['puback:4321', 'pubrec:65535', 'puback:1']);
    pub.send({ type: 'pubrel', packetId: 65535 });
    const comp = await pub.expect('pubcomp');
    assert.equal(comp.packetId, 65535);
    assert.equal(comp.reasonCode ?? 0, 0);
    // The server as sender of QoS 2: its PUBREL carries the identifier of its PUBLISH.
    const got = await sub.expectMany('publish', 3);
    const two = got.find((p) => p.qos === 2)!;
    sub.send({ type: 'pubrec', packetId: two.packetId! });
    assert.equal((await sub.expect('pubrel')).packetId, two.packetId);
  });

  test('[MQTT-2.2.1-6] [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.10.4-4] [MQTT-3.10.4-5] every SUBSCRIBE and UNSUBSCRIBE is answered, with its Packet Identifier', async () => {
    const b = await startBroker({ maxTopicLevels: 3 });
    const client = (await connected5(b)).client;
    const ids = [1, 777, 65535, 2];
    for (const packetId of ids) client.send({ type: 'subscribe', packetId, subscriptions: [{ topicFilter: `sid/${packetId}`, qos: 1 }] });
    // A refused filter (deeper than maxTopicLevels) is still answered, with the same identifier.
    client.send({ type: 'subscribe', packetId: 9, subscriptions: [{ topicFilter: 'sid/a/b/c', qos: 1 }] });
    const subacks = await client.expectMany('suback', 5);
    assert.deepEqual(subacks.map((s) => s.packetId), [...ids, 9]);
    assert.deepEqual(subacks.map((s) => s.reasonCodes), [[1], [1], [1], [1], [0x8f]]);
    client.send({ type: 'unsubscribe', packetId: 4000, topicFilters: ['sid/777'] });
    client.send({ type: 'unsubscribe', packetId: 4001, topicFilters: ['sid/never'] });
    client.send({ type: 'unsubscribe', packetId: 4002, topicFilters: ['sid/777'] });
    const unsubacks = await client.expectMany('unsuback', 3);
    assert.deepEqual(unsubacks.map((u) => [u.packetId, u.reasonCodes]), [
      [4000, [0x00]],
      [4001, [0x11]],
      [4002, [0x11]],
    ]);
  });

  test('[MQTT-2.2.2-1] packets without properties still carry a Property Length of 0 (PUBLISH, SUBACK, UNSUBACK)', async () => {
    const b = await startBroker();
    const { client, bytes } = await recorded5(b);
    await subscribe5(client, [{ topicFilter: 'plen/#', qos: 0 }]);
    client.send({ type: 'unsubscribe', packetId: 2, topicFilters: ['plen/none'] });
    await client.expect('unsuback');
    client.send(publishPacket('plen/x', 'payload', 0, undefined));
    const got = await client.expect('publish');
    assert.equal(got.properties, undefined);
    const raw = bytes.packets();
    const suback = raw.find((p) => p[0] === 0x90)!;
    assert.deepEqual([...suback], [0x90, 4, 0, 1, 0x00, 0x00], 'SUBACK: id 1, Property Length 0, granted QoS 0');
    const unsuback = raw.find((p) => p[0] === 0xb0)!;
    assert.deepEqual([...unsuback], [0xb0, 4, 0, 2, 0x00, 0x11], 'UNSUBACK: id 2, Property Length 0, 0x11');
    const publish = raw.find((p) => p[0] === 0x30)!;
    assert.deepEqual(publish, Buffer.concat([Buffer.from([0x30, 2 + 6 + 1 + 7]), str('plen/x'), Buffer.from([0]), Buffer.from('payload')]));
  });
});

describe('37 MQTT 5 CONNECT and CONNACK (3.1, 3.2)', () => {
  test('[MQTT-3.1.2-1] an unknown protocol name: no CONNACK 0x00, the CONNECT is not processed (no session, no will) and the connection closes', async () => {
    const b = await startBroker();
    const watcher = (await connected5(b)).client;
    await subscribe5(watcher, [{ topicFilter: 'badname/#', qos: 0 }]);
    for (const name of ['MQTX', 'mqtt', 'MQIsdp5']) {
      const clientId = nextId('badname');
      const client = await b.clients.raw({ version: 5 });
      // Will flag, QoS 0, clean start; the will would be published at once on an abrupt close.
      const will = Buffer.concat([Buffer.from([0]), str('badname/will'), str('will payload')]);
      client.send(rawConnect5({ name, flags: 0x06, clientId, rest: will }));
      const packets = await client.expectClosed(2000, { allowPackets: true });
      for (const p of packets) {
        assert.ok(p.type === 'connack' && p.reasonCode !== 0, `${name}: only a refusing CONNACK may come, got ${describePacket(p)}`);
        if (p.type === 'connack') assert.equal(p.reasonCode, 0x84);
      }
      assert.equal(b.broker.query.isConnected(clientId), false, `${name}: no session`);
    }
    assert.deepEqual(await publishesUntil(b, watcher, 'badname-sentinel'), [], 'no will was published');
  });

  test('[MQTT-3.1.2-2] an unsupported protocol version (6 with "MQTT") is refused with a CONNACK and the connection is closed', async () => {
    const b = await startBroker();
    for (const level of [6, 2, 255]) {
      const clientId = nextId('badlevel');
      const client = await b.clients.raw();
      const received: Buffer[] = [];
      client.socket.on('data', (chunk: Buffer) => received.push(Buffer.from(chunk)));
      client.send(rawConnect5({ level, clientId }));
      await client.expectClosed(2000, { allowPackets: true });
      const bytes = Buffer.concat(received);
      // A refusing CONNACK, in the 3.1.1 form (return code 0x01) or the MQTT 5 form (0x84), or nothing.
      const ok = bytes.length === 0 || bytes.equals(Buffer.from([0x20, 2, 0, 0x01])) || bytes.subarray(0, 4).equals(Buffer.from([0x20, bytes[1] ?? 0, 0, 0x84]));
      assert.ok(ok, `level ${level}: got ${bytes.toString('hex')}`);
      assert.equal(b.broker.query.isConnected(clientId), false);
    }
  });

  test('[MQTT-3.1.2-3] [MQTT-3.1.4-1] the reserved CONNECT flag set is a Malformed Packet: no CONNACK 0x00 and the connection is closed', async () => {
    const b = await startBroker();
    const clientId = nextId('reserved');
    const client = await b.clients.raw({ version: 5 });
    client.send(rawConnect5({ flags: 0x03, clientId }));
    await expectRefusedOrClosed(client);
    assert.equal(b.broker.query.isConnected(clientId), false);
    // Negative: the same CONNECT without the reserved bit is accepted.
    const fine = await b.clients.raw({ version: 5 });
    fine.send(rawConnect5({ flags: 0x02, clientId }));
    assert.equal((await fine.expect('connack')).reasonCode, 0);
  });

  test('[MQTT-3.1.4-1] a CONNECT that breaks a rule is refused and the connection closed: bad will flags, a wildcard Will Topic, Receive Maximum 0, a repeated property, trailing bytes', async () => {
    const b = await startBroker();
    const willBody = (topic: string): Buffer => Buffer.concat([Buffer.from([0]), str(topic), str('w')]);
    const cases: [string, Buffer][] = [
      ['Will QoS 3', rawConnect5({ flags: 0x02 | 0x04 | 0x18, rest: willBody('w/t') })],
      ['Will Retain without the Will Flag', rawConnect5({ flags: 0x02 | 0x20 })],
      ['a wildcard in the Will Topic', rawConnect5({ flags: 0x02 | 0x04, rest: willBody('w/#') })],
      ['Receive Maximum 0', rawConnect5({ properties: Buffer.from([0x21, 0, 0]) })],
      ['Maximum Packet Size 0', rawConnect5({ properties: Buffer.from([0x27, 0, 0, 0, 0]) })],
      ['Session Expiry Interval twice', rawConnect5({ properties: Buffer.from([0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]) })],
      ['a PUBLISH-only property (Topic Alias)', rawConnect5({ properties: Buffer.from([0x23, 0, 1]) })],
      ['bytes after the payload', rawConnect5({ rest: Buffer.from([0x00]) })],
    ];
    for (const [what, bytes] of cases) {
      const client = await b.clients.raw({ version: 5 });
      client.send(bytes);
      await assert.doesNotReject(expectRefusedOrClosed(client), what);
    }
    // Negative: a valid CONNECT with the same pieces is accepted.
    const ok = await b.clients.raw({ version: 5 });
    ok.send(rawConnect5({ flags: 0x02 | 0x04 | 0x08, properties: Buffer.from([0x21, 0, 1, 0x27, 0, 0, 1, 0]), rest: willBody('w/t') }));
    assert.equal((await ok.expect('connack')).reasonCode, 0);
  });

  test('[MQTT-3.1.3-5] client identifiers of 1 to 23 characters of 0-9, a-z, A-Z are accepted as they are', async () => {
    const b = await startBroker();
    for (const clientId of ['a', 'Z9', '0123456789abcdefghijABC', 'ABCDEFGHIJKLMNOPQRSTUVW', '00000000000000000000000']) {
      const { client, connack } = await connected5(b, { clientId });
      assert.equal(connack.properties?.assignedClientIdentifier, undefined, `${clientId}: used as sent, none assigned`);
      assert.equal(b.broker.query.client(clientId)?.clientId, clientId);
      client.disconnect();
      await client.expectClosed();
    }
  });

  test('[MQTT-3.2.0-1] the first packet the server sends is CONNACK, even with packets pipelined behind the CONNECT and a slow authentication', async () => {
    const b = await startBroker({ authenticate: async (): Promise<AuthenticateResult> => { await sleep(150); return 'accept'; } });
    const client = await b.clients.raw({ version: 5 });
    const clientId = nextId('first');
    client.send(
      Buffer.concat([
        rawConnect5({ clientId }),
        frame(0x82, Buffer.concat([Buffer.from([0, 1, 0]), str('first/t'), Buffer.from([1])])),
        rawPublish5('first/t', Buffer.alloc(0), 'early', 1, 2),
        Buffer.from([0xc0, 0x00]),
      ]),
    );
    const first = await client.next();
    assert.equal(first.type, 'connack', `first packet: ${describePacket(first)}`);
    assert.equal(first.type === 'connack' ? first.reasonCode : -1, 0);
    const rest: string[] = [];
    while (rest.length < 4) {
      const p = await client.next();
      rest.push(p.type === 'publish' ? `publish:${p.payload.toString()}` : p.type);
    }
    // In the order the requests came; the client's own message may come before its PUBACK.
    assert.equal(rest[0], 'suback');
    assert.deepEqual([...rest].sort(), ['pingresp', 'puback', 'publish:early', 'suback']);
    assert.ok(rest.indexOf('pingresp') > rest.indexOf('puback'), 'PINGRESP after the PUBACK');
  });

  test('[MQTT-3.2.0-2] a connection gets at most one CONNACK: a second CONNECT is a Protocol Error, answered with DISCONNECT, never a CONNACK', async () => {
    const b = await startBroker();
    const { client } = await connected5(b);
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: nextId('again') });
    const packets = await expectServerDisconnect(client, 0x82);
    assert.deepEqual(packets.map((p) => p.type), ['disconnect'], 'no second CONNACK');
  });
});

describe('37 MQTT 5 will retain (3.1.2)', () => {
  async function willDelivery(b: TestBroker, retain: boolean): Promise<{ live: PublishPacket; stored: PublishPacket[] }> {
    const topic = `will-retain/${retain ? 'one' : 'zero'}`;
    const watcher = (await connected5(b)).client;
    await subscribe5(watcher, [{ topicFilter: topic, qos: 1, retainAsPublished: true }]);
    const dying = (await connected5(b, { will: { topic, payload: Buffer.from('gone'), qos: 1, retain } })).client;
    dying.destroy();
    const live = await watcher.expect('publish');
    if (live.packetId !== undefined) watcher.send({ type: 'puback', packetId: live.packetId });
    const late = (await connected5(b)).client;
    await subscribe5(late, [{ topicFilter: topic, qos: 1 }]);
    const stored = await publishesUntil(b, late, `${topic}/sentinel`);
    return { live, stored };
  }

  test('[MQTT-3.1.2-14] Will Retain 0: the will is published non-retained and not stored', async () => {
    const b = await startBroker();
    const { live, stored } = await willDelivery(b, false);
    assert.equal(live.payload.toString(), 'gone');
    assert.equal(live.retain, false, 'RETAIN 0 (the subscriber asked for Retain As Published)');
    assert.deepEqual(stored, [], 'nothing retained for a later subscriber');
  });

  test('[MQTT-3.1.2-15] Will Retain 1: the will is published as a retained message', async () => {
    const b = await startBroker();
    const { live, stored } = await willDelivery(b, true);
    assert.equal(live.payload.toString(), 'gone');
    assert.equal(live.retain, true, 'RETAIN 1 on live delivery with Retain As Published');
    assert.deepEqual(stored.map((p) => [p.payload.toString(), p.retain]), [['gone', true]], 'kept as the retained message');
  });
});

describe('37 MQTT 5 PUBLISH and retained messages (3.3)', () => {
  test('[MQTT-3.3.1-3] DUP on a delivery is the server\'s own: a PUBLISH that arrives with DUP 1 goes out with DUP 0', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'dup/#', qos: 2 }]);
    const pub = (await connected5(b)).client;
    pub.send({ ...publishPacket('dup/q1', 'one', 1, 1), dup: true });
    pub.send({ ...publishPacket('dup/q2', 'two', 2, 2), dup: true });
    await pub.expect('puback');
    await pub.expect('pubrec');
    const got = await sub.expectMany('publish', 2);
    assert.deepEqual(got.map((p) => [p.topic, p.dup]), [['dup/q1', false], ['dup/q2', false]]);
  });

  test('[MQTT-3.3.1-5] RETAIN 1 replaces the retained message of the topic', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('ret/replace', 'first', 1, 1, undefined, true));
    pub.send(publishPacket('ret/replace', 'second', 1, 2, undefined, true));
    pub.send(publishPacket('ret/other', 'other', 1, 3, undefined, true));
    await pub.expectMany('puback', 3);
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'ret/replace', qos: 1 }]);
    const got = await publishesUntil(b, sub, 'ret-sentinel');
    assert.deepEqual(got.map((p) => [p.payload.toString(), p.retain]), [['second', true]]);
  });

  test('[MQTT-3.3.1-6] [MQTT-3.3.1-7] a zero-byte retained PUBLISH is delivered to current subscribers, clears the retained message and is not stored', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('ret/clear', 'kept', 1, 1, undefined, true));
    await pub.expect('puback');
    const current = (await connected5(b)).client;
    await subscribe5(current, [{ topicFilter: 'ret/clear', qos: 1 }]);
    const retained = await current.expect('publish');
    assert.equal(retained.payload.toString(), 'kept');
    current.send({ type: 'puback', packetId: retained.packetId! });
    pub.send(publishPacket('ret/clear', Buffer.alloc(0), 1, 2, undefined, true));
    await pub.expect('puback');
    const live = await current.expect('publish');
    assert.equal(live.payload.length, 0, 'the empty message is delivered like any other');
    current.send({ type: 'puback', packetId: live.packetId! });
    const later = (await connected5(b)).client;
    await subscribe5(later, [{ topicFilter: 'ret/#', qos: 1 }]);
    assert.deepEqual(await publishesUntil(b, later, 'ret-sentinel-2'), [], 'no retained message, not even an empty one');
    // A zero-byte retained PUBLISH to a topic that has none is not stored either.
    pub.send(publishPacket('ret/never', Buffer.alloc(0), 0, undefined, undefined, true));
    const last = (await connected5(b)).client;
    await subscribe5(last, [{ topicFilter: 'ret/never', qos: 1 }]);
    assert.deepEqual(await publishesUntil(b, last, 'ret-sentinel-3'), []);
  });

  test('[MQTT-3.3.1-8] RETAIN 0: the message is not stored and the retained message is left as it was', async () => {
    const b = await startBroker();
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('ret/keep', 'retained', 1, 1, undefined, true));
    pub.send(publishPacket('ret/keep', 'live only', 1, 2));
    pub.send(publishPacket('ret/none', 'live only', 1, 3));
    await pub.expectMany('puback', 3);
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: 'ret/#', qos: 1 }]);
    const got = await publishesUntil(b, sub, 'ret-sentinel');
    assert.deepEqual(got.map((p) => [p.topic, p.payload.toString(), p.retain]), [['ret/keep', 'retained', true]]);
  });

  test('[MQTT-3.3.2-2] [MQTT-4.7.0-1] wildcards are accepted in Topic Filters and refused in Topic Names (DISCONNECT 0x90)', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    const suback = await subscribe5(sub, [{ topicFilter: 'wild/+/x', qos: 1 }, { topicFilter: 'wild/#', qos: 1 }, { topicFilter: '+', qos: 1 }]);
    assert.deepEqual(suback.reasonCodes, [1, 1, 1]);
    for (const topic of ['wild/+/x', 'wild/#', '+', 'wild/a+b']) {
      const pub = (await connected5(b)).client;
      pub.send(publishPacket(topic, 'x', 1, 1));
      await expectServerDisconnect(pub, 0x90);
    }
    assert.deepEqual(await publishesUntil(b, sub, 'wild/sentinel'), []);
  });

  test('[MQTT-3.3.2-3] the Topic Name a subscriber gets is the published one, which matches its filter', async () => {
    const b = await startBroker();
    const sub = (await connected5(b)).client;
    const filters = ['m/+/c', 'm/x/#', 'n/+'];
    await subscribe5(sub, filters.map((topicFilter) => ({ topicFilter, qos: 0 })));
    const pub = (await connected5(b)).client;
    const topics = ['m/b/c', 'm/x', 'm/x/y/z', 'n/q', 'm/b/d', 'n/q/r', 'm//c'];
    for (const t of topics) pub.send(publishPacket(t, t, 0, undefined));
    const got = await publishesUntil(b, sub, 'm-sentinel');
    assert.deepEqual(got.map((p) => p.topic), ['m/b/c', 'm/x', 'm/x/y/z', 'n/q', 'm//c']);
    for (const p of got) assert.equal(p.payload.toString(), p.topic, 'each message under the topic it was published to');
  });
});

describe('37 MQTT 5 topic names and filters (4.7)', () => {
  test('[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with $; a filter naming the $ level does', async () => {
    const b = await startBroker();
    const wild = (await connected5(b)).client;
    await subscribe5(wild, [{ topicFilter: '#', qos: 0 }, { topicFilter: '+/status', qos: 0 }, { topicFilter: '+', qos: 0 }]);
    const dollar = (await connected5(b)).client;
    await subscribe5(dollar, [{ topicFilter: '$app/#', qos: 0 }, { topicFilter: '$app/+', qos: 0 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket('$app/status', 'dollar', 0, undefined));
    pub.send(publishPacket('app/status', 'plain', 0, undefined));
    const atDollar = await dollar.expect('publish');
    assert.equal(atDollar.topic, '$app/status');
    const atWild = await wild.expect('publish');
    assert.equal(atWild.topic, 'app/status', 'the first message the wildcard subscriber gets is the plain one');
    await wild.expectSilence(200);
  });

  test('[MQTT-4.7.3-3] a topic name and a topic filter of 65535 bytes are accepted and delivered intact', async () => {
    const b = await startBroker();
    const long = `big/${'x'.repeat(65_535 - 4)}`;
    assert.equal(Buffer.byteLength(long), 65_535);
    const exact = (await connected5(b)).client;
    const suback = await subscribe5(exact, [{ topicFilter: long, qos: 1 }]);
    assert.deepEqual(suback.reasonCodes, [1]);
    const wild = (await connected5(b)).client;
    await subscribe5(wild, [{ topicFilter: 'big/#', qos: 1 }]);
    const pub = (await connected5(b)).client;
    pub.send(publishPacket(long, 'long topic', 1, 1));
    assert.equal((await pub.expect('puback')).reasonCode, 0);
    for (const c of [exact, wild]) {
      const got = await c.expect('publish', 4000);
      assert.equal(got.topic, long);
    }
  });

  test('[MQTT-4.7.3-4] matching is byte for byte: no Unicode normalization, case folding or slash clean-up', async () => {
    const b = await startBroker();
    const nfc = 'caf\u00e9/x';
    const nfd = 'cafe\u0301/x';
    const sub = (await connected5(b)).client;
    await subscribe5(sub, [{ topicFilter: nfc, qos: 0 }, { topicFilter: 'Case/x', qos: 0 }, { topicFilter: 'slash/x', qos: 0 }]);
    const pub = (await connected5(b)).client;
    for (const t of [nfd, 'case/x', 'CASE/X', 'slash/x/', '/slash/x', 'slash//x', 'slash/ x', nfc, 'Case/x', 'slash/x']) pub.send(publishPacket(t, t, 0, undefined));
    const got = await publishesUntil(b, sub, 'norm-sentinel');
    assert.deepEqual(got.map((p) => p.topic), [nfc, 'Case/x', 'slash/x']);
    assert.deepEqual(Buffer.from(got[0]!.topic), Buffer.from(nfc));
  });
});
