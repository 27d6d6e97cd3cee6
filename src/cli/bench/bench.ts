/**
 * `starling bench`: the coordinator. Spreads clients over worker threads, starts them together,
 * bounds the run by --duration / --count, prints a progress line on stderr at most once a second,
 * and a summary (text or --json) on stdout.
 */
import { Worker } from 'node:worker_threads';
import { Histogram, type HistogramSummary } from './histogram.js';
import { BENCH_USAGE, assertLoopback, parseBenchArgs, type BenchConfig } from './options.js';
import type { FromWorker, ToWorker, WorkerCounters } from './worker.js';

interface WorkerSlot {
  worker: Worker;
  counters: WorkerCounters;
  ready: boolean;
  published: boolean;
  done: boolean;
}

/** The summary printed at the end (also the --json object). */
export interface BenchSummary {
  mode: BenchConfig['mode'];
  publishers: number;
  subscribers: number;
  connections: number;
  qos: number;
  size: number;
  workers: number;
  /** Seconds from start to the end of publishing (conn: to all connected). */
  elapsed: number;
  sent: number;
  acked: number;
  received: number;
  /** Messages the subscribers should receive: sent × subscribers (with the default wildcard sub-topic). */
  expected: number;
  connected: number;
  sentPerSecond: number;
  receivedPerSecond: number;
  /** Latencies in milliseconds: end to end (pubsub, sub), publish → ack (pub QoS 1/2), connect (conn). */
  latency: HistogramSummary;
  ackLatency: HistogramSummary;
  connectLatency: HistogramSummary;
  errors: Record<string, number>;
}

function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_v, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

function sum(slots: WorkerSlot[], pick: (c: WorkerCounters) => number): number {
  return slots.reduce((n, s) => n + pick(s.counters), 0);
}

function errorsOf(slots: WorkerSlot[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of slots) for (const [k, v] of Object.entries(s.counters.errors)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function ms(h: HistogramSummary): HistogramSummary {
  const f = (v: number): number => Math.round(v) / 1000;
  return { count: h.count, min: f(h.min), mean: f(h.mean), p50: f(h.p50), p90: f(h.p90), p99: f(h.p99), p999: f(h.p999), max: f(h.max) };
}

function rate(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0);
}

/** Runs `starling bench`; resolves with the exit code. */
export async function runBench(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  const config = parsed;
  if (!config.allowRemote) await assertLoopback(config.host);
  const summary = await run(config);
  process.stdout.write(config.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
  return Object.keys(summary.errors).length === 0 ? 0 : 6;
}

function assign(config: BenchConfig, workers: number, receivedBy: SharedArrayBuffer): Array<Extract<ToWorker, { type: 'init' }>> {
  const publishers = config.mode === 'sub' ? 0 : config.clients;
  const subscribers = config.mode === 'sub' ? config.clients : config.subscribers;
  const quotas = config.count === undefined || config.mode === 'sub' ? new Array<number>(publishers).fill(Infinity) : split(config.count, publishers);
  const ratePerClient = config.rate / Math.max(1, config.mode === 'conn' ? workers : publishers);
  return Array.from({ length: workers }, (_v, w) => {
    const mine = (n: number): number[] => Array.from({ length: n }, (_x, i) => i).filter((i) => i % workers === w);
    const pubs = mine(publishers);
    return { type: 'init', config, publishers: pubs, subscribers: mine(subscribers), quotas: pubs.map((i) => quotas[i]!), ratePerClient, receivedBy };
  });
}

async function run(config: BenchConfig): Promise<BenchSummary> {
  const workerCount = Math.max(1, Math.min(config.workers, config.clients + config.subscribers));
  const script = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
  const slots: WorkerSlot[] = [];
  const latency = new Histogram();
  const ackLatency = new Histogram();
  const connectLatency = new Histogram();
  let wake: () => void = () => undefined;
  const changed = (): Promise<void> => new Promise((resolve) => (wake = resolve));
  for (let w = 0; w < workerCount; w++) {
    const slot: WorkerSlot = {
      worker: new Worker(script),
      counters: { sent: 0, acked: 0, received: 0, connected: 0, errors: {}, lastReceiveAt: 0 },
      ready: false,
      published: false,
      done: false,
    };
    slot.worker.on('message', (m: FromWorker) => {
      slot.counters = m.counters;
      if (m.type === 'ready') slot.ready = true;
      if (m.type === 'published') slot.published = true;
      if (m.type === 'done') {
        slot.done = true;
        latency.merge(m.latency);
        ackLatency.merge(m.ackLatency);
        connectLatency.merge(m.connectLatency);
      }
      wake();
    });
    slot.worker.on('error', (error) => {
      slot.counters.errors['ERR_WORKER'] = (slot.counters.errors['ERR_WORKER'] ?? 0) + 1;
      process.stderr.write(`starling bench: worker ${w} failed: ${error.message}\n`);
      slot.ready = slot.published = slot.done = true;
      wake();
    });
    slots.push(slot);
  }
  const waitFor = async (test: () => boolean, deadline: number): Promise<boolean> => {
    while (!test()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([changed(), new Promise((resolve) => (timer = setTimeout(resolve, Math.min(left, 1000))))]);
      clearTimeout(timer);
    }
    return true;
  };
  const post = (m: ToWorker): void => slots.forEach((s) => s.worker.postMessage(m));
  try {
    const receivedBy = new SharedArrayBuffer(4 * Math.max(1, config.clients));
    assign(config, workerCount, receivedBy).forEach((init, w) => slots[w]!.worker.postMessage(init));
    await waitFor(() => slots.every((s) => s.ready), Date.now() + 120_000);
    const start = Date.now();
    post({ type: 'go' });
    const progress = setInterval(() => printProgress(config, slots, start), 1000);
    const end = config.duration === undefined ? Infinity : start + config.duration * 1000;
    // --count alone still has a ceiling: one hour.
    const hardEnd = Math.min(end, start + 3_600_000);
    const publishedAll = (): boolean => slots.every((s) => s.published);
    const expectedCount = config.mode === 'sub' ? config.count : undefined;
    const stopTest = (): boolean => {
      if (expectedCount !== undefined) return sum(slots, (c) => c.received) >= expectedCount;
      return config.mode !== 'sub' && config.mode !== 'conn' && publishedAll(); // conn and sub hold until --duration
    };
    await waitFor(stopTest, hardEnd);
    post({ type: 'stop' });
    await waitFor(publishedAll, Date.now() + config.drain * 1000);
    const elapsed = (Date.now() - start) / 1000;
    const sent = sum(slots, (c) => c.sent);
    const subscribers = config.mode === 'sub' ? config.clients : config.subscribers;
    const expected = config.mode === 'pubsub' ? sent * subscribers : 0;
    if (config.mode === 'pubsub') await waitFor(() => sum(slots, (c) => c.received) >= expected, Date.now() + config.drain * 1000);
    clearInterval(progress);
    if (!config.quiet && process.stderr.isTTY) process.stderr.write('\n');
    post({ type: 'finish' });
    await waitFor(() => slots.every((s) => s.done), Date.now() + 10_000);
    const received = sum(slots, (c) => c.received);
    const lastReceive = Math.max(...slots.map((s) => s.counters.lastReceiveAt));
    const receiveWindow = lastReceive > start ? Math.max(elapsed, (lastReceive - start) / 1000) : elapsed;
    return {
      mode: config.mode,
      publishers: config.mode === 'sub' || config.mode === 'conn' ? 0 : config.clients,
      subscribers,
      connections: config.mode === 'conn' ? config.clients : config.clients + config.subscribers,
      qos: config.qos,
      size: config.size,
      workers: workerCount,
      elapsed,
      sent,
      acked: sum(slots, (c) => c.acked),
      received,
      expected,
      connected: sum(slots, (c) => c.connected),
      sentPerSecond: Math.round(sent / Math.max(elapsed, 0.001)),
      receivedPerSecond: Math.round(received / Math.max(receiveWindow, 0.001)),
      latency: ms(latency.summary()),
      ackLatency: ms(ackLatency.summary()),
      connectLatency: ms(connectLatency.summary()),
      errors: errorsOf(slots),
    };
  } finally {
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

let lastProgress = { at: 0, sent: 0, received: 0 };

function printProgress(config: BenchConfig, slots: WorkerSlot[], start: number): void {
  if (config.quiet) return;
  const t = Date.now();
  const sent = sum(slots, (c) => c.sent);
  const received = sum(slots, (c) => c.received);
  const errors = Object.values(errorsOf(slots)).reduce((a, b) => a + b, 0);
  const dt = (t - (lastProgress.at || start)) / 1000;
  const line =
    config.mode === 'conn'
      ? `[${((t - start) / 1000).toFixed(0)}s] connected ${sum(slots, (c) => c.connected)}/${config.clients}  errors ${errors}`
      : `[${((t - start) / 1000).toFixed(0)}s] sent ${sent} (${rate((sent - lastProgress.sent) / dt)}/s)  received ${received} (${rate((received - lastProgress.received) / dt)}/s)  errors ${errors}`;
  lastProgress = { at: t, sent, received };
  process.stderr.write(process.stderr.isTTY ? `\r\x1b[K${line}` : `${line}\n`);
}

function formatLatency(name: string, h: HistogramSummary): string {
  if (h.count === 0) return '';
  return `  ${name.padEnd(12)}p50 ${h.p50} ms  p90 ${h.p90} ms  p99 ${h.p99} ms  max ${h.max} ms  (n=${h.count})\n`;
}

/** The human-readable summary. */
export function formatSummary(s: BenchSummary): string {
  const who =
    s.mode === 'conn'
      ? `${s.connections} connections`
      : `${s.publishers} publishers, ${s.subscribers} subscribers, QoS ${s.qos}, ${s.size} B payload`;
  const errors = Object.entries(s.errors);
  return (
    `starling bench ${s.mode}: ${who}, ${s.workers} workers, ${s.elapsed.toFixed(1)} s\n` +
    (s.mode === 'conn' ? `  connected   ${s.connected}\n` : '') +
    (s.mode === 'conn' || s.mode === 'sub' ? '' : `  sent        ${s.sent}  (${s.sentPerSecond} msg/s)${s.qos > 0 ? `, acked ${s.acked}` : ''}\n`) +
    (s.subscribers > 0 ? `  received    ${s.received}  (${s.receivedPerSecond} msg/s)${s.mode === 'pubsub' ? `, expected ${s.expected}` : ''}\n` : '') +
    formatLatency('latency', s.latency) +
    formatLatency('ack latency', s.ackLatency) +
    formatLatency('connect', s.connectLatency) +
    `  errors      ${errors.length === 0 ? 'none' : errors.map(([k, v]) => `${k} ${v}`).join(', ')}\n`
  );
}
