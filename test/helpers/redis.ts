/**
 * Starts a real Debian `redis-server` for the cluster tests: a free loopback port, its own temporary
 * directory, append-only file fsynced every second (so a stop and start on the same directory keeps
 * the data, as a production Redis would), no RDB snapshots. `stop()` sends SIGTERM and waits for the
 * process; `restart()` starts it again on the same port and directory. Every process this module
 * starts is also killed by PID when the test process exits, so none is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './mosquitto.js';

/** Where Debian installs redis-server (package redis-server, installed by .ci/run). */
export const REDIS_SERVER = '/usr/bin/redis-server';

/** A running (or stopped, until `restart()`) redis-server. */
export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Its working directory (the append-only file lives here). */
  readonly dir: string;
  /** PID of the current process (undefined while stopped). */
  readonly pid: number | undefined;
  /** What redis-server printed (last 64 KiB), for diagnostics. */
  log(): string;
  /** SIGTERM (Redis fsyncs the append-only file and exits), then waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** Stops if running, then starts again on the same port and directory and waits until it answers PING. */
  restart(): Promise<void>;
  /** A new ioredis connection to it (the caller quits it). */
  client(): Redis;
  /** Stops the server and removes its directory (idempotent). */
  close(): Promise<void>;
}

/** Options of startRedis. */
export interface RedisOptions {
  /** Port (default: a free one). */
  port?: number;
  /** Milliseconds to wait for PING to answer (default 10 000). */
  readyTimeout?: number;
  /** More redis-server arguments, e.g. ['--loglevel', 'debug']. */
  extraArgs?: string[];
}

const LOG_LIMIT = 64 * 1024;
const live = new Set<ChildProcess>();

// Last resort: if the test process ends without its after() hooks (an uncaught error, a timeout),
// the servers it started still die with it.
process.once('exit', () => {
  for (const child of live) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
});

/** Starts redis-server and waits until it answers PING with +PONG. */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: install the Debian package redis-server (.ci/run does)`);
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'starling-redis-'));
  const readyTimeout = options.readyTimeout ?? 10_000;
  let child: ChildProcess | undefined;
  let log = '';
  let closed = false;

  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--protected-mode', 'no',
    '--daemonize', 'no',
    '--dir', dir,
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--save', '',
    ...(options.extraArgs ?? []),
  ];

  const launch = async (): Promise<void> => {
    const started = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    live.add(started);
    const append = (chunk: Buffer): void => {
      log += chunk.toString();
      if (log.length > LOG_LIMIT) log = log.slice(-LOG_LIMIT);
    };
    started.stdout?.on('data', append);
    started.stderr?.on('data', append);
    started.once('exit', () => live.delete(started));
    let spawnError: Error | undefined;
    started.once('error', (error) => (spawnError = error));
    const deadline = Date.now() + readyTimeout;
    for (;;) {
      if (spawnError !== undefined) throw new Error(`redis-server did not start: ${spawnError.message}`);
      if (started.exitCode !== null || started.signalCode !== null) throw new Error(`redis-server exited (${started.exitCode ?? started.signalCode}):\n${log}`);
      if (await ping(port)) return;
      if (Date.now() > deadline) {
        await terminate(started, 'SIGKILL');
        throw new Error(`redis-server on port ${port} did not answer PING within ${readyTimeout} ms:\n${log}`);
      }
      await sleep(25);
    }
  };

  await launch();

  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return child !== undefined && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    log: () => log,
    stop: async () => {
      if (child !== undefined) await terminate(child, 'SIGTERM');
    },
    kill: async () => {
      if (child !== undefined) await terminate(child, 'SIGKILL');
    },
    restart: async () => {
      if (closed) throw new Error('redis-server: restart after close');
      if (child !== undefined) await terminate(child, 'SIGTERM');
      await launch();
    },
    client: () => new Redis(port, '127.0.0.1', { lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: true }),
    close: async () => {
      closed = true;
      if (child !== undefined) await terminate(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Sends `signal` to the process by PID and waits for its exit; SIGKILL if SIGTERM is not enough within 10 s. */
async function terminate(child: ChildProcess, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, signal);
  if (signal === 'SIGKILL') return exit;
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }, 10_000);
  await exit;
  clearTimeout(timer);
}

/** True if a Redis on `port` answers `PING` with `+PONG` (not `-LOADING`, not a refused connection). */
export function ping(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
