/**
 * The suite every `ClusterBus` runs (test/unit/cluster/*-bus.test.ts): it drives the bus directly,
 * with a recording `ClusterHandler` that commits as the broker does. The first part holds for any bus,
 * a cluster of one included; the second needs two nodes of one cluster and checks what crosses
 * between them: routing by interest, shared groups, claims, forwarding, retained changes, adoption.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { ClusterBus } from '../../src/cluster/types.js';
import type { Message } from '../../src/model/message.js';
import type { StoredSession, StoredState } from '../../src/persistence/types.js';
import type { QoS } from '../../src/protocol/types.js';
import { RecordingHandler } from '../helpers/recording-handler.js';

/** How the suite gets buses. */
export interface BusFactory {
  /** Nodes one cluster can hold: 1 for a cluster of one; the cross-node tests need 2. */
  maxNodes: number;
  /** A new, empty cluster: `bus(nodeId)` makes (does not start) one node's bus in it. */
  cluster(): Promise<{ bus(nodeId: string): ClusterBus; close(): Promise<void> }>;
  /**
   * What happens to a node that dies. Default: another node adopts it (Redis). 'restart': the node
   * comes back under its id and takes its own back (a worker group); `crash` kills a node's bus as
   * its process's death would.
   */
  failover?: { kind: 'restart'; crash(bus: ClusterBus): Promise<void> };
}

/** A started node: its bus and the handler recording what the bus hands it. */
interface Node {
  bus: ClusterBus;
  handler: RecordingHandler;
  /** Closes the bus (once). */
  close: () => Promise<void>;
  /** What the node's store loaded before the bus started. */
  loaded?: StoredState | undefined;
}

function message(topic: string, qos: QoS, payload = 'p', extra: Partial<Message> = {}): Message {
  return { topic, payload: Buffer.from(payload), qos, retain: false, origin: 'conformance', receivedAt: Date.now(), clusterId: undefined, ...extra };
}

const subscription = { topicFilter: 'z/#', matchFilter: 'z/#', qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
function session(clientId: string): StoredSession {
  return { clientId, expiryInterval: 3600, subscriptions: [subscription] };
}

/** Registers the bus conformance tests for one implementation. */
export function clusterBusConformance(name: string, factory: BusFactory): void {
  /** A fresh cluster; every node started in it is closed after the test, then the cluster. */
  const cluster = async (t: TestContext): Promise<(nodeId: string) => Promise<Node>> => {
    const made = await factory.cluster();
    const nodes: Node[] = [];
    t.after(async () => {
      for (const node of nodes) await node.close();
      await made.close();
    });
    return async (nodeId) => {
      const bus = made.bus(nodeId);
      const handler = new RecordingHandler(bus.store);
      let closing: Promise<void> | undefined;
      const node: Node = { bus, handler, close: () => (closing ??= bus.close()) };
      nodes.push(node);
      // As the broker does: the store is read (a restarted node's own sessions) before the bus starts.
      node.loaded = await bus.store?.load();
      await bus.start(handler);
      return node;
    };
  };

  describe(`cluster bus conformance: ${name}`, () => {
    test('a started bus is ready, carries its node id, and has sent and received nothing', async (t) => {
      const node = await (await cluster(t))('conf-1');
      assert.equal(node.bus.nodeId, 'conf-1');
      assert.equal(node.bus.ready, true);
      assert.deepEqual({ ...node.bus.stats }, { sent: 0, received: 0, droppedQos0: 0 });
      await node.close();
    });

    test('with no interest anywhere, publish sends nothing and no shared group is served elsewhere', async (t) => {
      const { bus, handler, close } = await (await cluster(t))('conf-1');
      for (const qos of [0, 1, 2] as const) {
        const served = bus.publish(message('nobody/listens', qos));
        assert.ok(served === undefined || served.size === 0, `QoS ${qos}: no group to serve`);
      }
      await handler.settle();
      assert.equal(bus.stats.sent, 0);
      assert.deepEqual(handler.delivered, [], 'nothing comes back to the publishing node');
      await close();
    });

    test('interest held only here: plain filters send nothing away; a shared group with members only here is served here', async (t) => {
      const { bus, handler, close } = await (await cluster(t))('conf-1');
      bus.addInterest('here/+/x');
      bus.addInterest('here/+/x'); // a second add of the same key changes nothing
      bus.addInterest('$share/g/here/#');
      await handler.settle();
      for (let i = 0; i < 5; i++) {
        const served = bus.publish(message('here/1/x', 1, String(i)));
        assert.ok(served === undefined || served.has('$share/g/here/#'), 'the group is served on this node');
      }
      await handler.settle();
      assert.equal(bus.stats.sent, 0, 'nothing left this node');
      bus.removeInterest('$share/g/here/#');
      bus.removeInterest('$share/g/here/#');
      bus.removeInterest('never/added');
      await handler.settle();
      const served = bus.publish(message('here/1/x', 1));
      assert.ok(served === undefined || !served.has('$share/g/here/#'), 'the ended group is served nowhere');
      assert.deepEqual(handler.commitErrors, []);
      await close();
    });

    test('a claim of a client id nobody holds resolves without a stored session; a claim of one held here resolves', async (t) => {
      const { bus, handler, close } = await (await cluster(t))('conf-1');
      const state = await bus.claimSession('fresh-client', true);
      assert.ok(state === undefined || state.sessions.length === 0);
      await bus.claimSession('fresh-client', false);
      handler.stage({ op: 'putSession', session: session('fresh-client') });
      await handler.settle();
      const again = await bus.claimSession('fresh-client', true);
      assert.ok(again === undefined || again.sessions.every((s) => s.clientId === 'fresh-client'), 'only that client\'s session');
      assert.deepEqual(handler.released, [], 'a node is never asked to let go of its own client');
      await close();
    });

    test('clientOnline and clientOffline are taken in the next commit; forward to an unknown node does not throw', async (t) => {
      const { bus, handler, close } = await (await cluster(t))('conf-1');
      bus.clientOnline('c1', { topic: 'w/c1', payload: Buffer.from('bye'), qos: 1, retain: false });
      bus.clientOnline('c2', undefined);
      bus.clientOffline('c1', true);
      bus.clientOffline('c2', false);
      await handler.settle();
      assert.deepEqual(handler.commitErrors, []);
      assert.deepEqual(handler.orphanWills, [], 'no will is published while its node runs');
      await close();
    });

    if (factory.maxNodes >= 2) crossNode(cluster, factory.failover);
  });
}

/** Publishes QoS 0 probes on `topic` from `from` until `to` has one (the route change reached `from`). */
async function reaches(from: Node, to: Node, topic: string, groups?: string): Promise<void> {
  const arrived = (): boolean => to.handler.delivered.some((d) => d.message.topic === topic && (groups === undefined || d.groups.includes(groups)));
  const timer = setInterval(() => from.bus.publish(message(topic, 0, 'probe')), 25);
  try {
    await to.handler.until(arrived, `a probe on ${topic} from ${from.bus.nodeId} at ${to.bus.nodeId}${groups === undefined ? '' : ` for ${groups}`}`, 10_000);
  } finally {
    clearInterval(timer);
  }
}

function crossNode(cluster: (t: TestContext) => Promise<(nodeId: string) => Promise<Node>>, failover: BusFactory['failover']): void {
  const pair = async (t: TestContext): Promise<[Node, Node]> => {
    const node = await cluster(t);
    return [await node('conf-a'), await node('conf-b')];
  };

  test('cross-node: a message goes once to each node with matching interest, in order per QoS, with its content and cluster id', async (t) => {
    const [a, b] = await pair(t);
    b.bus.addInterest('data/+/y');
    await b.handler.settle();
    await reaches(a, b, 'data/probe/y');
    const sentBefore = a.bus.stats.sent;
    const receivedBefore = b.bus.stats.received;
    const published: Message[] = [];
    for (let i = 1; i <= 5; i++) {
      for (const qos of [0, 1, 2] as const) {
        const m = message(`data/${qos}/y`, qos, `${qos}:${i}`, { properties: { contentType: 'text/plain', userProperties: [['n', String(i)]] }, expiresAt: Date.now() + 60_000 });
        published.push(m);
        a.bus.publish(m);
      }
    }
    a.bus.publish(message('data/unmatched', 1)); // no node's filter matches it
    await a.handler.settle();
    const data = (): Message[] => b.handler.delivered.map((d) => d.message).filter((m) => m.topic.startsWith('data/') && m.payload.toString() !== 'probe');
    await b.handler.until(() => data().length >= 15, '15 messages at node b');
    for (const qos of [0, 1, 2]) {
      assert.deepEqual(data().filter((m) => m.qos === qos).map((m) => m.payload.toString()), [1, 2, 3, 4, 5].map((i) => `${qos}:${i}`), `QoS ${qos} in order`);
    }
    const first = data()[0]!;
    assert.ok(published.every((m) => typeof m.clusterId === 'string'), 'a message leaving its node gets a cluster id');
    assert.equal(first.clusterId, published.find((m) => m.payload.equals(first.payload))!.clusterId);
    assert.equal(first.origin, 'conformance');
    assert.equal(first.properties?.contentType, 'text/plain');
    assert.ok(first.expiresAt !== undefined && first.expiresAt > Date.now());
    assert.ok(b.handler.delivered.every((d) => d.groups.length === 0), 'no shared group to serve');
    assert.equal(a.bus.stats.sent - sentBefore, 15, 'one per message and target node; the unmatched one went nowhere');
    assert.ok(b.bus.stats.received - receivedBefore >= 15);
    assert.ok(!a.handler.delivered.some((d) => d.message.topic.startsWith('data/')), 'nothing comes back to the publisher');
  });

  test('cross-node: after removeInterest reaches the publisher, nothing more is sent for it', async (t) => {
    const [a, b] = await pair(t);
    b.bus.addInterest('gone/#');
    b.bus.addInterest('mark/#');
    await b.handler.settle();
    await reaches(a, b, 'gone/probe');
    b.bus.removeInterest('gone/#');
    await b.handler.settle();
    // The publisher applies the announcement asynchronously: publish until nothing is sent.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const before = a.bus.stats.sent;
      a.bus.publish(message('gone/x', 1, 'late'));
      await a.handler.settle();
      if (a.bus.stats.sent === before) break;
      assert.ok(Date.now() < deadline, 'the removal never reached the publishing node');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    a.bus.publish(message('gone/x', 1, 'after'));
    a.bus.publish(message('mark/x', 1, 'marker')); // same stream, after it: once it arrives, the other would have
    await a.handler.settle();
    await b.handler.until(() => b.handler.delivered.some((d) => d.message.topic === 'mark/x'), 'the marker at node b');
    assert.ok(!b.handler.delivered.some((d) => d.message.payload.toString() === 'after'));
  });

  test('cross-node: a shared group with members on both nodes gets each message exactly once, on either node in turn', async (t) => {
    const [a, b] = await pair(t);
    const key = '$share/g/work/#';
    a.bus.addInterest(key);
    b.bus.addInterest(key);
    await Promise.all([a.handler.settle(), b.handler.settle()]);
    await reaches(a, b, 'work/probe', key);
    const servedHere: string[] = [];
    for (let i = 0; i < 20; i++) {
      const served = a.bus.publish(message('work/item', 1, String(i)));
      if (served === undefined || served.has(key)) servedHere.push(String(i));
    }
    await a.handler.settle();
    const servedThere = (): string[] => b.handler.delivered.filter((d) => d.message.topic === 'work/item' && d.groups.includes(key)).map((d) => d.message.payload.toString());
    await b.handler.until(() => servedHere.length + servedThere().length >= 20, 'all 20 messages served');
    assert.deepEqual([...servedHere, ...servedThere()].map(Number).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i));
    assert.ok(servedHere.length > 0 && servedThere().length > 0, `both nodes serve (${servedHere.length} here, ${servedThere().length} there)`);
  });

  test('cross-node: a claim makes the holding node let go first, and hands the claimant the stored session', async (t) => {
    const [a, b] = await pair(t);
    await a.bus.claimSession('mover', false);
    a.handler.stage({ op: 'putSession', session: session('mover') });
    await a.handler.settle();
    const state = await b.bus.claimSession('mover', true);
    assert.deepEqual(a.handler.released, [{ clientId: 'mover', toNode: 'conf-b' }]);
    assert.deepEqual(state?.sessions.map((s) => s.clientId), ['mover']);
    assert.deepEqual(state.sessions[0]!.subscriptions, [subscription]);
    await a.bus.claimSession('mover', true);
    assert.deepEqual(b.handler.released, [{ clientId: 'mover', toNode: 'conf-a' }], 'and back');
  });

  test('cross-node: claims of many client ids made at once (fresh, held here, held by the other node) each resolve with that client\'s own session', async (t) => {
    const [a, b] = await pair(t);
    const ids = Array.from({ length: 30 }, (_, i) => `many-${i}`);
    const heldBy = (i: number): 'none' | 'a' | 'b' => (['none', 'a', 'b'] as const)[i % 3]!;
    for (const [i, id] of ids.entries()) {
      const holder = heldBy(i) === 'a' ? a : heldBy(i) === 'b' ? b : undefined;
      if (holder === undefined) continue;
      await holder.bus.claimSession(id, false);
      holder.handler.stage({ op: 'putSession', session: { ...session(id), expiryInterval: 1000 + i } });
    }
    await Promise.all([a.handler.settle(), b.handler.settle()]);
    // All in one turn on node b: its own sessions, node a's (taken over) and nobody's.
    const states = await Promise.all(ids.map((id) => b.bus.claimSession(id, true)));
    for (const [i, id] of ids.entries()) {
      const state = states[i];
      if (heldBy(i) === 'none') assert.ok(state === undefined || state.sessions.length === 0, `${id}: nothing stored`);
      else assert.deepEqual(state?.sessions.map((s) => [s.clientId, s.expiryInterval]), [[id, 1000 + i]], `${id}: its own session`);
    }
    assert.deepEqual(a.handler.released.map((r) => r.clientId).sort(), ids.filter((_, i) => heldBy(i) === 'a').sort(), 'node a let go of exactly its own');
    assert.deepEqual(b.handler.released, [], 'node b is never asked to let go of what it claims itself');
  });

  test('cross-node: forward hands one session\'s delivery to the named node, with its QoS, retain flag and subscription ids', async (t) => {
    const [a, b] = await pair(t);
    const m1 = message('moved/1', 1, 'q1');
    a.bus.forward('conf-b', 'traveller', m1, 1, true, [7, 9]);
    a.bus.forward('conf-b', 'traveller', message('moved/0', 0, 'q0'), 0, false, undefined);
    await a.handler.settle();
    assert.equal(typeof m1.clusterId, 'string', 'a forwarded message gets a cluster id');
    await b.handler.until(() => b.handler.targeted.length >= 2, 'two forwarded deliveries');
    const [one, zero] = ['moved/1', 'moved/0'].map((topic) => b.handler.targeted.find((d) => d.message.topic === topic)!);
    assert.deepEqual({ ...one!, message: one!.message.clusterId }, { clientId: 'traveller', message: m1.clusterId, qos: 1, retain: true, subscriptionIds: [7, 9] });
    assert.deepEqual({ qos: zero!.qos, retain: zero!.retain, subscriptionIds: zero!.subscriptionIds }, { qos: 0, retain: false, subscriptionIds: undefined });
    assert.deepEqual(b.handler.delivered.filter((d) => d.message.topic.startsWith('moved/')), [], 'not routed by subscriptions');
  });

  test('cross-node: a retained change committed on one node reaches the other, and a node that starts gets every retained message', async (t) => {
    const node = await cluster(t);
    const a = await node('conf-a');
    a.handler.stage({ op: 'putRetained', message: { topic: 'keep/1', payload: Buffer.from('kept'), qos: 1, retain: true, origin: 'x', receivedAt: 1 } });
    await a.handler.settle();
    const b = await node('conf-b');
    assert.deepEqual(b.handler.replacedRetained.at(-1)?.map((m) => m.topic), ['keep/1']);
    a.handler.stage({ op: 'putRetained', message: { topic: 'keep/2', payload: Buffer.from('two'), qos: 0, retain: true, origin: 'x', receivedAt: 2 } });
    a.handler.stage({ op: 'deleteRetained', topic: 'keep/1' });
    await a.handler.settle();
    await b.handler.until(() => b.handler.retained.length >= 2, 'two retained changes at node b');
    assert.deepEqual(b.handler.retained.map((r) => ('cleared' in r ? `-${r.topic}` : `+${r.topic}`)), ['+keep/2', '-keep/1']);
    assert.deepEqual(a.handler.retained, [], 'a node does not hear its own changes');
  });

  /** A node holding a persistent session, two connected clients (one left) and interest in z/#, seen from b. */
  const dying = async (a: Node, b: Node): Promise<void> => {
    await a.bus.claimSession('sleeper', false);
    a.handler.stage({ op: 'putSession', session: session('sleeper') });
    a.bus.clientOnline('walker', { topic: 'will/walker', payload: Buffer.from('gone'), qos: 1, retain: false });
    a.bus.clientOnline('leaver', { topic: 'will/leaver', payload: Buffer.from('left'), qos: 1, retain: false });
    a.bus.clientOffline('leaver', false);
    a.bus.addInterest('z/#');
    await a.handler.settle();
    await reaches(b, a, 'z/probe');
  };

  if (failover?.kind === 'restart') {
    test('cross-node: a node that dies comes back under its id: its persistent sessions, its connected clients\' wills, the QoS 1 messages routed to it meanwhile', async (t) => {
      const node = await cluster(t);
      const a = await node('conf-a');
      const b = await node('conf-b');
      await dying(a, b);
      await failover.crash(a.bus);
      b.bus.publish(message('z/after', 1, 'kept for the restart'));
      await b.handler.settle();
      const again = await node('conf-a');
      assert.deepEqual(again.loaded?.sessions.map((s) => s.clientId), ['sleeper'], 'its persistent session');
      assert.deepEqual(again.handler.orphanWills.map((w) => `${w.clientId} ${w.will.payload.toString()}`), ['walker gone'], 'the will of the client still connected, not of the one that left');
      await again.handler.until(() => again.handler.delivered.some((d) => d.message.topic === 'z/after'), 'the message routed to conf-a while it was down');
      assert.deepEqual(b.handler.adopted, [], 'nobody adopts it');
    });
    return;
  }

  test('cross-node: a node that stops beating is adopted: its persistent sessions, its connected clients\' wills, its undelivered QoS 1 messages', async (t) => {
    const [a, b] = await pair(t);
    await dying(a, b);
    await a.close(); // stops beating without letting its clients go (its routes stay)
    b.bus.publish(message('z/after', 1, 'kept for the adopter'));
    await b.handler.settle();
    const adopted = (): boolean => b.handler.adopted.some((s) => s.sessions.some((x) => x.clientId === 'sleeper'));
    await b.handler.until(() => adopted() && b.handler.orphanWills.length > 0 && b.handler.delivered.some((d) => d.message.topic === 'z/after'), 'the adoption of conf-a by conf-b', 20_000);
    assert.deepEqual(b.handler.orphanWills.map((w) => `${w.clientId} ${w.will.payload.toString()}`), ['walker gone'], 'the will of the client still connected, not of the one that left');
  });
}
