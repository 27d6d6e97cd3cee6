/**
 * $SYS: Mosquitto's layout, retained, published at start and every interval, values that follow the
 * traffic, and client connect / disconnect events with a JSON payload.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';

const WAIT_MS = 5000;

let server: StarlingServer;
let watcher: MqttClient;
/** Last value and RETAIN flag of every $SYS topic the watcher saw. */
const seen = new Map<string, { value: string; retain: boolean }>();
const events: { topic: string; payload: Record<string, unknown> }[] = [];
const clients = new Set<MqttClient>();

async function connect(clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.port}`, { clientId, reconnectPeriod: 0, connectTimeout: WAIT_MS });
  clients.add(client);
  return client;
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const value = (suffix: string): string | undefined => seen.get(`$SYS/broker/${suffix}`)?.value;
const number = (suffix: string): number => Number(value(suffix));

describe('51 $SYS topics', () => {
  before(async () => {
    server = await startTestBroker({ sys: { interval: 1 } });
    watcher = await connect('sys-watcher');
    watcher.on('message', (topic, payload, packet) => {
      if (topic.startsWith('$SYS/broker/clients/events/')) events.push({ topic, payload: JSON.parse(payload.toString()) as Record<string, unknown> });
      // The retained copy comes first; later publications arrive live (RETAIN 0 [MQTT-3.3.1-9]).
      else seen.set(topic, { value: payload.toString(), retain: seen.get(topic)?.retain ?? packet.retain });
    });
    await watcher.subscribeAsync('$SYS/#');
  });
  after(async () => {
    for (const client of clients) client.end(true);
    await server.close();
  });

  test('Mosquitto layout: every topic is there at once, retained, with sensible values', async () => {
    const expected = [
      'version',
      'uptime',
      'clients/connected',
      'clients/total',
      'clients/disconnected',
      'messages/received',
      'messages/sent',
      'bytes/received',
      'bytes/sent',
      'load/messages/received/1min',
      'load/messages/received/5min',
      'load/messages/received/15min',
      'load/messages/sent/1min',
      'load/bytes/received/1min',
      'subscriptions/count',
      'retained messages/count',
      'store/messages/count',
      'heap/current',
    ];
    await until('the first publication', () => expected.every((suffix) => value(suffix) !== undefined));
    for (const suffix of expected) assert.equal(seen.get(`$SYS/broker/${suffix}`)?.retain, true, `${suffix} arrives retained to a new subscriber`);
    assert.match(value('version')!, /^starling version \d+\.\d+\.\d+/);
    assert.match(value('uptime')!, /^\d+ seconds$/);
    // The publication at start saw no client; the next one (a second later) counts the watcher.
    await until('clients/connected to count the watcher', () => number('clients/connected') >= 1 && number('subscriptions/count') >= 1);
    assert.ok(number('retained messages/count') > 10, 'the $SYS topics are themselves retained');
  });

  test('values move as traffic flows', async () => {
    await until('a publication that counts the watcher', () => number('clients/connected') >= 1 && number('subscriptions/count') >= 1);
    const received = number('messages/received');
    const bytesReceived = number('bytes/received');
    const connected = number('clients/connected');
    const publisher = await connect('sys-publisher');
    await publisher.subscribeAsync('sys/test/#');
    for (let i = 0; i < 50; i++) await publisher.publishAsync(`sys/test/${i % 5}`, `m${i}`, { qos: 1, retain: i < 3 });
    await until('messages/received to grow by 50', () => number('messages/received') >= received + 50);
    await until('clients/connected to count the publisher', () => number('clients/connected') >= connected + 1);
    assert.ok(number('bytes/received') > bytesReceived);
    assert.ok(number('messages/sent') >= 50, 'the publisher got its own messages back');
    await until('the 1 min load to show the burst', () => Number(value('load/messages/received/1min')) > 0);
    await until('the retained count to include sys/test/0..2', () => number('retained messages/count') >= 3 + 20);
    await until('subscriptions/count to include the publisher', () => number('subscriptions/count') >= 2);
    const uptime = value('uptime');
    await until('uptime to be republished', () => value('uptime') !== uptime);
    await publisher.endAsync();
    await until('clients/connected to drop back', () => number('clients/connected') === connected);
  });

  test('connect and disconnect events carry the client as JSON', async () => {
    const client = await connect('sys-event-client');
    await until('the connected event', () => events.some((e) => e.topic.endsWith('/connected') && e.payload['clientId'] === 'sys-event-client'));
    const connected = events.find((e) => e.topic === '$SYS/broker/clients/events/connected' && e.payload['clientId'] === 'sys-event-client')!;
    assert.equal(connected.payload['listener'], 'tcp');
    assert.equal(connected.payload['remoteAddress'], '127.0.0.1');
    assert.ok(typeof connected.payload['timestamp'] === 'string');
    client.end(true); // no DISCONNECT: the socket just closes
    await until('the disconnected event', () => events.some((e) => e.topic === '$SYS/broker/clients/events/disconnected' && e.payload['clientId'] === 'sys-event-client'));
    const disconnected = events.find((e) => e.topic === '$SYS/broker/clients/events/disconnected' && e.payload['clientId'] === 'sys-event-client')!;
    assert.equal(disconnected.payload['reason'], 'socket-closed');
  });

  test('"#" does not match $SYS [MQTT-4.7.2-1]', async () => {
    const client = await connect('sys-hash');
    let sys = 0;
    client.on('message', (topic) => {
      if (topic.startsWith('$SYS')) sys++;
    });
    await client.subscribeAsync('#');
    await new Promise((resolve) => setTimeout(resolve, 1200));
    assert.equal(sys, 0);
  });
});
