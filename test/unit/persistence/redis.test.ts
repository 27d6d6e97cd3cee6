/**
 * The Redis store (the node's store in cluster mode) runs the persistence conformance suite against
 * a real redis-server on a free loopback port; each store gets its own key prefix.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RedisKeys } from '../../../src/persistence/redis/keys.js';
import { RedisStore } from '../../../src/persistence/redis/redis-store.js';
import type { TransactionPart } from '../../../src/persistence/redis/transaction.js';
import type { Persistence } from '../../../src/persistence/types.js';
import { persistenceConformance } from '../../conformance/persistence.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.close();
});

const log = { error: (obj: object, msg: string) => console.error(msg, obj) };
const prefixes = new Map<Persistence, string>();
let counter = 0;

async function open(prefix: string): Promise<RedisStore> {
  const store = await RedisStore.open(redis.url, { nodeId: 'conformance', keys: new RedisKeys(prefix), log });
  prefixes.set(store, prefix);
  return store;
}

persistenceConformance('redis (cluster)', {
  bodies: 'per-delivery',
  create: () => open(`store-${++counter}`),
  reopen: async (store) => {
    await store.close();
    return open(prefixes.get(store)!);
  },
  peer: (store) => open(prefixes.get(store)!),
});

const subscriptions = [{ topicFilter: 'a/#', matchFilter: 'a/#', qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const }];

test('redis store: load reads the sessions this node id holds; one whose client id another node claimed is let go', async (t) => {
  const keys = new RedisKeys(`owned-${++counter}`);
  const store = await RedisStore.open(redis.url, { nodeId: 'node-a', keys, log });
  t.after(() => store.close());
  await store.apply([
    { op: 'putSession', session: { clientId: 'kept', expiryInterval: 60, subscriptions } },
    { op: 'putSession', session: { clientId: 'taken', expiryInterval: 60, subscriptions } },
  ]);
  const other = redis.client();
  t.after(() => other.disconnect());
  await other.set(keys.owner('taken'), 'node-b');
  await other.set(keys.owner('kept'), 'node-a');
  const state = await store.load();
  assert.deepEqual(state.sessions.map((s) => s.clientId), ['kept']);
  assert.deepEqual(await other.smembers(keys.nodeClients('node-a')), ['kept'], 'the claimed client id left this node\'s index');
  assert.ok((await other.exists(keys.session('taken'))) === 1, 'its stored session stays for the node that claimed it');
});

test('redis store: loadSessions reads any client\'s session (a claim, an adoption), with fresh ids its deliveries resolve to', async (t) => {
  const keys = new RedisKeys(`claim-${++counter}`);
  const writer = await RedisStore.open(redis.url, { nodeId: 'node-a', keys, log });
  const reader = await RedisStore.open(redis.url, { nodeId: 'node-b', keys, log });
  t.after(() => writer.close());
  t.after(() => reader.close());
  await writer.apply([
    { op: 'putSession', session: { clientId: 'mover', expiryInterval: 60, subscriptions } },
    { op: 'putMessage', message: { id: 7, topic: 'm/1', payload: Buffer.from('one'), qos: 1, retain: false, origin: 'p', receivedAt: 1, clusterId: 'n/1/a' } },
    { op: 'putDelivery', delivery: { clientId: 'mover', seq: 4, messageId: 7, qos: 1, retain: false, state: 'publish', packetId: 2 } },
    { op: 'putIncomingQos2', clientId: 'mover', packetId: 9 },
  ]);
  assert.deepEqual((await reader.load()).sessions, [], 'node-b holds no session of its own');
  const state = await reader.loadSessions(['mover', 'nobody']);
  assert.deepEqual(state.sessions.map((s) => s.clientId), ['mover']);
  assert.equal(state.deliveries.length, 1);
  const [d] = state.deliveries;
  const m = state.messages.find((x) => x.id === d!.messageId);
  assert.ok(d!.messageId < 0, 'a fresh local id, not node-a\'s journal id');
  assert.equal(m?.clusterId, 'n/1/a', 'the cluster-wide id travels with the body');
  assert.equal(m?.payload.toString(), 'one');
  assert.deepEqual(state.incomingQos2, [{ clientId: 'mover', packetId: 9 }]);
  // The body is known under its new id: the session's next change of the delivery is stored with it.
  await reader.apply([{ op: 'putDelivery', delivery: { ...d!, state: 'pubrel' } }]);
  assert.deepEqual((await reader.loadSessions(['mover'])).deliveries.map((x) => x.state), ['pubrel']);
});

test('redis store: a joined part writes in the same transaction, after the operations, and hears the answer either way', async (t) => {
  const keys = new RedisKeys(`part-${++counter}`);
  const store = await RedisStore.open(redis.url, { nodeId: 'node-a', keys, log });
  t.after(() => store.close());
  const answered: string[] = [];
  let fail = false;
  const part: TransactionPart = {
    write: (tx, ops) => {
      tx.set(keys.key('seen'), String(ops.length));
      if (fail) tx.hset(keys.session('c'), 'f', 'v'); // WRONGTYPE: the session key is a string
      return () => answered.push(fail ? 'failed' : 'ok');
    },
  };
  store.join(part);
  await store.apply([{ op: 'putSession', session: { clientId: 'c', expiryInterval: 60, subscriptions } }]);
  const other = redis.client();
  t.after(() => other.disconnect());
  assert.equal(await other.get(keys.key('seen')), '1');
  fail = true;
  await assert.rejects(store.apply([]), /WRONGTYPE/);
  assert.deepEqual(answered, ['ok', 'failed']);
});
