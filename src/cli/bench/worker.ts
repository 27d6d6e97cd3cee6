/**
 * One bench worker thread: owns a share of the clients, publishes or counts, and reports counters
 * and histograms to the coordinator (bench.ts). Protocol: init → ready → go → (stop) → published →
 * finish → done; `progress` every 500 ms.
 */
import { parentPort } from 'node:worker_threads';
import { connect, type Message, type MqttClient } from '../../client/index.js';
import { Histogram, type HistogramData } from './histogram.js';
import type { BenchConfig } from './options.js';

/** Coordinator → worker. */
export type ToWorker =
  | {
      type: 'init';
      config: BenchConfig;
      publishers: number[];
      subscribers: number[];
      quotas: number[];
      ratePerClient: number;
      /** Messages received per publisher index, over all subscribers (shared by every worker). */
      receivedBy: SharedArrayBuffer;
    }
  | { type: 'go' }
  | { type: 'stop' }
  | { type: 'finish' };

/** Counters a worker reports. */
export interface WorkerCounters {
  sent: number;
  acked: number;
  received: number;
  connected: number;
  errors: Record<string, number>;
  lastReceiveAt: number;
}

/** Worker → coordinator. */
export type FromWorker =
  | { type: 'ready'; counters: WorkerCounters }
  | { type: 'progress'; counters: WorkerCounters }
  | { type: 'published'; counters: WorkerCounters }
  | { type: 'done'; counters: WorkerCounters; latency: HistogramData; ackLatency: HistogramData; connectLatency: HistogramData };

const MAGIC = 0x53424e31; // "SBN1": this payload carries a send timestamp
const BATCH = 256;

/** Milliseconds since the epoch with sub-millisecond precision, comparable across threads. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

const counters: WorkerCounters = { sent: 0, acked: 0, received: 0, connected: 0, errors: {}, lastReceiveAt: 0 };
const latency = new Histogram();
const ackLatency = new Histogram();
const connectLatency = new Histogram();
const clients: MqttClient[] = [];
let stopping = false;
let receivedBy: Int32Array | undefined;

function countError(error: unknown): void {
  const code = typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : 'ERR_OTHER';
  counters.errors[code] = (counters.errors[code] ?? 0) + 1;
}

function post(message: FromWorker): void {
  parentPort?.postMessage(message);
}

function onMessage(m: Message): void {
  counters.received++;
  const p = m.payload;
  if (p.length >= 16 && p.readUInt32BE(0) === MAGIC) {
    const t = now();
    const publisher = p.readUInt32BE(12);
    if (receivedBy !== undefined && publisher < receivedBy.length) Atomics.add(receivedBy, publisher, 1);
    latency.record((t - p.readDoubleBE(4)) * 1000);
    counters.lastReceiveAt = t;
  } else {
    counters.lastReceiveAt = now();
  }
}

async function open(config: BenchConfig, id: string): Promise<MqttClient | undefined> {
  const t0 = now();
  try {
    const options = {
      host: config.host,
      port: config.port,
      protocolVersion: config.version,
      clientId: id,
      keepalive: config.keepalive,
      reconnect: false,
      connectTimeout: 30_000,
      ...(config.username === undefined ? {} : { username: config.username }),
      ...(config.password === undefined ? {} : { password: config.password }),
    };
    const client = await connect(options);
    connectLatency.record((now() - t0) * 1000);
    counters.connected++;
    client.on('close', (error) => {
      if (error !== undefined && !stopping) countError(error);
    });
    clients.push(client);
    return client;
  } catch (error) {
    countError(error);
    return undefined;
  }
}

/** Opens `ids` with at most `parallel` handshakes at once and at most `rate` per second (0: no limit). */
async function openMany(config: BenchConfig, ids: string[], rate: number, parallel = 100): Promise<Array<MqttClient | undefined>> {
  const out: Array<MqttClient | undefined> = new Array<MqttClient | undefined>(ids.length);
  let next = 0;
  const start = now();
  const lane = async (): Promise<void> => {
    while (next < ids.length && !stopping) {
      const i = next++;
      if (rate > 0) {
        const due = start + (i * 1000) / rate;
        const wait = due - now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      out[i] = await open(config, ids[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, ids.length) }, lane));
  return out;
}

/** One publisher: flat out (bounded by socket backpressure or the QoS window) or paced by rate. */
function runPublisher(client: MqttClient, config: BenchConfig, index: number, quota: number, rate: number): Promise<void> {
  const topic = config.topic.replaceAll('%i', String(index));
  const template = Buffer.alloc(config.size, 0x78);
  const stamped = config.size >= 16;
  if (stamped) {
    template.writeUInt32BE(MAGIC, 0);
    template.writeUInt32BE(index, 12);
  }
  const qos = config.qos;
  const start = now();
  // End-to-end window (pubsub): stay at most `e2e` messages ahead of what the subscribers received.
  const e2e = config.mode === 'pubsub' && receivedBy !== undefined ? config.e2eWindow * config.subscribers : 0;
  let sent = 0;
  let inflight = 0;
  let waiting = false;
  return new Promise((resolve) => {
    const finished = (): boolean => stopping || sent >= quota || client.state === 'closed';
    const maybeDone = (): void => {
      if (finished() && inflight === 0) resolve();
    };
    const settle = (t0: number): void => {
      counters.acked++;
      ackLatency.record((now() - t0) * 1000);
      inflight--;
      if (!waiting) pump();
      else maybeDone();
    };
    const fail = (error: unknown): void => {
      countError(error);
      inflight--;
      if (!waiting) pump();
      else maybeDone();
    };
    const pump = (): void => {
      for (let n = 0; n < BATCH; n++) {
        if (finished()) return maybeDone();
        if (qos > 0 && inflight >= config.window) return;
        if (e2e > 0 && sent * config.subscribers - Atomics.load(receivedBy!, index) >= e2e) {
          waiting = true;
          setTimeout(() => {
            waiting = false;
            pump();
          }, 1);
          return;
        }
        if (rate > 0) {
          const due = start + (sent * 1000) / rate;
          const wait = due - now();
          if (wait > 0) {
            waiting = true;
            setTimeout(() => {
              waiting = false;
              pump();
            }, Math.max(1, wait));
            return;
          }
        }
        const payload = qos === 0 ? template : Buffer.from(template);
        const t0 = now();
        if (stamped) payload.writeDoubleBE(t0, 4);
        sent++;
        counters.sent++;
        if (qos === 0) {
          client.publish(topic, payload).catch(countError);
        } else {
          inflight++;
          client.publish(topic, payload, { qos }).then(() => settle(t0), fail);
        }
      }
      // A full batch: let the socket drain and the event loop breathe before the next one.
      waiting = true;
      client.drained().then(
        () =>
          setImmediate(() => {
            waiting = false;
            pump();
          }),
        countError,
      );
    };
    pump();
  });
}

async function runInit(msg: Extract<ToWorker, { type: 'init' }>): Promise<() => Promise<void>> {
  const { config } = msg;
  receivedBy = new Int32Array(msg.receivedBy);
  const idOf = (kind: string, i: number): string => `${config.clientIdPrefix}${kind}${i}`;
  if (config.mode === 'conn') {
    post({ type: 'ready', counters });
    return async () => {
      await openMany(config, msg.publishers.map((i) => idOf('c', i)), msg.ratePerClient);
    };
  }
  const subs = await openMany(config, msg.subscribers.map((i) => idOf('s', i)), 0);
  await Promise.all(
    subs.map(async (client, k) => {
      if (client === undefined) return;
      client.on('message', onMessage);
      try {
        const s = await client.subscribe(config.subTopic.replaceAll('%i', String(msg.subscribers[k])), { qos: config.qos });
        s.close(); // counted through the 'message' event; the iterator would only buffer
        if (!s.ok) countError({ code: 'ERR_SUBSCRIBE_REFUSED' });
      } catch (error) {
        countError(error);
      }
    }),
  );
  const pubs = await openMany(config, msg.publishers.map((i) => idOf('p', i)), 0);
  post({ type: 'ready', counters });
  return async () => {
    await Promise.all(
      pubs.map((client, k) => (client === undefined ? Promise.resolve() : runPublisher(client, config, msg.publishers[k]!, msg.quotas[k]!, msg.ratePerClient))),
    );
  };
}

let go: (() => Promise<void>) | undefined;
const progress = setInterval(() => post({ type: 'progress', counters }), 500);

parentPort?.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'init':
      runInit(msg).then((run) => {
        go = run;
      }, countError);
      return;
    case 'go':
      (go ?? (() => Promise.resolve()))().then(
        () => post({ type: 'published', counters }),
        (error: unknown) => {
          countError(error);
          post({ type: 'published', counters });
        },
      );
      return;
    case 'stop':
      stopping = true;
      return;
    case 'finish':
      stopping = true;
      clearInterval(progress);
      void Promise.all(clients.map((c) => c.end().catch(() => undefined))).finally(() => {
        post({ type: 'done', counters, latency: latency.toData(), ackLatency: ackLatency.toData(), connectLatency: connectLatency.toData() });
        parentPort?.close();
      });
      return;
  }
});
