import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { TestClients } from '../helpers/raw-client.js';

describe('36 MQTT 5 reason strings: the server says why, within the client’s limits', () => {
  let server: StarlingServer;
  const clients = new TestClients(() => server.port);

  before(async () => {
    server = await startTestBroker({ authenticate: (r) => (r.username === 'intruder' ? 'bad-credentials' : 'accept'), limits: { maxTopicLevels: 4 } });
  });
  after(async () => {
    await clients.closeAll();
    await server.close();
  });

  test('[MQTT-3.2.2-19] a refusing CONNACK carries a Reason String in MQTT 5; 3.1.1 gets the bare return code', async () => {
    const v5 = await clients.raw();
    const connack = await v5.connectMqtt({ protocolVersion: 5, clientId: 'rs-v5', username: 'intruder' });
    assert.equal(connack.reasonCode, 0x86);
    assert.match(connack.properties?.reasonString ?? '', /bad user name or password/);
    const v4 = await clients.raw();
    const old = await v4.connectMqtt({ clientId: 'rs-v4', username: 'intruder' });
    assert.equal(old.reasonCode, 4);
    assert.equal(old.properties, undefined);
  });

  test('[MQTT-3.14.2-1] a DISCONNECT for a protocol error names the rule in its Reason String', async () => {
    const client = await clients.rawConnected({ protocolVersion: 5, clientId: 'rs-proto' });
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'rs-proto' });
    const packets = await client.expectClosed(2000, { allowPackets: true });
    const disconnect = packets.at(-1);
    assert.ok(disconnect?.type === 'disconnect');
    assert.equal(disconnect.reasonCode, 0x82);
    assert.match(disconnect.properties?.reasonString ?? '', /second CONNECT/);
  });

  test('[MQTT-3.2.2-19] [MQTT-3.1.2-24] a Reason String that would exceed the client’s Maximum Packet Size is left out, the packet still sent', async () => {
    const client = await clients.raw();
    const connack = await client.connectMqtt({ protocolVersion: 5, clientId: 'rs-small', username: 'intruder', properties: { maximumPacketSize: 16 } });
    assert.equal(connack.reasonCode, 0x86);
    assert.equal(connack.properties?.reasonString, undefined);
  });

  test('[MQTT-3.14.2-3] [MQTT-3.1.2-24] a DISCONNECT whose Reason String would exceed the client’s Maximum Packet Size is sent without it', async () => {
    const client = await clients.rawConnected({ protocolVersion: 5, clientId: 'rs-proto-small', properties: { maximumPacketSize: 16 } });
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'rs-proto-small' });
    const packets = await client.expectClosed(2000, { allowPackets: true });
    const disconnect = packets.at(-1);
    assert.ok(disconnect?.type === 'disconnect', 'the DISCONNECT is still sent');
    assert.equal(disconnect.reasonCode, 0x82);
    assert.equal(disconnect.properties?.reasonString, undefined);
  });
});
