/**
 * Headless Chromium for end-to-end tests: Debian's /usr/bin/chromium, started by us (so we hold its
 * PID and kill it by that PID) with a fresh profile, and driven by playwright-core over CDP.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

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

const ROOT = join(import.meta.dirname, '../..');

/** Builds the dashboard when dist/ has none (npm test builds first; a lone run of a dashboard test file builds it itself). */
export function ensureDashboardBuilt(): void {
  if (existsSync(join(ROOT, 'dist/dashboard/index.html'))) return;
  const built = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', join(ROOT, 'dashboard/vite.config.ts'), '--logLevel', 'warn'], { stdio: 'inherit', timeout: 60_000 });
  assert.equal(built.status, 0, 'vite build');
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

/**
 * Where screenshots go: docs/images when STARLING_UPDATE_SCREENSHOTS=1 (a normal run leaves the tree
 * clean), otherwise a temporary folder; they are checked either way.
 */
export const SCREENSHOTS = process.env['STARLING_UPDATE_SCREENSHOTS'] === '1' ? join(import.meta.dirname, '../../docs/images') : join(tmpdir(), 'starling-dashboard-screenshots');

/** Saves a screenshot of `target` as docs/images/dashboard-NAME.png (see SCREENSHOTS) after checking that it shows something. */
export async function screenshot(target: Page, name: string, maxDominant = 0.99): Promise<void> {
  const png = await target.screenshot({ fullPage: false });
  const size = pngSize(png);
  assert.ok(size.width >= 300 && size.height >= 300, `${name}: ${size.width}x${size.height}`);
  // Decoded and sampled by the browser itself (no image library here): colours on a 16-level grid.
  const stats = await target.evaluate<{ colours: number; dominant: number }>(`(async () => {
    const image = new Image();
    image.src = 'data:image/png;base64,${png.toString('base64')}';
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context2d = canvas.getContext('2d');
    context2d.drawImage(image, 0, 0);
    const data = context2d.getImageData(0, 0, image.width, image.height).data;
    const counts = new Map();
    let samples = 0;
    for (let i = 0; i < data.length; i += 4 * 7) {
      const key = ((data[i] >> 4) << 8) | ((data[i + 1] >> 4) << 4) | (data[i + 2] >> 4);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      samples++;
    }
    return { colours: counts.size, dominant: Math.max(...counts.values()) / samples };
  })()`);
  assert.ok(stats.colours >= 8, `${name}: only ${stats.colours} colours: blank?`);
  assert.ok(stats.dominant < maxDominant, `${name}: one colour covers ${(stats.dominant * 100).toFixed(1)}%: blank?`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  writeFileSync(join(SCREENSHOTS, `dashboard-${name}.png`), png);
}

/**
 * Waits until a JavaScript expression is true in the page, polling from here: the dashboard's
 * Content-Security-Policy forbids the eval that waitForFunction with a string would need.
 */
export async function waitFor(target: Page, expression: string, timeout = 8000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await target.evaluate<boolean>(`Boolean(${expression})`))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Records what a page reports as wrong (console errors and warnings, uncaught exceptions) into `problems`. */
export function watchPage(target: Page, label: string, problems: string[]): Page {
  target.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${label} console ${message.type()}: ${message.text()}`);
  });
  target.on('pageerror', (error) => problems.push(`${label} page error: ${error.message}`));
  return target;
}
