/**
 * Reconnect storms: CLIENTS password clients (a password file made by `starling passwd -U`, default
 * PBKDF2 cost) connect all at once to a fresh broker (storm 1: nothing remembered), then are dropped
 * all at once (RST, as a network blip) and reconnect at once (storms 2…: remembered). Each device
 * retries 1-2 s after a refusal or a cut. Meanwhile a QoS 1 publisher (RATE msg/s) and its subscriber,
 * connected throughout, measure the latency the other clients see.
 *
 *     node --import tsx bench/reconnect-storm.ts [--clients 10000] [--storms 3] [--rate 100]
 *          [--store embedded|memory] [--build DIR] [--env KEY=VALUE]… [--cpu-prof DIR] [--iterations N]
 *
 * `--build DIR` runs the broker of another built checkout (the before build); `--env` passes
 * settings (`STARLING_AUTH__CREDENTIAL_CACHE__MAX_ENTRIES=0` turns the cache off). The hashed file is
 * kept in the temporary directory for the next run. Not a test: prints figures for docs/benchmarks.md.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/mosquitto.js';
import { deviceName, devicePassword, type StormCommand, type StormReport } from './reconnect-storm-clients.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    'per-process': { type: 'string', default: '5000' },
    storms: { type: 'string', default: '3' },
    rate: { type: 'string', default: '100' },
    store: { type: 'string', default: 'embedded' },
    build: { type: 'string', default: join(import.meta.dirname, '..') },
    env: { type: 'string', multiple: true, default: [] },
    'cpu-prof': { type: 'string' },
    verbose: { type: 'boolean', default: false },
    iterations: { type: 'string', default: '20000' },
    'storm-timeout': { type: 'string', default: '600' },
  },
});
const CLIENTS = Number(values.clients);
const PER_PROCESS = Number(values['per-process']);
const STORMS = Number(values.storms);
const RATE = Number(values.rate);
const PROBE_PASSWORD = 'probe-secret';
const HERE = join(import.meta.dirname, '..');
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** The hashed password file for CLIENTS devices and the probe, made once by `starling passwd -U` and kept. */
function passwordFile(): string {
  const dir = join(tmpdir(), `starling-storm-${CLIENTS}-${values.iterations}`);
  const file = join(dir, 'passwd');
  if (existsSync(join(dir, 'done'))) return file;
  mkdirSync(dir, { recursive: true });
  let text = `probe-pub:${PROBE_PASSWORD}\nprobe-sub:${PROBE_PASSWORD}\n`;
  for (let i = 0; i < CLIENTS; i++) text += `${deviceName(i)}:${devicePassword(i)}\n`;
  writeFileSync(file, text, { mode: 0o600 });
  const started = performance.now();
  const made = spawnSync(process.execPath, [join(HERE, 'dist/cli/main.js'), 'passwd', '-U', '-I', String(values.iterations), file], { stdio: 'inherit' });
  if (made.status !== 0) throw new Error('starling passwd -U failed');
  console.log(`starling passwd -U: ${CLIENTS + 2} users hashed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  writeFileSync(join(dir, 'done'), '');
  return file;
}

/** CPU seconds of `pid`: every thread, and its main thread (the event loop), from the scheduler's exact runtimes. */
function cpuSeconds(pid: number): { all: number; main: number } {
  let ns = 0;
  let main = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const runtime = Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      ns += runtime;
      if (task === String(pid)) main = runtime;
    } catch {
      // a thread that ended meanwhile
    }
  }
  return { all: ns / 1e9, main: main / 1e9 };
}

async function waitForPort(port: number, broker: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (broker.exitCode !== null) throw new Error(`the broker exited (${broker.exitCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the broker did not listen');
}

function child(args: string[]): { process: ChildProcess; next: (kind: StormReport['kind']) => Promise<StormReport> } {
  const proc = fork(join(import.meta.dirname, 'reconnect-storm-clients.ts'), args, { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  children.add(proc);
  const inbox: StormReport[] = [];
  const waiters: (() => void)[] = [];
  proc.on('message', (report: StormReport) => {
    inbox.push(report);
    for (const wake of waiters.splice(0)) wake();
  });
  const next = async (kind: StormReport['kind']): Promise<StormReport> => {
    for (;;) {
      const at = inbox.findIndex((r) => r.kind === kind);
      if (at >= 0) return inbox.splice(at, 1)[0] as StormReport;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { process: proc, next };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Window {
  name: string;
  from: number;
  to: number;
  seconds?: number;
  attempts?: number;
  refused?: number;
  cut?: number;
  cpu?: number;
  /** Of which the event loop's thread (the rest: hashing on the thread pool, GC helpers, I/O threads). */
  mainCpu?: number;
}

async function main(): Promise<void> {
  const file = passwordFile();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'starling-storm-data-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const pair of values.env) {
    const eq = pair.indexOf('=');
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const profile = values['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`];
  const brokerArgs = [...profile, join(values.build, 'dist/cli/main.js'), '--port', String(port), '--host', '127.0.0.1', '--password-file', file, '--data-dir', dataDir, '--store', values.store, '--no-http', '--log-level', 'warn', '--log-format', 'json'];
  const broker = spawn(process.execPath, brokerArgs, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(broker);
  await waitForPort(port, broker);
  const pid = broker.pid as number;
  console.log(`broker ${values.build} (pid ${pid}, --store ${values.store}${values.env.length > 0 ? `, ${values.env.join(' ')}` : ''}); ${CLIENTS} clients; probe QoS 1 at ${RATE} msg/s`);

  const probe = child(['probe', String(port), String(RATE), PROBE_PASSWORD]);
  await probe.next('ready');
  const windows: Window[] = [];
  const quietFrom = Date.now();
  await sleep(3000);
  windows.push({ name: 'before the storms', from: quietFrom, to: Date.now() });

  const generators = [];
  for (let first = 0; first < CLIENTS; first += PER_PROCESS) generators.push(child(['devices', String(port), String(first), String(Math.min(PER_PROCESS, CLIENTS - first))]));
  await Promise.all(generators.map((g) => g.next('ready')));

  for (let storm = 1; storm <= STORMS; storm++) {
    const from = Date.now();
    const cpu0 = cpuSeconds(pid);
    if (storm > 1) {
      for (const g of generators) g.process.send({ cmd: 'drop' } satisfies StormCommand);
      await Promise.all(generators.map((g) => g.next('dropped')));
    }
    for (const g of generators) g.process.send({ cmd: 'connect' } satisfies StormCommand);
    const all = Promise.all(generators.map((g) => g.next('connected'))) as Promise<Extract<StormReport, { kind: 'connected' }>[]>;
    const deadline = sleep(Number(values['storm-timeout']) * 1000).then(() => undefined);
    let reports = await Promise.race([all, deadline]);
    const to = Date.now();
    if (reports === undefined) {
      // Not all back in time: how far it got, and the run ends after this storm.
      for (const g of generators) g.process.send({ cmd: 'status' } satisfies StormCommand);
      const status = (await Promise.all(generators.map((g) => g.next('status')))) as Extract<StormReport, { kind: 'status' }>[];
      console.log(`storm ${storm}: only ${status.reduce((n, r) => n + r.up, 0)} of ${CLIENTS} back after ${values['storm-timeout']} s`);
      reports = status.map((r) => ({ ...r, kind: 'connected' as const, ms: NaN }));
    }
    const cpu1 = cpuSeconds(pid);
    const sum = (key: 'attempts' | 'refused' | 'cut'): number => reports.reduce((n, r) => n + r[key], 0);
    const window = { name: storm === 1 ? 'storm 1 (cold)' : `storm ${storm} (warm)`, from, to, seconds: (to - from) / 1000, attempts: sum('attempts'), refused: sum('refused'), cut: sum('cut'), cpu: cpu1.all - cpu0.all, mainCpu: cpu1.main - cpu0.main };
    windows.push(window);
    console.log(`${window.name}: all back in ${window.seconds.toFixed(2)} s, ${window.attempts} attempts, broker CPU ${window.cpu.toFixed(2)} s (event loop ${window.mainCpu.toFixed(2)} s)`);
    if (reports.some((r) => Number.isNaN(r.ms))) {
      window.name += ' (timed out)';
      break;
    }
    const quiet = Date.now();
    await sleep(3000);
    windows.push({ name: `after storm ${storm}`, from: quiet, to: Date.now() });
  }

  probe.process.send({ cmd: 'stop' } satisfies StormCommand);
  const { samples } = (await probe.next('latencies')) as Extract<StormReport, { kind: 'latencies' }>;
  for (const g of generators) g.process.send({ cmd: 'stop' } satisfies StormCommand);
  broker.kill(profile.length > 0 ? 'SIGINT' : 'SIGTERM');
  await new Promise((resolve) => broker.once('exit', resolve));
  rmSync(dataDir, { recursive: true, force: true });

  console.log('| window | all back in s | connect attempts (refused / cut) | broker CPU-s (event loop) | probe msgs | probe latency p50 / p99 / max ms |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const w of windows) {
    const inside = samples.filter(([at]) => at >= w.from && at < w.to).map(([, ms]) => ms).sort((a, b) => a - b);
    const expected = Math.round(((w.to - w.from) / 1000) * RATE);
    const latency = `${percentile(inside, 0.5).toFixed(1)} / ${percentile(inside, 0.99).toFixed(1)} / ${(inside.at(-1) ?? NaN).toFixed(1)}`;
    const storm = w.seconds === undefined ? '| | |' : `| ${w.seconds.toFixed(2)} | ${w.attempts} (${w.refused} / ${w.cut}) | ${w.cpu?.toFixed(2)} (${w.mainCpu?.toFixed(2)}) |`;
    console.log(`| ${w.name} ${storm} ${inside.length} of ~${expected} | ${latency} |`);
  }
  if (values.verbose) {
    // The slow samples, placed in their window: when in a storm the publisher waited.
    for (const w of windows) {
      const slow = samples.filter(([at, ms]) => at >= w.from && at < w.to && ms > 20).map(([at, ms]) => `+${((at - w.from) / 1000).toFixed(2)}s:${ms.toFixed(0)}ms`);
      if (slow.length > 0) console.log(`${w.name}: ${slow.join(' ')}`);
    }
  }
}

await main();
