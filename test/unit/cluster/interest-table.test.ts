import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InterestTable, filterOf } from '../../../src/cluster/interest-table.js';
import { topicMatches } from '../../../src/protocol/topic.js';

test('cluster routes: a topic goes only to nodes with a matching filter (routing by interest)', () => {
  const table = new InterestTable();
  table.add('n1', 'a/#');
  table.add('n2', 'a/+/c');
  table.add('n3', 'b/c');
  assert.deepEqual([...table.match('a/b/c').nodes].sort(), ['n1', 'n2']);
  assert.deepEqual([...table.match('b/c').nodes], ['n3']);
  assert.deepEqual([...table.match('z').nodes], []);
  table.remove('n1', 'a/#');
  assert.deepEqual([...table.match('a/b/c').nodes], ['n2'], 'the per-topic cache is invalidated on change');
});

test('[MQTT-4.7.2-1] cluster routes: $ topics are not matched by filters starting with a wildcard', () => {
  const table = new InterestTable();
  table.add('n1', '#');
  table.add('n2', '+/x');
  table.add('n3', '$SYS/#');
  assert.deepEqual([...table.match('$SYS/x').nodes], ['n3']);
  assert.deepEqual([...table.match('sport/x').nodes].sort(), ['n1', 'n2']);
});

test('[MQTT-4.7.1-2] cluster routes: "sport/#" matches "sport" itself', () => {
  const table = new InterestTable();
  table.add('n1', 'sport/#');
  assert.deepEqual([...table.match('sport').nodes], ['n1']);
});

test('cluster routes: shared groups are listed with their member nodes and picked round-robin', () => {
  const table = new InterestTable();
  table.add('n1', '$share/g/work/#');
  table.add('n2', '$share/g/work/#');
  table.add('n2', '$share/h/work/+');
  const route = table.match('work/1');
  assert.deepEqual(route.nodes, []);
  assert.deepEqual(route.groups.get('$share/g/work/#'), ['n1', 'n2']);
  assert.deepEqual(route.groups.get('$share/h/work/+'), ['n2']);
  const picks = [0, 1, 2, 3].map(() => table.pick('$share/g/work/#', route.groups.get('$share/g/work/#')!));
  assert.deepEqual(picks, ['n1', 'n2', 'n1', 'n2']);
  assert.equal(filterOf('$share/g/work/#'), 'work/#');
  assert.equal(filterOf('plain/+'), 'plain/+');
});

test('cluster routes: removing and replacing a node', () => {
  const table = new InterestTable();
  table.add('n1', 'a');
  table.add('n2', 'a');
  table.removeNode('n1');
  assert.deepEqual([...table.match('a').nodes], ['n2']);
  table.replaceNode('n2', ['b']);
  assert.deepEqual([...table.match('a').nodes], []);
  assert.deepEqual([...table.match('b').nodes], ['n2']);
  assert.equal(table.add('n2', 'b'), false, 'a known interest is not added twice');
});

const level = fc.constantFrom('a', 'b', '', '$x', 'c');
const topicArb = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/'));
const filterArb = fc
  .array(fc.constantFrom('a', 'b', '', '+', 'c', '$x'), { minLength: 1, maxLength: 4 })
  .chain((levels) => fc.boolean().map((hash) => (hash ? [...levels, '#'] : levels).join('/')));

test('cluster routes (property): match agrees with the reference topic matcher', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('n1', 'n2', 'n3'), filterArb), { maxLength: 12 }), topicArb, (entries, topic) => {
      const table = new InterestTable();
      for (const [node, filter] of entries) table.add(node, filter);
      const expected = new Set(entries.filter(([, filter]) => topicMatches(filter, topic)).map(([node]) => node));
      assert.deepEqual(new Set(table.match(topic).nodes), expected);
    }),
    { numRuns: 500, seed: 7 },
  );
});

test('cluster routes: wantedBeyond says whether another node (plain or shared member) wants a topic, for MQTT 5\'s 0x10', () => {
  const table = new InterestTable();
  table.add('n1', 'a/#');
  assert.equal(table.wantedBeyond('a/b', 'n1'), false, 'only this node');
  assert.equal(table.wantedBeyond('a/b', 'n2'), true);
  table.add('n2', '$share/g/x/+');
  assert.equal(table.wantedBeyond('x/y', 'n1'), true, 'a shared member elsewhere');
  assert.equal(table.wantedBeyond('x/y', 'n2'), false);
  assert.equal(table.wantedBeyond('z', 'n1'), false, 'nobody');
});
