/**
 * Interoperability: independent client implementations against a real Starling on a free port.
 * MQTT.js (in-process), mosquitto_pub / mosquitto_sub and Eclipse Paho Python (child processes), each
 * in MQTT 3.1.1 and 3.1, alone and across one another. A missing client is a failure, not a skip: an
 * untested interop is not done (`.ci/run` installs the Debian packages).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import type { IClientOptions, IConnackPacket, MqttClient } from 'mqtt';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';

type Version = 3 | 4;
type QoS = 0 | 1 | 2;
type ClientKind = 'mqtt.js' | 'mosquitto' | 'paho';

/** One application message as a client reports it. */
interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

const VERSIONS: readonly { version: Version; name: string; mosquitto: string; paho: string }[] = [
  { version: 4, name: 'MQTT 3.1.1', mosquitto: 'mqttv311', paho: '311' },
  { version: 3, name: 'MQTT 3.1', mosquitto: 'mqttv31', paho: '31' },
];
const QOS_LEVELS: readonly QoS[] = [0, 1, 2];
/** Debian's interpreter: it has python3-paho-mqtt even when a pyenv python3 comes first on PATH. */
const PYTHON = process.env['STARLING_TEST_PYTHON'] ?? '/usr/bin/python3';
const PAHO_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'paho_roundtrip.py');
/** Upper bound for any single child process. */
const PROCESS_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 30_000;
const WAIT_MS = 5_000;

let server: StarlingServer;
const liveChildren = new Set<ChildProcess>();
const liveClients = new Set<MqttClient>();
let uniq = 0;

/** A short name unique in this run (client ids stay within MQTT 3.1's 23 characters). */
function unique(prefix: string): string {
  uniq++;
  return `${prefix}${uniq}-${process.pid % 10_000}`;
}

// ---------------------------------------------------------------------------------------------
// Tool discovery: fail loudly with the fix when a client is missing.

const toolChecks = new Map<string, string | undefined>();

function findExecutable(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function requireMosquittoClients(): void {
  for (const name of ['mosquitto_pub', 'mosquitto_sub']) {
    if (!toolChecks.has(name)) toolChecks.set(name, findExecutable(name));
    if (toolChecks.get(name) === undefined) {
      assert.fail(`${name} is not installed: run .ci/run, or install the Debian package: apt-get install -y mosquitto-clients`);
    }
  }
}

function requirePaho(): void {
  if (!toolChecks.has('paho')) {
    const probe = spawnSync(PYTHON, ['-c', 'import paho.mqtt.client'], { timeout: 10_000, encoding: 'utf8' });
    toolChecks.set('paho', probe.status === 0 ? PYTHON : undefined);
    if (probe.status !== 0) {
      const lastLine = (probe.stderr ?? '').trim().split('\n').pop() ?? '';
      toolChecks.set('paho-error', probe.error?.message ?? lastLine);
    }
  }
  if (toolChecks.get('paho') === undefined) {
    assert.fail(
      `Paho Python is not usable with ${PYTHON} (${toolChecks.get('paho-error') ?? 'unknown error'}): ` +
        'run .ci/run, or install the Debian package: apt-get install -y python3-paho-mqtt',
    );
  }
}

function requireTool(kind: ClientKind): void {
  if (kind === 'mosquitto') requireMosquittoClients();
  else if (kind === 'paho') requirePaho();
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one bounded by a timeout and killed by PID in cleanup.

interface Proc {
  readonly child: ChildProcess;
  readonly describe: string;
  stdout: string;
  stderr: string;
  /** Resolves when the process has exited (normally, by signal, or killed on timeout). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>;
}

function killChild(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function spawnBounded(command: string, args: readonly string[], timeoutMs = PROCESS_TIMEOUT_MS): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killChild(child);
  }, timeoutMs);
  const proc: Proc = {
    child,
    describe: `${command} ${args.join(' ')}`,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => {
      child.on('error', (error) => {
        proc.stderr += `spawn error: ${error.message}\n`;
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        liveChildren.delete(child);
        resolve({ code, signal, timedOut });
      });
    }),
  };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    proc.stdout += text;
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    proc.stderr += text;
  });
  return proc;
}

/** Runs a process to completion and asserts it exited 0. */
async function runOk(command: string, args: readonly string[]): Promise<Proc> {
  const proc = spawnBounded(command, args);
  const result = await proc.exited;
  assert.equal(
    result.code,
    0,
    `${proc.describe} exited with ${result.code ?? result.signal}${result.timedOut ? ' (timed out)' : ''}\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`,
  );
  return proc;
}

/** Waits until the process prints a line matching `pattern`; fails if it exits or the wait times out. */
async function waitForOutput(proc: Proc, pattern: RegExp, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(proc.stdout)) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      assert.fail(`${proc.describe} exited before printing ${pattern}\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`);
    }
    if (Date.now() > deadline) {
      assert.fail(`${proc.describe} did not print ${pattern} within ${timeoutMs} ms\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`);
    }
    await sleep(10);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// MQTT.js

interface MqttHandle {
  readonly client: MqttClient;
  readonly connack: IConnackPacket;
  readonly received: Received[];
}

async function connectMqttJs(version: Version, extra: IClientOptions = {}): Promise<MqttHandle> {
  const client = mqtt.connect({
    host: '127.0.0.1',
    port: server.port,
    protocolVersion: version,
    protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
    clientId: unique('js'),
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    ...extra,
  });
  liveClients.add(client);
  // Listen before CONNACK: a resumed session delivers queued messages right after it.
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    received.push({ topic, payload: payload.toString('utf8'), qos: packet.qos, retain: packet.retain });
  });
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`MQTT.js v${version}: no CONNACK within ${WAIT_MS} ms`)), WAIT_MS);
    client.once('connect', (packet) => {
      clearTimeout(timer);
      resolve(packet);
    });
    client.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  return { client, connack, received };
}

async function endMqttJs(handle: MqttHandle): Promise<void> {
  await handle.client.endAsync();
  liveClients.delete(handle.client);
}

/** Polls until `received` holds at least `count` messages; fails with what did arrive. */
async function waitForMessages(received: readonly Received[], count: number, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (received.length < count) {
    if (Date.now() > deadline) assert.fail(`${what}: ${received.length} of ${count} messages within ${WAIT_MS} ms: ${JSON.stringify(received)}`);
    await sleep(10);
  }
}

function byPayload(a: Received, b: Received): number {
  return a.payload < b.payload ? -1 : a.payload > b.payload ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// mosquitto_sub output (with -F) and Paho JSON output

/** mosquitto_sub format: a marker, then QoS, retain flag, topic and payload (-F overrides -v). */
const MOSQ_FORMAT = 'MSG %q %r %t %p';

function parseMosquittoLines(stdout: string): Received[] {
  const out: Received[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^MSG (\d) ([01]) (\S+) (.*)$/.exec(line);
    if (match === null) continue;
    out.push({ qos: Number(match[1]), retain: match[2] === '1', topic: match[3] ?? '', payload: match[4] ?? '' });
  }
  return out;
}

/** The last JSON object printed by the Paho fixture. */
function parsePahoResult(proc: Proc): { ok?: boolean; messages?: Received[]; problems?: string[]; error?: string } {
  const lines = proc.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  const last = lines[lines.length - 1];
  assert.ok(last !== undefined, `no JSON from ${proc.describe}\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`);
  return JSON.parse(last) as { ok?: boolean; messages?: Received[]; problems?: string[]; error?: string };
}

/**
 * Starts mosquitto_sub with line-buffered stdout: its -d lines ("Subscribed (mid: 1)", printed once
 * SUBACK is in, which is when the subscriber is ready) are not flushed otherwise when stdout is a pipe.
 * stdbuf (coreutils) execs the command, so the PID is mosquitto_sub's own.
 */
function spawnMosquittoSub(args: readonly string[]): Proc {
  return spawnBounded('stdbuf', ['-oL', 'mosquitto_sub', ...args]);
}

function mosquittoArgs(version: Version): string[] {
  return ['-h', '127.0.0.1', '-p', String(server.port), '-V', version === 3 ? 'mqttv31' : 'mqttv311'];
}

function pahoArgs(mode: string, version: Version, topic: string): string[] {
  return [PAHO_SCRIPT, mode, '--port', String(server.port), '--protocol', version === 3 ? '31' : '311', '--topic', topic, '--client-id', unique('py'), '--timeout', '10'];
}

// ---------------------------------------------------------------------------------------------
// Cross-client adapters: a subscriber that is ready once its SUBACK arrived, and a publisher.

interface Subscriber {
  /** Waits for the expected messages and returns them. */
  collect(): Promise<Received[]>;
}

async function startSubscriber(kind: ClientKind, version: Version, topic: string, count: number): Promise<Subscriber> {
  switch (kind) {
    case 'mqtt.js': {
      const handle = await connectMqttJs(version);
      await handle.client.subscribeAsync(topic, { qos: 2 });
      return {
        async collect() {
          await waitForMessages(handle.received, count, `MQTT.js subscriber on ${topic}`);
          await endMqttJs(handle);
          return handle.received;
        },
      };
    }
    case 'mosquitto': {
      const proc = spawnMosquittoSub([...mosquittoArgs(version), '-t', topic, '-q', '2', '-C', String(count), '-d', '-F', MOSQ_FORMAT]);
      await waitForOutput(proc, /Subscribed \(mid/);
      return {
        async collect() {
          const result = await proc.exited;
          assert.equal(result.code, 0, `${proc.describe} exited with ${result.code ?? result.signal}\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`);
          return parseMosquittoLines(proc.stdout);
        },
      };
    }
    case 'paho': {
      const proc = spawnBounded(PYTHON, [...pahoArgs('subscribe', version, topic), '--count', String(count)]);
      await waitForOutput(proc, /"ready": true/);
      return {
        async collect() {
          const result = await proc.exited;
          const parsed = parsePahoResult(proc);
          assert.equal(result.code, 0, `${proc.describe} failed: ${JSON.stringify(parsed)}\nstderr: ${proc.stderr}`);
          return parsed.messages ?? [];
        },
      };
    }
  }
}

async function publishWith(kind: ClientKind, version: Version, topic: string, messages: readonly { payload: string; qos: QoS; retain?: boolean }[]): Promise<void> {
  switch (kind) {
    case 'mqtt.js': {
      const handle = await connectMqttJs(version);
      for (const m of messages) await handle.client.publishAsync(topic, m.payload, { qos: m.qos, retain: m.retain ?? false });
      await endMqttJs(handle);
      return;
    }
    case 'mosquitto':
      for (const m of messages) {
        await runOk('mosquitto_pub', [...mosquittoArgs(version), '-t', topic, '-q', String(m.qos), '-m', m.payload, ...(m.retain === true ? ['-r'] : [])]);
      }
      return;
    case 'paho':
      for (const m of messages) {
        await runOk(PYTHON, [...pahoArgs('publish', version, topic), '--qos', String(m.qos), '--message', m.payload, ...(m.retain === true ? ['--retain'] : [])]);
      }
      return;
  }
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  server = await startTestBroker();
});

after(async () => {
  for (const child of liveChildren) killChild(child);
  liveChildren.clear();
  for (const client of liveClients) client.end(true);
  liveClients.clear();
  await server.close();
});

for (const { version, name } of VERSIONS) {
  describe(`MQTT.js ${name} (protocol level ${version})`, () => {
    test(`connects, subscribes at QoS 2 and exchanges QoS 0, 1 and 2 [MQTT-3.3.5-1]`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const base = unique('js/qos/');
      const a = await connectMqttJs(version);
      assert.equal(a.connack.returnCode, 0);
      const granted = await a.client.subscribeAsync(`${base}/#`, { qos: 2 });
      assert.deepEqual(granted.map((g) => g.qos), [2]);
      const b = await connectMqttJs(version);
      for (const qos of QOS_LEVELS) await b.client.publishAsync(`${base}/q${qos}`, `js-q${qos}`, { qos });
      await waitForMessages(a.received, 3, 'subscriber');
      assert.deepEqual(
        [...a.received].sort(byPayload),
        QOS_LEVELS.map((qos) => ({ topic: `${base}/q${qos}`, payload: `js-q${qos}`, qos, retain: false })),
      );
      await endMqttJs(a);
      await endMqttJs(b);
    });

    test(`a retained message reaches a later subscriber with RETAIN set [MQTT-3.3.1-6] [MQTT-3.3.1-8]`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const topic = unique('js/ret/');
      const pub = await connectMqttJs(version);
      await pub.client.publishAsync(topic, 'kept', { qos: 1, retain: true });
      await endMqttJs(pub);
      const sub = await connectMqttJs(version);
      await sub.client.subscribeAsync(topic, { qos: 2 });
      await waitForMessages(sub.received, 1, 'retained');
      assert.deepEqual(sub.received, [{ topic, payload: 'kept', qos: 1, retain: true }]);
      await endMqttJs(sub);
    });

    test(`clean=false resumes the session and delivers the queued QoS 1 message [MQTT-3.1.2-4] [MQTT-3.2.2-2]`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const topic = unique('js/res/');
      const clientId = unique('res');
      const first = await connectMqttJs(version, { clientId, clean: false });
      await first.client.subscribeAsync(topic, { qos: 1 });
      await endMqttJs(first);

      const pub = await connectMqttJs(version);
      await pub.client.publishAsync(topic, 'while-away', { qos: 1 });
      await endMqttJs(pub);

      const second = await connectMqttJs(version, { clientId, clean: false });
      // MQTT 3.1 has no Session Present flag: its CONNACK byte 1 is reserved and stays 0.
      assert.equal(second.connack.sessionPresent, version === 4, 'CONNACK session present');
      await waitForMessages(second.received, 1, 'queued message');
      assert.deepEqual(second.received, [{ topic, payload: 'while-away', qos: 1, retain: false }]);
      await endMqttJs(second);
      // Leave no persistent session behind.
      const cleanup = await connectMqttJs(version, { clientId, clean: true });
      await endMqttJs(cleanup);
    });
  });
}

for (const { version, name, mosquitto } of VERSIONS) {
  describe(`mosquitto_pub / mosquitto_sub ${name} (-V ${mosquitto})`, () => {
    test(`mosquitto_pub QoS 0, 1, 2 → mosquitto_sub -q 2 -C 3 -v`, { timeout: TEST_TIMEOUT_MS }, async () => {
      requireMosquittoClients();
      const base = unique('mq/qos/');
      const sub = spawnMosquittoSub([...mosquittoArgs(version), '-t', `${base}/#`, '-q', '2', '-C', '3', '-v', '-d']);
      await waitForOutput(sub, /Subscribed \(mid/);
      for (const qos of QOS_LEVELS) {
        await runOk('mosquitto_pub', [...mosquittoArgs(version), '-t', `${base}/q${qos}`, '-q', String(qos), '-m', `mosq-q${qos}`]);
      }
      const result = await sub.exited;
      assert.equal(result.code, 0, `mosquitto_sub exited with ${result.code ?? result.signal}\nstdout: ${sub.stdout}\nstderr: ${sub.stderr}`);
      const lines = sub.stdout.split('\n').filter((l) => l.startsWith(`${base}/`));
      assert.deepEqual(lines.sort(), QOS_LEVELS.map((qos) => `${base}/q${qos} mosq-q${qos}`));
      // -d shows the QoS each PUBLISH arrived with: min(published, granted) [MQTT-3.3.5-1].
      for (const qos of QOS_LEVELS) {
        assert.match(sub.stdout, new RegExp(`received PUBLISH \\(d0, q${qos}, r0, m\\d+, '${base}/q${qos}'`));
      }
    });

    test(`mosquitto_pub -r → later mosquitto_sub gets it with RETAIN set [MQTT-3.3.1-6] [MQTT-3.3.1-8]`, { timeout: TEST_TIMEOUT_MS }, async () => {
      requireMosquittoClients();
      const topic = unique('mq/ret/');
      await runOk('mosquitto_pub', [...mosquittoArgs(version), '-t', topic, '-q', '2', '-m', 'kept', '-r']);
      const sub = await runOk('mosquitto_sub', [...mosquittoArgs(version), '-t', topic, '-q', '2', '-C', '1', '-F', MOSQ_FORMAT]);
      assert.deepEqual(parseMosquittoLines(sub.stdout), [{ topic, payload: 'kept', qos: 2, retain: true }]);
      // An empty retained message clears it [MQTT-3.3.1-10].
      await runOk('mosquitto_pub', [...mosquittoArgs(version), '-t', topic, '-q', '1', '-n', '-r']);
      const check = spawnBounded('mosquitto_sub', [...mosquittoArgs(version), '-t', topic, '-C', '1', '-W', '1', '-F', MOSQ_FORMAT]);
      await check.exited;
      assert.deepEqual(parseMosquittoLines(check.stdout), [], 'retained message still delivered after being cleared');
    });
  });
}

for (const { version, name, paho } of VERSIONS) {
  test(`Paho Python ${name} (MQTTv${paho}): retained + QoS 0/1/2 round trip`, { timeout: TEST_TIMEOUT_MS }, async () => {
    requirePaho();
    const proc = spawnBounded(PYTHON, pahoArgs('roundtrip', version, unique('py/rt/')));
    const result = await proc.exited;
    const parsed = parsePahoResult(proc);
    assert.equal(result.code, 0, `Paho round trip failed: ${JSON.stringify(parsed)}\nstderr: ${proc.stderr}`);
    assert.equal(parsed.ok, true);
    assert.equal(parsed.messages?.length, 4);
  });
}

const KINDS: readonly ClientKind[] = ['mqtt.js', 'mosquitto', 'paho'];
for (const { version, name } of VERSIONS) {
  describe(`cross-client ${name}: QoS 0, 1, 2 published by one, received by another at QoS 2`, () => {
    for (const from of KINDS) {
      for (const to of KINDS) {
        if (from === to) continue;
        test(`[MQTT-7.0.0-2] ${from} → ${to}`, { timeout: TEST_TIMEOUT_MS }, async () => {
          requireTool(from);
          requireTool(to);
          const topic = unique('x/');
          const messages = QOS_LEVELS.map((qos) => ({ payload: `${from}-q${qos}`, qos }));
          const subscriber = await startSubscriber(to, version, topic, messages.length);
          await publishWith(from, version, topic, messages);
          const got = await subscriber.collect();
          assert.deepEqual(
            [...got].sort(byPayload),
            messages.map((m) => ({ topic, payload: m.payload, qos: m.qos, retain: false })),
          );
        });
      }
    }
  });
}
