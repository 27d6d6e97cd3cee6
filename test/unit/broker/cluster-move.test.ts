/**
 * A session moving between cluster nodes, at the broker's ClusterHandler surface (no Redis): the node
 * it leaves forwards what is still routed there for a while, and the node it arrives at drops the
 * forwarded copy of a message it already delivered (and the reverse).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Broker } from '../../../src/broker/broker.js';
import { LocalBus } from '../../../src/cluster/local.js';
import { createMessage } from '../../../src/broker/messages.js';
import type { Message } from '../../../src/model/message.js';
import { MemoryPersistence } from '../../../src/persistence/memory.js';
import type { StoredState } from '../../../src/persistence/types.js';
import type { QoS } from '../../../src/protocol/types.js';

/** A bus that records forwards and hands out a prepared session on claim. */
class RecordingBus extends LocalBus {
  readonly forwarded: { node: string; clientId: string; topic: string; qos: QoS; clusterId: string | undefined }[] = [];
  claimable: StoredState | undefined;
  override forward(node: string, clientId: string, message: Message, qos: QoS): void {
    this.forwarded.push({ node, clientId, topic: message.topic, qos, clusterId: message.clusterId });
  }
  override claimSession(): Promise<StoredState | undefined> {
    return Promise.resolve(this.claimable);
  }
}

const subscription = { topicFilter: 'm/#', matchFilter: 'm/#', qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
const brokers: Broker[] = [];
after(async () => {
  for (const broker of brokers) await broker.close();
});

function nodeWith(bus: LocalBus): Broker {
  const broker = new Broker({ store: bus.store!, cluster: bus });
  brokers.push(broker);
  return broker;
}

test('cluster move: the node a session left forwards what is still routed to it, to the node it went to', async () => {
  const bus = new RecordingBus(new MemoryPersistence(), 'node-a');
  const a = nodeWith(bus);
  bus.claimable = { sessions: [{ clientId: 'mover', expiryInterval: 3600, subscriptions: [subscription] }], deliveries: [], messages: [], incomingQos2: [], retained: [] };
  await a.cluster!.claimSession('mover', false);
  assert.equal(a.query.client('mover')?.subscriptions, 1);
  await a.cluster!.releaseSession('mover', 'node-b');
  assert.equal(a.query.client('mover'), undefined, 'the session itself left');
  assert.ok(bus.interests().has('m/#'), 'the route stays while the stub forwards');
  a.publish({ topic: 'm/1', payload: 'late', qos: 1 });
  a.publish({ topic: 'x/1', payload: 'other', qos: 1 });
  assert.deepEqual(
    bus.forwarded.map(({ node, clientId, topic, qos }) => ({ node, clientId, topic, qos })),
    [{ node: 'node-b', clientId: 'mover', topic: 'm/1', qos: 1 }],
  );
  // Coming back to this node removes the stub: nothing is forwarded any more.
  bus.claimable = undefined;
  await a.cluster!.claimSession('mover', false);
  a.publish({ topic: 'm/2', payload: 'x', qos: 1 });
  assert.equal(bus.forwarded.length, 1);
  assert.ok(!bus.interests().has('m/#'));
});

test('cluster move: the node a session arrived at delivers a message once, whether the direct or the forwarded copy comes first', async () => {
  const bus = new RecordingBus(new MemoryPersistence(), 'node-b');
  const b = nodeWith(bus);
  bus.claimable = { sessions: [{ clientId: 'arrived', expiryInterval: 3600, subscriptions: [subscription] }], deliveries: [], messages: [], incomingQos2: [], retained: [] };
  await b.cluster!.claimSession('arrived', false);
  const message = (id: string, topic: string): Message => ({ topic, payload: Buffer.from(id), qos: 1, retain: false, origin: 'p', receivedAt: Date.now(), clusterId: id });
  b.cluster!.deliverFromCluster(message('n1/1', 'm/1'), []);
  b.cluster!.deliverTargeted('arrived', message('n1/1', 'm/1'), 1, false, undefined);
  b.cluster!.deliverTargeted('arrived', message('n1/2', 'm/2'), 1, false, undefined);
  b.cluster!.deliverFromCluster(message('n1/2', 'm/2'), []);
  b.cluster!.deliverFromCluster(message('n1/3', 'm/3'), []);
  assert.equal(b.query.client('arrived')?.queued, 3, 'three messages, each once (the session is offline: they queue)');
  b.cluster!.deliverTargeted('nobody', message('n1/4', 'm/4'), 1, false, undefined);
  assert.equal(b.query.client('arrived')?.queued, 3, 'a forward for a session not here is dropped');
});

/** A bus whose claims wait until the test settles them, one by one, in the order they were made. */
class ControlledBus extends LocalBus {
  readonly claims: { resolve: (state: StoredState | undefined) => void; reject: (error: Error) => void }[] = [];
  override claimSession(): Promise<StoredState | undefined> {
    return new Promise((resolve, reject) => this.claims.push({ resolve, reject }));
  }
}

test('cluster move: a client that connects again while its first claim still runs loses nothing forwarded meanwhile, even when the first claim fails', async () => {
  const bus = new ControlledBus(new MemoryPersistence(), 'node-b');
  const b = nodeWith(bus);
  const first = b.cluster!.claimSession('mover', false);
  const second = b.cluster!.claimSession('mover', false);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(bus.claims.length, 2);
  // The first claim gives up (the node holding the session did not answer in time)…
  bus.claims[0]!.reject(new Error('node-a does not answer'));
  await assert.rejects(first);
  // …then node-a lets go for the second claim and forwards a message that was still routed to it.
  b.cluster!.deliverTargeted('mover', createMessage('m/1', Buffer.from('forwarded'), 1, false, undefined, 'pub', Date.now()), 1, false, undefined);
  bus.claims[1]!.resolve({ sessions: [{ clientId: 'mover', expiryInterval: 3600, subscriptions: [subscription] }], deliveries: [], messages: [], incomingQos2: [], retained: [] });
  await second;
  assert.equal(b.query.client('mover')?.queued, 1, 'the forwarded message waits in the session that arrived');
});
