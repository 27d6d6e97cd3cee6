/**
 * Black-box cluster harness: real `starling` processes (dist/cli/main.js) joined through one real
 * redis-server (./redis.ts), and MQTT.js clients that record everything they receive from the moment
 * they are created, so a test never misses a message that arrives before it starts waiting.
 *
 * Every wait is bounded. Every process is stopped by PID (`close()`, and a last-resort SIGKILL when
 * the test process exits); every client is ended by `closeClients()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type IConnackPacket, type IDisconnectPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import { freePort } from './mosquitto.js';
import { startRedis, type RedisServer } from './redis.js';

/** The broker command the nodes run (built by `npm run build`). */
export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

const OUTPUT_LIMIT = 64 * 1024;
const live = new Set<ChildProcess>();

process.once('exit', () => {
  for (const child of live) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
});

/** Options of startNode. */
export interface NodeOptions {
  redisUrl: string;
  nodeId: string;
  /** MQTT port (default: a free one). */
  port?: number;
  /** HTTP port of /readyz (default: a free one). */
  httpPort?: number;
  /** More broker flags. */
  extraArgs?: string[];
  /** Milliseconds to wait for the MQTT port and /readyz 200 (default 10 000). */
  readyTimeout?: number;
}

/** One broker process of the cluster. */
export interface ClusterNode {
  readonly nodeId: string;
  readonly port: number;
  readonly httpPort: number;
  /** The current process (a new one after `restart()`). */
  readonly child: ChildProcess;
  /** PID of the current process while it runs. */
  readonly pid: number | undefined;
  /** True while the current process has not exited. */
  readonly running: boolean;
  /** What the current process wrote on stdout (its JSON log lines) and stderr, last 64 KiB. */
  output(): string;
  /** Sends `signal` (default SIGKILL) by PID and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Stops if running, then starts again with the same ports and node id; waits until ready. */
  restart(readyTimeout?: number): Promise<void>;
  /** Status of GET /readyz, or undefined if nothing answers (within 1 s). */
  readyz(): Promise<number | undefined>;
  /** Stops the process (idempotent). */
  close(): Promise<void>;
}

/** Spawns `starling --redis URL --node-id ID …` and waits until MQTT accepts TCP and /readyz answers 200. */
export async function startNode(options: NodeOptions): Promise<ClusterNode> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm run build; npm test does)`);
  const [port, httpPort] = await Promise.all([options.port ?? freePort(), options.httpPort ?? freePort()]);
  const logLevel = process.env['STARLING_TEST_LOG'] ?? 'warn';
  const args = [
    CLI,
    '--host', '127.0.0.1',
    '--port', String(port),
    '--redis', options.redisUrl,
    '--node-id', options.nodeId,
    '--log-level', logLevel,
    '--http-host', '127.0.0.1',
    '--http-port', String(httpPort),
    // No periodic $SYS traffic in the way of the tests (there is no --no-sys flag).
    '--sys-interval', '0',
    ...(options.extraArgs ?? []),
  ];
  let child!: ChildProcess;
  let output = '';

  const launch = async (readyTimeout: number): Promise<void> => {
    const started = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    output = '';
    live.add(started);
    started.once('exit', () => live.delete(started));
    const append = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
    };
    started.stdout?.on('data', append);
    started.stderr?.on('data', append);
    const deadline = Date.now() + readyTimeout;
    let listening = false;
    let status: number | undefined;
    for (;;) {
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`node ${options.nodeId} exited (${started.exitCode ?? started.signalCode}) before it was ready:\n${output}`);
      }
      if (!listening) listening = await probe(port);
      if (listening) {
        status = await getStatus(httpPort, '/readyz');
        if (status === 200) return;
      }
      if (Date.now() > deadline) {
        await terminate(started, 'SIGKILL');
        const where = listening ? `/readyz answered ${status ?? 'nothing'}` : `MQTT port ${port} not listening`;
        throw new Error(`node ${options.nodeId} not ready within ${readyTimeout} ms (${where}):\n${output}`);
      }
      await sleep(50);
    }
  };

  const defaultTimeout = options.readyTimeout ?? 10_000;
  await launch(defaultTimeout);

  return {
    nodeId: options.nodeId,
    port,
    httpPort,
    get child() {
      return child;
    },
    get pid() {
      return child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    output: () => output,
    kill: (signal = 'SIGKILL') => terminate(child, signal),
    stop: () => terminate(child, 'SIGTERM'),
    restart: async (readyTimeout = defaultTimeout) => {
      await terminate(child, 'SIGTERM');
      await launch(readyTimeout);
    },
    readyz: () => getStatus(httpPort, '/readyz'),
    close: () => terminate(child, 'SIGTERM'),
  };
}

/** A Redis and `size` nodes (node ids n1, n2, …), started in parallel. */
export interface Cluster {
  readonly redis: RedisServer;
  readonly nodes: ClusterNode[];
  /** Ends every client, stops every node, then Redis (all by PID). */
  close(): Promise<void>;
}

/** Starts redis-server, then `size` nodes on it. On failure, whatever started is stopped. */
export async function startCluster(size: number, prefix = 'n'): Promise<Cluster> {
  const redis = await startRedis();
  const results = await Promise.allSettled(Array.from({ length: size }, (_, i) => startNode({ redisUrl: redis.url, nodeId: `${prefix}${i + 1}` })));
  const nodes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const close = async (): Promise<void> => {
    await closeClients();
    await Promise.all(nodes.map((node) => node.close()));
    await redis.close();
  };
  const failed = results.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    await close();
    throw failed.reason;
  }
  return { redis, nodes, close };
}

/** Waits until `check()` is true (polled every `interval` ms), or throws `describe()` after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string, interval = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await sleep(interval);
  }
}

/** A PUBLISH as a test client received it. */
export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  dup: boolean;
}

/** Everything one client received since it was created. */
export interface Inbox {
  /** Every PUBLISH, in arrival order. */
  readonly messages: Received[];
  /** Server DISCONNECT packets (MQTT 5). */
  readonly disconnects: IDisconnectPacket[];
  /** True once the network connection closed. */
  closed: boolean;
  /** Indexes of the messages `collect` handed out already. */
  readonly taken: Set<number>;
}

const inboxes = new WeakMap<MqttClient, Inbox>();
const clients = new Set<MqttClient>();

/** The inbox of `client` (recording starts at the first call for clients not made by `connect`). */
export function inbox(client: MqttClient): Inbox {
  let box = inboxes.get(client);
  if (box === undefined) {
    const created: Inbox = { messages: [], disconnects: [], closed: false, taken: new Set() };
    client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      created.messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, dup: packet.dup });
    });
    client.on('disconnect', (packet: IDisconnectPacket) => created.disconnects.push(packet));
    client.on('close', () => (created.closed = true));
    inboxes.set(client, created);
    box = created;
  }
  return box;
}

/** The messages `client` received on `topic` so far (all of them without a topic). */
export function received(client: MqttClient, topic?: string): Received[] {
  const { messages } = inbox(client);
  return topic === undefined ? messages : messages.filter((m) => m.topic === topic);
}

/** A connected MQTT.js client (3.1.1, no automatic reconnect unless asked), with its CONNACK. */
export interface Connected {
  client: MqttClient;
  connack: IConnackPacket;
}

/**
 * Connects an MQTT.js client to a node and waits for CONNACK. The client records what it receives
 * from before CONNACK on (queued messages follow CONNACK in the same read). It is ended by
 * `closeClients()`.
 */
export async function connect(port: number, options: IClientOptions = {}): Promise<Connected> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  clients.add(client);
  inbox(client);
  try {
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      const onConnect = (packet: IConnackPacket): void => {
        cleanup();
        resolve(packet);
      };
      const onError = (error: Error): void => {
        cleanup();
        reject(error);
      };
      const onClose = (): void => {
        cleanup();
        reject(new Error(`connection to port ${port} closed before CONNACK`));
      };
      const cleanup = (): void => {
        client.off('connect', onConnect);
        client.off('error', onError);
        client.off('close', onClose);
      };
      client.on('connect', onConnect);
      client.on('error', onError);
      client.on('close', onClose);
    });
    // Later errors (a connection closed by the broker) are expected in these tests; an unhandled
    // 'error' event would crash the test process instead of failing the test.
    client.on('error', () => {});
    return { client, connack };
  } catch (error) {
    client.end(true);
    clients.delete(client);
    throw error;
  }
}

/**
 * Waits for `n` messages (matching `topic`, if given) that no earlier `collect` on this client handed
 * out, and returns them in arrival order. On timeout the error lists what did arrive.
 */
export async function collect(client: MqttClient, n: number, timeoutMs: number, topic?: string | ((topic: string) => boolean)): Promise<Received[]> {
  const box = inbox(client);
  const matches = typeof topic === 'function' ? topic : topic === undefined ? () => true : (t: string) => t === topic;
  const pending = (): number[] => {
    const out: number[] = [];
    for (let i = 0; i < box.messages.length && out.length < n; i++) if (!box.taken.has(i) && matches(box.messages[i]!.topic)) out.push(i);
    return out;
  };
  await waitUntil(
    () => pending().length >= n,
    timeoutMs,
    () => `${pending().length} of ${n} messages${typeof topic === 'string' ? ` on ${topic}` : ''}; not yet collected: ${JSON.stringify(box.messages.filter((_, i) => !box.taken.has(i)).slice(0, 20))}`,
  );
  const indexes = pending();
  for (const i of indexes) box.taken.add(i);
  return indexes.map((i) => box.messages[i]!);
}

/**
 * Publishes `payload` on `topic` from `publisher` every `intervalMs` until every receiver has a
 * message on `topic` (the subscriptions made on other nodes are known to the publisher's node), or
 * throws after `timeoutMs`; then waits for the acknowledgements of every probe. Returns the
 * milliseconds until every receiver had one.
 */
export async function publishUntilReceived(
  publisher: MqttClient,
  topic: string,
  receivers: MqttClient[],
  options: { qos?: 0 | 1 | 2; timeoutMs?: number; intervalMs?: number; payload?: string } = {},
): Promise<number> {
  const { qos = 0, timeoutMs = 5000, intervalMs = 50, payload = 'probe' } = options;
  const start = Date.now();
  const done = (): boolean => receivers.every((r) => inbox(r).messages.some((m) => m.topic === topic));
  let lastSent = 0;
  const acks: Promise<void>[] = [];
  await waitUntil(
    async () => {
      if (done()) return true;
      if (Date.now() - lastSent >= intervalMs) {
        lastSent = Date.now();
        // Not awaited here: an acknowledgement that is slow to come must not stall the loop.
        acks.push(new Promise((resolve) => publisher.publish(topic, payload, { qos }, () => resolve())));
      }
      return done();
    },
    timeoutMs,
    () => `probe on ${topic} reached ${receivers.filter((r) => inbox(r).messages.some((m) => m.topic === topic)).length} of ${receivers.length} receivers`,
    10,
  );
  const took = Date.now() - start;
  // Every probe is acknowledged (or failed) before the caller goes on: none is still on its way.
  await within(Promise.all(acks), Math.max(1000, timeoutMs - took), `acknowledgements of ${acks.length} probes on ${topic}`);
  return took;
}

/** Publishes each payload on `topic` (in this order) and waits for every acknowledgement, at most `timeoutMs`. */
export async function publishAll(client: MqttClient, topic: string, payloads: string[], qos: 0 | 1 | 2, timeoutMs = 10_000): Promise<void> {
  await within(Promise.all(payloads.map((payload) => client.publishAsync(topic, payload, { qos }))), timeoutMs, `acknowledgements of ${payloads.length} messages on ${topic}`);
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends `client` at once (no DISCONNECT unless `graceful`) and forgets it. */
export async function endClient(client: MqttClient, graceful = false): Promise<void> {
  clients.delete(client);
  if (graceful && client.connected) {
    await client.endAsync();
    return;
  }
  client.end(true);
}

/** Ends every client made by `connect`. */
export async function closeClients(): Promise<void> {
  for (const client of clients) client.end(true);
  clients.clear();
}

/** True once something accepts TCP connections on `port` (127.0.0.1). */
export function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** HTTP status of GET `path`, or undefined if nothing answers within 1 s. */
export async function getStatus(port: number, path: string): Promise<number | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return undefined;
  }
}

/** The value of a Prometheus sample `name` (without labels) on GET /metrics of `httpPort`; undefined if absent. */
export async function metric(httpPort: number, name: string): Promise<number | undefined> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  for (const line of text.split('\n')) {
    const [key, value] = line.split(' ');
    if (key === name && value !== undefined) return Number(value);
  }
  return undefined;
}

/** Sends `signal` by PID and waits for the exit; a SIGTERM not obeyed within 10 s becomes SIGKILL. */
async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, signal);
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }, 10_000);
  await exit;
  clearTimeout(timer);
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
