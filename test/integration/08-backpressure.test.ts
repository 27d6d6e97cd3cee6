import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { type RawClient, sleep, TestClients } from '../helpers/raw-client.js';

const MAX_WRITE_BUFFER = 256 * 1024;
const PAYLOAD = Buffer.alloc(1024, 0x61);

/**
 * Publishes `count` messages in batches of `batch`, waiting after each batch until `received()` has
 * caught up: the healthy subscriber sets the pace, the stalled one must not matter.
 */
async function paced(publisher: RawClient, topic: string, count: number, qos: 0 | 1, batch: number, received: () => number): Promise<void> {
  for (let sent = 0; sent < count; ) {
    for (let i = 0; i < batch && sent < count; i++, sent++) publisher.publish(topic, PAYLOAD, qos);
    for (let waited = 0; received() < sent; waited += 5) {
      if (waited > 5000) throw new Error(`healthy subscriber stuck at ${received()} of ${sent}`);
      await sleep(5);
    }
  }
}

describe('08 backpressure: a subscriber that stops reading', () => {
  let server: StarlingServer;
  const clients = new TestClients(() => server.port);

  before(async () => {
    server = await startTestBroker({ limits: { maxWriteBuffer: MAX_WRITE_BUFFER, maxQueuedMessages: 50, maxInflight: 10 } });
  });
  after(async () => {
    await clients.closeAll();
    await server.close();
  });

  test('QoS 0 beyond the write buffer is dropped and counted; memory stays bounded; others receive everything', async () => {
    const stalled = await clients.rawConnected({ clientId: 'stalled-q0' });
    await stalled.subscribe('flood/q0', 0);
    stalled.socket.pause(); // never read again
    const healthy = await clients.rawConnected({ clientId: 'healthy-q0' });
    await healthy.subscribe('flood/q0', 0);
    const publisher = await clients.rawConnected({ clientId: 'publisher-q0' });

    const count = 8000; // 8 MiB of payload: far past the stalled client's socket buffers and our limit
    let received = 0;
    healthy.socket.on('data', () => {
      while (healthy.pending > 0) {
        void healthy.next(0);
        received++;
      }
    });
    await paced(publisher, 'flood/q0', count, 0, 100, () => received);
    assert.equal(received, count, 'the healthy subscriber got every message');

    const connection = server.broker.query.client('stalled-q0');
    assert.ok(connection?.connected === true, 'the stalled subscriber is still connected');
    assert.ok(connection.bufferedBytes <= MAX_WRITE_BUFFER + 2 * (PAYLOAD.length + 64), `buffered ${connection.bufferedBytes} bytes for the stalled client`);
    assert.ok(server.broker.stats.droppedBufferFull > 0, 'drops were counted');

    // The publisher was never stalled: a PINGREQ round trip still works.
    publisher.send({ type: 'pingreq' });
    await publisher.expect('pingresp');
  });

  test('QoS 1 to a subscriber that does not acknowledge waits in the bounded queue; the publisher is never stalled', async () => {
    const before = server.broker.stats.droppedQueueFull;
    const stalled = await clients.rawConnected({ clientId: 'stalled-q1' });
    await stalled.subscribe('flood/q1', 1);
    const healthy = await clients.mqtt({ clientId: 'healthy-q1' });
    await healthy.subscribeAsync('flood/q1', { qos: 1 });
    let received = 0;
    healthy.on('message', () => {
      received++;
    });
    const publisher = await clients.rawConnected({ clientId: 'publisher-q1' });

    const count = 500;
    await paced(publisher, 'flood/q1', count, 1, 25, () => received);
    const acks = await publisher.expectMany('puback', count, 10_000);
    assert.equal(acks.length, count, 'every QoS 1 publish was acknowledged');
    assert.equal(received, count, 'the healthy subscriber got every message');

    // The stalled subscriber got exactly its inflight window (it never acknowledges) and the rest
    // queued up to the limit; everything past that was dropped and counted.
    const unacked = await stalled.expectMany('publish', 10, 2000);
    assert.equal(unacked.length, 10);
    await stalled.expectSilence(200);
    const session = server.broker.query.client('stalled-q1');
    assert.ok(session !== undefined);
    assert.equal(session.inflight, 10);
    assert.equal(session.queued, 50);
    assert.equal(server.broker.stats.droppedQueueFull - before, count - 10 - 50);
  });
});
