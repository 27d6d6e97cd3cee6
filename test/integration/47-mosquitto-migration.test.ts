/**
 * Mosquitto migration: a real mosquitto.conf (two TCP listeners, one from include_dir with
 * max_connections, a TLS listener, password file, ACL, persistence, limits, a bridge) that Debian's
 * mosquitto itself accepts is given to `starling --config`; mosquitto_pub / mosquitto_sub and
 * MQTT.js then use the listeners it declared, with the password file and the ACL in force.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js';
import { killAll, runProcess, startProcess, stopProcess, STARLING_CLI, type Started } from '../helpers/child-process.js';
import { freePort } from '../helpers/mosquitto.js';
import { requireProgram } from '../helpers/programs.js';
import { tempDir } from '../helpers/temp-dir.js';

const MOSQUITTO = '/usr/sbin/mosquitto';
const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub';
const MOSQUITTO_SUB = '/usr/bin/mosquitto_sub';
const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';

describe('47 a mosquitto.conf that mosquitto accepts runs Starling with the same listeners, users and ACL', () => {
  let certs: TestCertificates;
  let conf: string;
  let ports: { first: number; second: number; tls: number; bridgeTarget: number };
  let starling: Started;
  const clients: mqtt.MqttClient[] = [];

  before(async () => {
    for (const program of [MOSQUITTO, MOSQUITTO_PUB, MOSQUITTO_SUB, MOSQUITTO_PASSWD]) requireProgram(program);
    certs = makeTestCertificates();
    const dir = tempDir('starling-47-');
    ports = { first: await freePort(), second: await freePort(), tls: await freePort(), bridgeTarget: await freePort() };
    const passwd = join(dir, 'passwd');
    assert.equal((await runProcess(MOSQUITTO_PASSWD, ['-c', '-b', passwd, 'alice', 'alice-pw'])).code, 0);
    assert.equal((await runProcess(MOSQUITTO_PASSWD, ['-b', passwd, 'bob', 'bob-pw'])).code, 0);
    writeFileSync(join(dir, 'acl'), 'user alice\ntopic readwrite sensors/#\n\nuser bob\ntopic read sensors/#\n');
    mkdirSync(join(dir, 'data'));
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'conf.d', 'second.conf'), `# from include_dir\nlistener ${ports.second} 127.0.0.1\nmax_connections 2\n`);
    conf = join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        '# A Mosquitto 2 configuration, as a user would bring it.',
        // As root, mosquitto drops to the "mosquitto" user, who cannot read the temporary directory.
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        'per_listener_settings false',
        'allow_anonymous false',
        `password_file ${passwd}`,
        `acl_file ${join(dir, 'acl')}`,
        'persistence true',
        `persistence_location ${join(dir, 'data')}/`,
        'max_inflight_messages 20',
        'max_queued_messages 1000',
        'message_size_limit 65536',
        'max_keepalive 120',
        'retain_available true',
        'log_dest stderr',
        'log_type all',
        '',
        `listener ${ports.first} 127.0.0.1`,
        '',
        `listener ${ports.tls} 127.0.0.1`,
        `cafile ${certs.caFile}`,
        `certfile ${certs.server.certFile}`,
        `keyfile ${certs.server.keyFile}`,
        '',
        `include_dir ${join(dir, 'conf.d')}`,
        '',
        'connection cloud',
        `address 127.0.0.1:${ports.bridgeTarget}`,
        'topic sensors/# out 1 "" edge-1/',
        'topic cmd/# in 1 edge-1/ ""',
        'remote_clientid edge-1',
        'cleansession true',
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    for (const client of clients) client.end(true);
    await killAll();
    certs?.cleanup();
  });

  test('Debian mosquitto accepts the file: it opens every listener it declares', async () => {
    const mosquitto = startProcess(MOSQUITTO, ['-c', conf]);
    await mosquitto.line(new RegExp(`Opening ipv4 listen socket on port ${ports.second}`));
    await mosquitto.line(new RegExp(`Opening ipv4 listen socket on port ${ports.tls}`));
    await mosquitto.line(new RegExp(`Opening ipv4 listen socket on port ${ports.first}`));
    assert.equal(mosquitto.child.exitCode, null, 'mosquitto is running with the file');
    // Only the file is under test here: a mosquitto slow to leave (its bridge retrying) is killed.
    await stopProcess(mosquitto);
  });

  test('starling --config mosquitto.conf listens where the file says and lists what it did not translate', async () => {
    starling = startProcess(process.execPath, [STARLING_CLI, '--config', conf, '--no-http']);
    for (const port of [ports.first, ports.second]) await starling.line(new RegExp(`MQTT listening on mqtt://127\\.0\\.0\\.1:${port}"`));
    await starling.line(new RegExp(`MQTT over TLS listening on mqtts://127\\.0\\.0\\.1:${ports.tls}"`));
    assert.match(await starling.line(/log_dest is not translated/), /"level":"warn"/);
    // The bridge runs: nothing listens at its address, so it says so once and keeps retrying.
    assert.match(await starling.line(/"bridge":"cloud"/), new RegExp(`bridge \\\\"cloud\\\\" cannot connect to mqtt://127\\.0\\.0\\.1:${ports.bridgeTarget}: .*ECONNREFUSED`));
    await starling.line(/store opened/);
    assert.ok(starling.lines.some((l) => l.includes('"store":"lmdb"')), 'persistence true: the durable store');
  });

  test('the password file is in force on every listener: a wrong password and an anonymous client are refused', async () => {
    const wrong = await runProcess(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(ports.first), '-u', 'alice', '-P', 'nope', '-t', 'sensors/x', '-m', 'x']);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /not authori[sz]ed|bad user ?name or password/i);
    const anonymous = await runProcess(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(ports.second), '-t', 'sensors/x', '-m', 'x']);
    assert.notEqual(anonymous.code, 0, `allow_anonymous false: ${anonymous.stdout}${anonymous.stderr}`);
  });

  test('mosquitto_pub on one TCP listener, mosquitto_sub on the TLS one; the ACL keeps bob read-only', async () => {
    const pub = await runProcess(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(ports.second), '-u', 'alice', '-P', 'alice-pw', '-t', 'sensors/kitchen', '-m', '21.5', '-q', '1', '-r']);
    assert.equal(pub.code, 0, pub.stderr);
    // bob may read but not write: his retained message is not kept, so the subscriber sees alice's only.
    await runProcess(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(ports.first), '-u', 'bob', '-P', 'bob-pw', '-t', 'sensors/kitchen', '-m', 'forged', '-q', '1', '-r']);
    const tlsArgs = ['-h', '127.0.0.1', '-p', String(ports.tls), '--cafile', certs.caFile, '-u', 'bob', '-P', 'bob-pw'];
    const sub = await runProcess(MOSQUITTO_SUB, [...tlsArgs, '-t', 'sensors/#', '-C', '1', '-W', '8', '-v']);
    assert.equal(sub.code, 0, sub.stderr);
    assert.equal(sub.stdout.trim(), 'sensors/kitchen 21.5');
    const denied = await runProcess(MOSQUITTO_SUB, [...tlsArgs, '-V', 'mqttv5', '-t', 'secrets/#', '-C', '1', '-W', '5']);
    // mosquitto_sub 2.0.11 reports a refused subscription on stderr (and exits 0).
    assert.match(denied.stderr, /All subscription requests were denied/, 'a subscription outside the ACL is refused');
    assert.equal(denied.stdout, '');
  });

  test('max_connections of the listener from include_dir: a third client on it is refused, other listeners are not limited', async () => {
    const connect = (port: number, clientId: string): Promise<mqtt.MqttClient> =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, username: 'alice', password: 'alice-pw', reconnectPeriod: 0, connectTimeout: 5000 }).then((c) => (clients.push(c), c));
    await connect(ports.second, 'c1');
    await connect(ports.second, 'c2');
    await assert.rejects(connect(ports.second, 'c3'), /unavailable|Server unavailable|busy/i);
    await connect(ports.first, 'c4');
  });

  test('SIGTERM stops it cleanly', async () => {
    starling.child.kill('SIGTERM');
    assert.equal(await starling.exited, 0, starling.lines.slice(-8).join('\n'));
  });
});

describe('47 per_listener_settings true: each listener keeps its own password file and anonymous policy', () => {
  let conf: string;
  let open: number;
  let guarded: number;

  before(async () => {
    for (const program of [MOSQUITTO, MOSQUITTO_PUB, MOSQUITTO_PASSWD]) requireProgram(program);
    const dir = tempDir('starling-47-pls-');
    [open, guarded] = [await freePort(), await freePort()];
    const passwd = join(dir, 'passwd');
    assert.equal((await runProcess(MOSQUITTO_PASSWD, ['-c', '-b', passwd, 'dave', 'dave-pw'])).code, 0);
    conf = join(dir, 'mosquitto.conf');
    const root = process.getuid?.() === 0 ? 'user root\n' : '';
    writeFileSync(conf, `${root}per_listener_settings true\nlog_dest stderr\nlog_type all\n\nlistener ${open} 127.0.0.1\nallow_anonymous true\n\nlistener ${guarded} 127.0.0.1\nallow_anonymous false\npassword_file ${passwd}\n`);
  });

  after(killAll);

  test('mosquitto accepts the file, and Starling applies it listener by listener', async () => {
    const mosquitto = startProcess(MOSQUITTO, ['-c', conf]);
    for (const port of [open, guarded]) await mosquitto.line(new RegExp(`Opening ipv4 listen socket on port ${port}`));
    await stopProcess(mosquitto);

    const starling = startProcess(process.execPath, [STARLING_CLI, '--config', conf, '--no-http']);
    await starling.line(new RegExp(`MQTT listening on mqtt://127\\.0\\.0\\.1:${guarded}"`));
    const pub = (port: number, ...auth: string[]): ReturnType<typeof runProcess> => runProcess(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(port), ...auth, '-t', 't', '-m', 'x', '-q', '1']);
    assert.equal((await pub(open)).code, 0, 'anonymous on the open listener');
    assert.notEqual((await pub(guarded)).code, 0, 'anonymous refused on the guarded listener');
    assert.notEqual((await pub(guarded, '-u', 'dave', '-P', 'wrong')).code, 0, 'a wrong password refused');
    assert.equal((await pub(guarded, '-u', 'dave', '-P', 'dave-pw')).code, 0, 'dave with his password');
    starling.child.kill('SIGTERM');
    assert.equal(await starling.exited, 0, starling.lines.slice(-8).join('\n'));
  });
});
