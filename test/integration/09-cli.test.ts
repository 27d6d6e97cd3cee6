import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { tempDir } from '../helpers/temp-dir.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

interface Run {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Runs the CLI; a broker it starts gets a data directory of its own, never the repository's ./data. */
function run(args: string[]): Run {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first (npm test does)`);
  const dataDir = args.includes('--data-dir') ? [] : ['--data-dir', tempDir('starling-09-')];
  const child = spawn(process.execPath, [CLI, ...args, ...dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const lines: string[] = [];
  const collect = (chunk: Buffer): void => {
    lines.push(...chunk.toString().split('\n').filter((l) => l.length > 0));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    });
  });
  return { child, lines, exited };
}

async function waitForLine(r: Run, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const line = r.lines.find((l) => pattern.test(l));
    if (line !== undefined) return line;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no line matching ${pattern} within ${timeoutMs} ms; got:\n${r.lines.join('\n')}`);
}

async function exitCode(r: Run, timeoutMs = 15_000): Promise<number | null> {
  const timer = setTimeout(() => r.child.kill('SIGKILL'), timeoutMs);
  const code = await r.exited;
  clearTimeout(timer);
  return code;
}

describe('09 command line', () => {
  after(() => {
    for (const child of running) child.kill('SIGKILL');
  });

  test('starts on the requested port, logs where it listens, serves MQTT, and exits 0 on SIGTERM', async () => {
    const r = run(['--host', '127.0.0.1', '--port', '0']);
    const line = await waitForLine(r, /MQTT listening on/);
    const record = JSON.parse(line) as { port: number; host: string; listener: string };
    assert.equal(record.host, '127.0.0.1');
    assert.ok(record.port > 0);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${record.port}`, { reconnectPeriod: 0, connectTimeout: 2000 });
    await client.subscribeAsync('cli/test', { qos: 1 });
    const got = new Promise<string>((resolve) => client.once('message', (_t, payload) => resolve(payload.toString())));
    await client.publishAsync('cli/test', 'hello', { qos: 1 });
    assert.equal(await got, 'hello');
    await client.endAsync();
    r.child.kill('SIGTERM');
    assert.equal(await exitCode(r), 0);
    assert.ok(r.lines.some((l) => l.includes('shutting down')), 'logs the shutdown');
  });

  test('listens on loopback only by default and says how to open up', async () => {
    const r = run(['--port', '0']);
    await waitForLine(r, /MQTT listening on mqtt:\/\/127\.0\.0\.1:/);
    const hint = await waitForLine(r, /loopback only/);
    assert.match(hint, /--host 0\.0\.0\.0/);
    assert.ok(!r.lines.some((l) => /"host":"0\.0\.0\.0"/.test(l)), 'not listening on every interface');
    r.child.kill('SIGINT');
    assert.equal(await exitCode(r), 0);
  });

  test('a config file sets limits (maxQoS 1 caps the granted QoS)', async () => {
    const dir = tempDir('starling-cli-');
    const file = join(dir, 'starling.json');
    writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 0, logLevel: 'info', limits: { maxQoS: 1 } }));
    const r = run(['--config', file]);
    const record = JSON.parse(await waitForLine(r, /MQTT listening on/)) as { port: number };
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${record.port}`, { reconnectPeriod: 0, connectTimeout: 2000 });
    const granted = await client.subscribeAsync('x', { qos: 2 });
    assert.equal(granted[0]?.qos, 1);
    await client.endAsync();
    r.child.kill('SIGTERM');
    assert.equal(await exitCode(r), 0);
  });

  test('an unknown config key is refused with exit code 2 and a message naming it', async () => {
    const dir = tempDir('starling-cli-');
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ prot: 1883 }));
    const r = run(['--config', file]);
    assert.equal(await exitCode(r), 2);
    assert.ok(r.lines.some((l) => l.includes('unknown key "prot"')), r.lines.join('\n'));
  });

  test('an unknown flag is refused with exit code 2 and the usage', async () => {
    const r = run(['--prot', '1883']);
    assert.equal(await exitCode(r), 2);
    assert.ok(r.lines.some((l) => l.includes('Usage: starling')));
  });

  test('--help prints the usage and exits 0', async () => {
    const r = run(['--help']);
    assert.equal(await exitCode(r), 0);
    assert.ok(r.lines.some((l) => l.includes('--log-level')));
  });

  test('a second broker on the same data directory refuses to start, naming the PID that holds it', async () => {
    const dataDir = tempDir('starling-09-lock-');
    const first = run(['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir]);
    await waitForLine(first, /MQTT listening on/);
    const second = run(['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir]);
    assert.equal(await exitCode(second), 1);
    assert.ok(second.lines.some((l) => l.includes(`in use by process ${first.child.pid}`)), second.lines.join('\n'));
    first.child.kill('SIGTERM');
    assert.equal(await exitCode(first), 0);
    // Released at shutdown: the directory opens again.
    const third = run(['--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir]);
    await waitForLine(third, /MQTT listening on/);
    third.child.kill('SIGTERM');
    assert.equal(await exitCode(third), 0);
  });

  test('a port already in use fails with a clear message and a non-zero exit', async () => {
    const first = run(['--host', '127.0.0.1', '--port', '0']);
    const record = JSON.parse(await waitForLine(first, /MQTT listening on/)) as { port: number };
    const second = run(['--host', '127.0.0.1', '--port', String(record.port)]);
    assert.equal(await exitCode(second), 1);
    assert.ok(second.lines.some((l) => l.includes('EADDRINUSE')), second.lines.join('\n'));
    first.child.kill('SIGTERM');
    assert.equal(await exitCode(first), 0);
  });
});
