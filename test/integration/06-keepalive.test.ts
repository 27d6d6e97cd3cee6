import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { sleep, TestClients } from '../helpers/raw-client.js';

// The tests are independent (one client id each) and mostly wait on timers: run them side by side.
describe('06 keep alive', { concurrency: true }, () => {
  let server: StarlingServer;
  let clients: TestClients;

  before(async () => {
    server = await startTestBroker();
    clients = new TestClients(() => server.port);
  });

  after(async () => {
    await clients.closeAll();
    await server.close();
  });

  test('[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP', async () => {
    const client = await clients.rawConnected({ clientId: 'ping', keepalive: 60 });
    for (let i = 0; i < 3; i++) {
      client.send({ type: 'pingreq' });
      await client.expect('pingresp');
    }
  });

  test('[MQTT-3.12.4-1] PINGRESP is byte-exact d0 00', async () => {
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect({ host: '127.0.0.1', port: server.port }, () => {
        socket.write(encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'ping-bytes' }, 4));
        socket.write(encodePacket({ type: 'pingreq' }, 4));
        socket.write(encodePacket({ type: 'disconnect' }, 4));
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('server did not close after DISCONNECT'));
      }, 2000);
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('end', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(Buffer.concat(chunks));
      });
    });
    assert.deepEqual([...bytes], [0x20, 0x02, 0x00, 0x00, 0xd0, 0x00]);
  });

  test('[MQTT-3.1.2-24] keep-alive: server closes after 1.5x keep alive without packets', async () => {
    const client = await clients.rawConnected({ clientId: 'silent', keepalive: 1 });
    const start = Date.now();
    // A server that closed at 1x (or sooner) would have done so by now, even with a coarse timer sweep.
    await sleep(1300);
    assert.equal(client.closed, false, 'still open after 1.3 s: the limit is 1.5 times the keep alive');
    await client.expectClosed(2500 - (Date.now() - start));
  });

  test('[MQTT-3.1.2-24] keep-alive: PINGREQs keep the connection open past 1.5x keep alive', async () => {
    // Keep alive 2 s (closed after 3 s of silence), a packet every ~0.5 s for 4 s: slack for a loaded machine.
    const client = await clients.rawConnected({ clientId: 'pinging', keepalive: 2 });
    for (let i = 0; i < 8; i++) {
      await sleep(500);
      client.send({ type: 'pingreq' });
      await client.expect('pingresp');
    }
    assert.equal(client.closed, false);
  });

  test('[MQTT-3.1.2-24] keep-alive: any control packet from the client counts, not only PINGREQ', async () => {
    const client = await clients.rawConnected({ clientId: 'publishing', keepalive: 2 });
    for (let i = 0; i < 8; i++) {
      await sleep(500);
      client.publish('keepalive/traffic', `${i}`, 1);
      await client.expect('puback');
    }
    assert.equal(client.closed, false);
  });

  test('[MQTT-3.1.2-24] keep-alive: traffic from the server does not count as the client being alive', async () => {
    const client = await clients.rawConnected({ clientId: 'only-receiving', keepalive: 1 });
    await client.subscribe('keepalive/feed', 0);
    const start = Date.now();
    const feed = setInterval(() => server.broker.publish({ topic: 'keepalive/feed', payload: 'tick' }), 200);
    try {
      await client.expectClosed(2500 - (Date.now() - start), { allowPackets: true });
    } finally {
      clearInterval(feed);
    }
  });

  test('keep alive 0 turns the mechanism off: a silent client is not closed', async () => {
    const client = await clients.rawConnected({ clientId: 'no-keepalive', keepalive: 0 });
    await client.expectSilence(2500);
    client.send({ type: 'pingreq' });
    await client.expect('pingresp');
  });
});
