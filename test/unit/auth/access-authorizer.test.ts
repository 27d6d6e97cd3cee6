/** The order of evaluation of the ACL file and the runtime rules (docs/security.md): deny anywhere wins, then any grant, then the default access. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AclFile } from '../../../src/auth/acl.js';
import { AccessAuthorizer, type DefaultAccessConfig } from '../../../src/auth/access-authorizer.js';
import { AccessState } from '../../../src/auth/access-state.js';
import type { ClientIdentity } from '../../../src/broker/hooks.js';
import type { StoredAclRule } from '../../../src/persistence/types.js';

const who = (username: string | undefined, clientId = 'c1'): ClientIdentity => ({ clientId, username, remoteAddress: undefined, listener: 'tcp' });
const AUTO: DefaultAccessConfig = { anonymous: 'auto', authenticated: 'auto' };

function stateWith(users: Record<string, { roles?: string[]; acl?: StoredAclRule[] }>, roles: Record<string, StoredAclRule[]> = {}): AccessState {
  const state = new AccessState();
  for (const [name, acl] of Object.entries(roles)) state.set('role', name, { name, acl, createdAt: 0, updatedAt: 0 });
  for (const [username, user] of Object.entries(users)) state.set('user', username, { username, passwordHash: '$7$1$AA==$AA==', roles: user.roles ?? [], acl: user.acl ?? [], createdAt: 0, updatedAt: 0 });
  return state;
}

test('nothing configured: the authorizer abstains (every client keeps full access, as before)', () => {
  const authorizer = new AccessAuthorizer(stateWith({ plain: {} }), undefined, AUTO);
  assert.equal(authorizer.authorizePublish(who('plain'), 'any/topic'), undefined);
  assert.equal(authorizer.authorizeSubscribe(who(undefined), '#'), undefined);
  assert.equal(authorizer.authorizeReceive(who('plain'), 'x'), undefined);
});

test('roles hold rules, users have roles and their own rules; %u and %c are substituted; a user with no rule keeps full access', () => {
  const state = stateWith({ dev1: { roles: ['devices'] }, ops: { acl: [{ topic: 'ops/#', access: 'read' }] }, free: {} }, { devices: [{ topic: 'devices/%u/#', access: 'readwrite' }, { topic: 'cmd/%c', access: 'read' }] });
  const authorizer = new AccessAuthorizer(state, undefined, AUTO);
  assert.equal(authorizer.authorizePublish(who('dev1'), 'devices/dev1/temp'), true);
  assert.equal(authorizer.authorizePublish(who('dev1'), 'devices/dev2/temp'), false, 'closed once a rule applies');
  assert.equal(authorizer.authorizeSubscribe(who('dev1', 'box-7'), 'cmd/box-7'), true);
  assert.equal(authorizer.authorizeSubscribe(who('dev1', 'box-7'), 'cmd/box-8'), false);
  assert.equal(authorizer.authorizeSubscribe(who('ops'), 'ops/+/x'), true);
  assert.equal(authorizer.authorizePublish(who('ops'), 'ops/x'), false, 'read is not write');
  assert.equal(authorizer.authorizePublish(who('free'), 'anything'), true, 'no rule anywhere: full access');
  assert.equal(authorizer.authorizePublish(who(undefined), 'anything'), true, 'anonymous, no rule: full access');
});

test('a change applies at the next check of a connected client (rules compiled per client are rebuilt)', () => {
  const state = stateWith({ dev1: { acl: [{ topic: 'a/#', access: 'readwrite' }] } });
  const authorizer = new AccessAuthorizer(state, undefined, AUTO);
  const client = who('dev1');
  assert.equal(authorizer.authorizePublish(client, 'a/1'), true);
  assert.equal(authorizer.authorizeReceive(client, 'a/1'), true);
  state.set('user', 'dev1', { ...state.users.get('dev1')!, acl: [{ topic: 'a/#', access: 'deny' }, { topic: 'b/#', access: 'readwrite' }] });
  assert.equal(authorizer.authorizePublish(client, 'a/1'), false);
  assert.equal(authorizer.authorizeReceive(client, 'a/1'), false, 'the receive cache does not outlive the change');
  assert.equal(authorizer.authorizePublish(client, 'b/1'), true);
});

test('with an ACL file: a runtime grant widens it, a deny in either source wins, and unmatched is denied (auto)', () => {
  const file = AclFile.parse(['user dev1', 'topic readwrite files/#', 'topic deny files/secret/#', 'pattern read shared/%u'].join('\n'));
  const state = stateWith({ dev1: { acl: [{ topic: 'runtime/#', access: 'readwrite' }, { topic: 'files/locked', access: 'deny' }, { topic: 'files/secret/open', access: 'readwrite' }] } });
  const authorizer = new AccessAuthorizer(state, file, AUTO);
  const dev1 = who('dev1');
  assert.equal(authorizer.authorizePublish(dev1, 'files/a'), true, 'file grant');
  assert.equal(authorizer.authorizePublish(dev1, 'runtime/a'), true, 'runtime grant beside the file');
  assert.equal(authorizer.authorizePublish(dev1, 'files/locked'), false, 'runtime deny beats the file grant');
  assert.equal(authorizer.authorizePublish(dev1, 'files/secret/open'), false, 'file deny beats the runtime grant');
  assert.equal(authorizer.authorizeSubscribe(dev1, 'shared/dev1'), true, 'file pattern');
  assert.equal(authorizer.authorizePublish(dev1, 'elsewhere'), false, 'unmatched: denied, as with the file alone');
  assert.equal(authorizer.authorizePublish(who('stranger'), 'files/a'), false);
  // SIGHUP: a new file applies at the next check.
  authorizer.replace(AclFile.parse('user dev1\ntopic readwrite elsewhere\n'));
  assert.equal(authorizer.authorizePublish(dev1, 'elsewhere'), true);
  assert.equal(authorizer.authorizePublish(dev1, 'files/a'), false);
});

test('default access is configurable for anonymous and authenticated clients', () => {
  const state = stateWith({ dev1: {} });
  const readOnly = new AccessAuthorizer(state, undefined, { anonymous: 'read', authenticated: 'deny' });
  assert.equal(readOnly.authorizeSubscribe(who(undefined), 'a/#'), true);
  assert.equal(readOnly.authorizePublish(who(undefined), 'a/b'), false);
  assert.equal(readOnly.authorizePublish(who('dev1'), 'a/b'), false);
  const writeOnly = new AccessAuthorizer(stateWith({ dev1: { acl: [{ topic: 'x', access: 'deny' }] } }), undefined, { anonymous: 'auto', authenticated: 'write' });
  assert.equal(writeOnly.authorizePublish(who('dev1'), 'a/b'), true, 'unmatched: the configured default, even with rules');
  assert.equal(writeOnly.authorizeReceive(who('dev1'), 'a/b'), false);
  assert.equal(writeOnly.authorizePublish(who('dev1'), 'x'), false, 'a deny still wins');
});

test('a subscription wholly inside a deny is refused; one that overlaps it is granted and the denied topics are filtered at delivery', () => {
  const authorizer = new AccessAuthorizer(stateWith({ u: { acl: [{ topic: 'a/#', access: 'read' }, { topic: 'a/secret/#', access: 'deny' }] } }), undefined, AUTO);
  assert.equal(authorizer.authorizeSubscribe(who('u'), 'a/secret/x'), false);
  assert.equal(authorizer.authorizeSubscribe(who('u'), 'a/#'), true);
  assert.equal(authorizer.authorizeReceive(who('u'), 'a/secret/x'), false);
  assert.equal(authorizer.authorizeReceive(who('u'), 'a/open'), true);
  assert.equal(authorizer.authorizeSubscribe(who('u'), '$share/g/a/+'), true, '$share/GROUP/FILTER is checked as FILTER');
});

test('property: a matching deny in any source always denies publish and receive, whatever else grants', () => {
  const level = fc.constantFrom('a', 'b', 'c');
  const topic = fc.array(level, { minLength: 1, maxLength: 3 }).map((l) => l.join('/'));
  const filter = fc.array(fc.constantFrom('a', 'b', 'c', '+'), { minLength: 1, maxLength: 3 }).chain((l) => fc.boolean().map((hash) => [...l, ...(hash ? ['#'] : [])].join('/')));
  const rule = fc.record({ topic: filter, access: fc.constantFrom<StoredAclRule['access'][]>('read', 'write', 'readwrite', 'deny') });
  fc.assert(
    fc.property(fc.array(rule, { maxLength: 6 }), fc.array(rule, { maxLength: 6 }), fc.array(rule, { maxLength: 4 }), topic, (own, roleRules, fileRules, target) => {
      const file = AclFile.parse(['user u', ...fileRules.map((r) => `topic ${r.access} ${r.topic}`)].join('\n'));
      const authorizer = new AccessAuthorizer(stateWith({ u: { roles: ['r'], acl: own } }, { r: roleRules }), file, { anonymous: 'readwrite', authenticated: 'readwrite' });
      const denied = [...own, ...roleRules, ...fileRules].some((r) => r.access === 'deny' && matches(r.topic, target));
      if (denied) {
        assert.equal(authorizer.authorizePublish(who('u'), target), false);
        assert.equal(authorizer.authorizeReceive(who('u'), target), false);
      } else {
        assert.equal(authorizer.authorizePublish(who('u'), target), true, 'default readwrite: allowed unless denied');
      }
    }),
  );
});

function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (t[i] === undefined || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
