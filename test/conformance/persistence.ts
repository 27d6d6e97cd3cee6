/**
 * The suite every persistence backend runs (see test/unit/persistence/*.test.ts): ten lines per
 * backend, the same expectations for all.
 *
 * It writes what a broker writes: deliveries and QoS 2 ids belong to a stored session, and a delivery
 * refers to a message stored before it (in the same apply or an earlier one). Backends differ in one
 * declared way, `bodies` (see BackendFactory); everything else is expected of all of them, and the
 * deliveries are compared with the message bodies they resolve to.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { Persistence, StoreOp, StoredDelivery, StoredMessage, StoredSession, StoredState } from '../../src/persistence/types.js';
import { accessStoreConformance } from './access-store.js';

/** How the suite gets a backend: a fresh store, and a way to reopen the same data. */
export interface BackendFactory {
  /** A new, empty store. */
  create(): Promise<Persistence>;
  /** Closes `store` and opens the same data again (for a memory store: the same instance). */
  reopen(store: Persistence): Promise<Persistence>;
  /**
   * How message bodies are kept. 'by-id' (default): once per id, loaded with that id, whether or not
   * a delivery holds it. 'per-delivery' (Redis: a session loads on any node, whose journal numbers
   * messages its own way): with each delivery that holds it, loaded under new ids; a body no delivery
   * holds is not kept.
   */
  bodies?: 'by-id' | 'per-delivery';
  /** Another store on the same data, as a second cluster node opens it (the access suite's change channel). */
  peer?(store: Persistence): Promise<Persistence>;
  /** false: the store takes no records (a worker's view of the hub's store, whose records are the hub's own). */
  records?: boolean;
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

function delivery(clientId: string, seq: number, messageId: number, extra: Partial<StoredDelivery> = {}): StoredDelivery {
  return { clientId, seq, messageId, qos: 1, retain: false, state: 'queued', ...extra };
}

/** A delivery with the body it refers to instead of the message id (what every backend must agree on). */
type Resolved = Omit<StoredDelivery, 'messageId'> & { message: Omit<StoredMessage, 'id'> };

/** The loaded deliveries, each with its message body; fails if one refers to a message not loaded. */
function resolve(state: StoredState): Resolved[] {
  const byId = new Map(state.messages.map((m) => [m.id, m]));
  assert.equal(byId.size, state.messages.length, 'message ids are unique');
  return state.deliveries.map(({ messageId, ...rest }) => {
    const stored = byId.get(messageId);
    assert.ok(stored !== undefined, `delivery ${rest.clientId}:${rest.seq} refers to message ${messageId}, which was loaded`);
    const { id: _id, ...body } = stored;
    return { ...rest, message: body };
  });
}

/** A store under test, closed after the test even when an assertion fails. */
class Handle {
  closed = false;
  constructor(
    public store: Persistence,
    private readonly factory: BackendFactory,
  ) {}
  apply(ops: readonly StoreOp[]): Promise<void> {
    return this.store.apply(ops);
  }
  /** Reopens the same data and loads it. */
  async reload(): Promise<StoredState> {
    this.store = await this.factory.reopen(this.store);
    return this.store.load();
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.store.close();
  }
}

/** Registers the persistence conformance tests for one backend. */
export function persistenceConformance(name: string, factory: BackendFactory): void {
  const bodies = factory.bodies ?? 'by-id';
  const open = async (t: TestContext): Promise<Handle> => {
    const handle = new Handle(await factory.create(), factory);
    t.after(() => handle.close());
    return handle;
  };

  describe(`persistence conformance: ${name}`, () => {
    test('a new store loads empty', async (t) => {
      const h = await open(t);
      const state = await h.store.load();
      assert.deepEqual({ ...state, records: state.records ?? [] }, { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [], records: [] });
      await h.close();
    });

    test('everything applied is loaded back after reopening, with Buffers as Buffers', async (t) => {
      const h = await open(t);
      const body = message(1, { properties: { correlationData: Buffer.from([1, 2]), userProperties: [['k', 'v'], ['k', 'w']] }, expiresAt: 99 });
      await h.apply([
        { op: 'putSession', session: session('c1', { disconnectedAt: 5, pendingWill: { will: { topic: 'w', payload: Buffer.from('bye'), qos: 1, retain: false }, at: 9 } }) },
        { op: 'putMessage', message: body },
        { op: 'putDelivery', delivery: delivery('c1', 1, 1, { state: 'publish', packetId: 7, subscriptionIds: [3] }) },
        { op: 'putIncomingQos2', clientId: 'c1', packetId: 42 },
        { op: 'putRetained', message: { topic: 'r/1', payload: Buffer.from('kept'), qos: 2, retain: true, origin: 'pub', receivedAt: 1 } },
      ]);
      const state = await h.reload();
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
      const { id: _id, ...expectedBody } = body;
      assert.deepEqual(resolve(state), [{ clientId: 'c1', seq: 1, qos: 1, retain: false, state: 'publish', packetId: 7, subscriptionIds: [3], message: expectedBody }]);
      if (bodies === 'by-id') assert.equal(state.deliveries[0]!.messageId, 1, 'the id the message was stored with');
      assert.deepEqual(state.incomingQos2, [{ clientId: 'c1', packetId: 42 }]);
      assert.equal(state.retained.length, 1);
      assert.ok(Buffer.isBuffer(state.retained[0]!.payload));
      assert.equal(state.retained[0]!.payload.toString(), 'kept');
      await h.close();
    });

    test('deliveries load in (client, seq) order; a put replaces, a delete removes', async (t) => {
      const h = await open(t);
      const ops: StoreOp[] = [{ op: 'putSession', session: session('b') }, { op: 'putSession', session: session('a') }];
      for (const seq of [3, 1, 10, 2]) ops.push({ op: 'putMessage', message: message(seq) }, { op: 'putDelivery', delivery: delivery('b', seq, seq) });
      ops.push({ op: 'putMessage', message: message(5) }, { op: 'putDelivery', delivery: delivery('a', 5, 5, { qos: 2 }) });
      await h.apply(ops);
      await h.apply([
        { op: 'putDelivery', delivery: delivery('b', 2, 2, { qos: 2, state: 'pubrel', packetId: 9 }) },
        { op: 'deleteDelivery', clientId: 'b', seq: 3 },
      ]);
      const resolved = resolve(await h.reload());
      assert.deepEqual(resolved.map((d) => `${d.clientId}:${d.seq}:${d.state}:${d.message.topic}`), ['a:5:queued:t/5', 'b:1:queued:t/1', 'b:2:pubrel:t/2', 'b:10:queued:t/10']);
      assert.equal(resolved[2]!.packetId, 9);
      await h.close();
    });

    test('deleting a session removes its deliveries and QoS 2 ids, and only its own', async (t) => {
      const h = await open(t);
      await h.apply([
        { op: 'putSession', session: session('x') },
        { op: 'putSession', session: session('xy') },
        { op: 'putMessage', message: message(1) },
        { op: 'putDelivery', delivery: delivery('x', 1, 1) },
        { op: 'putDelivery', delivery: delivery('xy', 1, 1) },
        { op: 'putIncomingQos2', clientId: 'x', packetId: 1 },
        { op: 'putIncomingQos2', clientId: 'xy', packetId: 1 },
      ]);
      await h.apply([{ op: 'deleteSession', clientId: 'x' }]);
      const state = await h.reload();
      assert.deepEqual(state.sessions.map((s) => s.clientId), ['xy']);
      assert.deepEqual(resolve(state).map((d) => `${d.clientId} ${d.message.topic}`), ['xy t/1'], 'the body stays while another session holds it');
      assert.deepEqual(state.incomingQos2, [{ clientId: 'xy', packetId: 1 }]);
      await h.close();
    });

    test('a delivered message, a QoS 2 id and a retained message are deleted', async (t) => {
      const h = await open(t);
      await h.apply([
        { op: 'putSession', session: session('c') },
        { op: 'putMessage', message: message(1) },
        { op: 'putMessage', message: message(2) },
        { op: 'putDelivery', delivery: delivery('c', 1, 1) },
        { op: 'putDelivery', delivery: delivery('c', 2, 2) },
        { op: 'putIncomingQos2', clientId: 'c', packetId: 5 },
        { op: 'putRetained', message: { topic: 'r', payload: Buffer.from('x'), qos: 0, retain: true, origin: '', receivedAt: 0 } },
      ]);
      await h.apply([
        { op: 'deleteDelivery', clientId: 'c', seq: 1 },
        { op: 'deleteMessage', id: 1 },
        { op: 'deleteIncomingQos2', clientId: 'c', packetId: 5 },
        { op: 'deleteRetained', topic: 'r' },
      ]);
      const state = await h.reload();
      assert.deepEqual(state.messages.map((m) => m.topic), ['t/2']);
      assert.deepEqual(resolve(state).map((d) => d.seq), [2]);
      assert.deepEqual(state.incomingQos2, []);
      assert.deepEqual(state.retained, []);
      await h.close();
    });

    if (bodies === 'by-id') {
      test('by id: a message body is kept under its id, held by a delivery or not, until deleted', async (t) => {
        const h = await open(t);
        await h.apply([{ op: 'putMessage', message: message(1) }, { op: 'putMessage', message: message(2) }]);
        await h.apply([{ op: 'deleteMessage', id: 1 }]);
        assert.deepEqual((await h.reload()).messages.map((m) => m.id), [2]);
        await h.close();
      });
    } else {
      test('per delivery: a body no delivery holds is not kept, and each delivery loads with its own body', async (t) => {
        const h = await open(t);
        await h.apply([
          { op: 'putSession', session: session('p') },
          { op: 'putMessage', message: message(1) },
          { op: 'putMessage', message: message(2) },
          { op: 'putDelivery', delivery: delivery('p', 1, 2) },
          { op: 'putDelivery', delivery: delivery('p', 2, 2) },
        ]);
        const state = await h.reload();
        assert.deepEqual(resolve(state).map((d) => `${d.seq} ${d.message.topic}`), ['1 t/2', '2 t/2']);
        assert.ok(!state.messages.some((m) => m.topic === 't/1'), 'the body no delivery held is gone');
        await h.close();
      });
    }

    test('many applies issued at once all resolve, in order, and are all stored', async (t) => {
      const h = await open(t);
      const order: number[] = [];
      const pending = [];
      for (let i = 1; i <= 500; i++) {
        const ops: StoreOp[] = [{ op: 'putMessage', message: message(i) }, { op: 'putDelivery', delivery: delivery('many', i, i) }];
        if (i === 1) ops.unshift({ op: 'putSession', session: session('many') });
        pending.push(h.apply(ops).then(() => order.push(i)));
      }
      await Promise.all(pending);
      assert.deepEqual(order, Array.from({ length: 500 }, (_, i) => i + 1));
      const resolved = resolve(await h.reload());
      assert.deepEqual(resolved.map((d) => `${d.seq} ${d.message.topic}`), Array.from({ length: 500 }, (_, i) => `${i + 1} t/${i + 1}`));
      await h.close();
    });

    test('applies issued at once take effect in call order (the later put wins; a delete after a put removes)', async (t) => {
      const h = await open(t);
      await Promise.all([
        h.apply([{ op: 'putSession', session: session('o', { expiryInterval: 1 }) }, { op: 'putMessage', message: message(1) }]),
        h.apply([{ op: 'putDelivery', delivery: delivery('o', 1, 1) }, { op: 'putIncomingQos2', clientId: 'o', packetId: 3 }]),
        h.apply([{ op: 'putDelivery', delivery: delivery('o', 1, 1, { state: 'publish', packetId: 4 }) }, { op: 'putSession', session: session('o', { expiryInterval: 2 }) }]),
        h.apply([{ op: 'deleteIncomingQos2', clientId: 'o', packetId: 3 }, { op: 'putIncomingQos2', clientId: 'o', packetId: 6 }]),
        h.apply([{ op: 'putSession', session: session('gone') }, { op: 'deleteSession', clientId: 'gone' }]),
      ]);
      const state = await h.reload();
      assert.deepEqual(state.sessions.map((s) => `${s.clientId} ${s.expiryInterval}`), ['o 2']);
      assert.deepEqual(resolve(state).map((d) => `${d.seq} ${d.state} ${d.packetId}`), ['1 publish 4']);
      assert.deepEqual(state.incomingQos2, [{ clientId: 'o', packetId: 6 }]);
      await h.close();
    });

    test('many sessions, each with its own deliveries and QoS 2 ids, load back whole', async (t) => {
      const h = await open(t);
      const count = 700;
      const id = (i: number): string => `s${String(i).padStart(4, '0')}`;
      const ops: StoreOp[] = [];
      for (let i = 0; i < count; i++) {
        ops.push({ op: 'putSession', session: session(id(i), { expiryInterval: i }) });
        ops.push({ op: 'putMessage', message: message(i + 1, { topic: `own/${id(i)}` }) });
        ops.push({ op: 'putDelivery', delivery: delivery(id(i), 1, i + 1) }, { op: 'putDelivery', delivery: delivery(id(i), 2, i + 1) });
        ops.push({ op: 'putIncomingQos2', clientId: id(i), packetId: i + 1 });
      }
      await h.apply(ops);
      const state = await h.reload();
      assert.deepEqual(state.sessions.map((s) => `${s.clientId} ${s.expiryInterval}`).sort(), Array.from({ length: count }, (_, i) => `${id(i)} ${i}`));
      const resolved = resolve(state);
      assert.equal(resolved.length, 2 * count);
      resolved.forEach((d, n) => {
        const i = Math.floor(n / 2);
        assert.equal(`${d.clientId}:${d.seq} ${d.message.topic}`, `${id(i)}:${(n % 2) + 1} own/${id(i)}`);
      });
      assert.deepEqual(state.incomingQos2.map((q) => `${q.clientId} ${q.packetId}`).sort(), Array.from({ length: count }, (_, i) => `${id(i)} ${i + 1}`));
      await h.close();
    });

    if (factory.records !== false) test('records are put, replaced and deleted in order, in the same commits, and load back sorted by space and key', async (t) => {
      const h = await open(t);
      const record = (space: string, key: string, value: string): StoreOp => ({ op: 'putRecord', record: { space, key, value: Buffer.from(value) } });
      await h.apply([record('owner', 'c2', 'w1'), record('owner', 'c1', 'w2'), record('inbox', 'w1/3', 'three'), { op: 'putSession', session: session('c1') }]);
      await Promise.all([h.apply([record('owner', 'c1', 'w3')]), h.apply([record('inbox', 'w1/4', 'four'), { op: 'deleteRecord', space: 'inbox', key: 'w1/3' }])]);
      await h.apply([{ op: 'deleteRecord', space: 'owner', key: 'never-there' }, record('empty', 'e', '')]);
      const state = await h.reload();
      assert.deepEqual(
        (state.records ?? []).map((r) => [r.space, r.key, Buffer.isBuffer(r.value) ? r.value.toString() : 'not a Buffer']),
        [['empty', 'e', ''], ['inbox', 'w1/4', 'four'], ['owner', 'c1', 'w3'], ['owner', 'c2', 'w1']],
      );
      assert.equal(state.sessions.length, 1, 'records and the broker\'s state live side by side');
      await h.apply([{ op: 'deleteRecord', space: 'empty', key: 'e' }, { op: 'deleteRecord', space: 'inbox', key: 'w1/4' }, { op: 'deleteRecord', space: 'owner', key: 'c1' }, { op: 'deleteRecord', space: 'owner', key: 'c2' }]);
      assert.deepEqual((await h.reload()).records ?? [], []);
      await h.close();
    });

    test('large and empty payloads load back byte for byte', async (t) => {
      const h = await open(t);
      const large = Buffer.alloc(8 * 1024 * 1024);
      for (let i = 0; i < large.length; i += 4096) large.writeUInt32BE(i, i);
      const retained = Buffer.alloc(2 * 1024 * 1024, 0xab);
      await h.apply([
        { op: 'putSession', session: session('big') },
        { op: 'putMessage', message: message(1, { payload: large }) },
        { op: 'putMessage', message: message(2, { payload: Buffer.alloc(0) }) },
        { op: 'putDelivery', delivery: delivery('big', 1, 1) },
        { op: 'putDelivery', delivery: delivery('big', 2, 2) },
        { op: 'putRetained', message: { topic: 'r/big', payload: retained, qos: 1, retain: true, origin: 'pub', receivedAt: 1, seq: 7 } },
      ]);
      const state = await h.reload();
      const [first, second] = resolve(state);
      assert.ok(first !== undefined && second !== undefined);
      assert.ok(Buffer.isBuffer(first.message.payload) && first.message.payload.equals(large), 'the 8 MiB payload');
      assert.ok(Buffer.isBuffer(second.message.payload) && second.message.payload.length === 0, 'the empty payload');
      assert.equal(state.retained.length, 1);
      assert.ok(state.retained[0]!.payload.equals(retained), 'the 2 MiB retained payload');
      assert.equal(state.retained[0]!.seq, 7);
      await h.close();
    });
  });
  accessStoreConformance(name, factory);
}
