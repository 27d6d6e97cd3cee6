/**
 * Live-broker side of the fuzzing harness: sockets that misbehave (one hostile input each, slowloris
 * connects, SUBSCRIBE floods) and a well-behaved MQTT.js client that round-trips QoS 1 messages
 * throughout, to show that other clients are unaffected. Loopback only.
 *
 * Used by test/integration/14-hostile.test.ts and bench/fuzz-long.ts.
 */
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { PacketDecoder, encodePacket, type Packet, type ProtocolVersion, type SubackPacket } from '../../src/protocol/index.js';
import { type Rng, hostileInput, randomChunks, randomConnect } from './harness.js';

export const LOOPBACK = '127.0.0.1';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How a hostile socket ended. */
export type SocketOutcome = 'closed-by-broker' | 'closed-by-client' | 'connect-error';

/**
 * Sends `bytes` over a fresh socket (in the given chunks, one per event-loop turn), waits `lingerMs`
 * for the broker to react, then closes (abruptly with `abrupt`). Bounded by `hardMs`.
 */
export function sendOne(port: number, chunks: Buffer[], options: { abrupt?: boolean; lingerMs?: number; hardMs?: number } = {}): Promise<SocketOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: LOOPBACK, port, noDelay: true });
    let outcome: SocketOutcome = 'closed-by-client';
    let connected = false;
    let lingering = false;
    let lingerTimer: NodeJS.Timeout | undefined;
    const hardTimer = setTimeout(() => socket.destroy(), options.hardMs ?? 5000);
    socket.on('data', () => undefined);
    socket.on('error', () => {
      if (!connected) outcome = 'connect-error';
      else if (lingering) outcome = 'closed-by-broker'; // reset by the broker while we still wrote
    });
    socket.on('end', () => {
      if (lingering) outcome = 'closed-by-broker';
    });
    socket.on('close', () => {
      clearTimeout(hardTimer);
      if (lingerTimer !== undefined) clearTimeout(lingerTimer);
      resolve(outcome);
    });
    socket.on('connect', () => {
      connected = true;
      lingering = true;
      const write = (i: number): void => {
        if (i >= chunks.length || socket.destroyed) return;
        socket.write(chunks[i]!);
        setImmediate(() => write(i + 1));
      };
      write(0);
      lingerTimer = setTimeout(() => {
        lingering = false;
        if (options.abrupt === true) socket.destroy();
        else socket.end();
      }, options.lingerMs ?? 60);
    });
  });
}

/** Counts of a hostile fuzz run against a live broker. */
export interface FuzzRunReport {
  inputs: number;
  outcomes: Record<SocketOutcome, number>;
  recipes: Record<string, number>;
  ms: number;
}

/**
 * Sends `count` hostile inputs from `rng` (test/fuzz/harness.ts), `concurrency` sockets at a time,
 * each input on its own connection, sometimes split into chunks, sometimes closed abruptly.
 */
export async function runHostileSockets(port: number, rng: Rng, count: number, concurrency = 50, shouldStop: () => boolean = () => false): Promise<FuzzRunReport> {
  const report: FuzzRunReport = { inputs: 0, outcomes: { 'closed-by-broker': 0, 'closed-by-client': 0, 'connect-error': 0 }, recipes: {}, ms: 0 };
  const started = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && !shouldStop()) {
      const i = next++;
      const input = hostileInput(rng, { clientId: `hz${i}` });
      for (const r of input.recipe) report.recipes[r] = (report.recipes[r] ?? 0) + 1;
      const chunks = rng.chance(0.2) ? randomChunks(rng, input.bytes).slice(0, 16) : [input.bytes];
      report.outcomes[await sendOne(port, chunks, { abrupt: rng.chance(0.3) })]++;
      report.inputs++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  report.ms = Date.now() - started;
  return report;
}

/** A slowloris socket: silent, or dripping a CONNECT one byte every `dripMs`. Resolves with how long the broker let it live. */
export function slowloris(port: number, mode: 'silent' | 'drip', options: { dripMs?: number; version?: ProtocolVersion; hardMs?: number; rng?: Rng } = {}): Promise<{ closedAfterMs: number; closedByBroker: boolean; bytesSent: number }> {
  return new Promise((resolve, reject) => {
    const version = options.version ?? 4;
    const connect = options.rng === undefined
      ? encodePacket({ type: 'connect', protocolName: 'MQTT', protocolVersion: version, clean: true, keepalive: 0, clientId: 'slowloris-client-with-a-long-name' }, version)
      : encodePacket(randomConnect(options.rng, version), version);
    const socket = net.connect({ host: LOOPBACK, port, noDelay: true });
    let openedAt = 0;
    let sent = 0;
    let byBroker = false;
    let drip: NodeJS.Timeout | undefined;
    const hard = setTimeout(() => socket.destroy(), options.hardMs ?? 10_000);
    socket.on('error', (error) => {
      if (openedAt === 0) {
        clearTimeout(hard);
        reject(error);
      } else {
        byBroker = true;
      }
    });
    socket.on('end', () => {
      byBroker = true;
      socket.destroy();
    });
    socket.on('close', () => {
      clearTimeout(hard);
      if (drip !== undefined) clearInterval(drip);
      if (openedAt !== 0) resolve({ closedAfterMs: Date.now() - openedAt, closedByBroker: byBroker, bytesSent: sent });
    });
    socket.on('connect', () => {
      openedAt = Date.now();
      if (mode === 'silent') return;
      // One byte now, then one every dripMs; never the whole CONNECT before the timeout.
      const step = (): void => {
        if (sent < connect.length - 1 && !socket.destroyed) socket.write(connect.subarray(sent, ++sent));
      };
      step();
      drip = setInterval(step, options.dripMs ?? 300);
    });
  });
}

/** A raw connection that floods SUBSCRIBE packets (no waiting between them) and collects the SUBACKs. */
export async function subscribeFlood(port: number, options: { version: ProtocolVersion; clientId: string; packets: number; filtersPerPacket: number; prefix?: string; timeoutMs?: number }): Promise<SubackPacket[]> {
  const socket = net.connect({ host: LOOPBACK, port, noDelay: true });
  const decoder = new PacketDecoder({ version: options.version });
  const received: Packet[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    decoder.push(chunk, received);
    wake?.();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const v = options.version;
  const parts: Buffer[] = [encodePacket({ type: 'connect', protocolName: v === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: v, clean: true, keepalive: 0, clientId: options.clientId }, v)];
  const prefix = options.prefix ?? `flood/${options.clientId}`;
  let n = 0;
  for (let p = 0; p < options.packets; p++) {
    const subscriptions = Array.from({ length: options.filtersPerPacket }, () => ({ topicFilter: `${prefix}/${n++}/+`, qos: 1 as const }));
    parts.push(encodePacket({ type: 'subscribe', packetId: p + 1, subscriptions }, v));
  }
  socket.write(Buffer.concat(parts));
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const subacks = (): SubackPacket[] => received.filter((p): p is SubackPacket => p.type === 'suback');
  while (subacks().length < options.packets && !closed && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 50);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  wake = undefined;
  socket.end(encodePacket({ type: 'disconnect' }, v));
  const got = subacks();
  if (got.length < options.packets) throw new Error(`${options.clientId}: ${got.length} of ${options.packets} SUBACKs (closed: ${closed})`);
  return got;
}

/** What the well-behaved client saw. */
export interface SideReport {
  published: number;
  missing: number;
  maxRoundTripMs: number;
  closes: number;
  connected: boolean;
}

/**
 * A well-behaved MQTT.js client that publishes QoS 1 messages to itself every `intervalMs` and checks
 * it receives every one. `check()` reports so far; `stop()` waits for the stragglers and ends it.
 */
export class SideClient {
  private readonly sentAt = new Map<string, number>();
  private published = 0;
  private maxRoundTripMs = 0;
  private closes = 0;
  private running = true;
  private loop: Promise<void> | undefined;

  private constructor(readonly client: MqttClient, private readonly topic: string) {}

  static async start(port: number, options: { clientId?: string; intervalMs?: number; protocolVersion?: 4 | 5 } = {}): Promise<SideClient> {
    const clientId = options.clientId ?? 'hostile-side';
    const client = await mqtt.connectAsync(`mqtt://${LOOPBACK}:${port}`, { clientId, protocolVersion: options.protocolVersion ?? 5, reconnectPeriod: 0, connectTimeout: 5000, keepalive: 30 });
    const side = new SideClient(client, `side/${clientId}`);
    client.on('close', () => side.closes++);
    client.on('message', (_topic, payload) => {
      const at = side.sentAt.get(payload.toString());
      if (at === undefined) return;
      side.sentAt.delete(payload.toString());
      side.maxRoundTripMs = Math.max(side.maxRoundTripMs, Date.now() - at);
    });
    await client.subscribeAsync(side.topic, { qos: 1 });
    const interval = options.intervalMs ?? 10;
    side.loop = (async () => {
      let n = 0;
      while (side.running && client.connected) {
        const payload = `m${n++}`;
        side.sentAt.set(payload, Date.now());
        try {
          await client.publishAsync(side.topic, payload, { qos: 1 });
          side.published++;
        } catch {
          break;
        }
        await sleep(interval);
      }
    })();
    return side;
  }

  /** Messages sent but not yet received that are older than `graceMs`. */
  check(graceMs = 2000): SideReport {
    const now = Date.now();
    let missing = 0;
    for (const at of this.sentAt.values()) if (now - at > graceMs) missing++;
    return { published: this.published, missing, maxRoundTripMs: this.maxRoundTripMs, closes: this.closes, connected: this.client.connected };
  }

  async stop(graceMs = 3000): Promise<SideReport> {
    this.running = false;
    await this.loop;
    const deadline = Date.now() + graceMs;
    while (this.sentAt.size > 0 && Date.now() < deadline) await sleep(20);
    const report = { published: this.published, missing: this.sentAt.size, maxRoundTripMs: this.maxRoundTripMs, closes: this.closes, connected: this.client.connected };
    await this.client.endAsync(true);
    return report;
  }
}

/** Process memory in MiB, for reports. */
export function memoryMb(): { rss: number; heapUsed: number; arrayBuffers: number } {
  const m = process.memoryUsage();
  return { rss: m.rss / 2 ** 20, heapUsed: m.heapUsed / 2 ** 20, arrayBuffers: m.arrayBuffers / 2 ** 20 };
}
