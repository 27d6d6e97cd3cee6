/** Webhook events: topic filters with MQTT matching rules and their remembered decisions, and how an event is written. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventJson, TopicFilters } from '../../../src/webhooks/webhook-events.js';

test('topic filters match as MQTT does: + one level, # the rest (parent included), no wildcard-first match on $ topics [MQTT-4.7.2-1]', () => {
  const filters = new TopicFilters(['sensors/+/temp', 'alerts/#', '$SYS/broker/clients/#']);
  for (let round = 0; round < 2; round++) {
    // The second round is answered from the remembered decisions.
    assert.equal(filters.matches('sensors/kitchen/temp'), true);
    assert.equal(filters.matches('sensors/kitchen/humidity'), false);
    assert.equal(filters.matches('alerts'), true);
    assert.equal(filters.matches('alerts/fire/1'), true);
    assert.equal(filters.matches('$SYS/broker/clients/connected'), true);
    assert.equal(filters.matches('$SYS/broker/uptime'), false);
  }
  assert.equal(new TopicFilters(['#']).matches('$SYS/broker/uptime'), false);
  assert.equal(new TopicFilters(['+/x']).matches('$private/x'), false);
  assert.equal(new TopicFilters([]).matches('a'), false);
});

test('remembered decisions are bounded: many topics still give right answers', () => {
  const filters = new TopicFilters(['a/+']);
  for (let i = 0; i < 10_000; i++) assert.equal(filters.matches(`a/${i}`), true);
  assert.equal(filters.matches('b/1'), false);
});

test('an event as JSON: its fields; a payload in utf8 or base64 with its full size and whether it was cut', () => {
  const base = { seq: 7, event: 'message.published' as const, timestamp: 1_700_000_000_000, fields: { clientId: 'c', topic: 't' } };
  assert.deepEqual(eventJson({ ...base, payload: { bytes: Buffer.from('héllo'), size: 6 } }, 'utf8'), {
    seq: 7,
    event: 'message.published',
    timestamp: 1_700_000_000_000,
    clientId: 'c',
    topic: 't',
    payload: 'héllo',
    payloadEncoding: 'utf8',
    payloadSize: 6,
    payloadTruncated: false,
  });
  const cut = eventJson({ ...base, payload: { bytes: Buffer.from([0xff, 0x00]), size: 10 } }, 'base64');
  assert.deepEqual([cut['payload'], cut['payloadSize'], cut['payloadTruncated']], ['/wA=', 10, true]);
  assert.deepEqual(eventJson({ ...base, event: 'client.connected', fields: { clientId: 'c' } }, 'utf8'), { seq: 7, event: 'client.connected', timestamp: 1_700_000_000_000, clientId: 'c' });
});
