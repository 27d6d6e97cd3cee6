/**
 * A broker core (`new Broker(init)`) behind a TCP server on a free loopback port, and the MQTT 5
 * helpers the 30-33 test files share.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after } from 'node:test';
import { pino } from 'pino';
import { Broker, type BrokerInit } from '../../src/broker/broker.js';
import type { ConnackPacket, Packet, Properties, PublishPacket, QoS, SubackPacket, SubscriptionRequest } from '../../src/protocol/types.js';
import { describePacket, TestClients, type ConnectFields, type RawClient } from './raw-client.js';
import { settingsOf, startGroupBroker, workerMode, type GroupBroker } from './worker-broker.js';

/** A broker core on a free loopback port, with the clients opened against it. */
export interface TestBroker {
  broker: Broker;
  port: number;
  clients: TestClients;
  close(): Promise<void>;
}

const running = new Set<TestBroker>();

/** Worker groups of this file (worker mode), one per distinct set of options, shared by its tests. */
const groups = new Map<string, Promise<GroupBroker>>();

/**
 * Starts `new Broker(init)` behind a TCP server on 127.0.0.1:0 (logs with STARLING_TEST_LOG=debug).
 * With STARLING_TEST_WORKERS=N: a `starling --workers N` with the same limits and features instead,
 * shared by the tests asking for the same options (a group takes seconds to start; tests use their own
 * client ids and topics); `close()` then closes this test's clients only.
 */
export async function startBroker(init: BrokerInit = {}): Promise<TestBroker> {
  if (workerMode) return startGroupTestBroker(init);
  const level = process.env['STARLING_TEST_LOG'];
  const broker = new Broker(level === undefined ? init : { logger: pino({ level }), ...init });
  const server = net.createServer((socket) => {
    const info = socket.remoteAddress === undefined ? { listener: 'tcp' } : { listener: 'tcp', remoteAddress: socket.remoteAddress };
    broker.accept(socket, info);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return track(broker, port, async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await broker.close();
    await closed;
  });
}

/** A test broker's handle, closed (its clients first, then `stop`) by its test or at the end of the file. */
function track(broker: Broker, port: number, stop?: () => Promise<void>): TestBroker {
  const clients = new TestClients(() => port);
  const handle: TestBroker = {
    broker,
    port,
    clients,
    async close() {
      running.delete(handle);
      await clients.closeAll();
      await stop?.();
    },
  };
  running.add(handle);
  return handle;
}

after(async () => {
  await Promise.all([...running].map((b) => b.close()));
  // A group that failed to start (its test failed on it) has nothing to stop.
  const started = await Promise.allSettled(groups.values());
  groups.clear();
  await Promise.all(started.flatMap((g) => (g.status === 'fulfilled' ? [g.value.close()] : [])));
});

async function startGroupTestBroker(init: BrokerInit): Promise<TestBroker> {
  const { logger: _logger, ...options } = init;
  const settings = settingsOf(options);
  const key = JSON.stringify(settings);
  let group = groups.get(key);
  if (group === undefined) {
    group = startGroupBroker(settings);
    groups.set(key, group);
  }
  const { broker, port } = await group;
  // The group is shared by the file's tests with the same settings: it stops at the end of the file.
  return track(broker, port);
}

let idCounter = 0;

export function nextId(prefix: string): string {
  idCounter++;
  return `${prefix}-${idCounter}`;
}

/** An MQTT 5 client that got CONNACK 0x00. */
export async function connected5(target: TestBroker, fields: ConnectFields = {}): Promise<{ client: RawClient; connack: ConnackPacket }> {
  const client = await target.clients.raw();
  const connack = await client.connectMqtt({ protocolVersion: 5, clientId: nextId('c5'), ...fields });
  assert.equal(connack.reasonCode, 0, `CONNECT accepted: ${describePacket(connack)}`);
  return { client, connack };
}

/** SUBSCRIBE with MQTT 5 options and properties; returns the SUBACK. */
export async function subscribe5(client: RawClient, subscriptions: SubscriptionRequest[], properties?: Properties): Promise<SubackPacket> {
  const packetId = client.allocatePacketId();
  client.send(properties === undefined ? { type: 'subscribe', packetId, subscriptions } : { type: 'subscribe', packetId, subscriptions, properties });
  const suback = await client.expect('suback');
  assert.equal(suback.packetId, packetId);
  return suback;
}

/** A PUBLISH packet from a client. */
export function publishPacket(topic: string, payload: string | Buffer, qos: QoS, packetId: number | undefined, properties?: Properties, retain = false): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos, retain, dup: false };
  if (qos > 0) packet.packetId = packetId ?? 1;
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

/** Waits for the server to close, asserting the last packet before the close is DISCONNECT with `reasonCode`. */
export async function expectServerDisconnect(client: RawClient, reasonCode: number, timeoutMs = 2000): Promise<Packet[]> {
  const packets: Packet[] = await client.expectClosed(timeoutMs, { allowPackets: true });
  const last = packets.at(-1);
  assert.ok(last?.type === 'disconnect', `expected DISCONNECT 0x${reasonCode.toString(16)}, got [${packets.map(describePacket).join(', ')}]`);
  assert.equal(last.reasonCode, reasonCode, `DISCONNECT reason 0x${(last.reasonCode ?? 0).toString(16)}, expected 0x${reasonCode.toString(16)}`);
  return packets;
}

/** Publishes a sentinel through the broker and returns the PUBLISH packets `client` got before it. */
export async function receivedBefore(target: TestBroker, client: RawClient, sentinel: string): Promise<PublishPacket[]> {
  target.broker.publish({ topic: sentinel, payload: 'end' });
  const out: PublishPacket[] = [];
  for (;;) {
    const publish = await client.expect('publish');
    if (publish.topic === sentinel) return out;
    out.push(publish);
  }
}

/**
 * Subscribes `client` to `sentinel`, publishes a message there once the SUBACK is in, and returns the
 * PUBLISH packets the client got before it: what the broker had for the client up to that point.
 */
export async function publishesUntil(b: TestBroker, client: RawClient, sentinel: string): Promise<PublishPacket[]> {
  const packetId = client.allocatePacketId();
  client.send({ type: 'subscribe', packetId, subscriptions: [{ topicFilter: sentinel, qos: 0 }] });
  const out: PublishPacket[] = [];
  for (;;) {
    const p = await client.next();
    if (p.type === 'suback' && p.packetId === packetId) {
      b.broker.publish({ topic: sentinel, payload: 'end' });
      continue;
    }
    if (p.type !== 'publish') throw new Error(`unexpected ${describePacket(p)}`);
    if (p.topic === sentinel) return out;
    out.push(p);
  }
}
