import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeEnvelope, encodeEnvelope, forEachEnvelope } from '../../../../src/cluster/envelope.js';
import { InterestTable } from '../../../../src/cluster/interest-table.js';
import { NodeQueues, planGroups } from '../../../../src/cluster/outbound.js';
import type { Message } from '../../../../src/model/message.js';

function envelope(payload: string | Buffer): Buffer {
  const message: Message = { topic: 't', payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos: 1, retain: false, origin: 'o', receivedAt: 1, clusterId: undefined };
  return encodeEnvelope(message, []);
}

function payloads(batch: Buffer): string[] {
  const out: string[] = [];
  forEachEnvelope(batch, (e) => out.push(decodeEnvelope(e).message.payload.toString()));
  return out;
}

test('outbox queues: a turn\'s envelopes leave as one batch per target node, in queueing order, and the queues empty', () => {
  const queues = new NodeQueues();
  for (const [node, p] of [['n2', 'a'], ['n3', 'b'], ['n2', 'c'], ['n2', 'd'], ['n3', 'e']] as const) queues.push(node, envelope(p));
  assert.equal(queues.size, 5);
  const bytes = queues.bytes;
  assert.ok(bytes > 0);
  const out = queues.take();
  assert.deepEqual([...out.keys()], ['n2', 'n3']);
  assert.deepEqual(out.get('n2')!.map(payloads), [['a', 'c', 'd']], 'one batch for node 2');
  assert.deepEqual(out.get('n3')!.map(payloads), [['b', 'e']]);
  assert.equal(queues.size, 0);
  assert.equal(queues.bytes, 0);
  assert.equal(queues.take().size, 0, 'nothing left for the next turn');
});

test('outbox queues: a single envelope goes as is; a large turn is cut into batches of at most 1 MiB', () => {
  const queues = new NodeQueues();
  const single = envelope('only');
  queues.push('n2', single);
  assert.deepEqual(queues.take().get('n2'), [single]);
  const big = 300 * 1024;
  for (let i = 0; i < 10; i++) queues.push('n2', envelope(Buffer.alloc(big, i)));
  const batches = queues.take().get('n2')!;
  assert.ok(batches.length >= 3, `${batches.length} batches`);
  assert.ok(batches.every((b) => b.length <= 1024 * 1024));
  const all = batches.flatMap((b) => {
    const first: number[] = [];
    forEachEnvelope(b, (e) => first.push(decodeEnvelope(e).message.payload[0]!));
    return first;
  });
  assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every envelope once, in order');
});

test('outbox plan: each shared group is served by one node, taking turns among its holders; here or elsewhere', () => {
  const table = new InterestTable();
  table.add('me', '$share/g/w/#');
  table.add('n2', '$share/g/w/#');
  table.add('n2', '$share/h/w/#');
  const picks: string[] = [];
  for (let i = 0; i < 4; i++) {
    const plan = planGroups(table.match('w/1'), table, 'me');
    const g = plan.local?.has('$share/g/w/#') === true ? 'me' : plan.remote?.get('n2')?.includes('$share/g/w/#') === true ? 'n2' : 'none';
    picks.push(g);
    assert.deepEqual(plan.remote?.get('n2')?.includes('$share/h/w/#'), true, 'a group held only elsewhere is served there');
  }
  assert.deepEqual(picks, ['me', 'n2', 'me', 'n2']);
  assert.deepEqual(planGroups(table.match('other'), table, 'me'), { local: undefined, remote: undefined });
});
