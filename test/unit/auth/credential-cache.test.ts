/** The verified-credential cache alone, and PasswordFileAuth with it: hits, expiry, reload, wrong passwords, the hash queue. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CredentialCache } from '../../../src/auth/credential-cache.js';
import { LoginBackoff } from '../../../src/auth/login-backoff.js';
import { PasswordFile, PasswordFileAuth } from '../../../src/auth/password-file.js';
import { HashQueue, hashPassword, type PasswordHash } from '../../../src/auth/password-hash.js';
import type { AuthenticateRequest } from '../../../src/broker/hooks.js';

/** A real HashQueue that counts the hashes it ran (how a test sees that the full hash was paid). */
class CountingQueue extends HashQueue {
  hashes = 0;
  override run<T>(job: () => Promise<T>): Promise<T> {
    this.hashes++;
    return super.run(job);
  }
}

function request(username: string, password: string | undefined, remoteAddress = '10.0.0.1'): AuthenticateRequest {
  return { clientId: 'c', username, password: password === undefined ? undefined : Buffer.from(password), remoteAddress, listener: 'tcp', protocolVersion: 4 };
}

async function fileWith(users: Record<string, string>, iterations = 1000): Promise<PasswordFile> {
  const file = new PasswordFile();
  for (const [user, password] of Object.entries(users)) file.entries.set(user, await hashPassword(password, iterations));
  return file;
}

const pw = (text: string): Buffer => Buffer.from(text);

test('CredentialCache: a remembered password matches; another password, another user or another hash entry does not', async () => {
  const cache = new CredentialCache();
  const hash = await hashPassword('right', 1000);
  const other = await hashPassword('right', 1000);
  cache.add('alice', hash, cache.tag('alice', pw('right')));
  assert.equal(cache.matches('alice', hash, cache.tag('alice', pw('right'))), true);
  assert.equal(cache.matches('alice', hash, cache.tag('alice', pw('wrong'))), false);
  assert.equal(cache.matches('alice', hash, cache.tag('alice', pw('right '))), false);
  assert.equal(cache.matches('bob', hash, cache.tag('bob', pw('right'))), false, 'no entry for bob');
  assert.equal(cache.matches('alice', other, cache.tag('alice', pw('right'))), false, 'verified against another file entry: void');
  assert.equal(cache.size, 0, 'and that void entry is gone');
});

test('CredentialCache: tags are fixed-length keyed MACs, bound to the user name and to this process\'s key; any differing byte fails', () => {
  const a = new CredentialCache();
  const b = new CredentialCache();
  fc.assert(
    fc.property(fc.string(), fc.uint8Array({ maxLength: 200 }), (user, password) => {
      const tag = a.tag(user, Buffer.from(password));
      assert.equal(tag.length, 32, 'the same length for every password: nothing to learn from it');
      assert.ok(!tag.equals(b.tag(user, Buffer.from(password))), 'another key, another tag');
      // The user name's length is part of the MAC: ("ab", "c") and ("a", "bc") differ.
      assert.ok(!tag.equals(a.tag(`${user}x`, Buffer.from(password).subarray(1))) || password.length === 0);
    }),
    { numRuns: 200 },
  );
  const cache = new CredentialCache();
  const hash: PasswordHash = { kind: 'sha512', salt: Buffer.alloc(12), hash: Buffer.alloc(64) };
  const tag = cache.tag('alice', pw('secret'));
  cache.add('alice', hash, tag);
  for (const position of [0, 15, 31]) {
    const forged = Buffer.from(tag);
    forged[position]! ^= 1;
    assert.equal(cache.matches('alice', hash, forged), false, `byte ${position} differs`);
  }
  assert.equal(cache.matches('alice', hash, tag), true);
});

test('CredentialCache: entries expire ttl after their user was last seen; a disconnect (refresh) or a hit extends them', () => {
  let now = 0;
  const cache = new CredentialCache({ ttlMs: 1000 }, () => now);
  const hash: PasswordHash = { kind: 'sha512', salt: Buffer.alloc(12), hash: Buffer.alloc(64) };
  const tag = cache.tag('alice', pw('secret'));
  cache.add('alice', hash, tag);
  now = 999;
  assert.equal(cache.matches('alice', hash, tag), true, 'within the ttl (and the hit extends it to 1999)');
  now = 1500;
  cache.refresh('alice');
  now = 2499;
  assert.equal(cache.matches('alice', hash, tag), true, 'refreshed at 1500, so alive until 2500');
  now = 3499;
  assert.equal(cache.matches('alice', hash, tag), false, 'expired');
  assert.equal(cache.size, 0);
  cache.refresh('alice');
  assert.equal(cache.size, 0, 'refreshing a forgotten user does not bring it back');
});

test('CredentialCache: at most maxEntries users, the least recently seen dropped first; 0 turns it off', () => {
  const cache = new CredentialCache({ maxEntries: 3 });
  const hash: PasswordHash = { kind: 'sha512', salt: Buffer.alloc(12), hash: Buffer.alloc(64) };
  for (const user of ['a', 'b', 'c']) cache.add(user, hash, cache.tag(user, pw(user)));
  assert.equal(cache.matches('a', hash, cache.tag('a', pw('a'))), true, 'a is now the most recently seen');
  cache.add('d', hash, cache.tag('d', pw('d')));
  assert.equal(cache.size, 3);
  assert.equal(cache.matches('b', hash, cache.tag('b', pw('b'))), false, 'b was the least recently seen');
  assert.equal(cache.matches('a', hash, cache.tag('a', pw('a'))), true);
  const off = new CredentialCache({ maxEntries: 0 });
  off.add('a', hash, off.tag('a', pw('a')));
  assert.equal(off.enabled, false);
  assert.equal(off.size, 0);
});

test('CredentialCache.retain: a reload keeps the users whose entry is unchanged and forgets changed and removed ones', async () => {
  const cache = new CredentialCache();
  const before = await fileWith({ alice: 'a', bob: 'b', carol: 'c' });
  for (const [user, hash] of before.entries) cache.add(user, hash, cache.tag(user, pw(user[0]!)));
  // The reloaded file: alice unchanged (same line, new objects), bob's password changed, carol gone.
  const after = PasswordFile.parse(before.serialize());
  after.entries.set('bob', await hashPassword('b2', 1000));
  after.entries.delete('carol');
  cache.retain(after.entries);
  assert.equal(cache.size, 1);
  assert.equal(cache.matches('alice', after.entries.get('alice')!, cache.tag('alice', pw('a'))), true, 'kept, and bound to the new entry');
  assert.equal(cache.matches('bob', after.entries.get('bob')!, cache.tag('bob', pw('b'))), false);
});

test('PasswordFileAuth with a cache: the second login with the same password skips the hash and answers at once', async () => {
  const queue = new CountingQueue(2);
  const auth = new PasswordFileAuth(await fileWith({ alice: 'pw' }), { cache: new CredentialCache(), hashQueue: queue });
  assert.equal(await auth.authenticate(request('alice', 'pw')), 'accept');
  assert.equal(queue.hashes, 1);
  assert.equal(auth.authenticate(request('alice', 'pw')), 'accept', 'synchronous: no promise, no hash');
  assert.equal(queue.hashes, 1);
  assert.equal(auth.remembered, 1);
});

test('PasswordFileAuth with a cache: a wrong password is never served from it, pays the full hash and the back-off every time', async () => {
  const queue = new CountingQueue(2);
  const backoff = new LoginBackoff({ baseDelayMs: 1, maxDelayMs: 60_000 });
  const auth = new PasswordFileAuth(await fileWith({ alice: 'pw' }), { cache: new CredentialCache(), hashQueue: queue, backoff });
  assert.equal(await auth.authenticate(request('alice', 'pw')), 'accept');
  for (const wrong of ['pw ', 'PW', '', 'p']) assert.equal(await auth.authenticate(request('alice', wrong)), 'bad-credentials', `"${wrong}"`);
  assert.equal(await auth.authenticate(request('alice', undefined)), 'bad-credentials', 'no password at all');
  assert.equal(queue.hashes, 6, 'one hash for the right password, then one per wrong attempt (the missing password too)');
  assert.equal(backoff.failed('10.0.0.1'), 32, 'five failures were counted for the address: the sixth waits 1 ms × 2^5');
  assert.equal(auth.authenticate(request('alice', 'pw')), 'accept', 'the right password is still remembered');
  assert.equal(await auth.authenticate(request('mallory', 'pw')), 'bad-credentials', 'unknown user: refused');
  assert.equal(queue.hashes, 7, 'after the dummy hash');
});

test('PasswordFileAuth with a cache: concurrent logins with the same password share one hash; a different password gets its own', async () => {
  const queue = new CountingQueue(1);
  const auth = new PasswordFileAuth(await fileWith({ alice: 'pw' }), { cache: new CredentialCache(), hashQueue: queue });
  const answers = await Promise.all([auth.authenticate(request('alice', 'pw')), auth.authenticate(request('alice', 'pw')), auth.authenticate(request('alice', 'nope')), auth.authenticate(request('alice', 'pw'))]);
  assert.deepEqual(answers, ['accept', 'accept', 'bad-credentials', 'accept']);
  assert.equal(queue.hashes, 3, 'pw, nope, and pw again (the wrong attempt took the slot of the one in progress)');
});

test('PasswordFileAuth with a cache: after replace() a changed password is refused and the new one accepted; unchanged users stay remembered', async () => {
  const queue = new CountingQueue(2);
  const file = await fileWith({ alice: 'old', bob: 'b' });
  const auth = new PasswordFileAuth(file, { cache: new CredentialCache(), hashQueue: queue });
  assert.equal(await auth.authenticate(request('alice', 'old')), 'accept');
  assert.equal(await auth.authenticate(request('bob', 'b')), 'accept');
  const reloaded = PasswordFile.parse(file.serialize());
  reloaded.entries.set('alice', await hashPassword('new', 1000));
  auth.replace(reloaded);
  assert.equal(auth.remembered, 1, 'bob kept, alice forgotten');
  assert.equal(await auth.authenticate(request('alice', 'old')), 'bad-credentials');
  assert.equal(await auth.authenticate(request('alice', 'new')), 'accept');
  assert.equal(auth.authenticate(request('bob', 'b')), 'accept', 'bob: still a hit');
  auth.replace(new PasswordFile());
  assert.equal(await auth.authenticate(request('bob', 'b')), 'bad-credentials', 'a removed user is refused');
});

test('PasswordFileAuth: a disconnect of a remembered user keeps the entry alive; without a cache nothing is remembered', async () => {
  let now = 0;
  const cache = new CredentialCache({ ttlMs: 1000 }, () => now);
  const queue = new CountingQueue(2);
  const auth = new PasswordFileAuth(await fileWith({ alice: 'pw' }), { cache, hashQueue: queue });
  assert.equal(await auth.authenticate(request('alice', 'pw')), 'accept');
  now = 5000; // connected for a long time, then the network drops it
  auth.onDisconnect({ clientId: 'c', username: 'alice', remoteAddress: undefined, listener: 'tcp' });
  now = 5500;
  assert.equal(auth.authenticate(request('alice', 'pw')), 'accept', 'the reconnect is a hit');
  const plain = new PasswordFileAuth(await fileWith({ alice: 'pw' }), { hashQueue: queue });
  const before = queue.hashes;
  assert.equal(await plain.authenticate(request('alice', 'pw')), 'accept');
  assert.equal(await plain.authenticate(request('alice', 'pw')), 'accept');
  assert.equal(queue.hashes - before, 2, 'no cache: every login hashes');
  assert.equal(plain.remembered, 0);
});

test('HashQueue: never more than `concurrency` jobs at once, in arrival order, and a failing job frees its slot', async () => {
  const queue = new HashQueue(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const job = (i: number) => async (): Promise<number> => {
    running++;
    peak = Math.max(peak, running);
    order.push(i);
    await new Promise((resolve) => setImmediate(resolve));
    running--;
    if (i === 3) throw new Error('boom');
    return i;
  };
  const results = await Promise.allSettled(Array.from({ length: 2000 }, (_, i) => queue.run(job(i))));
  assert.equal(peak, 2);
  assert.deepEqual(order, Array.from({ length: 2000 }, (_, i) => i));
  assert.equal(results.filter((r) => r.status === 'rejected').length, 1);
  assert.equal(queue.queued, 0);
  assert.equal(await queue.run(async () => 'after'), 'after', 'slots were all given back');
  assert.throws(() => new HashQueue(0), /positive integer/);
});
