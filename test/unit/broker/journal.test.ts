/** Journal: a turn's store operations, message bodies stored once and deleted with their last holder. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromStoredMessage, Journal, toStoredMessage } from '../../../src/broker/journal.js';
import { createMessage } from '../../../src/broker/messages.js';

const message = (topic: string) => createMessage(topic, Buffer.from('p'), 1, false, { contentType: 'text/plain', messageExpiryInterval: 60 }, 'c', 1000);

test('a body is stored with its first holder and deleted with its last; ids are stable per message', () => {
  const journal = new Journal(() => undefined);
  const m = message('a');
  const id = journal.refMessage(m);
  assert.equal(journal.refMessage(m), id);
  assert.deepEqual(journal.take().map((op) => op.op), ['putMessage']);
  journal.unrefMessage(m);
  assert.equal(journal.size, 0, 'one holder left: nothing to write');
  journal.unrefMessage(m);
  assert.deepEqual(journal.take(), [{ op: 'deleteMessage', id }]);
  assert.notEqual(journal.refMessage(message('b')), id);
});

test('the owner is told once per turn that operations arrived; take() empties the turn', () => {
  let told = 0;
  const journal = new Journal(() => told++);
  journal.push({ op: 'deleteRetained', topic: 'x' });
  journal.push({ op: 'deleteRetained', topic: 'y' });
  assert.equal(told, 1);
  assert.equal(journal.take().length, 2);
  journal.markExternal();
  assert.equal(told, 2);
  assert.equal(journal.size, 1, 'work outside the store counts, so an acknowledgement waits for it');
  assert.deepEqual(journal.take(), []);
  assert.equal(journal.size, 0);
});

test('retained messages are stored with an increasing set order; an empty payload deletes', () => {
  const journal = new Journal(() => undefined);
  journal.retained(message('r/1'));
  journal.retained(message('r/2'));
  journal.retained({ ...message('r/1'), payload: Buffer.alloc(0) });
  const ops = journal.take();
  assert.deepEqual(ops.map((op) => (op.op === 'putRetained' ? op.message.seq : op.op)), [1, 2, 'deleteRetained']);
});

test('stored form round trip: a message comes back from the store as it went in', () => {
  const m = message('round/trip');
  m.clusterId = 'n1/7';
  const back = fromStoredMessage(toStoredMessage(m, 3));
  assert.deepEqual(back, m);
});

test('after a restore, bodies no restored delivery holds are deleted', () => {
  const journal = new Journal(() => undefined);
  const held = message('held');
  const orphan = message('orphan');
  journal.adoptMessage(held, 10);
  journal.adoptMessage(orphan, 11);
  assert.equal(journal.adoptRef(held), 10);
  journal.collectUnreferenced([held, orphan]);
  assert.deepEqual(journal.take(), [{ op: 'deleteMessage', id: 11 }]);
  assert.equal(journal.refMessage(message('new')), 12, 'new ids continue after the restored ones');
});
