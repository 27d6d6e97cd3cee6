/** Requests to change access are checked before anything is written: unknown fields, types, topic filters, passwords, bans; and the ban index. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessError } from '../../../src/auth/access-error.js';
import { adminInput, adminPatch, banInput, invalidAddress, roleInput, userInput, userPatch } from '../../../src/auth/access-input.js';
import { BanList, normalAddress } from '../../../src/auth/bans.js';
import { weakPassword } from '../../../src/auth/password-policy.js';

function refused(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => error instanceof AccessError && error.kind === 'bad-request' && pattern.test(error.message), String(pattern));
}

test('a user: required fields, unknown fields refused by name, roles and rules checked', () => {
  assert.deepEqual(userInput({ username: 'dev1', password: 'long enough pw' }), { username: 'dev1', password: 'long enough pw', roles: [], acl: [] });
  refused(() => userInput({ username: 'dev1', password: 'long enough pw', role: ['x'] }), /unknown field "role" in a user \(expected username, password, roles, acl\)/);
  refused(() => userInput({ password: 'long enough pw' }), /username must be a string/);
  refused(() => userInput({ username: 'a:b', password: 'long enough pw' }), /must not contain ":"/);
  refused(() => userInput({ username: 'dev1', password: 'long enough pw', roles: 'admins' }), /roles must be an array/);
  refused(() => userInput({ username: 'dev1', password: 'long enough pw', roles: ['ok', 'not ok'] }), /roles\[1\] must be 1-64 of/);
  refused(() => userInput({ username: 'dev1', password: 'long enough pw', acl: [{ topic: 'a/#/b', access: 'read' }] }), /acl\[0\]\.topic "a\/#\/b" is not a valid topic filter/);
  refused(() => userInput({ username: 'dev1', password: 'long enough pw', acl: [{ topic: 'a/b+', access: 'read' }] }), /not a valid topic filter/);
  refused(() => userInput({ username: 'dev1', password: 'long enough pw', acl: [{ topic: 'a', access: 'all' }] }), /acl\[0\]\.access must be one of read, write, readwrite, deny/);
  refused(() => userInput({ username: 'dev1', password: 'long enough pw', acl: [{ topic: 'a', access: 'read', qos: 1 }] }), /unknown field "qos" in acl\[0\]/);
  assert.deepEqual(userInput({ username: 'd', password: 'long enough pw', acl: [{ topic: 'devices/%u/#', access: 'readwrite' }] }).acl, [{ topic: 'devices/%u/#', access: 'readwrite' }]);
  refused(() => userPatch({}, 'dev1'), /nothing to change/);
  refused(() => userPatch({ name: 'x' }, 'dev1'), /unknown field "name" in a user change/);
});

test('weak and empty passwords are refused with the reason', () => {
  refused(() => userInput({ username: 'dev1', password: '' }), /password refused: password is empty/);
  refused(() => userInput({ username: 'dev1', password: 'short' }), /shorter than 8 characters/);
  refused(() => userInput({ username: 'dev1', password: 'aaaaaaaaaaaa' }), /one character repeated/);
  refused(() => userInput({ username: 'dev1', password: 'Password123' }), /most common passwords/);
  refused(() => userInput({ username: 'sensor', password: 'my-sensor-pw' }), /contains the user name/);
  refused(() => userInput({ username: 'dev1', password: 12345678 }), /password must be a string/);
  assert.equal(weakPassword('correct horse battery', 'alice'), undefined);
});

test('roles and admins', () => {
  assert.deepEqual(roleInput({ name: 'devices', acl: [{ topic: 'd/%u/#', access: 'readwrite' }] }), { name: 'devices', acl: [{ topic: 'd/%u/#', access: 'readwrite' }] });
  refused(() => roleInput({ name: 'has space' }), /name must be 1-64 of/);
  refused(() => roleInput({ name: 'r', rules: [] }), /unknown field "rules" in a role/);
  assert.equal(adminInput({ username: 'root', password: 'long enough pw' }).role, 'administrator');
  refused(() => adminInput({ username: 'root', password: 'long enough pw', role: 'owner' }), /role must be "administrator" or "viewer"/);
  refused(() => adminPatch({ role: 'viewer', extra: 1 }, 'root'), /unknown field "extra"/);
});

test('a ban names exactly one of client id, user name or address; until is in the future; addresses are IPs or CIDR ranges', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  assert.deepEqual(banInput({ clientId: 'c1', reason: 'spam' }, now), { clientId: 'c1', reason: 'spam' });
  assert.deepEqual(banInput({ address: '10.0.0.0/8', until: '2030-01-02T00:00:00Z' }, now), { address: '10.0.0.0/8', until: Date.parse('2030-01-02T00:00:00Z') });
  refused(() => banInput({}, now), /exactly one of clientId, username, address \(got none\)/);
  refused(() => banInput({ clientId: 'a', username: 'b' }, now), /got clientId and username/);
  refused(() => banInput({ address: '10.0.0.300' }, now), /is not an IPv4 or IPv6 address/);
  refused(() => banInput({ address: '10.0.0.0/33' }, now), /prefix length "\/33" must be 0-32/);
  refused(() => banInput({ clientId: 'a', until: '2029-12-31T00:00:00Z' }, now), /is not in the future/);
  refused(() => banInput({ clientId: 'a', until: 'tomorrow' }, now), /until must be an ISO 8601 time/);
  refused(() => banInput({ clientId: 'a', why: 'x' }, now), /unknown field "why" in a ban/);
  assert.equal(invalidAddress('2001:db8::/32'), undefined);
  assert.match(invalidAddress('2001:db8::/129') ?? '', /0-128/);
});

test('BanList: by client id, user name, IPv4 and IPv6 ranges (IPv4-mapped addresses included); expired bans do not match', () => {
  const list = new BanList([
    { id: 'c', clientId: 'evil', createdAt: 0, createdBy: 't' },
    { id: 'u', username: 'mallory', until: 1000, createdAt: 0, createdBy: 't' },
    { id: 'a4', address: '192.0.2.0/24', createdAt: 0, createdBy: 't' },
    { id: 'a6', address: '2001:db8::/32', createdAt: 0, createdBy: 't' },
    { id: 'one', address: '198.51.100.7', createdAt: 0, createdBy: 't' },
  ]);
  assert.equal(list.match('evil', undefined, undefined, 0)?.id, 'c');
  assert.equal(list.match('good', 'mallory', undefined, 999)?.id, 'u');
  assert.equal(list.match('good', 'mallory', undefined, 1000), undefined, 'expired at until');
  assert.equal(list.match('good', undefined, '192.0.2.77', 0)?.id, 'a4');
  assert.equal(list.match('good', undefined, '::ffff:192.0.2.77', 0)?.id, 'a4');
  assert.equal(list.match('good', undefined, '192.0.3.1', 0), undefined);
  assert.equal(list.match('good', undefined, '2001:db8:1::5', 0)?.id, 'a6');
  assert.equal(list.match('good', undefined, '198.51.100.7', 0)?.id, 'one');
  assert.equal(list.match('good', undefined, '198.51.100.8', 0), undefined);
  assert.equal(new BanList([]).empty, true);
  assert.deepEqual(normalAddress('::ffff:127.0.0.1'), { address: '127.0.0.1', family: 'ipv4' });
  assert.equal(normalAddress('not-an-ip'), undefined);
});
