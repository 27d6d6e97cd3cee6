// Unit tests of the arrival marks: stream id order, and which sessions a late stream entry must skip.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ArrivalMarks, compareStreamIds } from '../../../src/cluster/redis/arrival-marks.js';

test('stream ids compare by milliseconds, then sequence (as numbers, not text)', () => {
  assert.ok(compareStreamIds('9-0', '10-0') < 0);
  assert.ok(compareStreamIds('10-2', '10-10') < 0);
  assert.equal(compareStreamIds('1796316441497-3', '1796316441497-3'), 0);
  assert.ok(compareStreamIds('1796316441498-0', '1796316441497-99') > 0);
  fc.assert(
    fc.property(fc.nat(2 ** 45), fc.nat(1000), fc.nat(2 ** 45), fc.nat(1000), (ma, sa, mb, sb) => {
      const expected = ma !== mb ? Math.sign(ma - mb) : Math.sign(sa - sb);
      assert.equal(Math.sign(compareStreamIds(`${ma}-${sa}`, `${mb}-${sb}`)), expected);
    }),
  );
});

test('a session that arrived when the stream stood at P skips entries up to P, and takes later ones', () => {
  const marks = new ArrivalMarks();
  assert.equal(marks.arrivedAfter('5-0'), undefined, 'no mark: nothing to check, nothing allocated');
  marks.mark(['mover'], '100-3');
  const early = marks.arrivedAfter('100-3');
  assert.ok(early?.has('mover'), 'written at P: routed while the session was elsewhere');
  assert.equal(early?.has('other'), false, 'sessions without a mark take everything');
  assert.ok(marks.arrivedAfter('99-7')?.has('mover'));
  assert.equal(marks.arrivedAfter('100-4')?.has('mover'), false, 'written after the arrival');
  marks.clear();
  assert.equal(marks.arrivedAfter('1-0'), undefined);
});
