/**
 * The access part of the persistence conformance suite (users, roles, bans, admins, sessions): every
 * store's `access` port keeps records of every kind across a reopen, writes atomically, and tells its
 * watchers; a store with a `peer` (Redis: another node on the same data) also hears the peer's changes.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { AccessChange, AccessRecords, AccessStore, AccessWrite, Persistence } from '../../src/persistence/types.js';

/** How the access suite gets stores (the persistence suite's factory, and optionally a second node). */
export interface AccessFactory {
  create(): Promise<Persistence>;
  reopen(store: Persistence): Promise<Persistence>;
  /** Another store on the same data, as another node of a cluster would open it (cluster stores only). */
  peer?(store: Persistence): Promise<Persistence>;
}

const user: AccessRecords['user'] = { username: 'alice', passwordHash: '$7$20000$c2FsdHNhbHRzYWx0$aGFzaA==', roles: ['devices'], acl: [{ topic: 'alice/#', access: 'readwrite' }], createdAt: 1, updatedAt: 2 };
const role: AccessRecords['role'] = { name: 'devices', acl: [{ topic: 'devices/%u/#', access: 'readwrite' }, { topic: 'devices/secret/#', access: 'deny' }], createdAt: 3, updatedAt: 3 };
const ban: AccessRecords['ban'] = { id: 'b1', address: '10.0.0.0/8', until: 4_000_000_000_000, reason: 'flooding', createdAt: 4, createdBy: 'root' };
const admin: AccessRecords['admin'] = { username: 'root', passwordHash: '$7$20000$c2FsdHNhbHRzYWx0$aGFzaA==', role: 'administrator', createdAt: 5, updatedAt: 5 };
const session: AccessRecords['session'] = { id: 'ab'.repeat(32), username: 'root', kind: 'cookie', createdAt: 6, expiresAt: 7 };

const everyKind: AccessWrite[] = [
  { kind: 'user', key: user.username, value: user },
  { kind: 'role', key: role.name, value: role },
  { kind: 'ban', key: ban.id, value: ban },
  { kind: 'admin', key: admin.username, value: admin },
  { kind: 'session', key: session.id, value: session },
];

function accessOf(store: Persistence): AccessStore {
  assert.ok(store.access !== undefined, `${store.name} has an access store`);
  return store.access;
}

/** Collects what a watcher hears, leaving out 'all' (a store may say it at any time, e.g. when it subscribes). */
function listen(access: AccessStore, t: TestContext): AccessChange[][] {
  const heard: AccessChange[][] = [];
  const stop = access.watch((changes) => {
    if (changes !== 'all') heard.push([...changes]);
  });
  t.after(stop);
  return heard;
}

async function eventually(check: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Registers the access-store tests for one backend. */
export function accessStoreConformance(name: string, factory: AccessFactory): void {
  describe(`access store conformance: ${name}`, () => {
    const open = async (t: TestContext): Promise<{ store: Persistence }> => {
      const handle = { store: await factory.create() };
      t.after(() => handle.store.close());
      return handle;
    };

    test('a new store has no access records of any kind', async (t) => {
      const { store } = await open(t);
      const snapshot = await accessOf(store).load();
      for (const kind of ['user', 'role', 'ban', 'admin', 'session'] as const) assert.equal(snapshot[kind].size, 0, kind);
      assert.equal(await accessOf(store).get('user', 'alice'), undefined);
    });

    test('records of every kind are read back, and loaded back after reopening, field for field', async (t) => {
      const handle = await open(t);
      await accessOf(handle.store).write(everyKind);
      assert.deepEqual(await accessOf(handle.store).get('user', 'alice'), user);
      assert.deepEqual(await accessOf(handle.store).get('ban', 'b1'), ban);
      handle.store = await factory.reopen(handle.store);
      const snapshot = await accessOf(handle.store).load();
      assert.deepEqual([...snapshot.user.values()], [user]);
      assert.deepEqual([...snapshot.role.values()], [role]);
      assert.deepEqual([...snapshot.ban.values()], [ban]);
      assert.deepEqual([...snapshot.admin.values()], [admin]);
      assert.deepEqual([...snapshot.session.values()], [session]);
      assert.deepEqual(snapshot.user.get('alice'), user, 'keyed by user name');
    });

    test('one write puts, replaces and deletes in order, all together; deleting what is not there is no error', async (t) => {
      const { store } = await open(t);
      const access = accessOf(store);
      await access.write(everyKind);
      const renamed = { ...role, acl: [] };
      await access.write([
        { kind: 'role', key: 'devices', value: renamed },
        { kind: 'user', key: 'alice', value: undefined },
        { kind: 'user', key: 'bob', value: { ...user, username: 'bob' } },
        { kind: 'ban', key: 'no-such-ban', value: undefined },
      ]);
      const snapshot = await access.load();
      assert.deepEqual([...snapshot.user.keys()], ['bob']);
      assert.deepEqual(snapshot.role.get('devices'), renamed);
      assert.equal(snapshot.ban.size, 1);
    });

    test('watchers hear every write (kinds and keys, in order) before the write resolves; stopped ones hear nothing', async (t) => {
      const { store } = await open(t);
      const access = accessOf(store);
      const heard = listen(access, t);
      const stopped: unknown[] = [];
      const stop = access.watch((changes) => stopped.push(changes));
      stop();
      await access.write(everyKind.slice(0, 2));
      assert.deepEqual(heard, [[{ kind: 'user', key: 'alice' }, { kind: 'role', key: 'devices' }]]);
      await access.write([{ kind: 'user', key: 'alice', value: undefined }]);
      assert.deepEqual(heard[1], [{ kind: 'user', key: 'alice' }]);
      assert.deepEqual(stopped, []);
    });

    if (factory.peer !== undefined) {
      const peerOf = factory.peer.bind(factory);
      test('another node on the same data hears each change within a second and reads it', async (t) => {
        const { store } = await open(t);
        const peer = await peerOf(store);
        t.after(() => peer.close());
        const all: number[] = [];
        const heard: AccessChange[][] = [];
        t.after(accessOf(peer).watch((changes) => (changes === 'all' ? all.push(1) : heard.push([...changes]))));
        // A new watcher is told to reload once its subscription is in place (changes before it could be missed).
        await eventually(() => all.length > 0, 'the peer said "all" once subscribed');
        const started = Date.now();
        await accessOf(store).write([{ kind: 'user', key: 'alice', value: user }]);
        await eventually(() => heard.length > 0, 'the peer heard the change', 1000);
        assert.ok(Date.now() - started < 1000);
        assert.deepEqual(heard[0], [{ kind: 'user', key: 'alice' }]);
        assert.deepEqual(await accessOf(peer).get('user', 'alice'), user);
        await accessOf(peer).write([{ kind: 'user', key: 'alice', value: undefined }]);
        assert.equal(await accessOf(store).get('user', 'alice'), undefined);
      });
    }
  });
}
