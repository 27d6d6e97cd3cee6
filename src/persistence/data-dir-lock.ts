/** A lock file that keeps a second broker out of a data directory while one is using it. */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The data directory is held by another running process. */
export class DataDirLockedError extends Error {
  readonly code = 'ERR_DATA_DIR_LOCKED';
}

/** Lock files held by this process (a second store in the same process is refused too). */
const heldHere = new Set<string>();

interface Holder {
  pid: number;
  host: string;
  since: string;
}

/**
 * `starling.lock` in the data directory, created exclusively, naming the holder (PID, host, start
 * time). A lock left by a process that is gone (a crash, `kill -9`) is taken over; one held by a
 * live process, or by another host (its liveness cannot be checked), is refused.
 */
export class DataDirLock {
  private released = false;

  private constructor(readonly path: string) {}

  /** Takes the lock of `dataDir` (which must exist); throws DataDirLockedError naming the holder. */
  static acquire(dataDir: string): DataDirLock {
    const path = join(dataDir, 'starling.lock');
    if (heldHere.has(path)) throw new DataDirLockedError(`data directory ${dataDir} is already open in this process; use another data directory`);
    const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o644);
        try {
          writeSync(fd, `${JSON.stringify(me)}\n`);
        } finally {
          closeSync(fd);
        }
        heldHere.add(path);
        return new DataDirLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = readHolder(path);
      if (holder !== undefined && holder.host !== me.host) {
        throw new DataDirLockedError(
          `data directory ${dataDir} is in use by process ${holder.pid} on host ${holder.host} (since ${holder.since}); ` +
            `stop that broker or use another --data-dir (if it is certainly not running, delete ${path})`,
        );
      }
      // Same host: a live holder keeps the directory. A file naming this very process's PID was
      // left by an earlier process that had the same PID (a container's PID 1 after a restart).
      if (holder !== undefined && holder.pid !== process.pid && isAlive(holder.pid)) {
        throw new DataDirLockedError(
          `data directory ${dataDir} is in use by process ${holder.pid} on this host (since ${holder.since}); stop that broker or use another --data-dir`,
        );
      }
      // Left by a process that is gone (or unreadable, half-written by a crash): take it over.
      try {
        unlinkSync(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    throw new DataDirLockedError(`data directory ${dataDir}: could not take ${path} (another process keeps creating it)`);
  }

  /** Gives the directory up (only if the file is still ours). */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.path);
    const holder = readHolder(this.path);
    if (holder !== undefined && holder.pid !== process.pid) return;
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}

function readHolder(path: string): Holder | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') return undefined;
    return { pid: value.pid, host: value.host, since: typeof value.since === 'string' ? value.since : 'an unknown time' };
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
