/**
 * Headless Chromium for end-to-end tests: Debian's /usr/bin/chromium, started by us (so we hold its
 * PID and kill it by that PID) with a fresh profile, and driven by playwright-core over CDP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Where Debian installs Chromium (`apt-get install chromium`; .ci/run does it). */
export const CHROMIUM = process.env['STARLING_TEST_CHROMIUM'] ?? '/usr/bin/chromium';
const START_TIMEOUT_MS = 20_000;

/** A running Chromium and its CDP connection. */
export interface TestBrowser {
  browser: Browser;
  pid: number;
  /** Closes the connection, kills the process by its PID, removes the profile. */
  close(): Promise<void>;
}

/** Throws with the fix when Chromium is missing. */
export function assertChromium(): void {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} not found: install it with "apt-get install -y chromium" (.ci/run does)`);
  }
}

/** Starts headless Chromium on a free debugging port and connects to it. */
export async function launchBrowser(): Promise<TestBrowser> {
  assertChromium();
  const profile = mkdtempSync(join(tmpdir(), 'starling-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    `--user-data-dir=${profile}`,
    '--remote-debugging-address=127.0.0.1',
    '--remote-debugging-port=0',
    'about:blank',
  ];
  // Its own process group, so the renderer and helper processes are stopped with it.
  const child = spawn(CHROMIUM, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const pid = child.pid;
  if (pid === undefined) throw new Error('chromium did not start');
  const kill = (): void => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  let endpoint: string;
  try {
    endpoint = await devtoolsEndpoint(child);
  } catch (error) {
    kill();
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const browser = await chromium.connectOverCDP(endpoint);
  return {
    browser,
    pid,
    async close() {
      await browser.close().catch(() => undefined);
      kill();
      if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
      // A helper process may still be finishing a write into the profile: retry briefly.
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}

function devtoolsEndpoint(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`chromium gave no DevTools endpoint within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited (${code}) before listening:\n${output}`));
    });
  });
}

/** Width and height from a PNG header. */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (png.length < 24 || png.toString('ascii', 1, 4) !== 'PNG') throw new Error('not a PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
