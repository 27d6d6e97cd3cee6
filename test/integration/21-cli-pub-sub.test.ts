/** `starling pub` / `starling sub` end to end, as child processes of the built CLI (dist/). */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type Message, type MqttClient } from '../../src/client/index.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker, subscriptionWatcher } from '../helpers/broker.js';
import { hasMosquitto, startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const running = new Set<ChildProcess>();

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli/main.js ARGS`, feeding `input` on stdin; kills it (by PID) after `timeoutMs`. */
function cli(args: string[], input?: string, timeoutMs = 10_000): Promise<Result> {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first`);
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  if (input !== undefined) child.stdin.end(input);
  else child.stdin.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Clients the tests opened: ended after the file even when an assertion failed first. */
const clients = new Set<MqttClient>();
async function open(url: string): Promise<MqttClient> {
  const client = await connect(url, { reconnect: false });
  clients.add(client);
  return client;
}

after(() => {
  for (const child of running) child.kill('SIGKILL');
  for (const c of clients) c.destroy();
});

describe('21 starling pub / sub (Starling broker)', () => {
  let broker: StarlingServer;
  let url: string;
  const watcher = subscriptionWatcher();
  before(async () => {
    broker = await startTestBroker({ authenticate: (req) => (req.username === 'intruder' ? 'bad-credentials' : 'accept'), plugins: [watcher.plugin] });
    url = `mqtt://127.0.0.1:${broker.port}`;
  });
  after(async () => {
    await broker.close();
  });

  test('pub -m at QoS 1 and 2 reaches a subscriber; exit code 0', async () => {
    const sub = await open(url);
    const s = await sub.subscribe('cli/pub/#', { qos: 2 });
    const it = s[Symbol.asyncIterator]();
    const r1 = await cli(['pub', '-h', '127.0.0.1', '-p', String(broker.port), '-t', 'cli/pub/a', '-m', 'hello', '-q', '1']);
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = await cli(['pub', '--url', url, '-t', 'cli/pub/b', '-m', 'world', '-q', '2', '-r']);
    assert.equal(r2.code, 0, r2.stderr);
    const got: Message[] = [(await it.next()).value as Message, (await it.next()).value as Message];
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.qos]), [['cli/pub/a', 'hello', 1], ['cli/pub/b', 'world', 2]]);
    await sub.end();
  });

  test('pub -l publishes one message per stdin line', async () => {
    const sub = await open(url);
    const s = await sub.subscribe('cli/lines', { qos: 1 });
    const it = s[Symbol.asyncIterator]();
    const r = await cli(['pub', '--url', url, '-t', 'cli/lines', '-l', '-q', '1'], 'one\ntwo\nthree\n');
    assert.equal(r.code, 0, r.stderr);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(((await it.next()).value as Message).payload.toString());
    assert.deepEqual(got, ['one', 'two', 'three']);
    await sub.end();
  });

  test('sub --json -C 2 prints one JSON object per message (text or base64) and exits 0', async () => {
    const pub = await open(url);
    await pub.publish('cli/json/text', 'héllo', { qos: 1, retain: true });
    await pub.publish('cli/json/bin', Buffer.from([0xff, 0x00, 0xfe]), { qos: 1, retain: true });
    await pub.end();
    const r = await cli(['sub', '--url', url, '-t', 'cli/json/#', '-q', '1', '-C', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const byTopic = new Map(lines.map((l) => [l['topic'], l]));
    assert.deepEqual(byTopic.get('cli/json/text'), { topic: 'cli/json/text', payload: 'héllo', qos: 1, retain: true });
    assert.deepEqual(byTopic.get('cli/json/bin'), { topic: 'cli/json/bin', payload: Buffer.from([0xff, 0, 0xfe]).toString('base64'), encoding: 'base64', qos: 1, retain: true });
  });

  test('sub -F and -v formats; -R skips retained messages', async () => {
    const pub = await open(url);
    await pub.publish('cli/fmt/x', 'p1', { qos: 1, retain: true });
    const f = await cli(['sub', '--url', url, '-t', 'cli/fmt/#', '-C', '1', '-F', '%t|%p|%q|%r|%l']);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout, 'cli/fmt/x|p1|0|1|2\n');
    const v = await cli(['sub', '--url', url, '-t', 'cli/fmt/#', '-C', '1', '-v']);
    assert.equal(v.stdout, 'cli/fmt/x p1\n');
    // The live message is published once the broker has the subscription (no fixed wait).
    const subscribed = watcher.subscribed('cli/fmt/+');
    const started = cli(['sub', '--url', url, '-t', 'cli/fmt/+', '-C', '1', '-R', '-W', '10']);
    await subscribed;
    await pub.publish('cli/fmt/y', 'live', { qos: 1 });
    const live = await started;
    assert.equal(live.code, 0, live.stderr);
    assert.equal(live.stdout, 'live\n');
    await pub.end();
  });

  test('exit codes: 2 refused (CONNACK named in words), 4 no server, 3 timeout, 1 usage', async () => {
    const refused = await cli(['pub', '--url', `mqtt://intruder:pw@127.0.0.1:${broker.port}`, '-t', 'x', '-m', 'y']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /connection refused: bad user name or password/);
    const none = await cli(['pub', '-h', '127.0.0.1', '-p', '1', '-t', 'x', '-m', 'y']);
    assert.equal(none.code, 4);
    assert.match(none.stderr, /ECONNREFUSED/);
    const timeout = await cli(['sub', '--url', url, '-t', 'cli/nothing', '-W', '1']);
    assert.equal(timeout.code, 3);
    const usage = await cli(['pub', '--url', url, '-m', 'no topic']);
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /topic is required/);
    const bad = await cli(['sub', '--url', url, '-t', 'a/#/b']);
    assert.equal(bad.code, 1);
  });

  test('sub -c resumes a persistent session and prints the messages queued while it was away', async () => {
    const port = String(broker.port);
    const first = await cli(['sub', '-p', port, '-i', 'cli-resume', '-c', '-q', '1', '-t', 'cli/resume/#', '-W', '1']);
    assert.equal(first.code, 3, first.stderr); // -W: stopped by the timeout, session kept
    for (const m of ['one', 'two', 'three']) {
      const r = await cli(['pub', '-p', port, '-q', '1', '-t', 'cli/resume/t', '-m', m]);
      assert.equal(r.code, 0, r.stderr);
    }
    const back = await cli(['sub', '-p', port, '-i', 'cli-resume', '-c', '-q', '1', '-t', 'cli/resume/#', '-C', '3', '-W', '5']);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(back.stdout.trim().split('\n'), ['one', 'two', 'three']);
  });

  test('no subcommand, or a leading flag, still runs the broker (--help)', async () => {
    const r = await cli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: starling \[options\]/);
    const p = await cli(['pub', '--help']);
    assert.match(p.stdout, /Usage: starling pub/);
  });
});

describe('21 starling pub / sub (mosquitto: MQTT 5, TLS, WebSocket)', () => {
  let m: MosquittoBroker;
  before(async () => {
    // A missing broker is a failure, not a skip: run .ci/run, or apt-get install mosquitto.
    assert.ok(hasMosquitto(), 'mosquitto is not installed: run .ci/run or apt-get install -y mosquitto');
    m = await startMosquitto();
  });
  after(async () => {
    await m?.stop();
  });

  test('-V 5 with -D publish user-property: sub --json shows the properties', async () => {
    const pub = cli(['pub', '-p', String(m.port), '-h', '127.0.0.1', '-V', '5', '-t', 'v5/cli', '-m', 'x', '-q', '1', '-r', '-D', 'publish', 'user-property', 'who', 'cli', '-D', 'publish', 'content-type', 'text/plain']);
    assert.equal((await pub).code, 0);
    const r = await cli(['sub', '-p', String(m.port), '-h', '127.0.0.1', '-V', '5', '-t', 'v5/cli', '-C', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout) as { properties: { userProperties: string[][]; contentType: string } };
    assert.deepEqual(o.properties.userProperties, [['who', 'cli']]);
    assert.equal(o.properties.contentType, 'text/plain');
  });

  test('TLS flags: --cafile works, no CA fails with exit code 4; WebSocket via --url ws://', async () => {
    const ok = await cli(['pub', '-h', '127.0.0.1', '-p', String(m.tlsPort), '--cafile', m.caFile, '-t', 'tls/cli', '-m', 'x']);
    assert.equal(ok.code, 0, ok.stderr);
    const noCa = await cli(['pub', '--url', `mqtts://127.0.0.1:${m.tlsPort}`, '-t', 'tls/cli', '-m', 'x']);
    assert.equal(noCa.code, 4);
    assert.match(noCa.stderr, /certificate/i);
    const ws = await cli(['pub', '--url', `ws://127.0.0.1:${m.wsPort}/mqtt`, '-t', 'ws/cli', '-m', 'x', '-q', '2']);
    assert.equal(ws.code, 0, ws.stderr);
  });
});
