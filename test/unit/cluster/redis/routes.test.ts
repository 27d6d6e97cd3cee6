import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { formatRouteChange, parseRouteChange, Routes, type RouteChange } from '../../../../src/cluster/redis/routes.js';
import { RedisKeys } from '../../../../src/persistence/redis/keys.js';

const silent = { info: () => {}, warn: () => {}, error: () => {} };
/** Never connected (lazyConnect): the announcements tested here need no Redis. */
const unconnected = new Redis({ lazyConnect: true });

test('route changes: what formatRouteChange writes, parseRouteChange reads back (any key, newlines included)', () => {
  const node = fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/);
  const change: fc.Arbitrary<RouteChange> = fc.oneof(
    fc.record({ node, op: fc.constantFrom('add' as const, 'remove' as const), key: fc.string() }),
    fc.record({ node, op: fc.constantFrom('drop' as const, 'reload' as const) }),
  );
  fc.assert(fc.property(change, (c) => assert.deepEqual(parseRouteChange(formatRouteChange(c)), { ...c })));
});

test('route changes: anything else is not a change', () => {
  for (const text of ['', 'n1', '\n+a', 'n1\n', 'n1\n?a']) assert.equal(parseRouteChange(text), undefined, JSON.stringify(text));
});

test('routes: other nodes\' announcements update the table; this node\'s own are ignored; a drop forgets the node', () => {
  const routes = new Routes('me', new RedisKeys('t'), unconnected, silent);
  routes.onAnnouncement(formatRouteChange({ node: 'n2', op: 'add', key: 'a/#' }));
  routes.onAnnouncement(formatRouteChange({ node: 'n3', op: 'add', key: 'a/b' }));
  routes.onAnnouncement(formatRouteChange({ node: 'me', op: 'add', key: 'a/b' }));
  assert.deepEqual([...routes.table.match('a/b').nodes].sort(), ['n2', 'n3']);
  routes.onAnnouncement(formatRouteChange({ node: 'n3', op: 'remove', key: 'a/b' }));
  assert.deepEqual([...routes.table.match('a/b').nodes], ['n2']);
  routes.onAnnouncement(formatRouteChange({ node: 'n2', op: 'drop' }));
  assert.deepEqual([...routes.table.match('a/b').nodes], []);
});

test('routes: announcements during a resynchronisation wait for its end, then apply in order', () => {
  const routes = new Routes('me', new RedisKeys('t'), unconnected, silent);
  routes.beginResync();
  routes.onAnnouncement(formatRouteChange({ node: 'n2', op: 'add', key: 'x' }));
  routes.onAnnouncement(formatRouteChange({ node: 'n2', op: 'remove', key: 'x' }));
  routes.onAnnouncement(formatRouteChange({ node: 'n2', op: 'add', key: 'y' }));
  assert.deepEqual([...routes.table.match('y').nodes], [], 'held');
  routes.endResync();
  assert.deepEqual([...routes.table.match('x').nodes], []);
  assert.deepEqual([...routes.table.match('y').nodes], ['n2']);
});

test('routes: this node\'s interest is in the table at once, counted once however often it is added', () => {
  const routes = new Routes('me', new RedisKeys('t'), unconnected, silent);
  assert.equal(routes.add('s/#'), true);
  assert.equal(routes.add('s/#'), false);
  assert.deepEqual([...routes.table.match('s/1').nodes], ['me']);
  assert.equal(routes.remove('s/#'), true);
  assert.equal(routes.remove('s/#'), false);
  assert.deepEqual([...routes.table.match('s/1').nodes], []);
});
