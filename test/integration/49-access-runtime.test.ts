/**
 * Users, roles, ACL rules and bans managed at runtime through the REST API, seen by real clients
 * (mosquitto_pub / mosquitto_sub 3.1.1 and MQTT.js 5.0): a user added through the API connects at
 * once; a role's rules allow and deny, and a change applies at a connected client's next PUBLISH;
 * deleting a user disconnects its clients; bans by client id, user name and address (CIDR); the
 * records survive a restart of the embedded store. The broker runs with `auth.allowAnonymous: false`
 * and no password file: only the users managed through the API get in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { StarlingServer } from '../../src/server.js';
import { endClients, expectStatus, mqttConnect, refusal, serverDisconnect } from '../helpers/access.js';
import { startTestBroker, subscriptionWatcher } from '../helpers/broker.js';
import { killAll, runProcess, startProcess } from '../helpers/child-process.js';
import { requireProgram } from '../helpers/programs.js';
import { tempDir } from '../helpers/temp-dir.js';

const PUB = '/usr/bin/mosquitto_pub';
const SUB = '/usr/bin/mosquitto_sub';
const PASSWORD = 'correct horse battery';

let server: StarlingServer;
let http: number;
const dataDir = tempDir('starling-access-');
const watcher = subscriptionWatcher();

const start = (): Promise<StarlingServer> => startTestBroker({ store: 'embedded', dataDir, http: { port: 0 }, auth: { allowAnonymous: false }, plugins: [watcher.plugin] });
const FRESH = { username: 'fresh', password: PASSWORD };

/** The SUBACK codes of one SUBSCRIBE (MQTT.js rejects when one is a failure; the codes are in its packet). */
function subackCodes(client: MqttClient, filters: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(filters, { qos: 1 }, (error, granted) => {
      const packet = (error as { packet?: { granted?: number[] } } | null)?.packet;
      if (packet?.granted !== undefined) resolve(packet.granted);
      else if (error) reject(error);
      else resolve((granted ?? []).map((g) => g.qos));
    });
  });
}
const api = (status: number, method: string, path: string, body?: unknown): ReturnType<typeof expectStatus> => expectStatus(http, status, method, path, body);

describe('49 access control at runtime (users, roles, ACL rules, bans)', () => {
  before(async () => {
    requireProgram(PUB);
    requireProgram(SUB);
    server = await start();
    http = server.httpPort!;
  });
  after(async () => {
    endClients();
    await killAll();
    await server?.close();
  });

  test('a user added through the API connects at once (mosquitto_pub 3.1.1, MQTT.js 5.0); a wrong password or an unknown name gets 4 / 0x86, no credentials 5 / 0x87', async () => {
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'early', username: 'fresh', password: PASSWORD }), 0x86, 'not yet a user');
    await api(201, 'POST', '/api/users', { username: 'fresh', password: PASSWORD });
    const pub = await runProcess(PUB, ['-p', String(server.port), '-u', 'fresh', '-P', PASSWORD, '-t', 'hello', '-m', 'hi', '-q', '1']);
    assert.equal(pub.code, 0, pub.stderr);
    const v5 = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'fresh-v5', username: 'fresh', password: PASSWORD });
    assert.ok(v5.connected);
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'fresh-bad', username: 'fresh', password: 'not the password' }), 0x86);
    const wrong = await runProcess(PUB, ['-p', String(server.port), '-u', 'fresh', '-P', 'wrong', '-t', 'hello', '-m', 'hi']);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /bad user name or password/i);
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'nobody', username: 'nobody', password: PASSWORD }), 0x86, 'an unknown name is answered as a wrong password');
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'anonymous' }), 0x87);
  });

  test('ACL per role: grants and denies (MQTT 5 PUBACK / SUBACK 0x87); mosquitto_sub never receives a denied topic; a role change applies at the next PUBLISH', async () => {
    await api(201, 'POST', '/api/roles', { name: 'sensor', acl: [{ topic: 'sensors/%u/#', access: 'readwrite' }, { topic: 'sensors/+/secret', access: 'deny' }] });
    await api(201, 'POST', '/api/roles', { name: 'reader', acl: [{ topic: 'sensors/#', access: 'read' }, { topic: 'sensors/+/private/#', access: 'deny' }] });
    await api(201, 'POST', '/api/users', { username: 's1', password: PASSWORD, roles: ['sensor'] });
    await api(201, 'POST', '/api/users', { username: 'watcher', password: PASSWORD, roles: ['reader'] });
    const s1 = await mqttConnect(server.port, { protocolVersion: 5, clientId: 's1', username: 's1', password: PASSWORD });
    // Allowed and denied publishes.
    await s1.publishAsync('sensors/s1/temp', '21', { qos: 1 });
    await assert.rejects(s1.publishAsync('sensors/s2/temp', 'x', { qos: 1 }), (e: { code?: number }) => e.code === 0x87, 'another sensor\'s topic');
    await assert.rejects(s1.publishAsync('sensors/s1/secret', 'x', { qos: 1 }), (e: { code?: number }) => e.code === 0x87, 'deny wins over the role\'s grant');
    assert.deepEqual(await subackCodes(s1, ['sensors/s1/cmd', 'sensors/#']), [1, 0x87], 'own subtree yes, everything no');
    // mosquitto_sub as the reader: a wide subscription, denied topics filtered at delivery.
    const subscribed = watcher.subscribed('sensors/#');
    const sub = startProcess('/usr/bin/stdbuf', ['-oL', SUB, '-p', String(server.port), '-u', 'watcher', '-P', PASSWORD, '-t', 'sensors/#', '-v', '-C', '2', '-W', '10']);
    await subscribed;
    await s1.publishAsync('sensors/s1/private/x', 'hidden', { qos: 1 });
    await s1.publishAsync('sensors/s1/a', 'one', { qos: 1 });
    await s1.publishAsync('sensors/s1/b', 'two', { qos: 1 });
    assert.equal(await sub.exited, 0, sub.lines.join('\n'));
    assert.deepEqual(sub.lines, ['sensors/s1/a one', 'sensors/s1/b two']);
    // The role changes while s1 is connected: its next PUBLISH follows the new rules.
    await api(200, 'PUT', '/api/roles/sensor', { acl: [{ topic: 'sensors/%u/#', access: 'read' }] });
    await assert.rejects(s1.publishAsync('sensors/s1/temp', '22', { qos: 1 }), (e: { code?: number }) => e.code === 0x87, 'write taken away');
    await api(200, 'PUT', '/api/users/s1', { acl: [{ topic: 'sensors/s1/temp', access: 'write' }] });
    await s1.publishAsync('sensors/s1/temp', '23', { qos: 1 });
  });

  test('deleting a user disconnects its connected clients (MQTT 5: DISCONNECT 0x98; 3.1.1: closed) and refuses its next CONNECT', async () => {
    await api(201, 'POST', '/api/users', { username: 'leaving', password: PASSWORD });
    const v5 = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'leaving-5', username: 'leaving', password: PASSWORD });
    const v4 = await mqttConnect(server.port, { protocolVersion: 4, clientId: 'leaving-4', username: 'leaving', password: PASSWORD });
    const other = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'staying', ...FRESH });
    const [code5, code4] = [serverDisconnect(v5), serverDisconnect(v4)];
    await api(204, 'DELETE', '/api/users/leaving');
    assert.equal(await code5, 0x98);
    assert.equal(await code4, undefined);
    assert.ok(other.connected, 'other users stay');
    assert.equal(await refusal(server.port, { protocolVersion: 4, clientId: 'leaving-again', username: 'leaving', password: PASSWORD }), 4, 'no such user any more');
  });

  test('bans by client id, user name and address: connected clients are disconnected (0x98), new CONNECTs get 0x8A (MQTT 5) / 5 (3.1.1); lifting a ban lets them in', async () => {
    await api(201, 'POST', '/api/users', { username: 'mallory', password: PASSWORD });
    const byId = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'spammer', ...FRESH });
    const byName = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'm-1', username: 'mallory', password: PASSWORD });
    const idGone = serverDisconnect(byId);
    const idBan = (await api(201, 'POST', '/api/bans', { clientId: 'spammer', reason: 'flooding' })).body;
    assert.equal(await idGone, 0x98);
    assert.ok(byName.connected, 'a client id ban touches that client only');
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'spammer', ...FRESH }), 0x8a);
    const pubBanned = await runProcess(PUB, ['-p', String(server.port), '-i', 'spammer', '-u', 'fresh', '-P', PASSWORD, '-t', 't', '-m', 'x']);
    assert.notEqual(pubBanned.code, 0);
    assert.match(pubBanned.stderr, /not authori[sz]ed/i, '3.1.1: return code 5');
    const nameGone = serverDisconnect(byName);
    await api(201, 'POST', '/api/bans', { username: 'mallory', until: new Date(Date.now() + 3_600_000).toISOString() });
    assert.equal(await nameGone, 0x98);
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'm-2', username: 'mallory', password: PASSWORD }), 0x8a);
    // The whole loopback range: every client here, this test's own included.
    const anyone = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'anyone', ...FRESH });
    const anyoneGone = serverDisconnect(anyone);
    const range = (await api(201, 'POST', '/api/bans', { address: '127.0.0.0/8', reason: 'lockdown' })).body;
    assert.equal(await anyoneGone, 0x98);
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'newcomer', ...FRESH }), 0x8a);
    const listed = (await api(200, 'GET', '/api/bans')).body;
    assert.equal(listed.total, 3);
    await api(204, 'DELETE', `/api/bans/${range.id}`);
    await api(204, 'DELETE', `/api/bans/${idBan.id}`);
    assert.ok((await mqttConnect(server.port, { protocolVersion: 5, clientId: 'spammer', ...FRESH })).connected, 'lifted');
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'm-3', username: 'mallory', password: PASSWORD }), 0x8a, 'the user name ban stays');
    const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
    assert.match(metrics, /^starling_access_banned_total [1-9]\d*$/m);
    assert.match(metrics, /^starling_access_bans 1$/m);
  });

  test('users, roles and bans survive a restart of the embedded store', async () => {
    await server.close();
    server = await start();
    http = server.httpPort!;
    const users = (await api(200, 'GET', '/api/users')).body;
    assert.deepEqual(users.items.map((u: { username: string }) => u.username).sort(), ['fresh', 'mallory', 's1', 'watcher']);
    assert.deepEqual((await api(200, 'GET', '/api/roles/reader')).body.users, ['watcher']);
    assert.ok((await mqttConnect(server.port, { protocolVersion: 5, clientId: 'back', username: 's1', password: PASSWORD })).connected);
    assert.equal(await refusal(server.port, { protocolVersion: 5, clientId: 'm-4', username: 'mallory', password: PASSWORD }), 0x8a);
  });
});
