import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AclAuthorizer, AclFile, filterCovers, filterMatches } from '../../../src/auth/acl.js';
import type { ClientIdentity } from '../../../src/broker/hooks.js';

const who = (username: string | undefined, clientId = 'c1'): ClientIdentity => ({ clientId, username, remoteAddress: undefined, listener: 'tcp' });
const levels = (s: string): string[] => s.split('/');

test('filterMatches follows MQTT matching, $ topics excluded from leading wildcards [MQTT-4.7.2-1]', () => {
  const cases: [string, string, boolean][] = [
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
  ];
  for (const [filter, topic, expected] of cases) assert.equal(filterMatches(levels(filter), levels(topic)), expected, `${filter} ~ ${topic}`);
});

test('filterCovers: a subscription within a rule filter', () => {
  const cases: [string, string, boolean][] = [
    ['a/#', 'a/b/+', true],
    ['a/#', 'a', true],
    ['a/#', '#', false],
    ['a/+', 'a/#', false],
    ['a/+', 'a/+', true],
    ['a/b', 'a/+', false],
    ['#', '$SYS/#', false],
    ['+/+', 'x/y', true],
  ];
  for (const [rule, sub, expected] of cases) assert.equal(filterCovers(levels(rule), levels(sub)), expected, `${rule} covers ${sub}`);
});

test('parse: access words, default readwrite, user sections, patterns anywhere, errors with line numbers', () => {
  const acl = AclFile.parse('topic read pub/#\n# c\nuser alice smith\ntopic a/#\npattern write d/%c\nuser bob\ntopic deny x\n', 'acl');
  assert.deepEqual(acl.anonymous.map((r) => [r.access, r.filter]), [['read', 'pub/#']]);
  assert.deepEqual(acl.users.get('alice smith')?.map((r) => [r.access, r.filter]), [['readwrite', 'a/#']]);
  assert.deepEqual(acl.users.get('bob')?.map((r) => [r.access, r.filter]), [['deny', 'x']]);
  assert.deepEqual(acl.patterns.map((r) => [r.access, r.filter]), [['write', 'd/%c']]);
  assert.throws(() => AclFile.parse('topic read a\nfoo bar\n', 'acl'), /acl:2: unknown keyword "foo"/);
  assert.throws(() => AclFile.parse('topic read a/#/b\n', 'acl'), /acl:1: .*"#"/);
  assert.throws(() => AclFile.parse('user\n', 'acl'), /acl:1: "user" needs a user name/);
});

test('AclAuthorizer: deny wins, %u / %c substitution, unsafe substitutions refused, receive cached per client', () => {
  const acl = new AclAuthorizer(AclFile.parse('user u\ntopic readwrite a/#\ntopic deny a/secret\npattern read in/%u/#\npattern write out/%c\n'));
  const u = who('u');
  assert.equal(acl.authorizePublish(u, 'a/x'), true);
  assert.equal(acl.authorizePublish(u, 'a/secret'), false);
  assert.equal(acl.authorizeReceive(u, 'a/secret'), false);
  assert.equal(acl.authorizeReceive(u, 'a/secret'), false, 'cached answer is the same');
  assert.equal(acl.authorizeSubscribe(u, 'in/u/#'), true);
  assert.equal(acl.authorizeSubscribe(u, 'in/v/#'), false);
  assert.equal(acl.authorizePublish(u, 'out/c1'), true);
  assert.equal(acl.authorizePublish(who('u', 'c1/../x'), 'out/c1/../x'), false, 'client id with / gets no %c grant');
  assert.equal(acl.authorizeSubscribe(who('+'), 'in/+/#'), false, 'user name + gets no %u grant');
  assert.equal(acl.authorizePublish(who(undefined), 'a/x'), false, 'anonymous: only general rules');
  acl.replace(AclFile.parse('user u\ntopic read a/#\n'));
  assert.equal(acl.authorizePublish(u, 'a/x'), false, 'replace applies to a known client at once');
});
