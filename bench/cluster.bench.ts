/**
 * Cluster benchmark (issue 7): messages/s delivered with 1, 2 and 3 Starling nodes sharing one Redis
 * under the same total load, and the CPU cost per message of the cross-node hop.
 *
 * Per topology it starts a fresh `redis-server` (append-only file fsynced every second, no RDB) and N
 * node processes (`--redis`, `--no-http`, `--log-level warn`), then runs `starling bench` processes as
 * load generators: two `bench pub` processes (2 publishers each, topics cbA/%i and cbB/%i, 64 B
 * payloads) on the FIRST node, and two `bench sub` processes (1 subscriber each, cbA/+ and cbB/+):
 *
 *   1 node          subscribers on node 1 (everything local)
 *   2 nodes         subscribers on node 2 (every message crosses nodes)
 *   3 nodes, last   subscribers on node 3 (node 2 idle)
 *   3 nodes, spread cbA/+ on node 2, cbB/+ on node 3 (disjoint topics, same total)
 *
 * Loads: QoS 0 and QoS 1, each at a fixed total rate (--rate, default 10,000 msg/s over the four
 * publishers, exact message counts so loss is checked) and flat out (--seconds of publishing).
 *
 * After start-up each cluster gets a short unmeasured warm-up (JIT) and 2 s of idle CPU measurement.
 *
 * Measurement, per run: the whole run, from the first publisher's start to the last delivery (both
 * estimated from the generators' 1 s progress lines, about ±0.5 s). Every 200 ms (and at each progress
 * line of the first subscriber) the script reads the CPU time of every node, of redis-server and of
 * the generators (/proc/PID/task/TID/schedstat, ns, summed over live threads; /proc/PID/stat
 * utime+stime as a cross-check; for Redis also cutime+cstime, i.e. AOF-rewrite children it reaped),
 * their RSS, and the machine's busy time (/proc/stat). CPU per message = CPU in the run / messages
 * delivered (exact, from each `bench sub --json`), so it does not depend on the time estimates. A
 * steady-state window (from 2 s after both publishers started to the end of publishing) is computed
 * as a cross-check and for the generators' CPU. Redis INFO (commands by type) is read around each run.
 *
 * Usage: npx tsc -p tsconfig.build.json && node --import tsx bench/cluster.bench.ts
 *          [--seconds N=10] [--repeat K=1] [--rate R=10000] [--out FILE=/tmp/cluster-bench.json]
 *          [--topologies 1,2,3last,3spread] [--loads q0-fixed,q1-fixed,q1-flat,q0-flat] [--metrics]
 *          [--cli PATH=dist/cli/main.js]
 * --metrics: the nodes also serve HTTP on loopback (instead of --no-http) and their /metrics counters
 * (drops by reason, cluster messages sent/received) are read before and after each run, outside
 * the measured windows; Redis's INFO (commands by type) is always read that way.
 * Not a test. Loopback only. Every process it starts is stopped by PID at the end, on SIGINT/SIGTERM
 * and on errors. About 5 minutes with the defaults (bounded: the script gives up far beyond that).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';

// ---------------------------------------------------------------------------------------------
// Options

let CLI = join(import.meta.dirname, '../dist/cli/main.js');
const REDIS_SERVER = '/usr/bin/redis-server';
const HOST = '127.0.0.1';

interface Options {
  seconds: number;
  repeat: number;
  rate: number;
  out: string;
  topologies: string[];
  loads: string[];
  /** Nodes serve HTTP on a loopback port so /metrics (drops, cluster counters) is read before and after each run. */
  metrics: boolean;
  /** The starling CLI to run (default dist/cli/main.js; e.g. a snapshot of dist while others rebuild it). */
  cli: string;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    seconds: 10,
    repeat: 1,
    rate: 10_000,
    out: '/tmp/cluster-bench.json',
    topologies: ['1', '2', '3last', '3spread'],
    loads: ['q0-fixed', 'q1-fixed', 'q1-flat', 'q0-flat'],
    metrics: false,
    cli: CLI,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--metrics') {
      options.metrics = true;
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    i++;
    if (flag === '--seconds') options.seconds = Number(value);
    else if (flag === '--repeat') options.repeat = Number(value);
    else if (flag === '--rate') options.rate = Number(value);
    else if (flag === '--out') options.out = value;
    else if (flag === '--topologies') options.topologies = value.split(',');
    else if (flag === '--loads') options.loads = value.split(',');
    else if (flag === '--cli') options.cli = value;
    else throw new Error(`unknown option ${flag}`);
  }
  if (!(options.seconds >= 4 && options.seconds <= 120)) throw new Error('--seconds: 4..120');
  if (!(Number.isInteger(options.repeat) && options.repeat >= 1 && options.repeat <= 10)) throw new Error('--repeat: 1..10');
  if (!(options.rate >= 100 && options.rate % 2 === 0)) throw new Error('--rate: an even number >= 100');
  return options;
}

// ---------------------------------------------------------------------------------------------
// Topologies and loads

interface Topology {
  name: string;
  label: string;
  nodes: number;
  /** Node index (0-based) of subscriber A (cbA/+) and subscriber B (cbB/+). Publishers: node 0. */
  subNodes: [number, number];
}

const TOPOLOGIES: Topology[] = [
  { name: '1', label: '1 node', nodes: 1, subNodes: [0, 0] },
  { name: '2', label: '2 nodes', nodes: 2, subNodes: [1, 1] },
  { name: '3last', label: '3 nodes, subs on n3', nodes: 3, subNodes: [2, 2] },
  { name: '3spread', label: '3 nodes, subs on n2+n3', nodes: 3, subNodes: [1, 2] },
];

interface Load {
  name: string;
  qos: 0 | 1;
  fixed: boolean;
}

const LOADS: Load[] = [
  { name: 'q0-fixed', qos: 0, fixed: true },
  { name: 'q1-fixed', qos: 1, fixed: true },
  // QoS 0 flat out last: across nodes it can leave a backlog that the next run would pay for.
  { name: 'q1-flat', qos: 1, fixed: false },
  { name: 'q0-flat', qos: 0, fixed: false },
];

const PUBLISHERS_PER_PROCESS = 2;
const IDLE_MS = 2000;
const SETTLE_MAX_MS = 20_000;
const SIZE = 64;
const GROUPS = ['A', 'B'] as const;

// ---------------------------------------------------------------------------------------------
// Processes: every child is tracked and stopped by its PID.

const children = new Set<ChildProcess>();
/** Redis working directories still to remove. */
const tempDirs = new Set<string>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function alive(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

async function stop(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (!alive(child)) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, 'SIGTERM');
  const timer = setTimeout(() => {
    if (alive(child)) process.kill(child.pid!, 'SIGKILL');
  }, graceMs);
  await gone;
  clearTimeout(timer);
}

function killAllNow(): void {
  for (const child of children) {
    if (!alive(child)) continue;
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

process.once('exit', () => {
  killAllNow();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping ${children.size} child process(es)\n`);
    void Promise.all([...children].map((c) => stop(c, 2000))).finally(() => process.exit(130));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive(child)) throw new Error(`${what} exited (code ${child.exitCode}, signal ${child.signalCode})`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: HOST, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what}: nothing listening on ${port} after ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Lines a process wrote (stdout and stderr), with the time they arrived. */
interface LogLine {
  t: number;
  source: string;
  line: string;
}

function collectLines(child: ChildProcess, source: string, sink: LogLine[]): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on('line', (line) => {
      if (sink.length < 2000) sink.push({ t: Date.now(), source, line });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64 and arm64; `getconf CLK_TCK`

interface CpuReading {
  /** Sum of /proc/PID/task/TID/schedstat first fields over live threads: exact ns, misses exited threads. */
  threadsNs: number;
  /** utime + stime of /proc/PID/stat (every thread, live or exited), in seconds (1/CLK_TCK resolution). */
  statSeconds: number;
  /** cutime + cstime: reaped children (Redis's AOF rewrite), in seconds. */
  childrenSeconds: number;
  /** Resident set size (VmRSS), MiB. */
  rssMiB: number;
}

const ZERO_CPU: CpuReading = { threadsNs: 0, statSeconds: 0, childrenSeconds: 0, rssMiB: 0 };

function readCpu(pid: number | undefined): CpuReading {
  if (pid === undefined) return ZERO_CPU;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3; utime 14, stime 15, cutime 16, cstime 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const f = (n: number): number => Number(fields[n - 3]);
    let threadsNs = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        threadsNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended between readdir and read
      }
    }
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { threadsNs, statSeconds: (f(14) + f(15)) / CLK_TCK, childrenSeconds: (f(16) + f(17)) / CLK_TCK, rssMiB: rss === null ? 0 : Number(rss[1]) / 1024 };
  } catch {
    return ZERO_CPU;
  }
}

/** CPU seconds between two readings: thread schedstat (exact) unless threads exited (then stat). */
function cpuSeconds(a: CpuReading, b: CpuReading): number {
  const exact = (b.threadsNs - a.threadsNs) / 1e9;
  const coarse = b.statSeconds - a.statSeconds;
  // An exited thread takes its schedstat with it; /proc/PID/stat keeps it (10 ms resolution).
  return coarse > exact + 0.05 ? coarse : exact;
}

/** Busy and total jiffies of the whole machine (/proc/stat first line). */
function readMachine(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPUs of the machine (the cpuN lines of /proc/stat). */
const CORES = readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).length || 1;

interface Sample {
  t: number;
  /** Taken when subA printed a progress line. */
  line: boolean;
  nodes: CpuReading[];
  redis: CpuReading;
  generators: CpuReading[];
  machine: { busy: number; total: number };
}

// ---------------------------------------------------------------------------------------------
// The cluster

interface Cluster {
  topology: Topology;
  /** CPU (cores) the nodes and Redis use with no client, measured after start-up. */
  idle: { seconds: number; nodesCores: number; redisCores: number } | undefined;
  redis: ChildProcess;
  redisPort: number;
  redisDir: string;
  nodes: ChildProcess[];
  ports: number[];
  /** HTTP ports of the nodes (--metrics only). */
  httpPorts: number[];
  logs: LogLine[];
  /** A connection for INFO (outside the measured windows). */
  info: Redis | undefined;
}

async function startCluster(topology: Topology, metrics: boolean): Promise<Cluster> {
  const redisDir = mkdtempSync(join(tmpdir(), 'starling-cluster-bench-'));
  tempDirs.add(redisDir);
  const redisPort = await freePort();
  const logs: LogLine[] = [];
  const redis = track(
    spawn(
      REDIS_SERVER,
      ['--port', String(redisPort), '--bind', HOST, '--protected-mode', 'no', '--daemonize', 'no', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', redisDir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  collectLines(redis, 'redis', logs);
  const cluster: Cluster = { topology, redis, redisPort, redisDir, nodes: [], ports: [], httpPorts: [], logs, info: undefined, idle: undefined };
  try {
    await waitForPort(redisPort, redis, 'redis-server');
    cluster.info = new Redis({ host: HOST, port: redisPort, lazyConnect: true, maxRetriesPerRequest: 1 });
    await cluster.info.connect();
    const url = `redis://${HOST}:${redisPort}`;
    for (let i = 0; i < topology.nodes; i++) {
      const port = await freePort();
      const args = [CLI, '--host', HOST, '--port', String(port), '--redis', url, '--node-id', `n${i + 1}`, '--log-level', 'warn'];
      if (metrics) {
        const httpPort = await freePort();
        cluster.httpPorts.push(httpPort);
        args.push('--http-host', HOST, '--http-port', String(httpPort));
      } else {
        args.push('--no-http');
      }
      const node = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
      collectLines(node, `n${i + 1}`, logs);
      cluster.nodes.push(node);
      cluster.ports.push(port);
    }
    for (let i = 0; i < cluster.nodes.length; i++) await waitForPort(cluster.ports[i]!, cluster.nodes[i]!, `node n${i + 1}`);
    for (let i = 0; i < cluster.httpPorts.length; i++) await waitForPort(cluster.httpPorts[i]!, cluster.nodes[i]!, `node n${i + 1} HTTP`);
    // Let the heartbeats of all nodes be seen by all, then measure the idle CPU (heartbeats, timers).
    await sleep(1000);
    await warmUp(cluster);
    const readAll = (): { t: number; nodes: CpuReading[]; redis: CpuReading } => ({ t: Date.now(), nodes: cluster.nodes.map((n) => readCpu(n.pid)), redis: readCpu(cluster.redis.pid) });
    const before = readAll();
    await sleep(IDLE_MS);
    const after = readAll();
    const seconds = (after.t - before.t) / 1000;
    cluster.idle = {
      seconds,
      nodesCores: after.nodes.reduce((n, x, i) => n + cpuSeconds(before.nodes[i]!, x), 0) / seconds,
      redisCores: (cpuSeconds(before.redis, after.redis) + after.redis.childrenSeconds - before.redis.childrenSeconds) / seconds,
    };
    return cluster;
  } catch (error) {
    await stopCluster(cluster);
    throw error;
  }
}

/**
 * Unmeasured traffic through the cluster, so that the first measured run does not pay for JIT
 * compilation: QoS 1 then QoS 0, 2 s at 5,000 msg/s from the first node to a subscriber on the last.
 */
async function warmUp(cluster: Cluster): Promise<void> {
  const last = cluster.ports.at(-1)!;
  for (const qos of ['1', '0']) {
    const count = '7500';
    const sub = startGenerator('warm-sub', 'sub', ['-p', String(last), '-c', '1', '--sub-topic', 'warm/+', '-q', qos, '-n', count, '-d', '12', '--workers', '1', '--json', '--quiet', '-I', 'cb-warm-sub-'], () => undefined);
    // --quiet: no progress line to wait for; give the subscription time to be routed.
    await sleep(1500);
    const pub = startGenerator('warm-pub', 'pub', ['-p', String(cluster.ports[0]!), '-c', '2', '-t', 'warm/%i', '-q', qos, '--rate', '5000', '-n', count, '--workers', '1', '--json', '--quiet', '-I', 'cb-warm-pub-'], () => undefined);
    await withTimeout(Promise.all([sub.exited, pub.exited]), 20_000, 'warm-up').finally(() => Promise.all([stop(sub.child, 1000), stop(pub.child, 1000)]));
  }
}

/** Waits (up to SETTLE_MAX_MS) until the nodes and Redis together use under 5% of a core; returns the seconds waited. */
async function settle(cluster: Cluster): Promise<number> {
  const start = Date.now();
  const total = (): number => cluster.nodes.reduce((n, x) => n + readCpu(x.pid).threadsNs, 0) + readCpu(cluster.redis.pid).threadsNs;
  for (;;) {
    const before = total();
    const t = Date.now();
    await sleep(500);
    const cores = (total() - before) / 1e9 / ((Date.now() - t) / 1000);
    if (cores < 0.05 || Date.now() - start >= SETTLE_MAX_MS) return (Date.now() - start) / 1000;
  }
}

async function stopCluster(cluster: Cluster): Promise<void> {
  cluster.info?.disconnect();
  await Promise.all(cluster.nodes.map((n) => stop(n)));
  await stop(cluster.redis);
  rmSync(cluster.redisDir, { recursive: true, force: true });
  tempDirs.delete(cluster.redisDir);
}

async function redisInfo(cluster: Cluster): Promise<Record<string, number>> {
  const client = cluster.info;
  if (client === undefined) return {};
  const text = (await client.info('stats')) + (await client.info('persistence')) + (await client.info('memory')) + (await client.info('commandstats'));
  const out: Record<string, number> = {};
  for (const key of ['total_commands_processed', 'total_net_input_bytes', 'total_net_output_bytes', 'aof_rewrites', 'used_memory', 'aof_current_size']) {
    const match = new RegExp(`^${key}:(\\d+)`, 'm').exec(text);
    if (match !== null) out[key] = Number(match[1]);
  }
  // Per command: calls and the microseconds Redis spent executing them.
  for (const match of text.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+),usec=(\d+)/gm)) {
    out[`calls_${match[1]}`] = Number(match[2]);
    out[`usec_${match[1]}`] = Number(match[3]);
  }
  return out;
}

/** The counters of one node's /metrics worth keeping (drops, PUBLISH in/out, cluster traffic). */
async function nodeMetrics(port: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const response = await fetch(`http://${HOST}:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    for (const line of (await response.text()).split('\n')) {
      const match = /^(starling_(?:messages_dropped_total|messages_received_total|messages_sent_total|cluster_[a-z0-9_]+))(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (match !== null) out[`${match[1]}${match[2] ?? ''}`] = Number(match[3]);
    }
  } catch (error) {
    out['scrape_failed'] = 1;
    process.stderr.write(`metrics of :${port}: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  return out;
}

function delta(after: Record<string, number>, before: Record<string, number>, cumulative: (key: string) => boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = cumulative(k) ? v - (before[k] ?? 0) : v;
    if (d !== 0) out[k] = d;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Generators: `starling bench pub|sub`

interface Progress {
  t: number;
  sent: number;
  received: number;
}

interface BenchJson {
  sent: number;
  acked: number;
  received: number;
  elapsed: number;
  latency: { count: number; p50: number; p99: number; max: number };
  ackLatency: { count: number; p50: number; p99: number; max: number };
  errors: Record<string, number>;
}

interface Generator {
  name: string;
  kind: 'pub' | 'sub';
  child: ChildProcess;
  spawnedAt: number;
  exitedAt: number | undefined;
  progress: Progress[];
  stderr: string[];
  stdout: string;
  exited: Promise<number | null>;
  firstLine: Promise<void>;
}

const PROGRESS = /^\[(\d+)s\] sent (\d+) \([^)]*\)\s+received (\d+)/;

function startGenerator(name: string, kind: 'pub' | 'sub', args: string[], onProgress: (g: Generator) => void): Generator {
  const child = track(spawn(process.execPath, [CLI, 'bench', kind, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let firstLine: () => void = () => undefined;
  const generator: Generator = {
    name,
    kind,
    child,
    spawnedAt: Date.now(),
    exitedAt: undefined,
    progress: [],
    stderr: [],
    stdout: '',
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    firstLine: new Promise((resolve) => (firstLine = resolve)),
  };
  child.once('exit', () => (generator.exitedAt = Date.now()));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (generator.stdout += chunk));
  createInterface({ input: child.stderr! }).on('line', (line) => {
    const match = PROGRESS.exec(line);
    if (match === null) {
      if (generator.stderr.length < 200) generator.stderr.push(line);
      return;
    }
    generator.progress.push({ t: Date.now(), sent: Number(match[2]), received: Number(match[3]) });
    if (generator.progress.length === 1) firstLine();
    onProgress(generator);
  });
  return generator;
}

function parseJson(g: Generator): BenchJson | undefined {
  const line = g.stdout.trim().split('\n').at(-1);
  if (line === undefined || line === '') return undefined;
  try {
    return JSON.parse(line) as BenchJson;
  } catch {
    return undefined;
  }
}

/** A generator's cumulative count at time t, interpolated between its progress lines (0 at spawn). */
function countAt(g: Generator, t: number, pick: (p: Progress) => number): number {
  const points = [{ t: g.spawnedAt, value: 0 }, ...g.progress.map((p) => ({ t: p.t, value: pick(p) }))];
  if (t <= points[0]!.t) return 0;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!;
    const b = points[i]!;
    if (t <= b.t) return a.value + ((b.value - a.value) * (t - a.t)) / Math.max(1, b.t - a.t);
  }
  return points.at(-1)!.value;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// One run

/** Figures of one measured window. */
interface Measure {
  seconds: number;
  delivered: number;
  sent: number;
  deliveredPerSecond: number;
  sentPerSecond: number;
  /** CPU seconds in the window; `others`: machine busy time not used by nodes, Redis or generators. */
  cpuSeconds: { nodes: number[]; nodesTotal: number; redis: number; redisChildren: number; generators: number; machineBusyCores: number; othersCores: number };
  /** The same from /proc/PID/stat utime+stime (10 ms ticks), as a cross-check. */
  cpuStatCheckSeconds: { nodesTotal: number; redis: number };
  usPerMessage: { nodes: number[]; broker: number; redis: number; total: number; generators: number };
}

interface RunResult {
  topology: string;
  topologyLabel: string;
  nodes: number;
  load: string;
  qos: number;
  fixedRate: number | null;
  repeat: number;
  /**
   * Whole run (the table's figures): from the first publisher's start to the last delivery (estimated
   * from progress lines); exact message counts, so CPU per message does not depend on that estimate.
   */
  run: Measure;
  /**
   * Steady state, a cross-check: subA's progress lines from 2 s after both publishers started to the
   * end of the first one's publishing (null when the publishers started too far apart).
   */
  steady: Measure | null;
  /** Resident set size at the start of the run and the peak seen in its samples, MiB: each node, then Redis. */
  startRssMiB: { nodes: number[]; redis: number };
  peakRssMiB: { nodes: number[]; redis: number };
  /** Seconds waited before the run for the nodes and Redis to be idle (a backlog of the previous run). */
  settleSeconds: number;
  totals: { sent: number; acked: number; received: number; expected: number; notDelivered: number };
  latencyMs: { p50: number; p99: number; max: number };
  ackLatencyMs: { p50: number; p99: number } | null;
  /** Redis INFO deltas over the run (totals, per-command calls and usec) and gauges at its end. */
  redisStats: Record<string, number>;
  /** Per node, deltas of its /metrics counters over the run (--metrics only). */
  nodeMetrics: Record<string, number>[] | null;
  /** Time (ms since the epoch) the run's first generator was spawned: the origin of `generators`. */
  originEpochMs: number;
  /** Each generator's progress lines: [ms since the run's first spawn, sent, received]. */
  generators: { name: string; spawnedMs: number; exitedMs: number | null; progress: [number, number, number][] }[];
  generatorErrors: Record<string, Record<string, number>>;
  generatorExitCodes: Record<string, number | null>;
  generatorStderr: Record<string, string[]>;
  logLines: LogLine[];
  problems: string[];
}

function lerp(x: number, y: number, f: number): number {
  return x + (y - x) * f;
}

function lerpCpu(x: CpuReading, y: CpuReading, f: number): CpuReading {
  return {
    threadsNs: lerp(x.threadsNs, y.threadsNs, f),
    statSeconds: lerp(x.statSeconds, y.statSeconds, f),
    childrenSeconds: lerp(x.childrenSeconds, y.childrenSeconds, f),
    rssMiB: lerp(x.rssMiB, y.rssMiB, f),
  };
}

/** The readings at time t, interpolated between the nearest samples (generators left out). */
function sampleAt(samples: Sample[], t: number): Sample {
  const sorted = [...samples].sort((x, y) => x.t - y.t);
  let i = sorted.findIndex((s) => s.t >= t);
  if (i === -1) i = sorted.length - 1;
  const y = sorted[i]!;
  const x = sorted[Math.max(0, i - 1)]!;
  const f = y.t === x.t ? 1 : Math.min(1, Math.max(0, (t - x.t) / (y.t - x.t)));
  return {
    t,
    line: false,
    nodes: y.nodes.map((n, k) => lerpCpu(x.nodes[k] ?? n, n, f)),
    redis: lerpCpu(x.redis, y.redis, f),
    generators: [],
    machine: { busy: lerp(x.machine.busy, y.machine.busy, f), total: lerp(x.machine.total, y.machine.total, f) },
  };
}

function measure(a: Sample, b: Sample, delivered: number, sent: number, sendingSeconds?: number): Measure {
  const seconds = (b.t - a.t) / 1000;
  const nodes = b.nodes.map((n, i) => cpuSeconds(a.nodes[i]!, n));
  const nodesTotal = nodes.reduce((x, y) => x + y, 0);
  const redisChildren = b.redis.childrenSeconds - a.redis.childrenSeconds;
  const redis = cpuSeconds(a.redis, b.redis) + redisChildren;
  const withGenerators = a.generators.length > 0 && a.generators.length === b.generators.length;
  const generators = withGenerators ? b.generators.reduce((n, g, i) => n + cpuSeconds(a.generators[i]!, g), 0) : NaN;
  const machineBusyCores = ((b.machine.busy - a.machine.busy) * CORES) / Math.max(1, b.machine.total - a.machine.total);
  const us = (cpu: number): number => (delivered > 0 ? (cpu * 1e6) / delivered : NaN);
  return {
    seconds,
    delivered: Math.round(delivered),
    sent: Math.round(sent),
    deliveredPerSecond: delivered / seconds,
    sentPerSecond: sent / (sendingSeconds ?? seconds),
    cpuSeconds: { nodes, nodesTotal, redis, redisChildren, generators, machineBusyCores, othersCores: machineBusyCores - (nodesTotal + redis + generators) / seconds },
    cpuStatCheckSeconds: {
      nodesTotal: b.nodes.reduce((n, x, i) => n + x.statSeconds - a.nodes[i]!.statSeconds, 0),
      redis: b.redis.statSeconds - a.redis.statSeconds + redisChildren,
    },
    usPerMessage: { nodes: nodes.map(us), broker: us(nodesTotal), redis: us(redis), total: us(nodesTotal + redis), generators: us(generators) },
  };
}

/**
 * When a subscriber got its last message: within the progress interval where its count reached the
 * final one, at the pace of the interval before (its exit counts as a last line).
 */
function lastDelivery(g: Generator, final: number): number {
  const points = [{ t: g.spawnedAt, received: 0 }, ...g.progress.map((p) => ({ t: p.t, received: p.received })), { t: g.exitedAt ?? Date.now(), received: final }];
  const k = points.findIndex((p) => p.received >= final);
  if (k <= 0) return points[0]!.t;
  const prev = points[k - 1]!;
  const here = points[k]!;
  const before = points[k - 2];
  const pace = before === undefined ? 0 : (prev.received - before.received) / Math.max(1, prev.t - before.t);
  const needed = pace > 0 ? (final - prev.received) / pace : Infinity;
  return Math.min(here.t, prev.t + needed);
}

async function runOnce(cluster: Cluster, load: Load, options: Options, repeat: number): Promise<RunResult> {
  const { topology } = cluster;
  const D = options.seconds;
  const perPubProcess = options.rate / 2;
  const countPerProcess = perPubProcess * D;
  const problems: string[] = [];
  const samples: Sample[] = [];
  const logStart = cluster.logs.length;
  const generators: Generator[] = [];
  let subA: Generator | undefined;
  const sample = (line: boolean): void => {
    samples.push({
      t: Date.now(),
      line,
      nodes: cluster.nodes.map((n) => readCpu(n.pid)),
      redis: readCpu(cluster.redis.pid),
      generators: generators.map((g) => readCpu(g.child.pid)),
      machine: readMachine(),
    });
  };
  const onProgress = (g: Generator): void => {
    if (g === subA) sample(true);
  };
  let sampler: NodeJS.Timeout | undefined;
  const settleSeconds = await settle(cluster);
  if (settleSeconds >= SETTLE_MAX_MS / 1000) problems.push(`the nodes and Redis were still busy ${settleSeconds.toFixed(0)} s after the previous run`);
  try {
    // Subscribers first, on their nodes; their first progress line comes 1 s after they subscribed.
    const subSeconds = load.fixed ? D + 15 : D + 6;
    for (const [i, group] of GROUPS.entries()) {
      const port = cluster.ports[topology.subNodes[i]!]!;
      const args = ['-h', HOST, '-p', String(port), '-c', '1', '--sub-topic', `cb${group}/+`, '-q', String(load.qos), '-d', String(subSeconds), '--workers', '1', '--json', '-I', `cb-sub${group}-`];
      if (load.fixed) args.push('-n', String(countPerProcess));
      const g = startGenerator(`sub${group}@n${topology.subNodes[i]! + 1}`, 'sub', args, onProgress);
      generators.push(g);
      if (i === 0) subA = g;
    }
    await withTimeout(Promise.all(generators.map((g) => g.firstLine)), 20_000, 'bench sub start');
    // The subscriptions are routed through Redis; give the publishing node a moment to learn them.
    await sleep(300);
    const statsBefore = await redisInfo(cluster);
    const metricsBefore = await Promise.all(cluster.httpPorts.map(nodeMetrics));
    sample(false);
    sampler = setInterval(() => sample(false), 200);
    for (const group of GROUPS) {
      const args = ['-h', HOST, '-p', String(cluster.ports[0]!), '-c', String(PUBLISHERS_PER_PROCESS), '-t', `cb${group}/%i`, '-q', String(load.qos), '-s', String(SIZE), '--workers', '1', '--json', '-I', `cb-pub${group}-`];
      args.push(...(load.fixed ? ['--rate', String(perPubProcess), '-n', String(countPerProcess)] : ['-d', String(D)]));
      generators.push(startGenerator(`pub${group}@n1`, 'pub', args, onProgress));
    }
    const pubs = generators.filter((g) => g.kind === 'pub');
    const subs = generators.filter((g) => g.kind === 'sub');
    await withTimeout(Promise.all(pubs.map((g) => g.firstLine)), 20_000, 'bench pub start');
    const exits = await withTimeout(Promise.all(generators.map((g) => g.exited)), (D + 60) * 1000, 'bench processes');
    clearInterval(sampler);
    const statsAfter = await redisInfo(cluster);
    const metricsAfter = await Promise.all(cluster.httpPorts.map(nodeMetrics));
    const json = generators.map((g) => parseJson(g));

    // A generator's progress lines come every 1 s after its "go": it started about 1 s before the first.
    const goes = pubs.map((g) => g.progress[0]!.t - 1000);
    const firstGo = Math.min(...goes);
    const lastGo = Math.max(...goes);

    // Steady state: subA's progress lines (a CPU reading was taken at each) while both publishers run.
    const warm = Math.min(2000, D * 250);
    const inWindow = samples.filter((s) => s.line && s.t >= lastGo + warm && s.t <= firstGo + D * 1000 - 100);
    let steady: Measure | null = null;
    if (inWindow.length >= 2) {
      const a = inWindow[0]!;
      const b = inWindow.at(-1)!;
      const between = (g: Generator, pick: (p: Progress) => number): number => countAt(g, b.t, pick) - countAt(g, a.t, pick);
      steady = measure(
        a,
        b,
        subs.reduce((n, g) => n + between(g, (p) => p.received), 0),
        pubs.reduce((n, g) => n + between(g, (p) => p.sent), 0),
      );
    } else {
      problems.push(`no steady window: the publishers started ${((lastGo - firstGo) / 1000).toFixed(1)} s apart`);
    }
    const startRssMiB = { nodes: samples[0]!.nodes.map((x) => x.rssMiB), redis: samples[0]!.redis.rssMiB };
    const peakRssMiB = {
      nodes: cluster.nodes.map((_n, i) => Math.max(...samples.map((x) => x.nodes[i]?.rssMiB ?? 0))),
      redis: Math.max(...samples.map((x) => x.redis.rssMiB)),
    };

    // Whole run: first publisher's go to the last delivery.
    const received = subs.map((g) => json[generators.indexOf(g)]?.received ?? g.progress.at(-1)?.received ?? 0);
    const end = Math.max(...subs.map((g, i) => lastDelivery(g, received[i]!)));
    const sentTotal = pubs.reduce((n, g) => n + (json[generators.indexOf(g)]?.sent ?? 0), 0);
    // Publishers' rate over their own publishing time (QoS 1: until the last PUBACK).
    const sending = Math.max(...pubs.map((g) => json[generators.indexOf(g)]?.elapsed ?? 0));
    const run = measure(sampleAt(samples, firstGo), sampleAt(samples, end), received.reduce((x, y) => x + y, 0), sentTotal, sending > 0 ? sending : undefined);

    const totals = { sent: 0, acked: 0, received: 0, expected: 0, notDelivered: 0 };
    const latency = { p50: 0, p99: 0, max: 0 };
    let ackLatency: { p50: number; p99: number } | null = null;
    const generatorErrors: Record<string, Record<string, number>> = {};
    const generatorExitCodes: Record<string, number | null> = {};
    const generatorStderr: Record<string, string[]> = {};
    generators.forEach((g, i) => {
      const j = json[i];
      generatorExitCodes[g.name] = exits[i]!;
      if (g.stderr.length > 0) generatorStderr[g.name] = g.stderr;
      if (j === undefined) {
        problems.push(`${g.name}: no JSON summary (exit ${exits[i]})`);
        return;
      }
      if (Object.keys(j.errors).length > 0) {
        generatorErrors[g.name] = j.errors;
        problems.push(`${g.name}: errors ${JSON.stringify(j.errors)}`);
      }
      if (exits[i] !== 0) problems.push(`${g.name}: exit code ${exits[i]}`);
      if (g.kind === 'pub') {
        totals.sent += j.sent;
        totals.acked += j.acked;
        if (load.qos === 1 && j.acked !== j.sent) problems.push(`${g.name}: sent ${j.sent}, acked ${j.acked}`);
        if (j.ackLatency.count > 0) ackLatency = { p50: Math.max(ackLatency?.p50 ?? 0, j.ackLatency.p50), p99: Math.max(ackLatency?.p99 ?? 0, j.ackLatency.p99) };
      } else {
        totals.received += j.received;
        // The worse of the two subscribers.
        latency.p50 = Math.max(latency.p50, j.latency.p50);
        latency.p99 = Math.max(latency.p99, j.latency.p99);
        latency.max = Math.max(latency.max, j.latency.max);
      }
    });
    totals.expected = totals.sent; // each message has exactly one subscriber
    totals.notDelivered = totals.expected - totals.received;
    const nodeMetricsDelta = options.metrics ? metricsAfter.map((m, i) => delta(m, metricsBefore[i]!, (k) => k.endsWith('_total') || k.includes('_total{'))) : null;
    if (totals.notDelivered !== 0) {
      const dropped = nodeMetricsDelta?.map((m, i) => `n${i + 1} ${JSON.stringify(Object.fromEntries(Object.entries(m).filter(([k]) => k.includes('dropped'))))}`).join(', ');
      const what = !load.fixed
        ? 'flat out, not delivered (dropped by the broker\'s limits, or still queued when the subscriber\'s run ended)'
        : load.qos === 1
          ? 'LOSS at QoS 1'
          : 'QoS 0 not delivered';
      problems.push(`${what}: sent ${totals.sent}, received ${totals.received} (${totals.notDelivered})${dropped === undefined ? '' : `; drop counters: ${dropped}`}`);
    }
    if (load.fixed && totals.sent !== countPerProcess * 2) problems.push(`publishers sent ${totals.sent} of ${countPerProcess * 2}`);
    // Redis's own notices ("*" and "-" lines) are routine; anything else, and every node line, is reported.
    const logLines = cluster.logs.slice(logStart).filter((l) => !(l.source === 'redis' && /^\d+:[CM] .* (\*|-) /.test(l.line) && !/ASAP|error|fail/i.test(l.line)));
    for (const l of logLines) problems.push(`log ${l.source}: ${l.line.slice(0, 300)}`);
    const redisStats = delta(statsAfter, statsBefore, (k) => k.startsWith('total_') || k.startsWith('calls_') || k.startsWith('usec_') || k === 'aof_rewrites');
    const origin = generators[0]!.spawnedAt;

    return {
      topology: topology.name,
      topologyLabel: topology.label,
      nodes: topology.nodes,
      load: load.name,
      qos: load.qos,
      fixedRate: load.fixed ? options.rate : null,
      repeat,
      run,
      steady,
      startRssMiB,
      peakRssMiB,
      settleSeconds,
      totals,
      latencyMs: latency,
      ackLatencyMs: ackLatency,
      redisStats,
      nodeMetrics: nodeMetricsDelta,
      originEpochMs: origin,
      generators: generators.map((g) => ({
        name: g.name,
        spawnedMs: g.spawnedAt - origin,
        exitedMs: g.exitedAt === undefined ? null : g.exitedAt - origin,
        progress: g.progress.map((p): [number, number, number] => [p.t - origin, p.sent, p.received]),
      })),
      generatorErrors,
      generatorExitCodes,
      generatorStderr,
      logLines,
      problems,
    };
  } finally {
    clearInterval(sampler);
    await Promise.all(generators.map((g) => stop(g.child, 2000)));
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const dec = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

interface Row {
  topology: Topology;
  load: Load;
  runs: RunResult[];
  measures: Measure[];
  delivered: number;
  sent: number;
  broker: number;
  redis: number;
  total: number;
  nodes: number[];
  busy: number;
  others: number;
  generators: number;
  /** Redis commands per delivered message over the whole run. */
  redisCommands: number;
  /** Peak RSS MiB in the run, and at its start: nodes, then Redis. */
  rss: number[];
  rssStart: number[];
}

const primary = (r: RunResult): Measure => r.run;

function summarise(results: RunResult[]): Row[] {
  const rows: Row[] = [];
  for (const load of LOADS) {
    for (const topology of TOPOLOGIES) {
      const runs = results.filter((r) => r.topology === topology.name && r.load === load.name);
      if (runs.length === 0) continue;
      const measures = runs.map(primary);
      const m = (pick: (x: Measure) => number): number => median(measures.map(pick));
      rows.push({
        topology,
        load,
        runs,
        measures,
        delivered: m((x) => x.deliveredPerSecond),
        sent: m((x) => x.sentPerSecond),
        broker: m((x) => x.usPerMessage.broker),
        redis: m((x) => x.usPerMessage.redis),
        total: m((x) => x.usPerMessage.total),
        nodes: Array.from({ length: topology.nodes }, (_x, i) => m((x) => x.usPerMessage.nodes[i]!)),
        busy: m((x) => x.cpuSeconds.machineBusyCores),
        others: median(runs.map((r) => r.steady?.cpuSeconds.othersCores ?? NaN)),
        generators: median(runs.map((r) => r.steady?.usPerMessage.generators ?? NaN)),
        rss: [...Array.from({ length: topology.nodes }, (_x, i) => median(runs.map((r) => r.peakRssMiB.nodes[i]!))), median(runs.map((r) => r.peakRssMiB.redis))],
        rssStart: [...Array.from({ length: topology.nodes }, (_x, i) => median(runs.map((r) => r.startRssMiB.nodes[i]!))), median(runs.map((r) => r.startRssMiB.redis))],
        redisCommands: median(runs.map((r) => (r.redisStats['total_commands_processed'] ?? 0) / Math.max(1, r.totals.received))),
      });
    }
  }
  return rows;
}

function report(rows: Row[], options: Options): string {
  const lines: string[] = [];
  const loadLabel = (l: Load): string => `QoS ${l.qos} ${l.fixed ? `${int(options.rate)}/s` : 'flat out'}`;
  lines.push(
    `| load | cluster | delivered msg/s | sent msg/s | nodes CPU µs/msg (n1 / n2 / n3) | Redis CPU µs/msg | nodes + Redis µs/msg | generators µs/msg | machine busy cores of ${CORES} (other processes) | Redis commands/msg | e2e latency p50 / p99 ms | RSS MiB start→peak (nodes / Redis) | not delivered |`,
  );
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of rows) {
    const latency = `${dec(median(row.runs.map((r) => r.latencyMs.p50)), 2)} / ${dec(median(row.runs.map((r) => r.latencyMs.p99)), 1)}`;
    const lost = row.runs.map((r) => r.totals.notDelivered).join('+');
    const perNode = row.nodes.length > 1 ? ` (${row.nodes.map((n) => dec(n)).join(' / ')})` : '';
    const busy = Number.isFinite(row.others) ? `${dec(row.busy, 2)} (${dec(row.others, 2)})` : dec(row.busy, 2);
    lines.push(
      `| ${loadLabel(row.load)} | ${row.topology.label} | ${int(row.delivered)} | ${int(row.sent)} | ${dec(row.broker)}${perNode} | ${dec(row.redis)} | ${dec(row.total)} | ${dec(row.generators)} | ${busy} | ${dec(row.redisCommands, 2)} | ${latency} | ${row.rss.map((x, i) => `${int(row.rssStart[i]!)}→${int(x)}`).join(' / ')} | ${lost} |`,
    );
  }
  lines.push('');
  lines.push('Every figure covers the whole run: from the first publisher\'s start to the last delivery (estimated');
  lines.push('from 1 s progress lines). CPU per message = CPU in that span / messages delivered (exact count).');
  lines.push('Generator CPU and "other processes" are measured in the steady window (n/a when there is none).');
  lines.push('');
  lines.push('Cross-node overhead: CPU µs per delivered message minus the 1-node figure of the same load.');
  lines.push('');
  lines.push('| load | cluster | Δ nodes µs/msg | Δ Redis µs/msg | Δ nodes + Redis µs/msg | nodes + Redis vs 1 node |');
  lines.push('|---|---|---:|---:|---:|---:|');
  for (const load of LOADS) {
    const base = rows.find((r) => r.load === load && r.topology.nodes === 1);
    if (base === undefined) continue;
    for (const row of rows.filter((r) => r.load === load && r.topology.nodes > 1)) {
      lines.push(
        `| ${loadLabel(load)} | ${row.topology.label} | ${dec(row.broker - base.broker)} | ${dec(row.redis - base.redis)} | ${dec(row.total - base.total)} | ${dec(row.total / base.total, 2)}× |`,
      );
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  CLI = options.cli;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npx tsc -p tsconfig.build.json first`);
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing (Debian package redis-server)`);
  const topologies = TOPOLOGIES.filter((t) => options.topologies.includes(t.name));
  const loads = LOADS.filter((l) => options.loads.includes(l.name));
  if (topologies.length === 0 || loads.length === 0) throw new Error('nothing to run: check --topologies / --loads');
  const started = Date.now();
  // Every run is bounded; so is the whole: far beyond the expected time, stop everything.
  const limitSeconds = 120 + options.repeat * topologies.length * (10 + loads.length * (options.seconds + 45));
  setTimeout(() => {
    process.stderr.write(`cluster bench: still running after ${limitSeconds} s, stopping every process\n`);
    killAllNow();
    process.exit(2);
  }, limitSeconds * 1000).unref();
  process.stderr.write(
    `cluster bench: ${topologies.length} topologies × ${loads.length} loads × ${options.repeat} repeat(s), ${options.seconds} s of publishing each, fixed rate ${options.rate}/s, ${SIZE} B, 2×${PUBLISHERS_PER_PROCESS} publishers on n1, 2 subscribers\n`,
  );
  const results: RunResult[] = [];
  const failures: { topology: string; load: string; repeat: number; error: string }[] = [];
  const idle: { topology: string; repeat: number; seconds: number; nodesCores: number; redisCores: number }[] = [];
  for (let repeat = 1; repeat <= options.repeat; repeat++) {
    for (const topology of topologies) {
      const cluster = await startCluster(topology, options.metrics);
      idle.push({ topology: topology.name, repeat, ...cluster.idle! });
      process.stderr.write(`${topology.label}: idle ${dec(cluster.idle!.nodesCores * 100, 2)}% of a core for the nodes, ${dec(cluster.idle!.redisCores * 100, 2)}% for Redis\n`);
      try {
        for (const load of loads) {
          const t0 = Date.now();
          try {
            const result = await runOnce(cluster, load, options, repeat);
            results.push(result);
            const m = primary(result);
            process.stderr.write(
              `[${((Date.now() - started) / 1000).toFixed(0)}s] ${topology.label.padEnd(22)} ${load.name.padEnd(8)} #${repeat}: delivered ${int(m.deliveredPerSecond)}/s (${dec(m.seconds)} s; steady: ${result.steady === null ? 'n/a' : `${int(result.steady.deliveredPerSecond)}/s, ${dec(result.steady.usPerMessage.total)} µs/msg`}), ` +
                `nodes ${dec(m.usPerMessage.broker)} + redis ${dec(m.usPerMessage.redis)} µs/msg, busy ${dec(m.cpuSeconds.machineBusyCores, 2)} cores, ` +
                `not delivered ${result.totals.notDelivered} (${((Date.now() - t0) / 1000).toFixed(1)} s)${result.problems.length > 0 ? `\n    problems: ${result.problems.join('\n              ')}` : ''}\n`,
            );
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            failures.push({ topology: topology.name, load: load.name, repeat, error: message });
            process.stderr.write(`${topology.label} ${load.name} #${repeat}: FAILED: ${message}\n`);
          }
          await sleep(500);
        }
      } finally {
        await stopCluster(cluster);
      }
    }
  }
  const rows = summarise(results);
  const table = report(rows, options);
  const header = `Cluster bench, ${new Date().toISOString().slice(0, 10)}, ${CORES} CPUs, Node ${process.version}, ${options.seconds} s publishing per run, ${options.repeat} repeat(s) (medians), 64 B payloads, 2×2 publishers on n1, 2 subscribers (cbA/+, cbB/+)`;
  const idleLine = idle.map((x) => `${x.topology}: nodes ${dec(x.nodesCores * 100, 2)}%, Redis ${dec(x.redisCores * 100, 2)}%`).join('; ');
  process.stdout.write(`${header}\n\n${table}\n\nIdle CPU after start-up (% of one core, ${IDLE_MS / 1000} s, no client): ${idleLine}\n`);
  if (failures.length > 0) process.stdout.write(`\nFAILED runs:\n${failures.map((f) => `- ${f.topology} ${f.load} #${f.repeat}: ${f.error}`).join('\n')}\n`);
  const problems = results.flatMap((r) => r.problems.map((p) => `${r.topology} ${r.load} #${r.repeat}: ${p}`));
  if (problems.length > 0) process.stdout.write(`\nProblems seen:\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
  writeFileSync(
    options.out,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: CORES, options, payloadBytes: SIZE, publishers: 2 * PUBLISHERS_PER_PROCESS, subscribers: 2, idle, results, failures, table }, null, 2)}\n`,
  );
  process.stdout.write(`\nraw results: ${options.out} (${((Date.now() - started) / 1000).toFixed(0)} s in all)\n`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`cluster bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await Promise.all([...children].map((c) => stop(c, 2000)));
  process.exitCode = 1;
}
