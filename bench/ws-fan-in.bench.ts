/**
 * Fan-in over WebSocket vs TCP, one run, one broker: P publishers (MQTT.js) each send M QoS 1
 * messages to their own topic; one TCP subscriber on "fan/#" (QoS 0) receives them all. Reports messages
 * per second end to end for each transport. Usage: node --import tsx bench/ws-fan-in.bench.ts [P] [M] [bytes]
 */
import mqtt, { type MqttClient } from 'mqtt';
import { startServer } from '../src/server.js';

const publishers = Number(process.argv[2] ?? 20);
const perPublisher = Number(process.argv[3] ?? 5000);
const size = Number(process.argv[4] ?? 64);
const TIMEOUT_MS = 60_000;

const server = await startServer({ host: '127.0.0.1', port: 0, logLevel: 'silent', websocket: { port: 0 } });
const subscriber = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.port}`, { clientId: 'fan-in-sink', reconnectPeriod: 0 });
// QoS 0 towards the sink: a QoS 1 subscription would cap the sink at its inflight window and fill its queue.
await subscriber.subscribeAsync('fan/#', { qos: 0 });
let received = 0;
subscriber.on('message', () => received++);

async function run(transport: 'tcp' | 'ws'): Promise<{ rate: number; seconds: number }> {
  const url = transport === 'tcp' ? `mqtt://127.0.0.1:${server.port}` : `ws://127.0.0.1:${server.wsPort}/mqtt`;
  const clients: MqttClient[] = [];
  for (let i = 0; i < publishers; i++) clients.push(await mqtt.connectAsync(url, { clientId: `fan-${transport}-${i}`, reconnectPeriod: 0 }));
  const payload = Buffer.alloc(size, 0x61);
  const total = publishers * perPublisher;
  received = 0;
  const start = performance.now();
  await Promise.all(
    clients.map(async (client, i) => {
      // Windows of 100 in flight per publisher: the publisher never waits on a single ack.
      for (let sent = 0; sent < perPublisher; sent += 100) {
        const batch: Promise<unknown>[] = [];
        for (let k = 0; k < 100 && sent + k < perPublisher; k++) batch.push(client.publishAsync(`fan/${transport}/${i}`, payload, { qos: 1 }));
        await Promise.all(batch);
      }
    }),
  );
  const deadline = Date.now() + TIMEOUT_MS;
  while (received < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  const seconds = (performance.now() - start) / 1000;
  await Promise.all(clients.map((c) => c.endAsync()));
  if (received < total) throw new Error(`${transport}: ${received} of ${total} received`);
  return { rate: total / seconds, seconds };
}

// Warm-up, then each transport twice, alternating.
await run('tcp');
const results: Record<string, number[]> = { tcp: [], ws: [] };
for (let round = 0; round < 2; round++) {
  for (const transport of ['tcp', 'ws'] as const) results[transport]!.push((await run(transport)).rate);
}
const best = (xs: number[]): number => Math.max(...xs);
console.log(`fan-in, ${publishers} publishers x ${perPublisher} QoS 1 messages of ${size} B -> 1 TCP subscriber`);
for (const transport of ['tcp', 'ws'] as const) console.log(`  ${transport.padEnd(3)} ${Math.round(best(results[transport]!)).toLocaleString()} msg/s (runs: ${results[transport]!.map((r) => Math.round(r)).join(', ')})`);
console.log(`  ws / tcp: ${(best(results['ws']!) / best(results['tcp']!)).toFixed(2)}`);
await subscriber.endAsync();
await server.close();
