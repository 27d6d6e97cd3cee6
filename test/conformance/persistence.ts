/**
 * The suite every persistence backend runs (see test/unit/persistence/*.test.ts): ten lines per
 * backend, the same expectations for all.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Persistence, StoredMessage, StoredSession } from '../../src/persistence/types.js';

/** How the suite gets a backend: a fresh store, and a way to reopen the same data. */
export interface BackendFactory {
  /** A new, empty store. */
  create(): Promise<Persistence>;
  /** Closes `store` and opens the same data again (for a memory store: the same instance). */
  reopen(store: Persistence): Promise<Persistence>;
}

function message(id: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return { id, topic: `t/${id}`, payload: Buffer.from(`payload ${id}`), qos: 1, retain: false, origin: 'pub', receivedAt: 1000 + id, ...extra };
}

function session(clientId: string, extra: Partial<StoredSession> = {}): StoredSession {
  return {
    clientId,
    expiryInterval: 3600,
    subscriptions: [{ topicFilter: 'a/#', matchFilter: 'a/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
    ...extra,
  };
}

/** Registers the persistence conformance tests for one backend. */
export function persistenceConformance(name: string, factory: BackendFactory): void {
  describe(`persistence conformance: ${name}`, () => {
    test('a new store loads empty', async () => {
      const store = await factory.create();
      assert.deepEqual(await store.load(), { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [] });
      await store.close();
    });

    test('everything applied is loaded back after reopening, with Buffers as Buffers', async () => {
      let store = await factory.create();
      await store.apply([
        { op: 'putSession', session: session('c1', { disconnectedAt: 5, pendingWill: { will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: false }, at: 9 } }) },
        { op: 'putMessage', message: message(1, { properties: { correlationData: Buffer.from([1, 2]), userProperties: [['k', 'v'], ['k', 'w']] }, expiresAt: 99 }) },
        { op: 'putDelivery', delivery: { clientId: 'c1', seq: 1, messageId: 1, qos: 1, retain: false, state: 'publish', packetId: 7, subscriptionIds: [3] } },
        { op: 'putIncomingQos2', clientId: 'c1', packetId: 42 },
        { op: 'putRetained', message: { topic: 'r/1', payload: Buffer.from('kept'), qos: 2, retain: true, origin: 'pub', receivedAt: 1 } },
      ]);
      store = await factory.reopen(store);
      const state = await store.load();
      assert.equal(state.sessions.length, 1);
      assert.deepEqual(state.sessions[0]!.subscriptions, session('c1').subscriptions);
      assert.equal(state.sessions[0]!.disconnectedAt, 5);
      assert.ok(Buffer.isBuffer(state.sessions[0]!.pendingWill!.will.payload));
      assert.equal(state.sessions[0]!.pendingWill!.will.payload.toString(), 'bye');
      assert.equal(state.messages.length, 1);
      const m = state.messages[0]!;
      assert.ok(Buffer.isBuffer(m.payload), 'payload is a Buffer');
      assert.equal(m.payload.toString(), 'payload 1');
      assert.ok(Buffer.isBuffer(m.properties?.correlationData));
      assert.deepEqual(m.properties?.userProperties, [['k', 'v'], ['k', 'w']]);
      assert.equal(m.expiresAt, 99);
      assert.deepEqual(state.deliveries, [{ clientId: 'c1', seq: 1, messageId: 1, qos: 1, retain: false, state: 'publish', packetId: 7, subscriptionIds: [3] }]);
      assert.deepEqual(state.incomingQos2, [{ clientId: 'c1', packetId: 42 }]);
      assert.equal(state.retained.length, 1);
      assert.ok(Buffer.isBuffer(state.retained[0]!.payload));
      assert.equal(state.retained[0]!.payload.toString(), 'kept');
      await store.close();
    });

    test('deliveries load in (client, seq) order; a put replaces, a delete removes', async () => {
      let store = await factory.create();
      const ops = [];
      for (const seq of [3, 1, 10, 2]) ops.push({ op: 'putDelivery' as const, delivery: { clientId: 'b', seq, messageId: seq, qos: 1 as const, retain: false, state: 'queued' as const } });
      ops.push({ op: 'putDelivery' as const, delivery: { clientId: 'a', seq: 5, messageId: 5, qos: 2 as const, retain: false, state: 'queued' as const } });
      await store.apply(ops);
      await store.apply([
        { op: 'putDelivery', delivery: { clientId: 'b', seq: 2, messageId: 2, qos: 2, retain: false, state: 'pubrel', packetId: 9 } },
        { op: 'deleteDelivery', clientId: 'b', seq: 3 },
      ]);
      store = await factory.reopen(store);
      const { deliveries } = await store.load();
      assert.deepEqual(deliveries.map((d) => `${d.clientId}:${d.seq}:${d.state}`), ['a:5:queued', 'b:1:queued', 'b:2:pubrel', 'b:10:queued']);
      await store.close();
    });

    test('deleting a session removes its deliveries and QoS 2 ids, and only its own', async () => {
      let store = await factory.create();
      await store.apply([
        { op: 'putSession', session: session('x') },
        { op: 'putSession', session: session('xy') },
        { op: 'putDelivery', delivery: { clientId: 'x', seq: 1, messageId: 1, qos: 1, retain: false, state: 'queued' } },
        { op: 'putDelivery', delivery: { clientId: 'xy', seq: 1, messageId: 1, qos: 1, retain: false, state: 'queued' } },
        { op: 'putIncomingQos2', clientId: 'x', packetId: 1 },
        { op: 'putIncomingQos2', clientId: 'xy', packetId: 1 },
      ]);
      await store.apply([{ op: 'deleteSession', clientId: 'x' }]);
      store = await factory.reopen(store);
      const state = await store.load();
      assert.deepEqual(state.sessions.map((s) => s.clientId), ['xy']);
      assert.deepEqual(state.deliveries.map((d) => d.clientId), ['xy']);
      assert.deepEqual(state.incomingQos2, [{ clientId: 'xy', packetId: 1 }]);
      await store.close();
    });

    test('messages, QoS 2 ids and retained messages are deleted', async () => {
      let store = await factory.create();
      await store.apply([
        { op: 'putMessage', message: message(1) },
        { op: 'putMessage', message: message(2) },
        { op: 'putIncomingQos2', clientId: 'c', packetId: 5 },
        { op: 'putRetained', message: { topic: 'r', payload: Buffer.from('x'), qos: 0, retain: true, origin: '', receivedAt: 0 } },
      ]);
      await store.apply([
        { op: 'deleteMessage', id: 1 },
        { op: 'deleteIncomingQos2', clientId: 'c', packetId: 5 },
        { op: 'deleteRetained', topic: 'r' },
      ]);
      store = await factory.reopen(store);
      const state = await store.load();
      assert.deepEqual(state.messages.map((m) => m.id), [2]);
      assert.deepEqual(state.incomingQos2, []);
      assert.deepEqual(state.retained, []);
      await store.close();
    });

    test('many applies issued at once all resolve, in order, and are all stored', async () => {
      let store = await factory.create();
      const order: number[] = [];
      const pending = [];
      for (let i = 1; i <= 500; i++) pending.push(store.apply([{ op: 'putMessage', message: message(i) }]).then(() => order.push(i)));
      await Promise.all(pending);
      assert.deepEqual(order, Array.from({ length: 500 }, (_, i) => i + 1));
      store = await factory.reopen(store);
      assert.equal((await store.load()).messages.length, 500);
      await store.close();
    });
  });
}
