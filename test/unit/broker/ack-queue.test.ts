/** AckQueue: acknowledgements released in order as the commits they wait for complete [MQTT-4.6.0-2..4]. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AckQueue, type Held } from '../../../src/broker/ack-queue.js';

function collector(): { sendHeld(item: Held): void; out: number[] } {
  const out: number[] = [];
  return { out, sendHeld: (item) => out.push((item as { packetId: number }).packetId) };
}

test('an item waits for its commit, and every later one waits behind it', () => {
  const queue = new AckQueue();
  queue.push({ type: 'puback', packetId: 1 }, 2);
  queue.push({ type: 'puback', packetId: 2 }, 1);
  const sink = collector();
  assert.equal(queue.waitsFor(1), false, 'the first item waits for commit 2');
  assert.equal(queue.release(1, sink), false);
  assert.deepEqual(sink.out, [], 'commit 1 is done but the earlier item is not: order is kept');
  assert.equal(queue.waitsFor(2), true);
  assert.equal(queue.release(2, sink), true);
  assert.deepEqual(sink.out, [1, 2]);
  assert.equal(queue.empty, true);
  assert.equal(queue.lastGen, 0);
});

test('property: whatever the commits and releases, items come out exactly once, in push order', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.boolean()), { maxLength: 3000 }), (steps) => {
      const queue = new AckQueue();
      const sink = collector();
      let gen = 0;
      let next = 0;
      let committed = 0;
      for (const [advance, release] of steps) {
        gen += advance;
        queue.push({ type: 'puback', packetId: next++ }, Math.max(gen, queue.lastGen));
        if (release) {
          committed = Math.max(committed, gen - 1);
          queue.release(committed, sink);
        }
      }
      queue.release(Infinity, sink);
      assert.deepEqual(sink.out, Array.from({ length: next }, (_, i) => i));
    }),
  );
});
