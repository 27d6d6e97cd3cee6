/**
 * Soak: one `starling` process (dist/cli/main.js, embedded store) holding 19,000 device connections
 * from several generator processes (bench/soak-devices.ts; each process holds well under its 20,000
 * files) for a long time (default 30 minutes): telemetry at QoS 0/1, retained status updates,
 * commands at QoS 1 (queued for offline persistent sessions), 5% of the devices reconnecting per
 * minute, some with wills. Every 10 s it samples the broker's /metrics (RSS, heap, event-loop delay,
 * connections, sessions, queued and in-flight messages) into soak.csv; at the end it writes
 * soak.svg and summary.json, with the least-squares trend of each series over the second half.
 *
 *   npm run build
 *   node --import tsx bench/soak.ts [--minutes 30] [--connections 19000] [--generators 4] [--out DIR]
 *
 * Loopback only; everything it starts is stopped (by PID) when it ends or is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DeviceReport, DeviceSettings } from './soak-devices.js';
import { plot, trend, type Sample } from './soak-plot.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    connections: { type: 'string', default: '19000' },
    generators: { type: 'string', default: '4' },
    'sample-s': { type: 'string', default: '10' },
    churn: { type: 'string', default: '0.05' },
    out: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const connections = Number(values.connections);
const generators = Number(values.generators);
const sampleMs = Number(values['sample-s']) * 1000;
const out = values.out ?? join('bench', 'results', `soak-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')}`);
const CLI = join(import.meta.dirname, '../dist/cli/main.js');
const DEVICES = join(import.meta.dirname, 'soak-devices.ts');
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
if (connections / generators >= 19_000) throw new Error(`${connections / generators} connections per generator: a process may hold at most 20,000 files; use more --generators`);
mkdirSync(out, { recursive: true });

const children = new Set<ChildProcess>();
const dataDir = mkdtempSync(join(tmpdir(), 'starling-soak-'));
function cleanup(): void {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
}
process.once('exit', cleanup);
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Prometheus samples without labels (and `name{label="v"}` as written) → value. */
async function metrics(httpPort: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  const map = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    map.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return map;
}

/**
 * The broker's resident memory split as the kernel counts it: anonymous (heap, buffers: what a leak
 * grows) and file-backed (the embedded store's memory map, which grows with the data file and is
 * given back under memory pressure), in MiB.
 */
function residentSplit(pid: number | undefined): { anon: number; file: number } {
  try {
    const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
    return { anon: kb('RssAnon') / 1024, file: (kb('RssFile') + kb('RssShmem')) / 1024 };
  } catch {
    return { anon: 0, file: 0 };
  }
}

const [port, httpPort] = [await freePort(), await freePort()];
const brokerArgs = [CLI, '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn', '--http-host', '127.0.0.1', '--http-port', String(httpPort)];
// SOAK_BROKER_NODE_FLAGS: Node flags for the broker only (e.g. --heapsnapshot-signal=SIGUSR2 to look inside it).
const brokerFlags = (process.env['SOAK_BROKER_NODE_FLAGS'] ?? '').split(' ').filter((flag) => flag !== '');
const broker = spawn(process.execPath, [...brokerFlags, ...brokerArgs], { stdio: ['ignore', 'inherit', 'inherit'] });
children.add(broker);
for (let i = 0; ; i++) {
  if (broker.exitCode !== null) throw new Error(`broker exited (${broker.exitCode})`);
  try {
    await metrics(httpPort);
    break;
  } catch {
    if (i > 200) throw new Error('broker /metrics did not answer within 20 s');
    await sleep(100);
  }
}
console.log(`broker pid ${broker.pid} on port ${port}; ${connections} connections from ${generators} generators for ${minutes} min; samples every ${sampleMs / 1000} s into ${out}`);

const reports = new Map<number, DeviceReport>();
const perGenerator = Math.ceil(connections / generators);
for (let g = 0; g < generators; g++) {
  const settings: DeviceSettings = {
    port,
    generator: g,
    first: g * perGenerator,
    count: Math.min(perGenerator, connections - g * perGenerator),
    churnPerMinute: Number(values.churn),
    persistentShare: 0.1,
    willShare: 0.2,
    publishEveryMs: 30_000,
    qos1Share: 0.3,
    retainedEveryMs: 300_000,
    keepaliveS: 60,
    connectsPerSecond: 500,
    commandsPerSecond: 20,
    reportMs: 5000,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', DEVICES, JSON.stringify(settings)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, SOAK_TOTAL_DEVICES: String(connections) },
  });
  children.add(child);
  child.on('message', (message) => reports.set(g, message as DeviceReport));
}

const columns = [
  't_s', 'rss_mb', 'rss_anon_mb', 'rss_file_mb', 'heap_used_mb', 'heap_total_mb', 'external_mb', 'loop_p50_ms', 'loop_p99_ms', 'loop_max_ms',
  'connections', 'sessions', 'subscriptions', 'retained', 'queued', 'inflight', 'in_per_s', 'out_per_s',
  'gen_connected', 'gen_churned', 'gen_unexpected_closes', 'gen_refused',
] as const;
const csv = join(out, 'soak.csv');
writeFileSync(csv, `${columns.join(',')}\n`);
const rows: Sample[] = [];
const started = Date.now();
const end = started + minutes * 60_000;
let previous: { at: number; inbound: number; outbound: number } | undefined;
const sum = (m: Map<string, number>, prefix: string): number => [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

while (Date.now() < end) {
  await sleep(sampleMs - ((Date.now() - started) % sampleMs));
  if (broker.exitCode !== null) throw new Error(`broker exited (${String(broker.exitCode)}) during the soak`);
  let m: Map<string, number>;
  try {
    m = await metrics(httpPort);
  } catch (error) {
    // A broker too busy to answer within 5 s (or writing a heap snapshot): this sample is missing, the soak goes on.
    console.log(`${Math.round((Date.now() - started) / 1000)} s: no sample (${error instanceof Error ? error.message : String(error)})`);
    continue;
  }
  const now = Date.now();
  const inbound = sum(m, 'starling_messages_received_total');
  const outbound = sum(m, 'starling_messages_sent_total');
  const rate = (value: number, before: number | undefined): number => (previous === undefined || before === undefined ? 0 : (value - before) / ((now - previous.at) / 1000));
  const gen = [...reports.values()];
  const split = residentSplit(broker.pid);
  const row: Sample = {
    t_s: Math.round((now - started) / 1000),
    rss_mb: (m.get('process_resident_memory_bytes') ?? 0) / 2 ** 20,
    rss_anon_mb: split.anon,
    rss_file_mb: split.file,
    heap_used_mb: (m.get('nodejs_heap_size_used_bytes') ?? 0) / 2 ** 20,
    heap_total_mb: (m.get('nodejs_heap_size_total_bytes') ?? 0) / 2 ** 20,
    external_mb: (m.get('nodejs_external_memory_bytes') ?? 0) / 2 ** 20,
    loop_p50_ms: (m.get('nodejs_eventloop_lag_p50_seconds') ?? 0) * 1000,
    loop_p99_ms: (m.get('nodejs_eventloop_lag_p99_seconds') ?? 0) * 1000,
    loop_max_ms: (m.get('nodejs_eventloop_lag_max_seconds') ?? 0) * 1000,
    connections: m.get('starling_connections') ?? 0,
    sessions: m.get('starling_sessions') ?? 0,
    subscriptions: m.get('starling_subscriptions') ?? 0,
    retained: m.get('starling_retained_messages') ?? 0,
    queued: m.get('starling_queued_messages') ?? 0,
    inflight: m.get('starling_inflight_messages') ?? 0,
    in_per_s: rate(inbound, previous?.inbound),
    out_per_s: rate(outbound, previous?.outbound),
    gen_connected: gen.reduce((a, r) => a + r.connected, 0),
    gen_churned: gen.reduce((a, r) => a + r.churned, 0),
    gen_unexpected_closes: gen.reduce((a, r) => a + r.unexpectedCloses, 0),
    gen_refused: gen.reduce((a, r) => a + r.refused, 0),
  };
  previous = { at: now, inbound, outbound };
  rows.push(row);
  appendFileSync(csv, `${columns.map((c) => (Number.isInteger(row[c]) ? String(row[c]) : (row[c] ?? 0).toFixed(2))).join(',')}\n`);
  console.log(`${row['t_s']} s: ${row['connections']} connections, RSS ${row['rss_mb']!.toFixed(0)} MiB (anon ${row['rss_anon_mb']!.toFixed(0)}, file ${row['rss_file_mb']!.toFixed(0)}), heap ${row['heap_used_mb']!.toFixed(0)} MiB, loop p99 ${row['loop_p99_ms']!.toFixed(1)} ms, queued ${row['queued']}, inflight ${row['inflight']}, ${row['in_per_s']!.toFixed(0)} in/s, ${row['out_per_s']!.toFixed(0)} out/s`);
}

// The trend is judged on the second half: the first holds the ramp-up and the heap's growth to its working size.
const second = rows.filter((r) => (r['t_s'] ?? 0) >= (minutes * 60) / 2);
const figures = Object.fromEntries(['rss_mb', 'rss_anon_mb', 'rss_file_mb', 'heap_used_mb', 'queued', 'inflight', 'connections', 'loop_p99_ms'].map((key) => [key, trend(second, key)]));
const totals = [...reports.values()].reduce<Record<string, number>>((acc, r) => {
  for (const [k, v] of Object.entries(r)) if (k !== 'generator') acc[k] = (acc[k] ?? 0) + v;
  return acc;
}, {});
const summary = { minutes, connections, generators, samples: rows.length, secondHalf: figures, generatorTotals: totals };
writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
writeFileSync(
  join(out, 'soak.svg'),
  plot(rows, [
    {
      title: 'Memory',
      unit: 'MiB',
      series: [
        { key: 'rss_mb', label: 'RSS', colour: '#1f77b4' },
        { key: 'rss_anon_mb', label: 'RSS anonymous', colour: '#17becf' },
        { key: 'rss_file_mb', label: 'RSS file-backed (LMDB map)', colour: '#bcbd22' },
        { key: 'heap_used_mb', label: 'heap used', colour: '#ff7f0e' },
      ],
    },
    { title: 'Event-loop delay', unit: 'ms', series: [{ key: 'loop_p99_ms', label: 'p99 (per 10 s)', colour: '#d62728' }, { key: 'loop_p50_ms', label: 'p50', colour: '#9467bd' }] },
    { title: 'Queues', unit: 'messages', series: [{ key: 'queued', label: 'queued in sessions', colour: '#8c564b' }, { key: 'inflight', label: 'in flight', colour: '#e377c2' }] },
    { title: 'Connections', unit: 'count', series: [{ key: 'connections', label: 'broker connections', colour: '#17becf' }, { key: 'sessions', label: 'sessions', colour: '#7f7f7f' }] },
  ], `Starling soak: ${connections} connections, ${minutes} min, 5%/min churn`),
);
console.log(JSON.stringify(summary.secondHalf, null, 2));

for (const child of children) if (child !== broker && child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
await sleep(3000);
if (broker.pid !== undefined && broker.exitCode === null) process.kill(broker.pid, 'SIGTERM');
await new Promise((resolve) => (broker.exitCode !== null ? resolve(undefined) : broker.once('exit', resolve)));
console.log(`results in ${out}`);
