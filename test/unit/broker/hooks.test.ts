import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hooks, type AuthenticateRequest, type BrokerPlugin, type ClientIdentity } from '../../../src/broker/hooks.js';

const request: AuthenticateRequest = { clientId: 'c', username: 'u', password: Buffer.from('p'), remoteAddress: '127.0.0.1', listener: 'tcp', protocolVersion: 4 };
const client: ClientIdentity = { clientId: 'c', username: 'u', remoteAddress: '127.0.0.1', listener: 'tcp' };

test('authenticate: all plugins abstaining falls to the anonymous policy', () => {
  const abstain: BrokerPlugin = { name: 'a', authenticate: () => undefined };
  assert.deepEqual(new Hooks([abstain], true).authenticate(request), { accept: true, username: 'u', attributes: undefined });
  assert.deepEqual(new Hooks([abstain], false).authenticate(request), { accept: false, refusal: 'not-authorized' });
});

test('authenticate: the first refusal wins, even after an acceptance', () => {
  const calls: string[] = [];
  const plugins: BrokerPlugin[] = [
    { name: 'yes', authenticate: () => (calls.push('yes'), 'accept') },
    { name: 'no', authenticate: () => (calls.push('no'), 'bad-credentials') },
    { name: 'never', authenticate: () => (calls.push('never'), 'accept') },
  ];
  assert.deepEqual(new Hooks(plugins, false).authenticate(request), { accept: false, refusal: 'bad-credentials' });
  assert.deepEqual(calls, ['yes', 'no']);
});

test('authenticate: asynchronous plugins run in order; a plugin may replace the user name and add attributes', async () => {
  const plugins: BrokerPlugin[] = [
    { name: 'slow', authenticate: async () => ({ accept: true, username: 'cn-from-cert', attributes: { role: 'sensor' } }) },
    { name: 'sync', authenticate: (r) => (r.clientId === 'c' ? undefined : 'not-authorized') },
  ];
  const outcome = await new Hooks(plugins, false).authenticate(request);
  assert.deepEqual(outcome, { accept: true, username: 'cn-from-cert', attributes: { role: 'sensor' } });
});

test('authorizePublish / authorizeSubscribe: first denial wins, abstaining allows, async supported', async () => {
  const plugins: BrokerPlugin[] = [
    { name: 'acl', authorizePublish: (_c, topic) => (topic.startsWith('secret/') ? false : undefined) },
    { name: 'async', authorizeSubscribe: async (_c, filter) => filter !== '#' },
  ];
  const hooks = new Hooks(plugins, true);
  assert.equal(hooks.authorizePublish(client, 'public/a', 0, false), true);
  assert.equal(hooks.authorizePublish(client, 'secret/a', 0, false), false);
  assert.equal(await hooks.authorizeSubscribe(client, 'a/+', 1), true);
  assert.equal(await hooks.authorizeSubscribe(client, '#', 1), false);
  assert.equal(hooks.checksPublish, true);
  assert.equal(hooks.checksReceive, false);
});

test('observers: an observer that throws is reported and does not stop the others', () => {
  const seen: string[] = [];
  const errors: string[] = [];
  const hooks = new Hooks(
    [
      { name: 'bad', onConnect: () => { throw new Error('boom'); } },
      { name: 'good', onConnect: (c) => { seen.push(c.clientId); } },
    ],
    true,
  );
  hooks.connected(client, (plugin) => errors.push(plugin));
  assert.deepEqual(seen, ['c']);
  assert.deepEqual(errors, ['bad']);
});

test('observers of subscriptions and messages: asked only when registered; an exception is reported, the others still run', () => {
  const errors: string[] = [];
  const seen: string[] = [];
  const message = { topic: 't', payload: Buffer.from('x'), qos: 1 as const, retain: false, origin: 'c', receivedAt: 0 };
  const none = new Hooks([{ name: 'auth-only', authenticate: () => undefined }], true);
  assert.equal(none.observesPublish, false);
  assert.equal(none.observesSubscriptions, false);
  const plugins: BrokerPlugin[] = [
    {
      name: 'broken',
      onPublish: () => {
        throw new Error('boom');
      },
      onSubscribe: () => {
        throw new Error('boom');
      },
    },
    {
      name: 'watcher',
      onPublish: (m, c) => seen.push(`publish ${m.topic} by ${c?.clientId ?? 'nobody'}`),
      onSubscribe: (c, filter, qos) => seen.push(`subscribe ${c.clientId} ${filter} ${qos}`),
      onUnsubscribe: (c, filter) => seen.push(`unsubscribe ${c.clientId} ${filter}`),
    },
  ];
  const hooks = new Hooks(plugins, true, (plugin, error) => errors.push(`${plugin}: ${(error as Error).message}`));
  assert.equal(hooks.observesPublish, true);
  assert.equal(hooks.observesSubscriptions, true);
  hooks.published(message, client);
  hooks.published(message, undefined);
  hooks.subscribed(client, 'a/#', 1);
  hooks.unsubscribed(client, 'a/#');
  assert.deepEqual(seen, ['publish t by c', 'publish t by nobody', 'subscribe c a/# 1', 'unsubscribe c a/#']);
  assert.deepEqual(errors, ['broken: boom', 'broken: boom', 'broken: boom']);
});

test('checksPublish / checksReceive: a plugin that authorizes nothing for now is not asked; once it has rules it is', () => {
  let rules = false;
  const acl: BrokerPlugin = { name: 'acl', authorizePublish: () => (rules ? false : undefined), authorizeReceive: () => (rules ? false : undefined), authorizesNothing: () => !rules };
  const hooks = new Hooks([acl], true);
  assert.equal(hooks.checksPublish, false);
  assert.equal(hooks.checksReceive, false);
  rules = true;
  assert.equal(hooks.checksPublish, true);
  assert.equal(hooks.checksReceive, true);
  assert.equal(hooks.authorizeReceive(client, 't'), false);
  // A plugin that does not say is always asked.
  const plain = new Hooks([{ name: 'plain', authorizeReceive: () => undefined }], true);
  assert.equal(plain.checksReceive, true);
});
