/**
 * `starling --workers N` under load (docs/benchmarks.md, "Workers"), driven by the C load generator
 * mqload (../shared/bench): idle connections held by six workers, the broker CPU per message of a
 * delivery that crosses workers against one that does not, and fan-in / iot_q1 throughput with one and
 * two workers. Runs that are compared alternate (1, 2, 1, 2 …) and the medians are printed: the
 * machine is shared.
 *
 *   npm run build
 *   node --import tsx bench/workers.bench.ts conn|connect|cpu|throughput|all [--repeat 3] [--conns 100000]
 *
 * MQLOAD=/path/to/mqload overrides the generator (default /work/benchruns/bin/mqload, or build
 * ../shared/bench/mqload.c with `cc -O2 -o mqload mqload.c -lm`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const CLI = join(import.meta.dirname, '../dist/cli/main.js');
const MQLOAD = process.env['MQLOAD'] ?? '/work/benchruns/bin/mqload';

interface Broker {
  child: ChildProcess;
  pid: number;
  port: number;
  httpPort: number;
  stop(): Promise<void>;
}

/** Starts the broker (one process, or a group of `workers`) on free ports, in memory, and waits until it serves. */
async function startBroker(workers: number, env: NodeJS.ProcessEnv = {}): Promise<Broker> {
  const args = [CLI, '--port', '0', '--http-port', '0', '--store', 'memory', '--log-format', 'json', '--sys-interval', '0'];
  if (workers > 1) args.push('--workers', String(workers));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  let text = '';
  const ready = workers > 1 ? new RegExp(`all ${workers} workers serving`) : /HTTP \(dashboard/;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker not ready in 60 s:\n${text.slice(-2000)}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (ready.test(text) && /HTTP \(dashboard/.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`broker exited (${code}):\n${text.slice(-2000)}`)));
  });
  child.stdout.resume();
  const port = Number(/mqtt:\/\/127\.0\.0\.1:(\d+)/.exec(text)![1]);
  const httpPort = Number(/http:\/\/127\.0\.0\.1:(\d+)\//.exec(text)![1]);
  return {
    child,
    pid: child.pid!,
    port,
    httpPort,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Runs mqload with `args`; resolves with its key=value result line. */
function mqload(args: string[]): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(MQLOAD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    // 'close', not 'exit': the result line may still be in the pipe when the process exits.
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      const record: Record<string, string> = {};
      for (const pair of line.split(' ')) {
        const at = pair.indexOf('=');
        if (at > 0) record[pair.slice(0, at)] = pair.slice(at + 1);
      }
      if (record['status'] === undefined) reject(new Error(`mqload ${args.join(' ')} failed (${code}): ${err.trim()} ${out.trim()}`));
      else resolve(record);
    });
  });
}

async function overview(httpPort: number): Promise<{ totals: { clientsConnected: number }; workers?: { worker: string; connections: number; cpuSeconds: number; memory: { rss: number } }[] }> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/api/overview`, { signal: AbortSignal.timeout(10_000) });
  return (await response.json()) as never;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** `total` idle connections held by six workers: six mqload processes (each under the 20,000-descriptor limit). */
async function conn(total: number): Promise<void> {
  const broker = await startBroker(6);
  try {
    const processes = 6;
    const each = Math.ceil(total / processes);
    let peak = 0;
    let perWorker: string[] = [];
    let rssMiB = 0;
    const runs = Array.from({ length: processes }, () => mqload(['-s', 'conn', '-c', String(each), '-H', '20', '-B', '8', '-R', '20000', '-T', '180', '-p', String(broker.port), '-x', String(broker.pid)]));
    const sampling = (async () => {
      for (let i = 0; i < 400; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        try {
          const o = await overview(broker.httpPort);
          if (o.totals.clientsConnected > peak) {
            peak = o.totals.clientsConnected;
            perWorker = (o.workers ?? []).map((w) => `${w.worker} ${fmt(w.connections)}`);
            rssMiB = (o.workers ?? []).reduce((n, w) => n + w.memory.rss, 0) / 2 ** 20;
          }
          if (peak >= processes * each) return;
        } catch {
          // the HTTP side is busy while connections pour in: try again
        }
      }
    })();
    const results = await Promise.all(runs);
    await sampling;
    const rates = results.map((r) => Number(r['conn_per_s'] ?? 0));
    console.log(`conn: ${fmt(processes * each)} asked, ${fmt(peak)} connected at once (API), per worker: ${perWorker.join(', ')}`);
    console.log(`conn: workers' RSS at the peak ${fmt(rssMiB)} MiB; mqload per process: ${results.map((r) => `${r['ok']} of ${r['conns']} ok, ${r['status']}`).join('; ')}`);
    // Each mqload samples the whole group's CPU (primary and workers) over its own connect phase, which
    // the six share: the group's CPU per connection is that CPU over all connections.
    const ok = results.reduce((n, r) => n + Number(r['ok'] ?? 0), 0);
    const groupCpu = median(results.map((r) => Number(r['broker_cpu_s'] ?? 0)));
    console.log(`conn: connections/s per mqload process ${rates.map((r) => fmt(r)).join(', ')} (${fmt(rates.reduce((a, b) => a + b, 0))} in all); group CPU ${fmt(groupCpu, 2)} s for ${fmt(ok)} connections: ${fmt((groupCpu * 1e6) / Math.max(1, ok), 1)} µs per connection`);
    console.log(`conn: raw: ${JSON.stringify(results[0])}`);
  } finally {
    await broker.stop();
  }
}

/**
 * What a connect costs: 10,000 idle connections on one process, on two workers with the primary's
 * round-robin (the default), and on two workers with the kernel's spreading (NODE_CLUSTER_SCHED_POLICY=none).
 */
async function connectCost(repeat: number): Promise<void> {
  const variants: [string, number, NodeJS.ProcessEnv][] = [
    ['one process', 1, {}],
    ['2 workers, round-robin', 2, {}],
    ['2 workers, kernel (SCHED_NONE)', 2, { NODE_CLUSTER_SCHED_POLICY: 'none' }],
  ];
  const cpu = new Map<string, number[]>();
  const rate = new Map<string, number[]>();
  for (let i = 0; i < repeat; i++) {
    for (const [name, workers, env] of variants) {
      const broker = await startBroker(workers, env);
      try {
        const r = await mqload(['-s', 'conn', '-c', '10000', '-H', '4', '-B', '8', '-T', '120', '-p', String(broker.port), '-x', String(broker.pid)]);
        console.log(`connect ${name} run ${i + 1}: ${r['conn_per_s']} conn/s, ${r['broker_cpu_us_per_conn']} µs broker CPU per connection, ${r['bytes_per_conn']} B RSS per connection, ${r['status']}`);
        (cpu.get(name) ?? cpu.set(name, []).get(name)!).push(Number(r['broker_cpu_us_per_conn']));
        (rate.get(name) ?? rate.set(name, []).get(name)!).push(Number(r['conn_per_s']));
      } finally {
        await broker.stop();
      }
    }
  }
  for (const [name] of variants) console.log(`connect ${name}: median ${fmt(median(rate.get(name)!))} conn/s, ${fmt(median(cpu.get(name)!), 1)} µs broker CPU per connection`);
}

/** CPU seconds (user + system) used so far by process `pid`, from /proc (clock ticks: fine over seconds). */
function processCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * One fan-in run against `workers`: broker CPU per delivered message and the rate; with workers, the
 * share of the primary (the hub) and of the workers, per message received over the whole run.
 */
async function fanin(workers: number, extra: string[], check?: (b: Broker) => Promise<string>): Promise<{ perMsgUs: number; rate: number; note: string; raw: Record<string, string>; hubUs?: number; workersUs?: number }> {
  const broker = await startBroker(workers);
  try {
    let note = '';
    const hubBefore = processCpu(broker.pid);
    const workersBefore = workers > 1 ? ((await overview(broker.httpPort)).workers ?? []).reduce((n, w) => n + w.cpuSeconds, 0) : 0;
    const run = mqload(['-s', 'fanin', '-m', '64', '-d', '5', '-p', String(broker.port), '-x', String(broker.pid), ...extra]);
    if (check !== undefined) note = await check(broker);
    const r = await run;
    const perSecond = Number(r['msgs_per_broker_cpu_s']);
    const out = { perMsgUs: 1e6 / perSecond, rate: Number(r['msgs_per_s']), note: `${note} status=${r['status']} lost=${r['lost']}`, raw: r };
    if (workers === 1) return out;
    const received = Number(r['received']);
    const hubUs = ((processCpu(broker.pid) - hubBefore) * 1e6) / received;
    const workersUs = ((((await overview(broker.httpPort)).workers ?? []).reduce((n, w) => n + w.cpuSeconds, 0) - workersBefore) * 1e6) / received;
    return { ...out, hubUs, workersUs };
  } finally {
    await broker.stop();
  }
}

/** During a 1 → 1 run on two workers: whether the publisher and the subscriber are on different workers. */
async function placement(broker: Broker): Promise<string> {
  for (let i = 0; i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    try {
      const page = (await (await fetch(`http://127.0.0.1:${broker.httpPort}/api/clients?limit=10`)).json()) as { items: { worker: string; subscriptions: number }[] };
      if (page.items.length < 2) continue;
      const sub = page.items.find((c) => c.subscriptions > 0);
      const pub = page.items.find((c) => c.subscriptions === 0);
      if (sub !== undefined && pub !== undefined) return sub.worker === pub.worker ? 'same-worker' : 'cross-worker';
    } catch {
      // not yet
    }
  }
  return 'placement unknown';
}

/** Broker CPU per message: 1 publisher → 1 subscriber, in one process and across two workers. */
async function cpu(repeat: number): Promise<void> {
  for (const qos of ['0', '1']) {
    const single: number[] = [];
    const cross: number[] = [];
    const hub: number[] = [];
    const inWorkers: number[] = [];
    const notes: string[] = [];
    for (let i = 0; i < repeat; i++) {
      const one = await fanin(1, ['-P', '1', '-q', qos]);
      single.push(one.perMsgUs);
      const two = await fanin(2, ['-P', '1', '-q', qos], placement);
      if (two.note.startsWith('cross-worker')) cross.push(two.perMsgUs);
      notes.push(`1w ${fmt(one.perMsgUs, 2)} µs (${fmt(one.rate)}/s), 2w ${fmt(two.perMsgUs, 2)} µs (${fmt(two.rate)}/s, hub ${fmt(two.hubUs ?? 0, 2)} µs + workers ${fmt(two.workersUs ?? 0, 2)} µs per message over the run, ${two.note})`);
      if (two.note.startsWith('cross-worker')) {
        hub.push(two.hubUs ?? 0);
        inWorkers.push(two.workersUs ?? 0);
      }
    }
    console.log(`cpu QoS ${qos}: ${notes.join(' | ')}`);
    console.log(`cpu QoS ${qos}: median broker CPU per message: same process ${fmt(median(single), 2)} µs, across two workers (publisher's worker + hub + subscriber's worker) ${cross.length === 0 ? 'n/a' : fmt(median(cross), 2)} µs${hub.length === 0 ? '' : ` (over the whole run: hub ${fmt(median(hub), 2)} µs, workers ${fmt(median(inWorkers), 2)} µs)`}`);
  }
}

/** fan-in 8 → 1 QoS 1 and iot_q1 (10,000 publishers at 1 msg/s) with one and two workers. */
async function throughput(repeat: number): Promise<void> {
  const scenarios: [string, string[]][] = [
    ['fanin_q1', ['-P', '8', '-q', '1']],
    ['iot_q1', ['-P', '10000', '-r', '1', '-q', '1', '-b', '1', '-T', '120']],
  ];
  for (const [name, args] of scenarios) {
    const rows: Record<number, { rate: number[]; perMsg: number[]; cpu: number[] }> = { 1: { rate: [], perMsg: [], cpu: [] }, 2: { rate: [], perMsg: [], cpu: [] } };
    for (let i = 0; i < repeat; i++) {
      for (const workers of [1, 2]) {
        const r = await fanin(workers, args);
        rows[workers]!.rate.push(r.rate);
        rows[workers]!.perMsg.push(r.perMsgUs);
        rows[workers]!.cpu.push(Number(r.raw['broker_cpu_pct']));
        console.log(`${name} ${workers}w run ${i + 1}: ${fmt(r.rate)} msgs/s, ${fmt(r.perMsgUs, 2)} µs broker CPU/msg${r.hubUs === undefined ? '' : ` (run: hub ${fmt(r.hubUs, 2)} µs, workers ${fmt(r.workersUs ?? 0, 2)} µs)`}, broker ${r.raw['broker_cpu_pct']}% gen ${r.raw['gen_cpu_pct']}% host ${r.raw['host_cpu_pct']}%, p50 ${r.raw['p50_us']} µs p99 ${r.raw['p99_us']} µs, ${r.note}`);
      }
    }
    for (const workers of [1, 2]) {
      const row = rows[workers]!;
      console.log(`${name} ${workers} worker(s): median ${fmt(median(row.rate))} msgs/s, ${fmt(median(row.perMsg), 2)} µs broker CPU per message, broker CPU ${fmt(median(row.cpu))}%`);
    }
  }
}

const { positionals, values } = parseArgs({ allowPositionals: true, options: { repeat: { type: 'string', default: '3' }, conns: { type: 'string', default: '100000' } } });
const what = positionals[0] ?? 'all';
const repeat = Number(values.repeat);
if (what === 'conn' || what === 'all') await conn(Number(values.conns));
if (what === 'connect' || what === 'all') await connectCost(repeat);
if (what === 'cpu' || what === 'all') await cpu(repeat);
if (what === 'throughput' || what === 'all') await throughput(repeat);
