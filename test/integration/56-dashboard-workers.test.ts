/**
 * The dashboard of a worker group in headless Chromium: a real `starling --workers 2`, one MQTT.js
 * client on each worker (the primary's round-robin), and the overview's per-worker table showing one
 * row per worker with the PID the primary logged and each worker's connections. (53-dashboard checks
 * that a single process shows no such table.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { BrowserContext, Page } from 'playwright-core';
import { ensureDashboardBuilt, launchBrowser, waitFor, watchPage, type TestBrowser } from '../helpers/browser.js';
import { startGroup, type Group } from '../helpers/worker-group.js';

const TOKEN = 'dashboard-workers-token';
const WAIT_MS = 10_000;

let group: Group;
let chromium: TestBrowser;
let context: BrowserContext;
let page: Page;
const clients: MqttClient[] = [];
const problems: string[] = [];

before(async () => {
  ensureDashboardBuilt();
  group = await startGroup({ workers: 2, env: { STARLING_API_TOKEN: TOKEN } });
  chromium = await launchBrowser();
  context = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  page = watchPage(await context.newPage(), 'desktop', problems);
  page.setDefaultTimeout(WAIT_MS);
}, { timeout: 90_000 });

after(async () => {
  for (const client of clients) client.end(true);
  await context?.close().catch(() => undefined);
  await chromium?.close();
  await group?.stop();
});

test('the overview of a --workers 2 group has a Workers table with one row per worker: id, PID, connections', async () => {
  for (const clientId of ['on-one', 'on-other']) {
    clients.push(await mqtt.connectAsync(`mqtt://127.0.0.1:${group.port}`, { clientId, reconnectPeriod: 0, connectTimeout: WAIT_MS }));
  }
  const workerOf = async (clientId: string): Promise<unknown> => {
    const response = await fetch(`http://127.0.0.1:${group.httpPort}/api/clients/${clientId}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return ((await response.json()) as { worker?: string }).worker;
  };
  const holders = new Set([await workerOf('on-one'), await workerOf('on-other')]);
  assert.deepEqual([...holders].sort(), ['w1', 'w2'], 'the two clients are on different workers');

  await page.goto(`http://127.0.0.1:${group.httpPort}/`);
  await page.waitForSelector('#login');
  await page.fill('#login-token', TOKEN);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#workers:not([hidden]) tr[data-worker="w2"]');
  const rows = await page.evaluate<string[][]>(`[...document.querySelectorAll('#workers tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? ''))`);
  assert.equal(rows.length, 2, 'one row per worker');
  const pids = group.pids();
  for (const [worker, pid, connections, sessions, , , cpu, rss] of rows) {
    assert.ok(worker === 'w1' || worker === 'w2', `worker ${worker}`);
    assert.equal(Number(pid), pids.get(worker), `${worker}'s PID is the one the primary logged`);
    // Its MQTT.js client, and perhaps the dashboard's own live-view connection (WebSocket).
    assert.ok(Number(connections) >= 1, `${worker} counts its client (${connections})`);
    assert.ok(Number(sessions) >= 1, `${worker} counts its session (${sessions})`);
    assert.match(cpu ?? '', /^\d+\.\d s$/);
    assert.match(rss ?? '', /\d/);
  }
  const total = Number(await page.textContent('#stat-connections'));
  const perWorker = rows.reduce((sum, row) => sum + Number(row[2]), 0);
  await waitFor(page, `Number(document.getElementById('stat-connections')?.textContent) >= 2`, WAIT_MS);
  assert.ok(total >= 2 && perWorker >= 2, `the group's total (${total}) and the rows (${perWorker}) count both clients`);
  assert.deepEqual(problems, [], 'the page reported no error or warning');
});
