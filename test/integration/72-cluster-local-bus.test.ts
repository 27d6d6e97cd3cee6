/**
 * The broker's cluster path without Redis: a broker given the single-node ClusterBus (LocalBus) runs
 * the claim before CONNACK, reports its interest (filters and shared groups) to the bus, and in a
 * cluster SUBACK waits for the commit that announces a new filter — all of which must leave the MQTT
 * behaviour exactly as on a plain single node.
 */
import type { Will } from '../../src/protocol/types.js';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { LocalBus } from '../../src/cluster/local.js';
import { MemoryPersistence } from '../../src/persistence/memory.js';
import { startBroker, type TestBroker } from '../helpers/broker-core.js';

describe('72 cluster path with the single-node bus', () => {
  const store = new MemoryPersistence();
  const bus = new LocalBus(store);
  let b: TestBroker;
  const ready = startBroker({ store, cluster: bus }).then((started) => (b = started));
  after(async () => {
    await b.close();
  });

  test('the router reports interest to the bus: a filter once however many sessions hold it, a shared group by its $share filter', async () => {
    await ready;
    const c1 = await b.clients.rawConnected({ clientId: 'lb-i1' });
    const c2 = await b.clients.rawConnected({ clientId: 'lb-i2', protocolVersion: 5 });
    await c1.subscribe('lb/+/x', 1);
    await c2.subscribe([
      ['lb/+/x', 1],
      ['$share/g/lb/#', 1],
    ]);
    assert.ok(bus.interests().has('lb/+/x'));
    assert.ok(bus.interests().has('$share/g/lb/#'));
    c1.disconnect();
    await c1.expectClosed();
    assert.ok(bus.interests().has('lb/+/x'), 'still held by the other session');
    c2.disconnect();
    await c2.expectClosed();
    assert.ok(!bus.interests().has('lb/+/x'), 'the last holder left');
    assert.ok(!bus.interests().has('$share/g/lb/#'), 'the group ended');
  });

  test('[MQTT-3.2.0-1] CONNACK comes first even when SUBSCRIBE and PUBLISH follow CONNECT at once (the claim holds them)', async () => {
    await ready;
    const client = await b.clients.raw();
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'lb-pipelined' });
    client.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'lb/pipe', qos: 1 }] });
    client.send({ type: 'publish', topic: 'lb/pipe', payload: Buffer.from('hi'), qos: 1, retain: false, dup: false, packetId: 2 });
    const first = await client.next();
    assert.equal(first.type, 'connack');
    const rest = [await client.next(), await client.next(), await client.next()].map((p) => p.type).sort();
    assert.deepEqual(rest, ['puback', 'publish', 'suback']);
  });

  test('[MQTT-3.1.2-4] [MQTT-3.2.2-2] a persistent session resumes through the claim path with the messages queued while away', async () => {
    await ready;
    const sub = await b.clients.rawConnected({ clientId: 'lb-persist', clean: false });
    await sub.subscribe('lb/queue', 1);
    sub.disconnect();
    await sub.expectClosed();
    const pub = await b.clients.rawConnected({ clientId: 'lb-pub' });
    for (const payload of ['1', '2', '3']) {
      pub.publish('lb/queue', payload, 1);
      await pub.expect('puback');
    }
    const back = await b.clients.raw();
    const connack = await back.connectMqtt({ clientId: 'lb-persist', clean: false });
    assert.equal(connack.sessionPresent, true);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await back.expect('publish');
      got.push(p.payload.toString());
      back.send({ type: 'puback', packetId: p.packetId! });
    }
    assert.deepEqual(got, ['1', '2', '3']);
  });

  test('[MQTT-3.1.3-9] the will of a client whose node died waits for its Will Delay on the node now holding its session, and is not sent if it resumes in time', async () => {
    await ready;
    const watcher = await b.clients.rawConnected({ clientId: 'lb-will-watch' });
    await watcher.subscribe('lb/will/#', 0);
    for (const id of ['lb-orphan-a', 'lb-orphan-b']) {
      const c = await b.clients.rawConnected({ clientId: id, protocolVersion: 5, properties: { sessionExpiryInterval: 60 } });
      c.disconnect();
      await c.expectClosed();
    }
    const will = (id: string): Will => ({ topic: `lb/will/${id}`, payload: Buffer.from('gone'), qos: 0, retain: false, properties: { willDelayInterval: 1 } });
    // As the bus does after adopting a dead node: its clients' wills.
    b.broker.cluster!.publishOrphanWill('lb-orphan-a', will('lb-orphan-a'));
    b.broker.cluster!.publishOrphanWill('lb-orphan-b', will('lb-orphan-b'));
    b.broker.cluster!.publishOrphanWill('lb-orphan-none', { ...will('lb-orphan-none'), properties: {} });
    assert.equal((await watcher.expect('publish')).topic, 'lb/will/lb-orphan-none', 'no delay: at once');
    await watcher.expectSilence(300);
    const back = await b.clients.raw();
    const connack = await back.connectMqtt({ clientId: 'lb-orphan-b', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(connack.sessionPresent, true);
    const late = await watcher.expect('publish', 3000);
    assert.equal(late.topic, 'lb/will/lb-orphan-a', 'the delayed will of the client that did not come back');
    await watcher.expectSilence(1500);
  });

  test('[MQTT-3.1.4-2] takeover on one node through the claim path closes the first connection', async () => {
    await ready;
    const first = await b.clients.rawConnected({ clientId: 'lb-take' });
    const second = await b.clients.rawConnected({ clientId: 'lb-take' });
    await first.expectClosed();
    second.publish('lb/alive', 'x', 1);
    await second.expect('puback');
  });
});
