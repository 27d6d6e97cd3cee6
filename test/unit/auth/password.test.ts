import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoginBackoff } from '../../../src/auth/login-backoff.js';
import { invalidUsername, PasswordFile, PasswordFileAuth, PasswordFileError } from '../../../src/auth/password-file.js';
import { formatPasswordHash, hashPassword, parsePasswordHash, verifyPassword } from '../../../src/auth/password-hash.js';
import type { AuthenticateRequest } from '../../../src/broker/hooks.js';

/** Written by Debian's mosquitto_passwd 2.0.11 (`mosquitto_passwd -c -b FILE u p`). */
const MOSQUITTO_LINE = 'u:$7$101$olFQ9ACWHr11FmMs$1NVehIb4dQqw0Xk9sIVPqzs25qkdTAGX8fs6UitVqD2EYm8ed9G2C+qw25STLksUUMUGiD0E7f1l1SXBUoQbCA==';

function request(username: string | undefined, password: string | undefined): AuthenticateRequest {
  return { clientId: 'c', username, password: password === undefined ? undefined : Buffer.from(password), remoteAddress: '10.0.0.1', listener: 'tcp', protocolVersion: 4 };
}

test("a mosquitto_passwd $7$ entry verifies its password and no other", async () => {
  const file = PasswordFile.parse(`# comment\n\n${MOSQUITTO_LINE}\n`);
  const hash = file.entries.get('u');
  assert.ok(hash !== undefined && hash.kind === 'pbkdf2-sha512' && hash.iterations === 101);
  assert.equal(await verifyPassword(hash, 'p'), true);
  assert.equal(await verifyPassword(hash, 'P'), false);
  assert.equal(await verifyPassword(hash, ''), false);
  assert.equal(file.serialize(), `${MOSQUITTO_LINE}\n`, 'round trip keeps the line byte for byte');
});

test('new hashes are $7$ with a 12-byte salt, the requested iterations, and round-trip through the file format', async () => {
  const hash = await hashPassword('correct horse', 1000);
  const text = formatPasswordHash(hash);
  assert.match(text, /^\$7\$1000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
  assert.equal(await verifyPassword(parsePasswordHash(text), 'correct horse'), true);
  assert.equal(await verifyPassword(parsePasswordHash(text), 'correct horsE'), false);
  await assert.rejects(hashPassword('x', 10), /iterations/);
});

test('plaintext, unknown hash types and malformed entries are refused with the line number', () => {
  assert.throws(() => PasswordFile.parse('alice:secret\n', 'pw'), (e: unknown) => e instanceof PasswordFileError && /pw:1: user "alice".*plaintext/.test(e.message));
  assert.throws(() => PasswordFile.parse('ok:$7$101$olFQ9ACWHr11FmMs$AAAA\n', 'pw'), /pw:1: .*64 bytes/);
  assert.throws(() => PasswordFile.parse('\nx:$5$abc$def\n', 'pw'), /pw:2: .*unsupported hash type/);
  assert.throws(() => PasswordFile.parse('no colon here\n', 'pw'), /pw:1: expected "user:hash"/);
  assert.throws(() => parsePasswordHash('$7$0$olFQ9ACWHr11FmMs$AAAA'), /iteration count/);
});

test('user names: no colon, no control characters, not empty', () => {
  assert.equal(invalidUsername('alice'), undefined);
  assert.match(invalidUsername('a:b') ?? '', /":"/);
  assert.match(invalidUsername('a\nb') ?? '', /control/);
  assert.match(invalidUsername('') ?? '', /empty/);
});

test('PasswordFileAuth: accept, bad credentials, abstain without a user name, unknown users per option', async () => {
  const file = new PasswordFile();
  file.entries.set('alice', await hashPassword('pw', 1000));
  const auth = new PasswordFileAuth(file);
  assert.equal(await auth.authenticate(request('alice', 'pw')), 'accept');
  assert.equal(await auth.authenticate(request('alice', 'no')), 'bad-credentials');
  assert.equal(await auth.authenticate(request('alice', undefined)), 'bad-credentials');
  assert.equal(await auth.authenticate(request('bob', 'pw')), 'bad-credentials');
  assert.equal(auth.authenticate(request(undefined, undefined)), undefined);
  assert.equal(new PasswordFileAuth(file, { unknownUser: 'abstain' }).authenticate(request('bob', 'pw')), undefined);
});

test('LoginBackoff: delays double per failure up to the bound, are forgotten after a quiet period, and memory is capped', () => {
  let now = 0;
  const backoff = new LoginBackoff({ baseDelayMs: 100, maxDelayMs: 350, forgetAfterMs: 1000, maxTracked: 3 }, () => now);
  assert.deepEqual([backoff.failed('a'), backoff.failed('a'), backoff.failed('a'), backoff.failed('a')], [100, 200, 350, 350]);
  now += 1001;
  assert.equal(backoff.failed('a'), 100, 'forgotten after forgetAfterMs');
  backoff.succeeded('a');
  assert.equal(backoff.failed('a'), 100, 'a success resets');
  for (const address of ['b', 'c', 'd', 'e']) backoff.failed(address);
  assert.equal(backoff.size, 3, 'never more than maxTracked addresses');
  assert.equal(backoff.failed('a'), 100, 'the oldest address was dropped');
});
