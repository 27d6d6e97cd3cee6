import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plainRoute } from '../../../src/broker/delivery.js';
import { SendResult, Session, type OutgoingFlight, type SessionLink } from '../../../src/broker/session.js';
import type { Message } from '../../../src/model/message.js';
import type { QoS } from '../../../src/protocol/types.js';

interface Sent {
  kind: 'publish' | 'pubrel';
  packetId: number;
  qos?: QoS;
  dup?: boolean;
  payload?: string;
}

function recorder(): SessionLink & { sent: Sent[] } {
  const sent: Sent[] = [];
  return {
    sent,
    sendAtMostOnce(message: Message) {
      sent.push({ kind: 'publish', packetId: 0, qos: 0, dup: false, payload: message.payload.toString() });
      return SendResult.sent;
    },
    sendFlight(flight: OutgoingFlight, dup: boolean) {
      sent.push({ kind: 'publish', packetId: flight.packetId, qos: flight.qos, dup, payload: flight.message.payload.toString() });
      return SendResult.sent;
    },
    sendPubrel(packetId: number) {
      sent.push({ kind: 'pubrel', packetId });
    },
  };
}

function msg(payload: string, qos: QoS = 1): Message {
  return { topic: 't', payload: Buffer.from(payload), qos, retain: false, origin: 'x', receivedAt: 0 };
}

test('inflight window: at most maxInflight unacknowledged, the rest sent in order on acknowledgement', () => {
  const session = new Session('c', 2, 100);
  const link = recorder();
  session.link = link;
  for (let i = 0; i < 5; i++) session.deliver(msg(`m${i}`), plainRoute(1), false);
  assert.deepEqual(link.sent.map((s) => s.payload), ['m0', 'm1']);
  assert.equal(session.queuedCount, 3);
  session.acknowledge(link.sent[0]!.packetId);
  assert.deepEqual(link.sent.map((s) => s.payload), ['m0', 'm1', 'm2']);
  session.acknowledge(link.sent[1]!.packetId);
  session.acknowledge(link.sent[2]!.packetId);
  assert.deepEqual(link.sent.map((s) => s.payload), ['m0', 'm1', 'm2', 'm3', 'm4']);
});

test('[MQTT-2.3.1-4] packet ids are non-zero and unique among inflight messages', () => {
  const session = new Session('c', 1000, 0);
  const link = recorder();
  session.link = link;
  for (let i = 0; i < 1000; i++) session.deliver(msg(`m${i}`), plainRoute(1), false);
  const ids = link.sent.map((s) => s.packetId);
  assert.equal(new Set(ids).size, 1000);
  assert.ok(ids.every((id) => id > 0 && id <= 0xffff));
});

test('queue bound: messages past maxQueued are dropped and counted', () => {
  const session = new Session('c', 10, 3);
  for (let i = 0; i < 5; i++) session.deliver(msg(`m${i}`), plainRoute(1), false);
  assert.equal(session.queuedCount, 3);
  assert.equal(session.droppedQueueFull, 2);
});

test('QoS 0 to an offline session is not queued', () => {
  const session = new Session('c', 10, 10);
  assert.equal(session.deliver(msg('m', 0), plainRoute(0), false), false);
  assert.equal(session.queuedCount, 0);
});

test('[MQTT-4.4.0-1] [MQTT-4.6.0-1] resume resends unacknowledged PUBLISH with DUP and PUBREL for released QoS 2, in the original order', () => {
  const session = new Session('c', 10, 10);
  const first = recorder();
  session.link = first;
  session.deliver(msg('a', 1), plainRoute(1), false);
  session.deliver(msg('b', 2), plainRoute(2), false);
  session.deliver(msg('c', 2), plainRoute(2), false);
  const [a, b, c] = first.sent;
  session.received(c!.packetId); // PUBREC for c: PUBREL sent, waiting for PUBCOMP
  session.link = undefined;
  const second = recorder();
  session.resume(second);
  assert.deepEqual(second.sent, [
    { kind: 'publish', packetId: a!.packetId, qos: 1, dup: true, payload: 'a' },
    { kind: 'publish', packetId: b!.packetId, qos: 2, dup: true, payload: 'b' },
    { kind: 'pubrel', packetId: c!.packetId },
  ]);
  assert.equal(session.completed(c!.packetId), true);
  assert.equal(session.completed(c!.packetId), false);
});
