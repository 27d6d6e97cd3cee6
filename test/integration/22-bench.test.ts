/** `starling bench` smoke tests with tiny counts: the summary's numbers must agree with each other. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BenchSummary } from '../../src/cli/bench/bench.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const running = new Set<ChildProcess>();

function bench(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first`);
  const child = spawn(process.execPath, [CLI, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('22 starling bench', () => {
  let broker: StarlingServer;
  before(async () => {
    broker = await startTestBroker();
  });
  after(async () => {
    for (const child of running) child.kill('SIGKILL');
    await broker.close();
  });

  test('pubsub QoS 1, 2 publishers, 200 messages: sent = acked = received = expected, latencies ordered', async () => {
    const r = await bench(['pubsub', '-p', String(broker.port), '-c', '2', '-q', '1', '-n', '200', '--workers', '2', '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const s = JSON.parse(r.stdout) as BenchSummary;
    assert.equal(s.mode, 'pubsub');
    assert.equal(s.sent, 200);
    assert.equal(s.acked, 200);
    assert.equal(s.received, 200);
    assert.equal(s.expected, 200);
    assert.equal(s.connected, 3);
    assert.deepEqual(s.errors, {});
    assert.equal(s.latency.count, 200);
    assert.ok(s.latency.min <= s.latency.p50 && s.latency.p50 <= s.latency.p90 && s.latency.p90 <= s.latency.p99 && s.latency.p99 <= s.latency.max, JSON.stringify(s.latency));
    assert.equal(s.ackLatency.count, 200);
    assert.ok(s.sentPerSecond > 0);
  });

  test('pub QoS 0 for 1 s with a rate: bounded, about rate × duration, progress on stderr, text summary', async () => {
    const r = await bench(['pub', '-p', String(broker.port), '-c', '2', '--rate', '400', '-d', '2', '--workers', '1']);
    assert.equal(r.code, 0, r.stderr);
    const sent = Number(/sent\s+(\d+)/.exec(r.stdout)?.[1]);
    assert.ok(sent >= 600 && sent <= 900, `sent ${sent}, expected about 800:\n${r.stdout}`);
    assert.match(r.stderr, /\[1s\] sent \d+/);
    assert.match(r.stdout, /errors\s+none/);
  });

  test('conn opens N connections; remote targets are refused without --allow-remote', async () => {
    const r = await bench(['conn', '-p', String(broker.port), '-c', '20', '-d', '1', '--json', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as BenchSummary;
    assert.equal(s.connected, 20);
    assert.equal(s.connectLatency.count, 20);
    const remote = await bench(['pub', '-h', '192.0.2.1', '-c', '1', '-n', '1']);
    assert.equal(remote.code, 1);
    assert.match(remote.stderr, /not a loopback address.*--allow-remote/);
  });
});
