/**
 * Child processes for tests (the `starling` command, mosquitto, mosquitto_pub/sub): started with
 * their output collected line by line, waited for by a line rather than a sleep, and all killed by
 * `killAll()` in an `after` hook.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** The built command (npm test builds first). */
export const STARLING_CLI = join(import.meta.dirname, '../../dist/cli/main.js');

const living = new Set<ChildProcess>();

/** A process that runs until killed, with its stdout and stderr lines. */
export interface Started {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
  /** Resolves with the first line (already seen or to come) matching `pattern`; rejects after `timeoutMs` naming what was seen. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Starts `file args` (stdout and stderr collected). */
export function startProcess(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): Started {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env === undefined ? {} : { env }) });
  living.add(child);
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const collect = (chunk: Buffer): void => {
    lines.push(...chunk.toString().split('\n').filter((l) => l.length > 0));
    for (const wake of waiters) wake();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      living.delete(child);
      for (const wake of waiters) wake();
      resolve(code);
    });
  });
  const line = (pattern: RegExp, timeoutMs = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = lines.find((l) => pattern.test(l));
        if (found !== undefined) done(() => resolve(found));
        else if (child.exitCode !== null || child.signalCode !== null) done(() => reject(new Error(`exited (${child.exitCode ?? child.signalCode}) before a line matching ${pattern}:\n${lines.join('\n')}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`))), timeoutMs);
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });
  return { child, lines, exited, line };
}

/**
 * Stops a started process with `signal` and waits for it; after `graceMs` it is killed with
 * SIGKILL (a program that hangs on its way out must not hang the test). Resolves to how it ended.
 */
export async function stopProcess(started: Started, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<{ code: number | null; killed: boolean }> {
  if (started.child.exitCode !== null || started.child.signalCode !== null) return { code: started.child.exitCode, killed: false };
  started.child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  const first = await Promise.race([started.exited, late]);
  clearTimeout(timer);
  if (first !== 'late') return { code: first, killed: false };
  started.child.kill('SIGKILL');
  return { code: await started.exited, killed: true };
}

/** Runs `file args` to completion (killed after `timeoutMs`): exit code and output. */
export function runProcess(file: string, args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: options.timeoutMs ?? 10_000, ...(options.env === undefined ? {} : { env: options.env }) }, (error, stdout, stderr) => {
      living.delete(child);
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
    living.add(child);
  });
}

/** Kills every process still running (for `after`). */
export async function killAll(): Promise<void> {
  const waits = [...living].map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve))));
  for (const child of living) child.kill('SIGKILL');
  await Promise.all(waits);
}
