/** auth.http pieces without a network: how answers are read, the bounded TTL cache, and the password-file-then-service chain. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnswerCache } from '../../../src/auth/answer-cache.js';
import { firstAnswer } from '../../../src/auth/first-answer.js';
import { interpret } from '../../../src/auth/http-auth.js';
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin } from '../../../src/broker/hooks.js';

test('answers: 200/204 empty allow; JSON result allow/deny/ignore; 401 bad credentials, 403 not authorized; anything else is a failure', () => {
  assert.deepEqual(interpret('authenticate', 204, ''), { answer: { result: 'allow' } });
  assert.deepEqual(interpret('publish', 200, '  \n'), { answer: { result: 'allow' } });
  assert.deepEqual(interpret('publish', 200, '{"result":"deny"}'), { answer: { result: 'deny', refusal: 'bad-credentials' } });
  assert.deepEqual(interpret('authenticate', 200, '{"result":"deny","reason":"not-authorized"}'), { answer: { result: 'deny', refusal: 'not-authorized' } });
  assert.deepEqual(interpret('subscribe', 200, '{"result":"ignore"}'), { answer: { result: 'ignore' } });
  assert.deepEqual(interpret('authenticate', 200, '{"result":"allow","username":"cn-1"}'), { answer: { result: 'allow', username: 'cn-1' } });
  assert.deepEqual(interpret('publish', 200, '{"result":"allow","username":"ignored-here"}'), { answer: { result: 'allow' } });
  assert.deepEqual(interpret('authenticate', 401, 'nope'), { answer: { result: 'deny', refusal: 'bad-credentials' } });
  assert.deepEqual(interpret('authenticate', 403, ''), { answer: { result: 'deny', refusal: 'not-authorized' } });
  assert.deepEqual(interpret('authenticate', 500, ''), { failure: 'status 500' });
  assert.deepEqual(interpret('authenticate', 302, ''), { failure: 'status 302' });
  assert.deepEqual(interpret('authenticate', 200, 'yes'), { failure: 'an answer that is not JSON' });
  assert.deepEqual(interpret('authenticate', 200, '{"allow":true}'), { failure: 'an answer without "result": "allow", "deny" or "ignore"' });
  assert.deepEqual(interpret('authenticate', 200, '[1]'), { failure: 'an answer without "result": "allow", "deny" or "ignore"' });
});

test('the answer cache: an entry lives ttlMs; at most maxEntries, the least recently used pushed out first; TTL 0 keeps nothing', () => {
  let now = 1000;
  const cache = new AnswerCache<string>(100, 2, () => now);
  cache.set('a', 'A');
  cache.set('b', 'B');
  assert.equal(cache.get('a'), 'A'); // a is now the most recently used
  cache.set('c', 'C'); // pushes out b
  assert.equal(cache.get('b'), undefined);
  assert.equal(cache.get('a'), 'A');
  assert.equal(cache.get('c'), 'C');
  assert.equal(cache.size, 2);
  now += 99;
  assert.equal(cache.get('a'), 'A');
  now += 1;
  assert.equal(cache.get('a'), undefined, 'expired at ttlMs');
  assert.equal(cache.size, 1, 'an expired entry is removed when looked up');
  const off = new AnswerCache<string>(0, 10);
  off.set('a', 'A');
  assert.equal(off.get('a'), undefined);
});

const request: AuthenticateRequest = { clientId: 'c', username: 'u', password: Buffer.from('p'), remoteAddress: '127.0.0.1', listener: 'tcp', protocolVersion: 4 };

test('firstAnswer: the first source decides what it answers (the next is not asked); an abstention asks the next; sync or async', async () => {
  const asked: string[] = [];
  const source = (name: string, answer: (r: AuthenticateRequest) => AuthenticateResult | Promise<AuthenticateResult>): BrokerPlugin => ({
    name,
    authenticate: (r) => {
      asked.push(name);
      return answer(r);
    },
  });
  const file = source('file', (r) => (r.username === 'known' ? 'accept' : r.username === 'wrong' ? 'bad-credentials' : undefined));
  const service = source('http', () => ({ accept: true, username: 'from-service' }));
  const chain = firstAnswer(file, service);
  assert.equal(chain.authenticate!({ ...request, username: 'known' }), 'accept');
  assert.equal(chain.authenticate!({ ...request, username: 'wrong' }), 'bad-credentials');
  assert.deepEqual(asked, ['file', 'file']);
  assert.deepEqual(chain.authenticate!({ ...request, username: 'other' }), { accept: true, username: 'from-service' });
  assert.deepEqual(asked, ['file', 'file', 'file', 'http']);
  const slowFile = firstAnswer(
    source('slow-file', async () => undefined),
    source('slow-http', async (): Promise<AuthenticateResult> => 'not-authorized'),
  );
  assert.equal(await slowFile.authenticate!(request), 'not-authorized');
});

test("firstAnswer keeps the first source's MQTT 5 enhanced authentication", () => {
  const scram: BrokerPlugin = { name: 'file', authMethods: ['SCRAM-SHA-512'], authenticate: () => undefined, authenticateEnhanced: () => 'bad-credentials' };
  const chain = firstAnswer(scram, { name: 'http', authenticate: () => undefined });
  assert.deepEqual(chain.authMethods, ['SCRAM-SHA-512']);
  assert.equal(chain.authenticateEnhanced!({ method: 'SCRAM-SHA-512', client: request, reauthenticate: false, state: {} }, undefined), 'bad-credentials');
  assert.equal(firstAnswer({ name: 'plain', authenticate: () => undefined }, { name: 'http' }).authMethods, undefined);
});
