/**
 * The client library against real brokers: Starling (MQTT 3.1 / 3.1.1) and Debian mosquitto (3.1.1 and
 * 5.0, TLS, WebSocket). QoS 0/1/2, reconnect with session resume, inflight resend, server DISCONNECT.
 */
import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { ConnectionError, ServerDisconnectError, connect, type Message, type MqttClient, type QoS } from '../../src/client/index.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { hasMosquitto, startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';

const clients: MqttClient[] = [];
function track(c: MqttClient): MqttClient {
  clients.push(c);
  return c;
}

async function take(it: AsyncIterator<Message>, n: number, timeoutMs = 3000): Promise<Message[]> {
  const out: Message[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`only ${out.length} of ${n} messages in ${timeoutMs} ms`)), timeoutMs)));
  try {
    while (out.length < n) {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done === true) break;
      out.push(r.value);
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/** A TCP proxy the test can cut: `drop()` destroys every connection; `hold()` refuses new ones until `release()`. */
async function startProxy(targetPort: number): Promise<{ port: number; drop(): void; hold(): void; release(): void; server: Server }> {
  const sockets = new Set<Socket>();
  let held = false;
  const server = createServer((inbound) => {
    if (held) {
      inbound.destroy();
      return;
    }
    const outbound = netConnect({ host: '127.0.0.1', port: targetPort });
    sockets.add(inbound).add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    const close = (): void => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on('error', close).on('close', close);
    outbound.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(typeof address === 'object' && address !== null);
  return {
    port: address.port,
    server,
    drop: () => sockets.forEach((s) => s.destroy()),
    hold: () => (held = true),
    release: () => (held = false),
  };
}

function once<T>(client: MqttClient, event: 'connect'): Promise<T> {
  return new Promise((resolve) => client.once(event, (info) => resolve(info as T)));
}

async function qosRoundTrip(url: string, version: 3 | 4 | 5, extra: Parameters<typeof connect>[1] = {}): Promise<void> {
  const sub = track(await connect(url, { protocolVersion: version, ...extra }));
  const pub = track(await connect(url, { protocolVersion: version, ...extra }));
  const topic = `rt/${version}/${Math.random().toString(36).slice(2)}`;
  const s = await sub.subscribe(`${topic}/#`, { qos: 2 });
  assert.deepEqual(s.reasonCodes, [2]);
  for (const qos of [0, 1, 2] as QoS[]) {
    const result = await pub.publish(`${topic}/${qos}`, `payload ${qos}`, { qos });
    assert.equal(result.reasonCode, 0);
  }
  const got = await take(s[Symbol.asyncIterator](), 3);
  assert.deepEqual(
    got.map((m) => [m.topic, m.payload.toString(), m.qos]),
    [0, 1, 2].map((q) => [`${topic}/${q}`, `payload ${q}`, q]),
  );
  await pub.end();
  await sub.end();
}

after(() => {
  for (const c of clients) c.destroy();
});

describe('20 client against Starling', () => {
  let broker: StarlingServer;
  before(async () => {
    broker = await startTestBroker();
  });
  after(async () => {
    await broker.close();
  });

  test('QoS 0, 1 and 2 publish and subscribe, MQTT 3.1.1 and 3.1', async () => {
    await qosRoundTrip(`mqtt://127.0.0.1:${broker.port}`, 4);
    await qosRoundTrip(`mqtt://127.0.0.1:${broker.port}`, 3);
  });

  test('reconnect with session resume: messages queued while offline arrive, Session Present 1', async () => {
    const proxy = await startProxy(broker.port);
    try {
      const sub = track(await connect({ host: '127.0.0.1', port: proxy.port, clientId: 'resume-1', clean: false, reconnect: { initialDelay: 50, maxDelay: 100 } }));
      const s = await sub.subscribe('resume/t', { qos: 1 });
      const it = s[Symbol.asyncIterator]();
      proxy.hold();
      proxy.drop();
      const pub = track(await connect(`mqtt://127.0.0.1:${broker.port}`));
      for (let i = 0; i < 3; i++) await pub.publish('resume/t', `m${i}`, { qos: 1 });
      const reconnected = once<{ sessionPresent: boolean }>(sub, 'connect');
      proxy.release();
      assert.equal((await reconnected).sessionPresent, true);
      const got = await take(it, 3);
      assert.deepEqual(got.map((m) => m.payload.toString()), ['m0', 'm1', 'm2']);
      await pub.end();
      await sub.end();
    } finally {
      proxy.server.close();
      proxy.drop();
    }
  });

  test('reconnect without a session resubscribes by itself', async () => {
    const proxy = await startProxy(broker.port);
    try {
      const sub = track(await connect({ host: '127.0.0.1', port: proxy.port, reconnect: { initialDelay: 20, maxDelay: 50 } }));
      const s = await sub.subscribe('resub/t', { qos: 1 });
      const reconnected = once<{ sessionPresent: boolean }>(sub, 'connect');
      proxy.drop();
      assert.equal((await reconnected).sessionPresent, false);
      const pub = track(await connect(`mqtt://127.0.0.1:${broker.port}`));
      // the resubscription is in flight right after CONNACK: publish until it lands
      const it = s[Symbol.asyncIterator]();
      const got = take(it, 1);
      for (let i = 0; i < 20 && s.dropped === 0; i++) {
        await pub.publish('resub/t', 'again', { qos: 1 });
        const done = await Promise.race([got.then(() => true), new Promise((r) => setTimeout(() => r(false), 50))]);
        if (done) break;
      }
      assert.equal((await got)[0]?.payload.toString(), 'again');
      await pub.end();
      await sub.end();
    } finally {
      proxy.server.close();
      proxy.drop();
    }
  });

  test('an unacknowledged QoS 1 publish is resent after the connection drops and completes', async () => {
    const proxy = await startProxy(broker.port);
    try {
      const watcher = track(await connect(`mqtt://127.0.0.1:${broker.port}`));
      const w = await watcher.subscribe('inflight/t', { qos: 1 });
      const pub = track(await connect({ host: '127.0.0.1', port: proxy.port, clientId: 'inflight-1', clean: false, reconnect: { initialDelay: 50, maxDelay: 100 } }));
      proxy.hold();
      proxy.drop();
      await new Promise((r) => setTimeout(r, 20));
      const done = pub.publish('inflight/t', 'survives', { qos: 1 }); // queued while offline
      proxy.release();
      assert.equal((await done).reasonCode, 0);
      const got = await take(w[Symbol.asyncIterator](), 1);
      assert.equal(got[0]?.payload.toString(), 'survives');
      await pub.end();
      await watcher.end();
    } finally {
      proxy.server.close();
      proxy.drop();
    }
  });

  test('WebSocket (sub-protocol "mqtt") through a ws server that hands streams to broker.accept', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false) });
    wss.on('connection', (ws) => broker.broker.accept(createWebSocketStream(ws), { listener: 'ws' }));
    await new Promise<void>((resolve) => wss.once('listening', resolve));
    const address = wss.address();
    assert.ok(typeof address === 'object' && address !== null);
    try {
      await qosRoundTrip(`ws://127.0.0.1:${address.port}/mqtt`, 4);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});

describe('20 client against mosquitto', () => {
  let m: MosquittoBroker;
  before(async () => {
    // A missing broker is a failure, not a skip: run .ci/run, or apt-get install mosquitto.
    assert.ok(hasMosquitto(), 'mosquitto is not installed: run .ci/run or apt-get install -y mosquitto');
    m = await startMosquitto();
  });
  after(async () => {
    await m?.stop();
  });

  test('QoS 0, 1 and 2 with MQTT 3.1.1 and 5.0', async () => {
    await qosRoundTrip(`mqtt://127.0.0.1:${m.port}`, 4);
    await qosRoundTrip(`mqtt://127.0.0.1:${m.port}`, 5);
  });

  test('MQTT 5: CONNACK properties exposed, PUBLISH properties delivered', async () => {
    const sub = track(await connect(`mqtt://127.0.0.1:${m.port}`, { protocolVersion: 5, properties: { sessionExpiryInterval: 0 } }));
    assert.equal(sub.connack.reasonCode, 0);
    assert.ok(sub.connack.properties !== undefined, 'mosquitto sends CONNACK properties (e.g. topic alias maximum)');
    const s = await sub.subscribe('v5/props', { qos: 1, properties: { subscriptionIdentifiers: [42] } });
    const pub = track(await connect(`mqtt://127.0.0.1:${m.port}`, { protocolVersion: 5 }));
    await pub.publish('v5/props', 'x', {
      qos: 1,
      properties: { userProperties: [['k', 'v']], contentType: 'text/plain', correlationData: Buffer.from('c1'), responseTopic: 'reply/here' },
    });
    const [msg] = await take(s[Symbol.asyncIterator](), 1);
    assert.deepEqual(msg?.properties?.userProperties, [['k', 'v']]);
    assert.equal(msg?.properties?.contentType, 'text/plain');
    assert.equal(msg?.properties?.responseTopic, 'reply/here');
    assert.equal(msg?.properties?.correlationData?.toString(), 'c1');
    assert.deepEqual(msg?.properties?.subscriptionIdentifiers, [42]);
    await pub.end();
    await sub.end();
  });

  test('MQTT 5: a server DISCONNECT (topic alias above its maximum) closes the client with ServerDisconnectError', async () => {
    const client = track(await connect(`mqtt://127.0.0.1:${m.port}`, { protocolVersion: 5, reconnect: false }));
    const max = client.connack.properties?.topicAliasMaximum ?? 0;
    const closed = new Promise<Error | undefined>((resolve) => client.once('close', resolve));
    await client.publish('alias/t', 'x', { properties: { topicAlias: max + 1 } });
    const error = await closed;
    assert.ok(error instanceof ServerDisconnectError, String(error));
    assert.equal(error.reasonCode, 0x94);
    assert.equal(error.reasonName, 'topic alias invalid');
    assert.equal(client.state, 'closed');
  });

  test('TLS: mqtts:// with the test CA works; without it the certificate is refused', async () => {
    await qosRoundTrip(`mqtts://127.0.0.1:${m.tlsPort}`, 4, { tls: { ca: m.ca } });
    await assert.rejects(connect(`mqtts://127.0.0.1:${m.tlsPort}`, { reconnect: false, connectTimeout: 3000 }), (error: unknown) => {
      assert.ok(error instanceof ConnectionError);
      assert.match(error.message, /certificate/i);
      return true;
    });
  });

  test('WebSocket: ws:// to mosquitto\'s websockets listener', async () => {
    await qosRoundTrip(`ws://127.0.0.1:${m.wsPort}/mqtt`, 4);
    await qosRoundTrip(`ws://127.0.0.1:${m.wsPort}`, 5);
  });

  test('session resume across a mosquitto restart (persistent session, QoS 1 queued while offline)', async () => {
    const sub = track(await connect(`mqtt://127.0.0.1:${m.port}`, { clientId: 'restart-1', clean: false, reconnect: { initialDelay: 1500, maxDelay: 2000 } }));
    const s = await sub.subscribe('restart/t', { qos: 1 });
    const it = s[Symbol.asyncIterator]();
    await m.restart();
    const pub = track(await connect(`mqtt://127.0.0.1:${m.port}`));
    await pub.publish('restart/t', 'after restart', { qos: 1 });
    const got = await take(it, 1, 8000);
    assert.equal(got[0]?.payload.toString(), 'after restart');
    assert.equal(sub.connack.sessionPresent, true);
    await pub.end();
    await sub.end();
  });
});
