/** A process a fault-test lab started inside a network namespace: its output, waiting for a line, stopping it by PID. */
import type { ChildProcess } from 'node:child_process';

const OUTPUT_LIMIT = 1024 * 1024;

/** A process started inside a namespace, stopped by PID. */
export class LabProcess {
  private text = '';
  private readonly listeners = new Set<() => void>();
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess, readonly name: string) {
    const append = (chunk: Buffer): void => {
      this.text += chunk.toString();
      if (this.text.length > OUTPUT_LIMIT) this.text = this.text.slice(-OUTPUT_LIMIT);
      for (const listener of this.listeners) listener();
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => {
      for (const listener of this.listeners) listener();
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What the process wrote (stdout and stderr, last MiB). */
  output(): string {
    return this.text;
  }

  /** Resolves with the first match of `pattern` in the output (also in what came before the call). */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const match = this.text.slice(from).match(pattern);
        if (match !== null) {
          done();
          resolve(match);
        } else if (!this.running) {
          done();
          reject(new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${pattern}:\n${this.text.slice(-4000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.text.slice(-4000)}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Sends `signal` by PID and waits for the exit (SIGKILL after 10 s if a gentler signal is ignored). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running || this.child.pid === undefined) return;
    process.kill(this.child.pid, signal);
    const timer = signal === 'SIGKILL' ? undefined : setTimeout(() => this.killSync(), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL by PID without waiting (for the process's exit hook). */
  killSync(): void {
    if (this.running && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL');
  }
}
