/**
 * The broker core's own cost per message in the many-devices regime (issue 18), without the kernel:
 * P publisher connections and one subscriber on in-memory streams, each turn carrying `perTurn`
 * QoS 1 (or 0) PUBLISH packets from different publishers, as `iot_q1` does at 10,000 msg/s. Reports
 * the process's CPU (user + system) per message and per turn, and the allocation rate.
 *
 * Usage: node --import tsx bench/core-publish.bench.ts [publishers=10000] [messages=200000] [qos=1] [perTurn=1]
 * Compare builds side by side (git worktrees), never against a remembered figure.
 */
import { Duplex } from 'node:stream';
import { Broker } from '../src/broker/broker.js';
import { encodePacket } from '../src/protocol/encoder.js';
import type { QoS } from '../src/protocol/types.js';

const publishers = Number(process.argv[2] ?? 10_000);
const messages = Number(process.argv[3] ?? 200_000);
const qos = Number(process.argv[4] ?? 1) as QoS;
const perTurn = Number(process.argv[5] ?? 1);

/** A stream end the broker writes to; what it writes is counted, not kept. */
class Peer extends Duplex {
  written = 0;
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.written += chunk.length;
    done();
  }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function main(): Promise<void> {
  const broker = new Broker({ maxInflight: 1000, maxQueuedMessages: 1_000_000 });
  const connect = (clientId: string): Peer => {
    const peer = new Peer();
    broker.accept(peer, { listener: 'tcp', remoteAddress: '127.0.0.1' });
    peer.push(encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 0 }, 4));
    return peer;
  };
  const subscriber = connect('sub');
  await nextTurn();
  subscriber.push(encodePacket({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'bench/#', qos: 1 }] }, 4));
  const pubs: Peer[] = [];
  for (let i = 0; i < publishers; i++) pubs.push(connect(`pub-${i}`));
  await nextTurn();
  await nextTurn();
  // One encoded PUBLISH per publisher, as a device sends the same small reading each time.
  const packets = pubs.map((_, i) => encodePacket({ type: 'publish', topic: `bench/${i}`, payload: Buffer.alloc(64, 1), qos, retain: false, dup: false, ...(qos > 0 ? { packetId: 1 } : {}) }, 4));
  // The subscriber acknowledges what it receives, so its inflight window never fills: a PUBACK per turn for every id sent.
  let nextAck = 1;
  const ack = (): void => {
    if (qos === 0) return;
    const upTo = Number(broker.stats.messagesSent);
    const acks: Buffer[] = [];
    for (; nextAck <= upTo; nextAck++) acks.push(encodePacket({ type: 'puback', packetId: ((nextAck - 1) % 65_535) + 1 }, 4));
    if (acks.length > 0) subscriber.push(Buffer.concat(acks));
  };
  const warm = Math.min(20_000, messages / 5);
  let sent = 0;
  const run = async (count: number): Promise<void> => {
    for (let n = 0; n < count; n += perTurn) {
      for (let k = 0; k < perTurn; k++) {
        const i = sent++ % publishers;
        pubs[i]!.push(packets[i]!);
      }
      ack();
      await nextTurn();
    }
  };
  await run(warm);
  const gcBefore = process.memoryUsage();
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await run(messages);
  const used = process.cpuUsage(cpu);
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuUs = used.user + used.system;
  const turns = messages / perTurn;
  console.log(
    `publishers=${publishers} messages=${messages} qos=${qos} perTurn=${perTurn} ` +
      `cpu_us_per_msg=${(cpuUs / messages).toFixed(2)} user_us_per_msg=${(used.user / messages).toFixed(2)} ` +
      `cpu_us_per_turn=${(cpuUs / turns).toFixed(2)} msgs_per_cpu_s=${Math.round(messages / (cpuUs / 1e6))} wall_s=${wall.toFixed(2)} ` +
      `delivered=${broker.stats.messagesSent} heap_mb=${(process.memoryUsage().heapUsed / 1048576).toFixed(1)} rss_mb=${(process.memoryUsage().rss / 1048576).toFixed(1)} ` +
      `rss_before_mb=${(gcBefore.rss / 1048576).toFixed(1)}`,
  );
  await broker.close();
}

await main();
