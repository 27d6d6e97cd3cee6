/**
 * Several listeners with their own settings (issue 17): TCP listeners, one with a connection limit
 * and one with its own password file, a TLS listener with client certificates whose CN is the user
 * name, and MQTT over WebSocket with TLS, all in one broker, used by MQTT.js clients. Start-up failures name the setting:
 * a missing certificate, a port in use (with its holder), an HTTP port that was asked for and is taken.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { BrokerPlugin, ClientIdentity } from '../../src/broker/hooks.js';
import { ConfigError } from '../../src/config/config.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js';
import { killAll, runProcess } from '../helpers/child-process.js';
import { requireProgram } from '../helpers/programs.js';

describe('46 listeners of every kind, each with its own settings', () => {
  let certs: TestCertificates;
  let server: StarlingServer;
  const clients: MqttClient[] = [];
  const connected: ClientIdentity[] = [];
  const port = (name: string): number => server.listeners.find((l) => l.name === name)?.port ?? assert.fail(`no listener ${name}`);
  const connect = async (url: string, options: IClientOptions = {}): Promise<MqttClient> => {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    clients.push(client);
    return client;
  };

  before(async () => {
    certs = makeTestCertificates();
    const passwd = join(certs.dir, 'passwd');
    assert.equal((await runProcess(requireProgram('/usr/bin/mosquitto_passwd'), ['-c', '-b', passwd, 'carol', 'carol-pw'])).code, 0);
    const observer: BrokerPlugin = { name: 'test-observer', onConnect: (client) => void connected.push(client) };
    server = await startTestBroker({
      plugins: [observer],
      listeners: [
        { name: 'inside', protocol: 'mqtt', port: 0, host: '127.0.0.1' },
        { name: 'limited', protocol: 'mqtt', port: 0, host: '127.0.0.1', maxConnections: 1 },
        { name: 'guarded', protocol: 'mqtt', port: 0, host: '127.0.0.1', auth: { passwordFile: passwd, allowAnonymous: false } },
        { name: 'secure', protocol: 'mqtts', port: 0, host: '127.0.0.1', certFile: certs.server.certFile, keyFile: certs.server.keyFile, caFile: certs.caFile, requireClientCert: true, useIdentityAsUsername: true },
        { name: 'browsers', protocol: 'wss', port: 0, host: '127.0.0.1', path: '/mqtt', certFile: certs.server.certFile, keyFile: certs.server.keyFile },
      ],
    });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await server?.close();
    await killAll();
    certs?.cleanup();
  });

  test('every listener is bound under its name; port 0 picked a port for each', () => {
    assert.deepEqual(server.listeners.map((l) => [l.name, l.protocol, l.address]), [
      ['inside', 'mqtt', '127.0.0.1'],
      ['limited', 'mqtt', '127.0.0.1'],
      ['guarded', 'mqtt', '127.0.0.1'],
      ['secure', 'mqtts', '127.0.0.1'],
      ['browsers', 'wss', '127.0.0.1'],
    ]);
    assert.equal(new Set(server.listeners.map((l) => l.port)).size, 5);
    assert.equal(server.wsPort, port('browsers'));
    assert.equal(server.port, port('inside'));
    assert.equal(server.tlsPort, port('secure'));
  });

  test('a message published on one TCP listener reaches a subscriber on the TLS listener, whose user name is its certificate CN', async () => {
    const device = certs.client('device-7');
    const subscriber = await connect(`mqtts://127.0.0.1:${port('secure')}`, { clientId: 'tls-sub', ca: certs.ca, cert: device.cert, key: device.key, username: 'ignored' });
    await subscriber.subscribeAsync('plant/#', { qos: 1 });
    const got = new Promise<string>((resolve) => subscriber.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
    const publisher = await connect(`mqtt://127.0.0.1:${port('inside')}`, { clientId: 'tcp-pub' });
    await publisher.publishAsync('plant/press', 'on', { qos: 1 });
    assert.equal(await got, 'plant/press on');
    const identity = connected.find((c) => c.clientId === 'tls-sub');
    assert.deepEqual([identity?.listener, identity?.username], ['secure', 'device-7']);
    assert.equal(connected.find((c) => c.clientId === 'tcp-pub')?.listener, 'inside');
  });

  test('MQTT over WebSocket with TLS on its own listener: a browser-style client reaches a TCP subscriber', async () => {
    const subscriber = await connect(`mqtt://127.0.0.1:${port('inside')}`, { clientId: 'tcp-sub' });
    await subscriber.subscribeAsync('web/#', { qos: 1 });
    const got = new Promise<string>((resolve) => subscriber.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
    const browser = await connect(`wss://127.0.0.1:${port('browsers')}/mqtt`, { clientId: 'wss-pub', ca: certs.ca });
    await browser.publishAsync('web/click', 'ok', { qos: 1 });
    assert.equal(await got, 'web/click ok');
    assert.equal(connected.find((c) => c.clientId === 'wss-pub')?.listener, 'browsers');
  });

  test('a TLS client without a certificate fails the handshake on the TLS listener only', async () => {
    await assert.rejects(connect(`mqtts://127.0.0.1:${port('secure')}`, { ca: certs.ca }));
    await connect(`mqtt://127.0.0.1:${port('inside')}`);
  });

  test('per-listener connection limit: a second client on "limited" is refused while "inside" takes more', async () => {
    await connect(`mqtt://127.0.0.1:${port('limited')}`, { clientId: 'lim-1' });
    await assert.rejects(connect(`mqtt://127.0.0.1:${port('limited')}`, { clientId: 'lim-2' }), /Server unavailable|unavailable/i);
    await connect(`mqtt://127.0.0.1:${port('inside')}`, { clientId: 'in-2' });
    await connect(`mqtt://127.0.0.1:${port('inside')}`, { clientId: 'in-3' });
  });

  test('per-listener auth: "guarded" wants its password file, "inside" stays anonymous', async () => {
    await assert.rejects(connect(`mqtt://127.0.0.1:${port('guarded')}`, { clientId: 'anon' }), /Not authorized/i);
    await assert.rejects(connect(`mqtt://127.0.0.1:${port('guarded')}`, { clientId: 'bad', username: 'carol', password: 'wrong' }), /Bad username or password/i);
    await connect(`mqtt://127.0.0.1:${port('guarded')}`, { clientId: 'carol-1', username: 'carol', password: 'carol-pw' });
    await connect(`mqtt://127.0.0.1:${port('inside')}`, { clientId: 'anon-inside' });
  });

  test('a port in use names the setting, the port, the address and the process holding it', async () => {
    const taken = port('inside');
    await assert.rejects(startTestBroker({ listeners: [{ protocol: 'mqtt', port: taken, host: '127.0.0.1' }] }), (error: Error) => {
      assert.match(error.message, new RegExp(`^listeners\\[0\\] \\(mqtt:${taken}\\): port ${taken} on 127\\.0\\.0\\.1 is already in use \\(EADDRINUSE\\), `));
      assert.match(error.message, new RegExp(`held by node \\(pid ${process.pid}\\)|find it with: ss -ltnp`));
      return true;
    });
  });

  test('a missing TLS certificate names the setting and the path before anything starts', async () => {
    const missing = join(certs.dir, 'missing.crt');
    await assert.rejects(
      startTestBroker({ listeners: [{ protocol: 'mqtts', port: 0, host: '127.0.0.1', certFile: missing, keyFile: certs.server.keyFile }] }),
      (error: unknown) => error instanceof ConfigError && error.message === `listeners[0].certFile: cannot read ${JSON.stringify(missing)}: no such file`,
    );
  });

  test('an HTTP port that was asked for and is taken fails the start (it does not run without HTTP)', async () => {
    const taken = port('inside');
    await assert.rejects(startTestBroker({ http: { port: taken } }), /http\.port: port \d+ on 127\.0\.0\.1 is already in use \(EADDRINUSE\)/);
  });
});
