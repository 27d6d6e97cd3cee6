import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeEnvelope, encodeBatches, encodeEnvelope, forEachEnvelope } from '../../../src/cluster/envelope.js';
import type { Message } from '../../../src/model/message.js';

test('cluster envelope: a message with MQTT 5 properties and groups survives the hop between nodes', () => {
  const message: Message = {
    topic: 'a/b',
    payload: Buffer.from('hello'),
    qos: 2,
    retain: true,
    origin: 'client-1',
    receivedAt: 1_700_000_000_123,
    expiresAt: 1_700_000_060_123,
    clusterId: 'node-1/lx3k/7',
    properties: { contentType: 'text/plain', correlationData: Buffer.from([1, 2, 3]), userProperties: [['k', 'v'], ['k', 'w']], responseTopic: 'r', payloadFormatIndicator: 1 },
  };
  const { message: back, groups } = decodeEnvelope(encodeEnvelope(message, ['$share/g/a/#']));
  assert.deepEqual(back, message);
  assert.deepEqual(groups, ['$share/g/a/#']);
});

test('cluster envelope (property): round trip of topic, payload, QoS, retain, origin and times', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 20 }).filter((t) => !t.includes('+') && !t.includes('#') && !t.includes('\u0000')),
      fc.uint8Array({ maxLength: 300 }),
      fc.constantFrom<0 | 1 | 2>(0, 1, 2),
      fc.boolean(),
      fc.string({ maxLength: 30 }).filter((s) => !s.includes('\u0000')),
      fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { nil: undefined }),
      fc.array(fc.string({ minLength: 1, maxLength: 10 }), { maxLength: 3 }),
      (topic, payload, qos, retain, origin, expiresAt, groups) => {
        const message: Message = { topic, payload: Buffer.from(payload), qos, retain, origin, receivedAt: 1234, clusterId: expiresAt === undefined ? undefined : `n/${expiresAt}` };
        if (expiresAt !== undefined) message.expiresAt = expiresAt;
        const back = decodeEnvelope(encodeEnvelope(message, groups));
        assert.deepEqual(back.message, message);
        assert.deepEqual(back.groups, groups);
      },
    ),
    { numRuns: 300, seed: 11 },
  );
});

test('cluster envelope: anything else is refused, not misread', () => {
  assert.throws(() => decodeEnvelope(Buffer.from('{"t":"release"}')), /unknown format/);
  assert.throws(() => decodeEnvelope(Buffer.alloc(3)));
});

test('cluster batches: a turn of envelopes for one node travels as few ≤ 1 MiB buffers and comes back whole, in order', () => {
  const envelopes = Array.from({ length: 3000 }, (_, i) =>
    encodeEnvelope({ topic: `t/${i}`, payload: Buffer.alloc(i % 7 === 0 ? 4000 : 10, i % 256), qos: 1, retain: false, origin: 'c', receivedAt: i }, []),
  );
  const batches = encodeBatches(envelopes);
  assert.ok(batches.length > 1 && batches.length < 10, `${batches.length} batches`);
  assert.ok(batches.every((b) => b.length <= 1024 * 1024));
  const back: Buffer[] = [];
  for (const batch of batches) forEachEnvelope(batch, (e) => back.push(Buffer.from(e)));
  assert.deepEqual(back, envelopes);
  const single = encodeBatches([envelopes[0]!]);
  assert.equal(single[0], envelopes[0], 'one envelope is sent as it is');
  const seen: Buffer[] = [];
  forEachEnvelope(single[0]!, (e) => seen.push(e));
  assert.deepEqual(seen, [envelopes[0]]);
  assert.throws(() => forEachEnvelope(Buffer.from([2, 0, 0, 0, 9, 1]), () => undefined), /truncated/);
});
