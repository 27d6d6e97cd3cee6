/**
 * MQTT over WebSocket: MQTT.js (Node) over ws:// and wss://, against TCP clients on the same broker;
 * framing (a packet split over frames, several packets in one frame), sub-protocols, text frames
 * [MQTT-6.0.0-1], the /mqtt path, X-Forwarded-For from trusted proxies only, and the HTTP port's /mqtt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { PacketDecoder } from '../../src/protocol/decoder.js';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { Packet } from '../../src/protocol/types.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { makeTestCertificates } from '../helpers/certs.js';

const WAIT_MS = 3000;

let server: StarlingServer;
const clients = new Set<MqttClient>();
const sockets = new Set<WebSocket>();

async function connect(url: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options });
  clients.add(client);
  return client;
}

function nextMessage(client: MqttClient, topic: string): Promise<{ payload: string; retain: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message on ${topic}`)), WAIT_MS);
    const onMessage = (t: string, payload: Buffer, packet: mqtt.IPublishPacket): void => {
      if (t !== topic) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve({ payload: payload.toString(), retain: packet.retain });
    };
    client.on('message', onMessage);
  });
}

/** A WebSocket speaking raw MQTT bytes, decoding what the broker sends. */
class RawWs {
  readonly packets: Packet[] = [];
  private readonly decoder = new PacketDecoder({ version: 4 });
  closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    sockets.add(ws);
    ws.on('message', (data: Buffer) => this.decoder.push(data, this.packets));
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  }

  static open(url: string, protocol: string | string[] = 'mqtt', headers: Record<string, string> = {}): Promise<RawWs> {
    const ws = new WebSocket(url, protocol, { headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawWs(ws)));
      ws.once('error', reject);
    });
  }

  send(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(bytes, { binary: true }, (error) => (error ? reject(error) : resolve())));
  }

  async waitFor<T extends Packet['type']>(type: T): Promise<Extract<Packet, { type: T }>> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const index = this.packets.findIndex((p) => p.type === type);
      if (index !== -1) return this.packets.splice(index, 1)[0] as Extract<Packet, { type: T }>;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`no ${type} within ${WAIT_MS} ms (got ${this.packets.map((p) => p.type).join(', ')})`);
  }
}

const connectBytes = (clientId: string): Buffer => encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId }, 4);

describe('50 MQTT over WebSocket', () => {
  before(async () => {
    server = await startTestBroker({ websocket: { port: 0, trustedProxies: ['127.0.0.2'] }, http: { port: 0 } });
  });
  after(async () => {
    for (const client of clients) client.end(true);
    for (const ws of sockets) ws.terminate();
    await server.close();
  });

  test('MQTT.js over ws:// and over TCP exchange messages both ways (QoS 0, 1, 2, retained)', async () => {
    const ws = await connect(`ws://127.0.0.1:${server.wsPort}/mqtt`, { clientId: 'ws-one' });
    const tcp = await connect(`mqtt://127.0.0.1:${server.port}`, { clientId: 'tcp-one' });
    await ws.subscribeAsync('t/ws/#', { qos: 2 });
    await tcp.subscribeAsync('t/tcp/#', { qos: 2 });
    for (const qos of [0, 1, 2] as const) {
      const toWs = nextMessage(ws, `t/ws/${qos}`);
      await tcp.publishAsync(`t/ws/${qos}`, `from tcp ${qos}`, { qos });
      assert.equal((await toWs).payload, `from tcp ${qos}`);
      const toTcp = nextMessage(tcp, `t/tcp/${qos}`);
      await ws.publishAsync(`t/tcp/${qos}`, `from ws ${qos}`, { qos });
      assert.equal((await toTcp).payload, `from ws ${qos}`);
    }
    await tcp.publishAsync('t/retained', 'kept', { qos: 1, retain: true });
    const late = await connect(`ws://127.0.0.1:${server.wsPort}/mqtt`, { clientId: 'ws-late' });
    const retained = nextMessage(late, 't/retained');
    await late.subscribeAsync('t/retained');
    assert.deepEqual(await retained, { payload: 'kept', retain: true });
    assert.equal(server.broker.query.client('ws-one')?.listener, 'ws');
    assert.equal(server.broker.query.client('tcp-one')?.listener, 'tcp');
  });

  test('MQTT 5 over WebSocket works too', async () => {
    const client = await connect(`ws://127.0.0.1:${server.wsPort}/mqtt`, { clientId: 'ws-v5', protocolVersion: 5 });
    await client.subscribeAsync('t/v5', { qos: 1 });
    const got = nextMessage(client, 't/v5');
    await client.publishAsync('t/v5', 'five', { qos: 1 });
    assert.equal((await got).payload, 'five');
  });

  test('[MQTT-6.0.0-2] a packet split over many frames and several packets in one frame decode the same', async () => {
    const raw = await RawWs.open(`ws://127.0.0.1:${server.wsPort}/mqtt`);
    const connect = connectBytes('ws-split');
    // CONNECT one byte per frame.
    for (const byte of connect) await raw.send(Buffer.from([byte]));
    const connack = await raw.waitFor('connack');
    assert.equal(connack.reasonCode, 0);
    // SUBSCRIBE, a PUBLISH to it and PINGREQ in one frame.
    const batch = Buffer.concat([
      encodePacket({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'split/+', qos: 1 }] }, 4),
      encodePacket({ type: 'publish', topic: 'split/a', payload: Buffer.from('one frame'), qos: 1, packetId: 2, retain: false, dup: false }, 4),
      encodePacket({ type: 'pingreq' }, 4),
    ]);
    await raw.send(batch);
    assert.equal((await raw.waitFor('suback')).packetId, 1);
    assert.equal((await raw.waitFor('puback')).packetId, 2);
    await raw.waitFor('pingresp');
    const delivered = await raw.waitFor('publish');
    assert.equal(delivered.topic, 'split/a');
    assert.equal(delivered.payload.toString(), 'one frame');
    // A PUBLISH whose header and body straddle two frames, the second also carrying a PINGREQ.
    const big = encodePacket({ type: 'publish', topic: 'split/b', payload: Buffer.alloc(3000, 0x61), qos: 0, retain: false, dup: false }, 4);
    await raw.send(big.subarray(0, 2));
    await raw.send(Buffer.concat([big.subarray(2), encodePacket({ type: 'pingreq' }, 4)]));
    const second = await raw.waitFor('publish');
    assert.equal(second.topic, 'split/b');
    assert.equal(second.payload.length, 3000);
    await raw.waitFor('pingresp');
    raw.ws.close();
  });

  test('[MQTT-6.0.0-4] sub-protocols: "mqtt" and "mqttv3.1" are chosen; a text frame closes the connection [MQTT-6.0.0-1]', async () => {
    const a = await RawWs.open(`ws://127.0.0.1:${server.wsPort}/mqtt`, ['mqtt']);
    assert.equal(a.ws.protocol, 'mqtt');
    const b = await RawWs.open(`ws://127.0.0.1:${server.wsPort}/mqtt`, ['mqttv3.1']);
    assert.equal(b.ws.protocol, 'mqttv3.1');
    b.ws.close();
    await a.send(connectBytes('ws-text'));
    await a.waitFor('connack');
    a.ws.send('not binary');
    const code = await Promise.race([a.closed, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('not closed')), WAIT_MS))]);
    assert.ok(code === 1003 || code === 1006, `close code ${code}`);
  });

  test('only /mqtt is MQTT: another path is refused, plain HTTP gets 426', async () => {
    await assert.rejects(RawWs.open(`ws://127.0.0.1:${server.wsPort}/other`), /404/);
    const response = await fetch(`http://127.0.0.1:${server.wsPort}/mqtt`);
    assert.equal(response.status, 426);
  });

  test('X-Forwarded-For is believed from a trusted proxy only', async () => {
    // 127.0.0.2 is configured as a trusted proxy; connecting from it (a loopback address) stands for the proxy.
    const viaProxy = new WebSocket(`ws://127.0.0.1:${server.wsPort}/mqtt`, 'mqtt', { headers: { 'x-forwarded-for': '203.0.113.9, 127.0.0.2' }, localAddress: '127.0.0.2' });
    sockets.add(viaProxy);
    await new Promise((resolve, reject) => viaProxy.once('open', resolve).once('error', reject));
    viaProxy.send(connectBytes('via-proxy'));
    const direct = await RawWs.open(`ws://127.0.0.1:${server.wsPort}/mqtt`, 'mqtt', { 'x-forwarded-for': '198.51.100.7' });
    await direct.send(connectBytes('direct'));
    await direct.waitFor('connack');
    const deadline = Date.now() + WAIT_MS;
    while (!server.broker.query.isConnected('via-proxy') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(server.broker.query.client('via-proxy')?.remoteAddress, '203.0.113.9');
    assert.equal(server.broker.query.client('direct')?.remoteAddress, '127.0.0.1', 'header ignored from an untrusted peer');
    viaProxy.close();
    direct.ws.close();
  });

  test('the HTTP port carries MQTT over WebSocket on /mqtt as well (for the dashboard)', async () => {
    const client = await connect(`ws://127.0.0.1:${server.httpPort}/mqtt`, { clientId: 'ws-http-port' });
    await client.subscribeAsync('t/http-port');
    const got = nextMessage(client, 't/http-port');
    server.publish({ topic: 't/http-port', payload: 'via http port' });
    assert.equal((await got).payload, 'via http port');
  });

  test('wss:// with a certificate', async () => {
    const certs = makeTestCertificates();
    const secure = await startTestBroker({ websocket: { port: 0, certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
    try {
      const client = await connect(`wss://127.0.0.1:${secure.wsPort}/mqtt`, { clientId: 'wss-one', ca: certs.ca, rejectUnauthorized: true });
      await client.subscribeAsync('t/wss');
      const got = nextMessage(client, 't/wss');
      await client.publishAsync('t/wss', 'secure');
      assert.equal((await got).payload, 'secure');
      assert.equal(secure.broker.query.client('wss-one')?.listener, 'wss');
      await client.endAsync();
    } finally {
      await secure.close();
    }
  });
});
