/** EchoFilter: what a bridge sent over plain 3.1.1 is recognised once when it comes back, within a minute. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EchoFilter } from '../../../src/bridge/echo-filter.js';

test('an echo (same topic and payload) is recognised once; other payloads and topics are not echoes', () => {
  const f = new EchoFilter();
  f.sent('t', Buffer.from('a'), 0);
  f.sent('t', Buffer.from('a'), 0);
  f.sent('t', Buffer.from('b'), 0);
  assert.equal(f.isEcho('u', Buffer.from('a'), 1), false, 'another topic');
  assert.equal(f.isEcho('t', Buffer.from('c'), 1), false, 'another payload');
  assert.equal(f.isEcho('t', Buffer.from('b'), 1), true, 'out of order too');
  assert.equal(f.isEcho('t', Buffer.from('a'), 1), true);
  assert.equal(f.isEcho('t', Buffer.from('a'), 1), true, 'sent twice, two echoes');
  assert.equal(f.isEcho('t', Buffer.from('a'), 1), false, 'no third');
  assert.equal(f.remembered, 0);
});

test('after a minute a sent message no longer waits for its echo', () => {
  const f = new EchoFilter();
  f.sent('t', Buffer.from('a'), 0);
  assert.equal(f.isEcho('t', Buffer.from('a'), 60_001), false);
  assert.equal(f.remembered, 0);
});

test('bounded: past 10,000 remembered the oldest is forgotten', () => {
  const f = new EchoFilter();
  for (let i = 0; i < 10_001; i++) f.sent(`t/${i}`, Buffer.from('x'), i);
  assert.equal(f.remembered, 10_000);
  assert.equal(f.isEcho('t/0', Buffer.from('x'), 10_002), false, 'the oldest was forgotten');
  assert.equal(f.isEcho('t/10000', Buffer.from('x'), 10_002), true);
});
