/**
 * A bridge's throughput and its CPU per forwarded message. One `starling` process (the built CLI,
 * a bridge "out" to a real Mosquitto) is measured by its own CPU time (/proc/PID/stat), in two
 * modes on the same process: "direct", a publisher and a persistent subscriber on Starling (no
 * bridge on the path), and "bridge", the same publisher with the subscriber on Mosquitto behind the bridge. The
 * difference per message is what the bridge costs. Publisher and subscribers are MQTT.js in this
 * process, QoS 1 with 100 messages in flight.
 * Usage: npm run build && node --import tsx bench/bridge.bench.ts [messages] [bytes] [memory|embedded]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort, startMosquitto } from '../test/helpers/mosquitto.js';

const COUNT = Number(process.argv[2] ?? 50_000);
const SIZE = Number(process.argv[3] ?? 64);
const STORE = process.argv[4] === 'embedded' ? 'embedded' : 'memory';
const WINDOW = 100;
const TIMEOUT_MS = 120_000;
const CLI = join(import.meta.dirname, '../dist/cli/main.js');
const TICKS = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s

/** User + system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

const mosquitto = await startMosquitto({ settings: ['max_inflight_messages 1000', 'max_queued_messages 0'] });
const dir = mkdtempSync(join(tmpdir(), 'starling-bridge-bench-'));
const port = await freePort();
const configFile = join(dir, 'starling.json');
writeFileSync(
  configFile,
  JSON.stringify({
    hosts: ['127.0.0.1'],
    port,
    store: STORE,
    dataDir: join(dir, 'data'),
    logLevel: 'warn',
    http: { enabled: false },
    bridges: [{ name: 'bench', url: `mqtt://127.0.0.1:${mosquitto.port}`, clientId: 'bench-edge', protocolVersion: 5, topics: [{ pattern: 'bench/#', direction: 'out', qos: 1, remotePrefix: 'edge/' }] }],
  }),
);
const child = spawn(process.execPath, [CLI, '--config', configFile, '--log-format', 'json', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'inherit'] });
const pid = child.pid!;
await new Promise<void>((resolve, reject) => {
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes('bridge \\"bench\\" up')) resolve();
  });
  child.once('exit', (code) => reject(new Error(`starling exited (${code}): ${out}`)));
});

const connect = (url: string, clientId: string, persistent = false): Promise<MqttClient> =>
  mqtt.connectAsync(url, { clientId, reconnectPeriod: 0, protocolVersion: 5, ...(persistent ? { clean: false, properties: { sessionExpiryInterval: 3600 } } : {}) });
const publisher = await connect(`mqtt://127.0.0.1:${port}`, 'bench-publisher');
// Persistent, like the bridge's own session: with the embedded store both paths store each delivery.
const localSink = await connect(`mqtt://127.0.0.1:${port}`, 'bench-local-sink', true);
const remoteSink = await connect(`mqtt://127.0.0.1:${mosquitto.port}`, 'bench-remote-sink');
await localSink.subscribeAsync('direct/#', { qos: 1 });
await remoteSink.subscribeAsync('edge/bench/#', { qos: 1 });
let received = 0;
localSink.on('message', () => received++);
remoteSink.on('message', () => received++);

async function run(mode: 'direct' | 'bridge', count: number): Promise<{ rate: number; cpuPerMessageUs: number; cpuShare: number }> {
  const topic = mode === 'direct' ? 'direct/x' : 'bench/x';
  const payload = Buffer.alloc(SIZE, 0x61);
  received = 0;
  const cpu0 = cpuSeconds(pid);
  const start = performance.now();
  for (let sent = 0; sent < count; sent += WINDOW) {
    const batch: Promise<unknown>[] = [];
    for (let k = 0; k < WINDOW && sent + k < count; k++) batch.push(publisher.publishAsync(topic, payload, { qos: 1 }));
    await Promise.all(batch);
  }
  const deadline = Date.now() + TIMEOUT_MS;
  while (received < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  const seconds = (performance.now() - start) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  if (received < count) throw new Error(`${mode}: ${received} of ${count} received`);
  return { rate: count / seconds, cpuPerMessageUs: (cpu / count) * 1e6, cpuShare: cpu / seconds };
}

try {
  await run('direct', 5000); // warm-up
  await run('bridge', 5000);
  const results: Record<'direct' | 'bridge', Array<Awaited<ReturnType<typeof run>>>> = { direct: [], bridge: [] };
  for (let round = 0; round < 2; round++) for (const mode of ['direct', 'bridge'] as const) results[mode].push(await run(mode, COUNT));
  const best = (mode: 'direct' | 'bridge'): Awaited<ReturnType<typeof run>> => results[mode].reduce((a, b) => (b.rate > a.rate ? b : a));
  console.log(`bridge bench: ${COUNT} QoS 1 messages of ${SIZE} B, ${WINDOW} in flight, store ${STORE}; starling CPU from /proc (broker and bridge, not the clients)`);
  for (const mode of ['direct', 'bridge'] as const) {
    const r = best(mode);
    console.log(`  ${mode.padEnd(6)} ${Math.round(r.rate).toLocaleString('en')} msg/s, ${r.cpuPerMessageUs.toFixed(1)} µs CPU per message, starling at ${(r.cpuShare * 100).toFixed(0)}% of a core (runs: ${results[mode].map((x) => Math.round(x.rate)).join(', ')} msg/s)`);
  }
  console.log(`  the bridge adds ${(best('bridge').cpuPerMessageUs - best('direct').cpuPerMessageUs).toFixed(1)} µs CPU per forwarded message`);
} finally {
  await Promise.all([publisher.endAsync(), localSink.endAsync(), remoteSink.endAsync()]);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  await mosquitto.stop();
  rmSync(dir, { recursive: true, force: true });
}
