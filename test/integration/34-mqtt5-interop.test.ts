/**
 * MQTT 5 interoperability: independent client implementations against a real Starling — MQTT.js
 * (protocolVersion 5, in-process), Eclipse Paho Python MQTTv5 (test/fixtures/paho_v5.py) and the
 * mosquitto_pub / mosquitto_sub 2.x clients with `-V mqttv5` and `-D` properties. A missing client
 * is a failure with an install hint, not a skip.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient, type Packet as MqttJsPacket } from 'mqtt';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';

const PYTHON = process.env['STARLING_TEST_PYTHON'] ?? '/usr/bin/python3';
const PAHO_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'paho_v5.py');
const PROCESS_TIMEOUT_MS = 12_000;
const WAIT_MS = 5_000;

let server: StarlingServer;
const liveClients = new Set<MqttClient>();
const liveChildren = new Set<ChildProcess>();
let uniq = 0;

function unique(prefix: string): string {
  uniq++;
  return `${prefix}-${uniq}-${process.pid % 10_000}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------
// Tools: a missing client fails the test with the command that installs it.

function findExecutable(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

function requireMosquitto(): void {
  for (const name of ['mosquitto_pub', 'mosquitto_sub']) {
    if (findExecutable(name) === undefined) assert.fail(`${name} is not installed: run .ci/run, or apt-get install -y mosquitto-clients`);
  }
  if (findExecutable('stdbuf') === undefined) assert.fail('stdbuf is not installed: apt-get install -y coreutils');
}

function requirePaho(): void {
  const probe = spawnSync(PYTHON, ['-c', 'import paho.mqtt.client, paho.mqtt.properties'], { timeout: 10_000, encoding: 'utf8' });
  if (probe.status !== 0) {
    const why = probe.error?.message ?? (probe.stderr ?? '').trim().split('\n').pop() ?? 'unknown error';
    assert.fail(`Paho Python (MQTTv5) is not usable with ${PYTHON} (${why}): run .ci/run, or apt-get install -y python3-paho-mqtt`);
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes, each bounded by a timeout and killed by PID in cleanup.

interface Proc {
  readonly child: ChildProcess;
  readonly describe: string;
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; timedOut: boolean }>;
}

function spawnBounded(command: string, args: readonly string[]): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
  }, PROCESS_TIMEOUT_MS);
  const proc: Proc = {
    child,
    describe: `${command} ${args.join(' ')}`,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => {
      child.on('error', (error) => {
        proc.stderr += `spawn error: ${error.message}\n`;
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        liveChildren.delete(child);
        resolve({ code, timedOut });
      });
    }),
  };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (proc.stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (proc.stderr += text));
  return proc;
}

async function expectExit0(proc: Proc): Promise<void> {
  const { code, timedOut } = await proc.exited;
  assert.equal(code, 0, `${proc.describe} exited with ${code}${timedOut ? ' (timed out)' : ''}\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`);
}

async function waitForOutput(proc: Proc, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!pattern.test(proc.stdout)) {
    if (proc.child.exitCode !== null) assert.fail(`${proc.describe} exited before printing ${pattern}\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`);
    if (Date.now() > deadline) assert.fail(`${proc.describe} did not print ${pattern}\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`);
    await sleep(20);
  }
}

/** The last JSON line a Paho fixture printed. */
function lastJson(proc: Proc): Record<string, unknown> {
  const lines = proc.stdout.trim().split('\n');
  return JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>;
}

/**
 * mosquitto_sub with line-buffered stdout (via coreutils stdbuf, which execs it: the PID is its own),
 * so its -d line "Subscribed (mid" shows when SUBACK is in.
 */
function mosquittoSub(args: readonly string[]): Proc {
  return spawnBounded('stdbuf', ['-oL', 'mosquitto_sub', ...args]);
}

function paho(mode: string, topic: string, extra: string[] = []): Proc {
  return spawnBounded(PYTHON, [PAHO_SCRIPT, mode, '--port', String(server.port), '--topic', topic, '--client-id', unique('paho5'), '--timeout', '10', ...extra]);
}

// ---------------------------------------------------------------------------------------------
// MQTT.js in MQTT 5.

async function mqttjs(options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.port}`, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 3000,
    clientId: unique('mqttjs5'),
    ...options,
  });
  liveClients.add(client);
  return client;
}

/** The next `count` messages (with their packets) an MQTT.js client receives. */
function messages(client: MqttClient, count: number, timeoutMs = WAIT_MS): Promise<{ topic: string; payload: string; packet: IPublishPacket }[]> {
  return new Promise((resolve, reject) => {
    const out: { topic: string; payload: string; packet: IPublishPacket }[] = [];
    const onMessage = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
      out.push({ topic, payload: payload.toString(), packet });
      if (out.length === count) done();
    };
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`received ${out.length} of ${count} messages within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(out);
    };
    client.on('message', onMessage);
  });
}

before(async () => {
  server = await startTestBroker();
});

after(async () => {
  for (const child of liveChildren) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.all([...liveClients].map((c) => c.endAsync(true)));
  await server.close();
});

describe('34 MQTT 5 interop: MQTT.js', () => {
  test('[MQTT-3.3.2-17] [MQTT-3.3.2-18] user properties (with a repeated name), content type and payload format reach an MQTT.js subscriber unchanged', async () => {
    const sub = await mqttjs();
    const pub = await mqttjs();
    await sub.subscribeAsync('js5/props', { qos: 1 });
    const received = messages(sub, 1);
    await pub.publishAsync('js5/props', 'héllo', {
      qos: 1,
      properties: { userProperties: { a: '1', tag: ['x', 'y'] }, contentType: 'text/plain', payloadFormatIndicator: true },
    });
    const [m] = await received;
    assert.equal(m?.payload, 'héllo');
    assert.deepEqual({ ...m?.packet.properties?.userProperties }, { a: '1', tag: ['x', 'y'] });
    assert.equal(m?.packet.properties?.contentType, 'text/plain');
    assert.equal(m?.packet.properties?.payloadFormatIndicator, true);
  });

  test('[MQTT-3.3.2-15] [MQTT-3.3.2-16] request / response: Response Topic and Correlation Data round trip between MQTT.js clients', async () => {
    const responder = await mqttjs();
    await responder.subscribeAsync('js5/req', { qos: 1 });
    responder.on('message', (_topic, payload, packet) => {
      const props = packet.properties;
      if (props?.responseTopic === undefined) return;
      const reply = props.correlationData === undefined ? {} : { correlationData: props.correlationData };
      void responder.publishAsync(props.responseTopic, payload.toString().toUpperCase(), { qos: 1, properties: reply });
    });
    const requester = await mqttjs();
    const replyTopic = `js5/reply/${requester.options.clientId ?? 'x'}`;
    await requester.subscribeAsync(replyTopic, { qos: 1 });
    const replies = messages(requester, 2);
    for (const [i, text] of ['ping', 'pong'].entries()) {
      await requester.publishAsync('js5/req', text, { qos: 1, properties: { responseTopic: replyTopic, correlationData: Buffer.from(`id-${i}`) } });
    }
    const got = await replies;
    assert.deepEqual(got.map((m) => [m.payload, m.packet.properties?.correlationData?.toString()]), [
      ['PING', 'id-0'],
      ['PONG', 'id-1'],
    ]);
  });

  test('spec 4.8.2: shared subscription between two MQTT.js clients: each message once, split evenly', async () => {
    const a = await mqttjs();
    const b = await mqttjs();
    await a.subscribeAsync('$share/js5/js5/work', { qos: 1 });
    await b.subscribeAsync('$share/js5/js5/work', { qos: 1 });
    const atA: string[] = [];
    const atB: string[] = [];
    a.on('message', (_t, p) => atA.push(p.toString()));
    b.on('message', (_t, p) => atB.push(p.toString()));
    const pub = await mqttjs();
    for (let i = 0; i < 10; i++) await pub.publishAsync('js5/work', `w${i}`, { qos: 1 });
    const deadline = Date.now() + WAIT_MS;
    while (atA.length + atB.length < 10 && Date.now() < deadline) await sleep(20);
    await sleep(200);
    assert.deepEqual([...atA, ...atB].sort(), Array.from({ length: 10 }, (_, i) => `w${i}`).sort());
    assert.deepEqual([atA.length, atB.length], [5, 5]);
  });

  test('[MQTT-3.3.2-11] [MQTT-3.3.2-12] topic aliases both ways with MQTT.js (autoAssignTopicAlias, topicAliasMaximum)', async () => {
    const sub = await mqttjs({ properties: { topicAliasMaximum: 4 } });
    await sub.subscribeAsync('js5/alias/#', { qos: 0 });
    const pub = await mqttjs({ autoAssignTopicAlias: true });
    const sent: MqttJsPacket[] = [];
    pub.on('packetsend', (packet) => sent.push(packet));
    const received = messages(sub, 3);
    for (let i = 0; i < 3; i++) await pub.publishAsync('js5/alias/long/topic/name', `a${i}`, { qos: 1 });
    const got = await received;
    assert.deepEqual(got.map((m) => m.topic), Array<string>(3).fill('js5/alias/long/topic/name'), 'MQTT.js resolves every alias to the topic');
    const wireIn = got.map((m) => [m.packet.topic, m.packet.properties?.topicAlias]);
    assert.equal(wireIn[0]?.[1], 1, 'first delivery sets alias 1');
    assert.deepEqual(wireIn[1]?.[1], 1);
    const publishes = sent.filter((p): p is IPublishPacket => p.cmd === 'publish');
    assert.equal(publishes[0]?.properties?.topicAlias, 1, 'MQTT.js assigned an alias towards the broker');
    assert.equal(publishes[1]?.topic, '', 'and then sent the alias alone, which the broker resolved');
  });

  test('[MQTT-3.2.2-16] MQTT.js with an empty client id learns its Assigned Client Identifier', async () => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${server.port}`, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000, clientId: '' });
    liveClients.add(client);
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    });
    const assigned = connack.properties?.assignedClientIdentifier;
    assert.ok(typeof assigned === 'string' && assigned.length > 0, `assigned: ${String(assigned)}`);
  });
});

describe('34 MQTT 5 interop: Paho Python MQTTv5', () => {
  test('[MQTT-3.3.2-17] [MQTT-3.3.4-3] Paho round trip: every forwardable property and the Subscription Identifier come back', async () => {
    requirePaho();
    const proc = paho('roundtrip', unique('paho5/rt'));
    await expectExit0(proc);
    const out = lastJson(proc) as { granted: number[]; connack: Record<string, number>; message: { payload: string; properties: Record<string, unknown> } };
    assert.deepEqual(out.granted, [1]);
    assert.equal(out.connack['TopicAliasMaximum'], 1024);
    assert.equal(out.message.payload, 'hello v5');
    const props = out.message.properties;
    assert.deepEqual(props['userProperties'], [
      ['source', 'paho'],
      ['index', '0'],
      ['source', 'again'],
    ]);
    assert.equal(props['contentType'], 'text/plain');
    assert.equal(props['responseTopic'], 'paho/reply');
    assert.equal(Buffer.from(String(props['correlationData']), 'base64').toString(), 'corr-0');
    assert.equal(props['payloadFormatIndicator'], 1);
    assert.deepEqual(props['subscriptionIdentifiers'], [7]);
    assert.ok(Number(props['messageExpiryInterval']) <= 60 && Number(props['messageExpiryInterval']) >= 59);
  });

  test('[MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] Paho publisher → MQTT.js subscriber, and MQTT.js publisher → Paho subscriber, with properties', async () => {
    requirePaho();
    const topic = unique('paho5/x');
    const sub = await mqttjs();
    await sub.subscribeAsync(topic, { qos: 1 });
    const received = messages(sub, 2);
    await expectExit0(paho('publish', topic, ['--count', '2']));
    const got = await received;
    assert.deepEqual(got.map((m) => m.payload), ['paho-0', 'paho-1']);
    assert.deepEqual({ ...got[1]?.packet.properties?.userProperties }, { source: ['paho', 'again'], index: '1' });
    assert.equal(got[1]?.packet.properties?.correlationData?.toString(), 'corr-1');
    assert.equal(got[1]?.packet.properties?.responseTopic, 'paho/reply');

    const back = unique('paho5/y');
    const pahoSub = paho('subscribe', back, ['--count', '1']);
    await waitForOutput(pahoSub, /"ready": true/);
    const pub = await mqttjs();
    await pub.publishAsync(back, 'to paho', { qos: 1, properties: { userProperties: { k: ['1', '2'] }, contentType: 'x/y', correlationData: Buffer.from('cd') } });
    await expectExit0(pahoSub);
    const out = lastJson(pahoSub) as { messages: { payload: string; properties: Record<string, unknown> }[] };
    const m = out.messages[0];
    assert.equal(m?.payload, 'to paho');
    assert.deepEqual(m?.properties['userProperties'], [
      ['k', '1'],
      ['k', '2'],
    ]);
    assert.equal(m?.properties['contentType'], 'x/y');
    assert.equal(Buffer.from(String(m?.properties['correlationData']), 'base64').toString(), 'cd');
  });

  test('[MQTT-3.3.2-15] [MQTT-3.3.2-16] request / response: an MQTT.js requester and a Paho responder', async () => {
    requirePaho();
    const reqTopic = unique('paho5/req');
    const responder = paho('respond', reqTopic, ['--count', '2']);
    await waitForOutput(responder, /"ready": true/);
    const requester = await mqttjs();
    const replyTopic = unique('paho5/reply');
    await requester.subscribeAsync(replyTopic, { qos: 1 });
    const replies = messages(requester, 2);
    await requester.publishAsync(reqTopic, 'one', { qos: 1, properties: { responseTopic: replyTopic, correlationData: Buffer.from([1]) } });
    await requester.publishAsync(reqTopic, 'two', { qos: 1, properties: { responseTopic: replyTopic, correlationData: Buffer.from([2]) } });
    const got = await replies;
    await expectExit0(responder);
    assert.deepEqual(got.map((m) => [m.payload, [...(m.packet.properties?.correlationData ?? Buffer.alloc(0))]]), [
      ['ONE', [1]],
      ['TWO', [2]],
    ]);
  });

  test('spec 4.8.2: a Paho member and an MQTT.js member share a subscription', async () => {
    requirePaho();
    const topic = unique('paho5/share');
    const pahoSub = paho('subscribe', `$share/mixed/${topic}`, ['--count', '3']);
    await waitForOutput(pahoSub, /"ready": true/);
    const js = await mqttjs();
    await js.subscribeAsync(`$share/mixed/${topic}`, { qos: 1 });
    const atJs: string[] = [];
    js.on('message', (_t, p) => atJs.push(p.toString()));
    const pub = await mqttjs();
    for (let i = 0; i < 6; i++) await pub.publishAsync(topic, `s${i}`, { qos: 1 });
    await expectExit0(pahoSub);
    await sleep(200);
    const atPaho = (lastJson(pahoSub) as { messages: { payload: string }[] }).messages.map((m) => m.payload);
    assert.deepEqual([...atPaho, ...atJs].sort(), ['s0', 's1', 's2', 's3', 's4', 's5']);
    assert.equal(atJs.length, 3);
  });
});

describe('34 MQTT 5 interop: mosquitto clients', () => {
  test('[MQTT-3.3.2-17] mosquitto_pub -V mqttv5 -D publish … → MQTT.js subscriber gets every property', async () => {
    requireMosquitto();
    const topic = unique('mosq5/pub');
    const sub = await mqttjs();
    await sub.subscribeAsync(topic, { qos: 1 });
    const received = messages(sub, 1);
    await expectExit0(
      spawnBounded('mosquitto_pub', [
        ...['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(server.port), '-t', topic, '-m', 'from mosquitto', '-q', '1'],
        ...['-D', 'publish', 'user-property', 'a', '1', '-D', 'publish', 'user-property', 'a', '2'],
        ...['-D', 'publish', 'content-type', 'text/plain', '-D', 'publish', 'response-topic', 'mosq5/reply'],
        ...['-D', 'publish', 'correlation-data', 'c0ffee', '-D', 'publish', 'message-expiry-interval', '40'],
        ...['-D', 'publish', 'payload-format-indicator', '1'],
      ]),
    );
    const [m] = await received;
    const p = m?.packet.properties;
    assert.equal(m?.payload, 'from mosquitto');
    assert.deepEqual({ ...p?.userProperties }, { a: ['1', '2'] });
    assert.equal(p?.contentType, 'text/plain');
    assert.equal(p?.responseTopic, 'mosq5/reply');
    assert.equal(p?.correlationData?.toString(), 'c0ffee');
    assert.equal(p?.payloadFormatIndicator, true);
    assert.ok((p?.messageExpiryInterval ?? 0) >= 39 && (p?.messageExpiryInterval ?? 0) <= 40);
  });

  test('[MQTT-3.3.2-17] [MQTT-3.3.4-3] mosquitto_sub -V mqttv5 prints the properties of an MQTT.js message and its Subscription Identifier', async () => {
    requireMosquitto();
    const topic = unique('mosq5/sub');
    const sub = mosquittoSub([
      ...['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(server.port), '-t', topic, '-q', '1', '-C', '1', '-d'],
      ...['-D', 'subscribe', 'subscription-identifier', '9', '-F', '%t|%p|%P|%C|%R|%D|%S'],
    ]);
    await waitForOutput(sub, /Subscribed \(mid/);
    const pub = await mqttjs();
    await pub.publishAsync(topic, 'to mosquitto', { qos: 1, properties: { userProperties: { u: 'v' }, contentType: 'a/b', responseTopic: 'r/t', correlationData: Buffer.from('xyz') } });
    await expectExit0(sub);
    const line = sub.stdout.split('\n').find((l) => l.startsWith(`${topic}|`));
    assert.equal(line, `${topic}|to mosquitto|u:v|a/b|r/t|xyz|9`);
  });

  test('spec 4.8.2: mosquitto_sub and MQTT.js share a subscription', async () => {
    requireMosquitto();
    const topic = unique('mosq5/share');
    const sub = mosquittoSub(['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(server.port), '-t', `$share/m/${topic}`, '-q', '1', '-C', '2', '-d']);
    await waitForOutput(sub, /Subscribed \(mid/);
    const js = await mqttjs();
    await js.subscribeAsync(`$share/m/${topic}`, { qos: 1 });
    const atJs = messages(js, 2);
    const pub = await mqttjs();
    for (let i = 0; i < 4; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });
    await expectExit0(sub);
    const fromMosq = sub.stdout.split('\n').filter((l) => /^m\d$/.test(l));
    const fromJs = (await atJs).map((m) => m.payload);
    assert.deepEqual([...fromMosq, ...fromJs].sort(), ['m0', 'm1', 'm2', 'm3']);
  });
});
