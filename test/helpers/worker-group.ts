/**
 * Black-box harness for `starling --workers N`: the real command (dist/cli/main.js) as a child
 * process with a temporary data directory, ports read from its log (port 0 on the first start, the
 * same ports on a restart), the worker processes known by their PIDs (from the primary's log), and the
 * per-worker view of the REST API. Every process is stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './temp-dir.js';

const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const live = new Set<number>();
process.once('exit', () => {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** One worker as the API lists it. */
export interface WorkerView {
  worker: string;
  pid: number;
  connections: number;
  sessions: number;
  cpuSeconds: number;
}

/** Options of `startGroup`. */
export interface GroupOptions {
  workers?: number;
  /** More broker flags. */
  args?: string[];
  dataDir?: string;
  /** More environment variables (STARLING_… settings). */
  env?: NodeJS.ProcessEnv;
}

/** A running worker group. */
export interface Group {
  readonly port: number;
  readonly httpPort: number;
  readonly dataDir: string;
  /** The primary process. */
  readonly child: ChildProcess;
  /** The log lines so far (JSON). */
  readonly lines: string[];
  /** PID of each worker's current process, by worker id (from the primary's log). */
  pids(): Map<string, number>;
  /** Resolves with the first log line (seen or to come) matching `pattern`, after index `from`. */
  line(pattern: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** The workers, as GET /api/overview lists them. */
  workers(): Promise<WorkerView[]>;
  /** The worker holding `clientId` (GET /api/clients/:id), or undefined. */
  workerOf(clientId: string): Promise<string | undefined>;
  /** GET `path` of the API, as JSON. */
  api(path: string): Promise<unknown>;
  /** SIGKILL of one worker; resolves once the primary restarted it and it serves again. */
  killWorker(worker: string): Promise<void>;
  /** SIGKILL of the primary and every worker at once. */
  killAll(): Promise<void>;
  /** SIGTERM to the primary; resolves with its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `starling --workers N` (default 3) and waits until every worker serves. */
export async function startGroup(options: GroupOptions = {}, ports?: { port: number; httpPort: number }): Promise<Group> {
  const workers = options.workers ?? 3;
  const dataDir = options.dataDir ?? tempDir();
  const args = [CLI, '--workers', String(workers), '--port', String(ports?.port ?? 0), '--http-port', String(ports?.httpPort ?? 0), '--data-dir', dataDir, '--log-format', 'json', ...(options.args ?? [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  if (child.pid !== undefined) live.add(child.pid);
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  const take = (chunk: Buffer): void => {
    const text = partial + chunk.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) if (l.length > 0) lines.push(l);
    for (const wake of [...waiters]) wake();
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      if (child.pid !== undefined) live.delete(child.pid);
      for (const wake of [...waiters]) wake();
      resolve(code);
    }),
  );
  const line = (pattern: RegExp, timeoutMs = 20_000, from = 0): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = lines.slice(from).find((l) => pattern.test(l));
        if (found !== undefined) done(() => resolve(found));
        else if (child.exitCode !== null || child.signalCode !== null) done(() => reject(new Error(`the group exited before a line matching ${pattern}:\n${lines.slice(-30).join('\n')}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.slice(-30).join('\n')}`))), timeoutMs);
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });
  await line(new RegExp(`all ${workers} workers serving`));
  const port = ports?.port ?? Number(/mqtt:\/\/127\.0\.0\.1:(\d+)/.exec(await line(/MQTT listening on mqtt:\/\/127\.0\.0\.1:/))![1]);
  const httpPort = ports?.httpPort ?? Number(/http:\/\/127\.0\.0\.1:(\d+)\//.exec(await line(/HTTP \(dashboard/))![1]);
  const pids = (): Map<string, number> => {
    const out = new Map<string, number>();
    for (const l of lines) {
      const match = /"node":"(w\d+)","pid":(\d+),.*workers: worker w\d+ joined/.exec(l);
      if (match !== null) out.set(match[1]!, Number(match[2]));
    }
    for (const pid of out.values()) live.add(pid);
    return out;
  };
  const api = async (path: string): Promise<unknown> => {
    const response = await fetch(`http://127.0.0.1:${httpPort}${path}`, { signal: AbortSignal.timeout(5000) });
    return (await response.json());
  };
  return {
    port,
    httpPort,
    dataDir,
    child,
    lines,
    pids,
    line,
    api,
    async workers() {
      return ((await api('/api/overview')) as { workers?: WorkerView[] }).workers ?? [];
    },
    async workerOf(clientId) {
      const detail = (await api(`/api/clients/${encodeURIComponent(clientId)}`)) as { worker?: string };
      return detail.worker;
    },
    async killWorker(worker) {
      const pid = pids().get(worker);
      if (pid === undefined) throw new Error(`no PID known for worker ${worker}`);
      const from = lines.length;
      process.kill(pid, 'SIGKILL');
      live.delete(pid);
      await line(new RegExp(`"node":"${worker}","pid":(?!${pid},)\\d+,.*workers: worker ${worker} joined`), 20_000, from);
    },
    async killAll() {
      const all = [...pids().values()];
      if (child.pid !== undefined) all.push(child.pid);
      for (const pid of all) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        live.delete(pid);
      }
      await exited;
      // The workers are gone once nothing answers on the MQTT port's handle (their parent is dead).
      await Promise.all(all.map((pid) => gone(pid)));
    },
    async stop() {
      // STARLING_TEST_LOG=file keeps the group's log lines for a look after the run.
      const keep = process.env['STARLING_TEST_LOG'];
      if (keep !== undefined && keep.includes('/')) appendFileSync(keep, `${lines.join('\n')}\n`);
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      for (const pid of pids().values()) await gone(pid);
      return code;
    },
  };
}

/** Resolves once process `pid` no longer exists (bounded: 10 s, then SIGKILL). */
async function gone(pid: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      live.delete(pid);
      return;
    }
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      live.delete(pid);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
