/**
 * MQTT over TLS: server certificate, required client certificates (CA-signed accepted, absent or
 * from another CA refused), the certificate's CN as user name, minimum TLS version, and certificate
 * reload without dropping connections.
 */
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { ClientIdentity } from '../../src/broker/hooks.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js';
import { collectMessages, RawClient } from '../helpers/raw-client.js';

let certs: TestCertificates;
const open = new Set<MqttClient>();

async function connectTls(port: number, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, {
    ca: certs.ca,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 2000,
    ...options,
  });
  open.add(client);
  return client;
}

/** Resolves with what ended a TLS MQTT connection attempt (an error, or a close before CONNACK); fails if it connects. */
function tlsRefusal(port: number, options: IClientOptions): Promise<Error> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, { ca: certs.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 2000, ...options });
    open.add(client);
    let error: Error | undefined;
    client.on('connect', () => reject(new Error('the TLS connection should have been refused')));
    client.on('error', (e) => (error = e));
    client.on('close', () => resolve(error ?? new Error('closed before CONNACK')));
  });
}

/** The serial number of the certificate the server presents now. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'localhost' }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}

before(() => {
  certs = makeTestCertificates();
});

after(async () => {
  await Promise.all([...open].map((c) => c.endAsync(true)));
  certs.cleanup();
});

describe('TLS listener with a server certificate', () => {
  let server: StarlingServer;
  before(async () => {
    server = await startTestBroker({ tls: { port: 0, certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
  });
  after(async () => {
    await server.close();
  });

  test('an MQTT client that trusts the CA connects over TLS and messages flow between TLS and plain TCP', async () => {
    assert.ok(server.tlsPort !== undefined && server.tlsPort > 0, 'tlsPort is reported');
    assert.notEqual(server.tlsPort, server.port);
    const subscriber = await connectTls(server.tlsPort);
    await subscriber.subscribeAsync('tls/#', { qos: 1 });
    const publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.port}`, { reconnectPeriod: 0, protocolVersion: 4 });
    open.add(publisher);
    const received = collectMessages(subscriber, 1);
    await publisher.publishAsync('tls/a', 'over tls', { qos: 1 });
    const [message] = await received;
    assert.equal(message?.payload.toString(), 'over tls');
  });

  test('a client that does not trust the server certificate refuses the connection', async () => {
    const error = await tlsRefusal(server.tlsPort!, { ca: certs.rogueClient('x').cert });
    assert.match(error.message, /certificate|self.signed|unable to verify/i);
  });

  test('plain MQTT sent to the TLS port gets no CONNACK and the connection is closed', async () => {
    const raw = await RawClient.connect(server.tlsPort!);
    try {
      raw.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'plain' });
      await raw.expectClosed(3000);
    } finally {
      raw.destroy();
    }
  });
});

describe('TLS listener requiring client certificates', () => {
  let server: StarlingServer;
  const identities: ClientIdentity[] = [];
  before(async () => {
    server = await startTestBroker({
      tls: { port: 0, certFile: certs.server.certFile, keyFile: certs.server.keyFile, caFile: certs.caFile, requireClientCert: true, usernameField: 'CN' },
      plugins: [{ name: 'spy', onConnect: (client) => identities.push(client) }],
    });
  });
  after(async () => {
    await server.close();
  });

  test('a client certificate signed by the CA is accepted; its subject reaches plugins and its CN becomes the user name', async () => {
    const device = certs.client('device-7');
    const client = await connectTls(server.tlsPort!, { cert: device.cert, key: device.key, clientId: 'dev7', username: 'claimed-name' });
    assert.ok(client.connected);
    const identity = identities.find((i) => i.clientId === 'dev7');
    assert.ok(identity !== undefined, 'onConnect saw the client');
    assert.equal(identity.listener, 'tls');
    assert.equal(identity.username, 'device-7', 'the CN replaced the CONNECT user name');
    assert.equal(identity.certificateSubject?.['CN'], 'device-7');
    assert.equal(identity.certificateSubject?.['O'], 'Starling Test');
  });

  test('a client without a certificate is refused during the handshake', async () => {
    const error = await tlsRefusal(server.tlsPort!, {});
    assert.ok(error.message.length > 0);
    assert.ok(!identities.some((i) => i.clientId === 'no-cert'));
  });

  test('a client certificate from another CA is refused', async () => {
    const rogue = certs.rogueClient('device-7');
    await tlsRefusal(server.tlsPort!, { cert: rogue.cert, key: rogue.key, clientId: 'rogue' });
    assert.ok(!identities.some((i) => i.clientId === 'rogue'), 'the rogue client never reached CONNECT');
  });
});

describe('TLS settings and certificate reload', () => {
  let server: StarlingServer;
  let certFile: string;
  let keyFile: string;
  before(async () => {
    certFile = join(certs.dir, 'live.crt');
    keyFile = join(certs.dir, 'live.key');
    copyFileSync(certs.server.certFile, certFile);
    copyFileSync(certs.server.keyFile, keyFile);
    server = await startTestBroker({ tls: { port: 0, certFile, keyFile, minVersion: 'TLSv1.3' } });
  });
  after(async () => {
    await server.close();
  });

  test('minVersion TLSv1.3 refuses a TLS 1.2 client and accepts a TLS 1.3 one', async () => {
    await tlsRefusal(server.tlsPort!, { maxVersion: 'TLSv1.2' } as IClientOptions);
    const client = await connectTls(server.tlsPort!, { minVersion: 'TLSv1.3' } as IClientOptions);
    assert.ok(client.connected);
    await client.endAsync(true);
  });

  test('reload serves the new certificate to new clients and keeps open connections; a broken file keeps the old one', async () => {
    const before = await servedSerial(server.tlsPort!);
    const client = await connectTls(server.tlsPort!);
    await client.subscribeAsync('reload/t', { qos: 1 });

    const fresh = certs.newServer('server-2');
    copyFileSync(fresh.certFile, certFile);
    copyFileSync(fresh.keyFile, keyFile);
    assert.equal(await server.reload(), true);
    const afterReload = await servedSerial(server.tlsPort!);
    assert.notEqual(afterReload, before, 'new handshakes get the new certificate');

    // The connection made before the reload still works.
    const received = collectMessages(client, 1);
    server.publish({ topic: 'reload/t', payload: 'still here', qos: 1 });
    assert.equal((await received)[0]?.payload.toString(), 'still here');
    assert.ok(client.connected);

    writeFileSync(certFile, 'not a certificate');
    assert.equal(await server.reload(), false, 'a broken certificate is rejected');
    assert.equal(await servedSerial(server.tlsPort!), afterReload, 'the previous certificate stays in force');
  });
});
