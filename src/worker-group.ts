/**
 * `starling --workers N`: one broker made of N worker processes on this machine. The primary forks
 * the workers (node:cluster; they share the listening ports, the primary spreads connections
 * round-robin), runs the hub (the store, routes, ownership, inboxes) and restarts a worker that dies;
 * each worker runs the whole broker (`startServer`) as node w1..wN of the group. docs/workers.md.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger as PinoLogger } from 'pino';
import { Hub } from './cluster/workers/hub.js';
import { ipcLink } from './cluster/workers/link.js';
import { WorkerBus } from './cluster/workers/worker-bus.js';
import { ConfigError } from './config/config.js';
import { crossCheck } from './config/checks.js';
import { unreadableFiles } from './config/file-check.js';
import type { StarlingConfig } from './config/schema.js';
import { createLogger } from './create-logger.js';
import { LmdbPersistence } from './persistence/lmdb.js';
import { MemoryPersistence } from './persistence/memory.js';
import type { Persistence } from './persistence/types.js';
import { startServer, type StarlingServer } from './server.js';

/** The environment variable that tells a forked process which worker it is. */
const WORKER_ENV = 'STARLING_WORKER_ID';
/** A worker that dies sooner than this after its start is restarted only after a pause (crash loop). */
const QUICK_DEATH_MS = 5000;
/** How long a stop waits for the workers before killing them. */
const STOP_TIMEOUT_MS = 10_000;

/** The number of workers `config` asks for (`auto`: one per core). */
export function workerCount(config: Pick<StarlingConfig, 'workers'>): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** True in a process forked as a worker of a group. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] !== undefined;
}

/** A running group, seen from the primary. */
export interface WorkerGroup {
  readonly logger: PinoLogger;
  /** Stops every worker (SIGTERM, then SIGKILL after 10 s), then the hub and the store. */
  close(): Promise<void>;
  /** Passes SIGHUP on (each worker reloads its security files and certificates). */
  reload(): void;
}

/** In the primary: opens the store, starts the hub and forks the workers; resolves once all serve. */
export async function startWorkerGroup(config: StarlingConfig, warnings: readonly string[] = []): Promise<WorkerGroup> {
  const logger = createLogger(config.logLevel, config.logFormat).child({ worker: 'primary' });
  const problems = [...crossCheck(config, () => 'configuration'), ...unreadableFiles(config)];
  if (config.cluster !== undefined) problems.push('workers: a worker group cannot join a Redis cluster yet (cluster.redis); run one process per machine with --redis, or --workers without it (docs/workers.md)');
  if (problems.length > 0) throw new ConfigError(problems);
  for (const warning of warnings) logger.warn({}, warning);
  const count = workerCount(config);
  const nodes = Array.from({ length: count }, (_, i) => `w${i + 1}`);
  const store: Persistence = config.store === 'memory' ? new MemoryPersistence() : new LmdbPersistence({ dataDir: config.dataDir, sync: config.durability === 'full' });
  let hub: Hub;
  try {
    hub = await Hub.open({ store, nodes, logger });
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  logger.info({ store: store.name, dataDir: store.name === 'lmdb' ? config.dataDir : undefined, workers: count }, `store opened; starting ${count} workers`);

  // Buffers cross the IPC channel as bytes (V8's serializer), not as JSON.
  cluster.setupPrimary({ serialization: 'advanced' });
  const byWorker = new Map<Worker, { node: string; startedAt: number }>();
  const serving = new Set<string>();
  let stopping = false;
  let allServing: () => void = () => {};
  let failed: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    allServing = resolve;
    failed = reject;
  });
  const fork = (node: string): void => {
    const worker = cluster.fork({ [WORKER_ENV]: node });
    byWorker.set(worker, { node, startedAt: Date.now() });
    hub.attach(node, ipcLink(worker), worker.process.pid);
  };
  hub.onServing = (node) => {
    serving.add(node);
    if (serving.size === count) {
      logger.info({ workers: count }, `all ${count} workers serving`);
      allServing();
    }
  };
  cluster.on('exit', (worker, code, signal) => {
    const entry = byWorker.get(worker);
    if (entry === undefined) return;
    byWorker.delete(worker);
    hub.down(entry.node);
    if (stopping) return;
    if (serving.size < count) {
      // A worker that cannot start (a port in use, a file it cannot read) would fail again: stop.
      stopping = true;
      failed(new Error(`worker ${entry.node} exited during start (${signal ?? `code ${code}`}); its log says why`));
      return;
    }
    const quick = Date.now() - entry.startedAt < QUICK_DEATH_MS;
    logger.warn({ node: entry.node, pid: worker.process.pid, code, signal }, `worker ${entry.node} exited; restarting it${quick ? ' in 1 s' : ''}`);
    setTimeout(() => {
      if (!stopping) fork(entry.node);
    }, quick ? 1000 : 0).unref();
  });
  for (const node of nodes) fork(node);
  try {
    await ready;
  } catch (error) {
    for (const worker of byWorker.keys()) worker.process.kill('SIGKILL');
    hub.close();
    await store.close();
    throw error;
  }

  return {
    logger,
    reload() {
      for (const worker of byWorker.keys()) worker.process.kill('SIGHUP');
    },
    async close() {
      stopping = true;
      const exits = [...byWorker.keys()].map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const timer = setTimeout(() => worker.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
            worker.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            worker.process.kill('SIGTERM');
          }),
      );
      await Promise.all(exits);
      hub.close();
      await store.close();
    },
  };
}

/** In a worker process: the broker as one node of the group, its bus joined to the hub over IPC. */
export async function startWorker(config: StarlingConfig, warnings: readonly string[] = []): Promise<StarlingServer> {
  const node = process.env[WORKER_ENV] ?? 'w1';
  const logger = createLogger(config.logLevel, config.logFormat).child({ worker: node });
  const bus = new WorkerBus(node, ipcLink(process), logger);
  // Without the primary nothing can be committed: a worker never outlives it.
  process.on('disconnect', () => {
    logger.error({}, 'the primary process is gone; exiting');
    process.exit(1);
  });
  // $SYS statistics are published by w1 with the group's totals, events by each worker (server.ts).
  const server = await startServer({ ...config, warnings: node === 'w1' ? warnings : [] }, { bus, logger });
  bus.serving();
  return server;
}
