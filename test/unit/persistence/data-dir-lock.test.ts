import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DataDirLock, DataDirLockedError } from '../../../src/persistence/data-dir-lock.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** The PID of a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid as number;
}

describe('data directory lock', () => {
  test('the lock file names the holder and goes away on release', () => {
    const dir = tempDir();
    const lock = DataDirLock.acquire(dir);
    const holder = JSON.parse(readFileSync(join(dir, 'starling.lock'), 'utf8')) as { pid: number };
    assert.equal(holder.pid, process.pid);
    lock.release();
    assert.equal(existsSync(join(dir, 'starling.lock')), false);
  });

  test('a second lock in the same process is refused until the first is released', () => {
    const dir = tempDir();
    const lock = DataDirLock.acquire(dir);
    assert.throws(() => DataDirLock.acquire(dir), DataDirLockedError);
    lock.release();
    DataDirLock.acquire(dir).release();
  });

  test('a live process on this host holds the directory: refused with its PID', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      writeFileSync(join(dir, 'starling.lock'), JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), since: 'now' }));
      assert.throws(() => DataDirLock.acquire(dir), (error: unknown) => error instanceof DataDirLockedError && error.message.includes(`process ${child.pid}`));
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a lock left by a process that is gone (kill -9) is taken over', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'starling.lock'), JSON.stringify({ pid: await deadPid(), host: (await import('node:os')).hostname(), since: 'then' }));
    const lock = DataDirLock.acquire(dir);
    assert.equal((JSON.parse(readFileSync(join(dir, 'starling.lock'), 'utf8')) as { pid: number }).pid, process.pid);
    lock.release();
  });

  test('a lock held on another host is refused, naming the host and the file to delete', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'starling.lock'), JSON.stringify({ pid: 1234, host: 'elsewhere.example', since: 'then' }));
    assert.throws(() => DataDirLock.acquire(dir), (error: unknown) => error instanceof DataDirLockedError && /host elsewhere\.example/.test(error.message) && error.message.includes('starling.lock'));
  });

  test('a half-written (unreadable) lock file is taken over', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'starling.lock'), '{"pid":');
    DataDirLock.acquire(dir).release();
  });
});
