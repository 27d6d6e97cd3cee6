/** WireCache and PublishEncoder: one encoding per wire form, packet ids patched into copies, per-subscriber encodings when needed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainRoute } from '../../../src/broker/delivery.js';
import { createMessage } from '../../../src/broker/messages.js';
import { PublishEncoder } from '../../../src/broker/publish-encoder.js';
import { WireCache } from '../../../src/broker/wire-cache.js';
import { decodePacket } from '../../../src/protocol/decoder.js';
import type { PublishPacket } from '../../../src/protocol/types.js';

const message = createMessage('sensors/kitchen', Buffer.from('21.5'), 2, true, undefined, 'c', Date.now());
const decode = (bytes: Buffer, version: 4 | 5): PublishPacket => decodePacket(bytes, version) as PublishPacket;

test('one buffer per wire form of the message being routed, until reset', () => {
  const wire = new WireCache();
  const a = wire.get(message, 4, 1, false, 0);
  assert.equal(wire.get(message, 4, 1, false, 0), a, 'same form: same bytes');
  assert.notEqual(wire.get(message, 5, 1, false, 0), a);
  assert.notEqual(wire.get(message, 4, 1, true, 0), a);
  wire.reset();
  assert.notEqual(wire.get(message, 4, 1, false, 0), a);
});

test('QoS 1/2: the first subscriber takes the form itself, later ones a copy, each with its own packet id (and DUP on a retransmission)', () => {
  const wire = new WireCache();
  const encoder = new PublishEncoder(wire, 4, Infinity, 0);
  const first = encoder.encode(message, 1, false, plainRoute(1), 17, false, 0)!;
  const second = encoder.encode(message, 1, false, plainRoute(1), 0x1234, true, 0)!;
  assert.deepEqual([decode(first, 4).packetId, decode(first, 4).dup], [17, false]);
  assert.deepEqual([decode(second, 4).packetId, decode(second, 4).dup], [0x1234, true]);
  assert.equal(first, wire.get(message, 4, 1, false, 0), 'the first taker got the cached buffer itself (no copy)');
  assert.notEqual(second, first);
  const third = encoder.encode(message, 1, false, plainRoute(1), 5, false, 0)!;
  assert.deepEqual([decode(third, 4).packetId, decode(third, 4).dup], [5, false], 'a copy of a DUP-patched form clears DUP');
  assert.deepEqual([decode(first, 4).packetId, decode(first, 4).dup], [17, false], 'later copies never change the first taker\'s bytes');
  assert.equal(encoder.encode(message, 0, false, plainRoute(0), 0, false, 0), wire.get(message, 4, 0, false, 0), 'QoS 0 is the shared form itself');
});

test('MQTT 5: subscription identifiers and topic aliases make an encoding of its own; a repeated topic goes as its alias alone', () => {
  const encoder = new PublishEncoder(new WireCache(), 5, Infinity, 2);
  const first = decode(encoder.encode(message, 1, false, plainRoute(1, [3, 9]), 1, false, Date.now())!, 5);
  assert.deepEqual(first.properties?.subscriptionIdentifiers, [3, 9]);
  assert.equal(first.topic, 'sensors/kitchen');
  assert.equal(first.properties?.topicAlias, 1);
  const again = decode(encoder.encode(message, 1, false, plainRoute(1), 2, false, Date.now())!, 5);
  assert.equal(again.topic, '');
  assert.equal(again.properties?.topicAlias, 1);
});

test('[MQTT-3.1.2-25] larger than the client accepts: not encoded, and an alias it would have announced is taken back', () => {
  const encoder = new PublishEncoder(new WireCache(), 5, 20, 5);
  const big = createMessage('big/topic', Buffer.alloc(64), 0, false, undefined, 'c', Date.now());
  assert.equal(encoder.encode(big, 0, false, plainRoute(0), 0, false, Date.now()), undefined);
  const small = createMessage('big/topic', Buffer.from('x'), 0, false, undefined, 'c', Date.now());
  const bytes = encoder.encode(small, 0, false, plainRoute(0), 0, false, Date.now())!;
  assert.equal(decode(bytes, 5).topic, 'big/topic', 'the alias was never learnt, so the topic is sent in full');
});

test('[MQTT-3.3.2-6] the Message Expiry Interval is sent reduced by the time the message waited', () => {
  const now = Date.now();
  const expiring = createMessage('e', Buffer.from('x'), 0, false, { messageExpiryInterval: 100 }, 'c', now - 30_500);
  const packet = decode(new WireCache().get(expiring, 5, 0, false, now), 5);
  assert.equal(packet.properties?.messageExpiryInterval, 70);
});
