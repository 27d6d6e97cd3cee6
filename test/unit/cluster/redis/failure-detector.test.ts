import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FailureDetector } from '../../../../src/cluster/redis/failure-detector.js';

test('failure detector: a node judges others only once connected for the warm-up (after a Redis restart every heartbeat may be gone)', () => {
  const detector = new FailureDetector(3000, 7000);
  assert.equal(detector.mayJudge(10_000), false, 'not connected yet');
  detector.connected(10_000);
  assert.equal(detector.mayJudge(16_999), false);
  assert.equal(detector.mayJudge(17_000), true);
  detector.connected(20_000); // reconnected: warm-up again
  assert.equal(detector.mayJudge(21_000), false);
});

test('failure detector: a heartbeat missing for deadAfterMs declares the node dead, once; a beat in between starts over', () => {
  const detector = new FailureDetector(3000, 0);
  assert.equal(detector.observe('n2', false, 1000), false, 'first miss');
  assert.equal(detector.observe('n2', false, 3999), false, 'missing 2999 ms');
  assert.equal(detector.observe('n2', true, 4500), false, 'it beat again');
  assert.equal(detector.observe('n2', false, 5000), false, 'missing again, from now');
  assert.equal(detector.observe('n2', false, 7999), false);
  assert.equal(detector.observe('n3', false, 7999), false, 'another node is judged on its own');
  assert.equal(detector.observe('n2', false, 8000), true, 'missing 3000 ms: dead');
  assert.equal(detector.observe('n2', false, 8100), false, 'declared once; observation starts over');
});

test('failure detector (property): a node is declared dead exactly when its heartbeat has been missing deadAfterMs since the first miss after a beat', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 2000 })), { maxLength: 60 }), fc.integer({ min: 1, max: 5000 }), (steps, deadAfter) => {
      const detector = new FailureDetector(deadAfter, 0);
      let now = 0;
      let missingSince: number | undefined;
      for (const [alive, gap] of steps) {
        now += gap;
        let expected = false;
        if (alive) missingSince = undefined;
        else if (missingSince === undefined) missingSince = now;
        else if (now - missingSince >= deadAfter) {
          expected = true;
          missingSince = undefined;
        }
        assert.equal(detector.observe('n', alive, now), expected);
      }
    }),
  );
});
