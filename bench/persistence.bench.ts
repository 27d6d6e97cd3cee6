/**
 * Persistent QoS 1 fan-in (issue 4): P publishers (MQTT.js) each send M QoS 1 messages to one
 * persistent subscriber (CleanSession=0) that is offline; then the subscriber connects and drains
 * its queue. Each broker runs as its own process, one after the other, with the same load:
 * Starling with the embedded store (durability full, then relaxed), Starling in memory, and
 * Mosquitto with `persistence true` when /usr/sbin/mosquitto exists.
 *
 * Usage: npm run build && node --import tsx bench/persistence.bench.ts [P=4] [M=10000] [bytes=64] [runs=3]
 * Not a test: it prints the median of `runs` runs per broker (publish phase = until every PUBACK
 * arrived; drain = until the subscriber received everything). Run it as root for Mosquitto, or
 * drop the `user root` line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';

const publishers = Number(process.argv[2] ?? 4);
const perPublisher = Number(process.argv[3] ?? 10_000);
const size = Number(process.argv[4] ?? 64);
const runs = Number(process.argv[5] ?? 3);
const WINDOW = 100;
const TIMEOUT_MS = 120_000;
const total = publishers * perPublisher;
const CLI = join(import.meta.dirname, '../dist/cli/main.js');
const MOSQUITTO = '/usr/sbin/mosquitto';

interface Target {
  name: string;
  start(dir: string, port: number): ChildProcess;
}

const starling = (store: 'embedded' | 'memory', durability: 'full' | 'relaxed'): Target => ({
  name: store === 'memory' ? 'starling memory' : `starling embedded ${durability}`,
  start(dir, port) {
    const config = join(dir, 'starling.json');
    writeFileSync(config, JSON.stringify({ limits: { maxQueuedMessages: total + 1000 } }));
    const args = [CLI, '--config', config, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn', '--no-http'];
    args.push('--store', store, '--durability', durability, '--data-dir', join(dir, 'data'));
    return spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  },
});

const mosquitto: Target = {
  name: 'mosquitto persistence true',
  start(dir, port) {
    const config = join(dir, 'mosquitto.conf');
    writeFileSync(
      config,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        // Run as whoever started the bench, so it can write its snapshot into the temp directory.
        'user root',
        'persistence true',
        `persistence_location ${dir}/`,
        'max_queued_messages 0',
        'max_inflight_messages 100',
        'log_type error',
        '',
      ].join('\n'),
    );
    return spawn(MOSQUITTO, ['-c', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  },
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`broker exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port}`);
    await sleep(25);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

/** Publishes `perPublisher` QoS 1 messages with WINDOW in flight; resolves when all are acknowledged. */
function publishAll(client: MqttClient, index: number, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    let inflight = 0;
    const pump = (): void => {
      while (inflight < WINDOW && sent < perPublisher) {
        sent++;
        inflight++;
        client.publish(`bench/${index}`, payload, { qos: 1 }, (error) => {
          if (error) {
            reject(error);
            return;
          }
          inflight--;
          acked++;
          if (acked === perPublisher) resolve();
          else pump();
        });
      }
    };
    pump();
  });
}

interface Result {
  name: string;
  publishRate: number;
  drainRate: number;
  received: number;
}

async function run(target: Target): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'starling-bench-persist-'));
  const port = await freePort();
  const child = target.start(dir, port);
  try {
    await waitForPort(port, child);
    const url = `mqtt://127.0.0.1:${port}`;
    const options = { protocolVersion: 4 as const, reconnectPeriod: 0 };
    const setup = await mqtt.connectAsync(url, { ...options, clientId: 'bench-sink', clean: false });
    await setup.subscribeAsync('bench/#', { qos: 1 });
    await setup.endAsync();

    const clients: MqttClient[] = [];
    for (let i = 0; i < publishers; i++) clients.push(await mqtt.connectAsync(url, { ...options, clientId: `bench-pub-${i}`, clean: true }));
    const payload = Buffer.alloc(size, 0x61);
    const started = performance.now();
    await Promise.all(clients.map((client, i) => publishAll(client, i, payload)));
    const publishSeconds = (performance.now() - started) / 1000;
    await Promise.all(clients.map((client) => client.endAsync()));

    let received = 0;
    const drainStart = performance.now();
    const sink = mqtt.connect(url, { ...options, clientId: 'bench-sink', clean: false });
    let drainEnd = 0;
    sink.on('message', () => {
      received++;
      if (received === total) drainEnd = performance.now();
    });
    const deadline = Date.now() + TIMEOUT_MS;
    while (received < total && Date.now() < deadline) await sleep(10);
    await sink.endAsync();
    const drainSeconds = ((drainEnd || performance.now()) - drainStart) / 1000;
    return { name: target.name, publishRate: total / publishSeconds, drainRate: received / drainSeconds, received };
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first`);
const targets = [starling('embedded', 'full'), starling('embedded', 'relaxed'), starling('memory', 'full')];
if (existsSync(MOSQUITTO)) targets.push(mosquitto);
process.stdout.write(`persistent QoS 1 fan-in: ${publishers} publishers x ${perPublisher} messages of ${size} bytes (${total}), window ${WINDOW}, one offline CleanSession=0 subscriber\n`);
const results: Result[] = [];
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
for (const target of targets) {
  const samples: Result[] = [];
  for (let i = 0; i < runs; i++) samples.push(await run(target));
  const result: Result = {
    name: target.name,
    publishRate: median(samples.map((r) => r.publishRate)),
    drainRate: median(samples.map((r) => r.drainRate)),
    received: Math.min(...samples.map((r) => r.received)),
  };
  results.push(result);
  const lost = result.received === total ? '' : `  (a run received only ${result.received})`;
  const spread = samples.map((r) => Math.round(r.publishRate / 1000)).join('/');
  process.stdout.write(
    `${result.name.padEnd(30)} publish ${Math.round(result.publishRate).toString().padStart(8)} msg/s (runs, k: ${spread})   drain ${Math.round(result.drainRate).toString().padStart(8)} msg/s${lost}\n`,
  );
}
const memory = results.find((r) => r.name === 'starling memory');
if (memory !== undefined) {
  process.stdout.write('\nrelative to starling memory (publish phase, the fan-in the issue targets: >= 0.70):\n');
  for (const r of results) process.stdout.write(`${r.name.padEnd(30)} ${(r.publishRate / memory.publishRate).toFixed(2)}   drain ${(r.drainRate / memory.drainRate).toFixed(2)}\n`);
}
