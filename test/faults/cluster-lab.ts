/**
 * A Starling cluster inside a fault lab (./lab.ts): a real redis-server in namespace "redis", one
 * `starling` process (dist/cli/main.js) per namespace "n1", "n2", …, and the clients' side in
 * namespace "clients". MQTT ports are exposed to the test process through the clients' namespace
 * (so a client's packets cross the router and its faults); HTTP (/readyz) and Redis are exposed
 * from their own namespaces (so the test can look even while a host is cut off).
 */
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { CLI, getStatus, sleep } from '../helpers/cluster.js';
import { REDIS_SERVER } from '../helpers/redis.js';
import { tempDir } from '../helpers/temp-dir.js';
import { Lab, type LabProcess } from './lab.js';

const MQTT_PORT = 1883;
const HTTP_PORT = 8080;
const REDIS_PORT = 6379;

/** One broker process of the lab's cluster. */
export class LabNode {
  proc!: LabProcess;
  /** Loopback port of the test process that reaches this node's MQTT listener from "clients". */
  mqttPort = 0;
  /** Loopback port that reaches this node's HTTP server from its own namespace. */
  httpPort = 0;

  constructor(
    readonly lab: Lab,
    /** Node id and lab host name. */
    readonly nodeId: string,
    private readonly args: readonly string[],
  ) {}

  get running(): boolean {
    return this.proc.running;
  }

  /** The node's JSON log lines so far (this process only). */
  output(): string {
    return this.proc.output();
  }

  /** How many log lines of this process contain `text`. */
  count(text: string): number {
    return this.output().split('\n').filter((line) => line.includes(text)).length;
  }

  /** Starts the process and waits until /readyz answers 200 (the first time, also exposes its ports). */
  async start(readyTimeoutMs = 20_000): Promise<void> {
    this.proc = this.lab.spawn(this.nodeId, process.execPath, [CLI, ...this.args]);
    if (this.mqttPort === 0) {
      [this.mqttPort, this.httpPort] = await Promise.all([this.lab.expose('clients', this.nodeId, MQTT_PORT), this.lab.expose(this.nodeId, this.nodeId, HTTP_PORT)]);
    }
    const deadline = Date.now() + readyTimeoutMs;
    while ((await this.readyz()) !== 200) {
      if (!this.proc.running) throw new Error(`node ${this.nodeId} exited (${this.proc.child.exitCode ?? this.proc.child.signalCode}):\n${this.output().slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`node ${this.nodeId} not ready within ${readyTimeoutMs} ms:\n${this.output().slice(-4000)}`);
      await sleep(100);
    }
  }

  /** Status of GET /readyz, or undefined if nothing answers within 1 s. */
  readyz(): Promise<number | undefined> {
    return getStatus(this.httpPort, '/readyz');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.proc.kill(signal);
  }
}

/** Redis, the nodes, and the lab around them. */
export interface ClusterLab {
  readonly lab: Lab;
  readonly nodes: LabNode[];
  /** The redis-server process (in namespace "redis"). */
  readonly redis: LabProcess;
  /** A new ioredis connection to the lab's Redis, from its own namespace (the caller ends it). */
  redisClient(): Redis;
  /** Stops everything: nodes, Redis, forwarders, impairments, then the namespaces. */
  close(): Promise<void>;
}

/** Options of startClusterLab. */
export interface ClusterLabOptions {
  /** Number of nodes (default 3). */
  size?: number;
  /** More broker flags for every node. */
  extraArgs?: readonly string[];
}

/** Builds the lab and starts Redis and the nodes; on failure whatever started is stopped. */
export async function startClusterLab(options: ClusterLabOptions = {}): Promise<ClusterLab> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm run build; npm test does)`);
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: apt-get install -y redis-server (.ci/run does)`);
  const size = options.size ?? 3;
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const lab = await Lab.create(['redis', ...ids, 'clients']);
  try {
    const redisHost = lab.address('redis');
    const redis = lab.spawn('redis', REDIS_SERVER, [
      '--port', String(REDIS_PORT),
      '--bind', redisHost, '127.0.0.1',
      '--protected-mode', 'no',
      '--daemonize', 'no',
      '--dir', tempDir('starling-faults-redis-'),
      // Acknowledged means on disk, as docs/clustering.md asks of a production Redis.
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--save', '',
    ]);
    await redis.waitFor(/Ready to accept connections/, 10_000);
    const redisPort = await lab.expose('redis', 'redis', REDIS_PORT);
    const logLevel = process.env['STARLING_TEST_LOG'] ?? 'info';
    const nodes = ids.map(
      (id) =>
        new LabNode(lab, id, [
          '--host', lab.address(id),
          '--port', String(MQTT_PORT),
          '--allow-anonymous',
          '--redis', `redis://${redisHost}:${REDIS_PORT}`,
          '--node-id', id,
          '--log-level', logLevel,
          '--http-host', lab.address(id),
          '--http-port', String(HTTP_PORT),
          '--sys-interval', '0',
          ...(options.extraArgs ?? []),
        ]),
    );
    await Promise.all(nodes.map((node) => node.start()));
    return {
      lab,
      nodes,
      redis,
      redisClient: () => new Redis(redisPort, '127.0.0.1', { maxRetriesPerRequest: 1 }),
      close: () => lab.close(),
    };
  } catch (error) {
    await lab.close();
    throw error;
  }
}
