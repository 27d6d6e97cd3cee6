/**
 * A session moving between cluster nodes, at the broker's ClusterHandler surface (no Redis): the node
 * it leaves forwards what is still routed there for a while, and the node it arrives at drops the
 * forwarded copy of a message it already delivered (and the reverse).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Broker } from '../../../src/broker/broker.js';
import { LocalBus } from '../../../src/cluster/local.js';
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

function nodeWith(bus: RecordingBus): Broker {
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
