/**
 * The dashboard end to end in headless Chromium (Debian's, driven by playwright-core): sign-in with
 * the API token, the overview showing an MQTT.js client, a message published from outside appearing
 * in the topic explorer, the publish form reaching an outside subscriber, kicking a client, session
 * expiry in words, $SYS hidden from the retained list until asked for, and every page on a 390 px
 * phone without sideways scrolling. Any console error or warning, or uncaught page error, fails the
 * test during which it happened (a Content-Security-Policy violation is one). Writes the screenshots
 * of docs/dashboard.md (docs/images/dashboard-*.png) and checks they are not blank.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { BrowserContext, Page } from 'playwright-core';
import type { StarlingServer } from '../../src/server.js';
import { ensureDashboardBuilt, launchBrowser, screenshot as saveScreenshot, waitFor as waitInPage, watchPage, type TestBrowser } from '../helpers/browser.js';
import { bridgeConfig } from '../helpers/bridges.js';
import { startTestBroker } from '../helpers/broker.js';

const TOKEN = 'dashboard-test-token';
const WAIT_MS = 8000;

let server: StarlingServer;
/** The broker the dashboard's broker bridges to. */
let remote: StarlingServer;
let chromium: TestBrowser;
let context: BrowserContext;
let page: Page;
let base: string;
const clients = new Set<MqttClient>();
/** Console errors and warnings and uncaught errors of every page, since the last test ended. */
const problems: string[] = [];

/** Records what a page reports as wrong: console errors and warnings, uncaught exceptions. */
function watch(target: Page, label: string): Page {
  return watchPage(target, label, problems);
}

async function connect(clientId: string, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.port}`, { clientId, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options });
  clients.add(client);
  return client;
}

/** Saves a screenshot under docs/images (when asked) and checks that it shows something. */
function screenshot(name: string, target: Page = page, maxDominant = 0.99): Promise<void> {
  return saveScreenshot(target, name, maxDominant);
}

/** Waits until a JavaScript expression is true in the page. */
function waitFor(target: Page, expression: string, timeout = WAIT_MS): Promise<void> {
  return waitInPage(target, expression, timeout);
}

async function go(route: string): Promise<void> {
  await page.click(`#nav a[data-route="${route}"]`);
  await page.waitForSelector(`#nav a[data-route="${route}"][aria-current="page"]`);
}

describe('53 dashboard in headless Chromium', () => {
  before(async () => {
    ensureDashboardBuilt();
    remote = await startTestBroker();
    server = await startTestBroker({
      http: { port: 0, apiToken: TOKEN },
      sys: { interval: 2 },
      bridges: [
        bridgeConfig({
          name: 'cloud',
          url: `mqtt://127.0.0.1:${remote.port}`,
          clientId: 'dashboard-edge',
          protocolVersion: 5,
          topics: [{ pattern: 'factory/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: 'edge/' }],
        }),
      ],
    });
    base = `http://127.0.0.1:${server.httpPort}/`;
    chromium = await launchBrowser();
    context = await chromium.browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    page = watch(await context.newPage(), 'desktop');
    page.setDefaultTimeout(WAIT_MS);
  });
  afterEach(() => {
    assert.deepEqual(problems.splice(0), [], 'the page reported no error or warning');
  });
  after(async () => {
    for (const client of clients) client.end(true);
    await context?.close().catch(() => undefined);
    await chromium?.close();
    await server?.close();
    await remote?.close();
  });

  test('asks for the API token, then shows the overview with a client connected by MQTT.js', async () => {
    const sensor = await connect('mqttjs-sensor', { username: 'sensor' });
    await sensor.subscribeAsync('home/#');
    await page.goto(base);
    await page.waitForSelector('#login');
    await screenshot('login', page, 0.995); // a sparse page: mostly background by design
    await page.fill('#login-token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#stat-connections');
    await waitFor(page, `document.getElementById('live')?.textContent === 'online'`);
    // One process: no per-worker table (56-dashboard-workers shows it for a group).
    assert.equal(await page.isHidden('#workers'), true, 'the Workers table is hidden on a single process');
    // Traffic for the charts: a few seconds of messages at a steady rate.
    const timer = setInterval(() => {
      for (let i = 0; i < 20; i++) sensor.publish(`home/sensor/${i % 4}`, JSON.stringify({ t: 20 + Math.random() }));
    }, 100);
    try {
      const expected = String(server.broker.query.totals().clientsConnected); // MQTT.js + the dashboard's own WebSocket client
      await waitFor(page, `document.getElementById('stat-connections')?.textContent === '${expected}'`);
      await waitFor(page, `Number(document.getElementById('stat-rate-in')?.textContent) > 0`, 10_000);
      await page.waitForTimeout(6000);
      assert.match((await page.textContent('#stat-uptime')) ?? '', /\d+s/);
      await screenshot('overview');
    } finally {
      clearInterval(timer);
    }
    await go('clients');
    await page.waitForSelector('tr[data-client="mqttjs-sensor"]');
    await page.click('tr[data-client="mqttjs-sensor"]');
    await page.waitForSelector('#client-detail:not([hidden]) dd');
    assert.match((await page.textContent('#client-detail')) ?? '', /home\/#/);
    await screenshot('clients');
  });

  test('a message published from outside appears in the topic explorer (JSON, text and hex views)', async () => {
    await go('topics');
    const outside = await connect('outside-publisher');
    await page.waitForSelector('#topic-tree');
    await page.waitForTimeout(300); // the dashboard subscribes to "#" when the explorer opens
    await outside.publishAsync('factory/line-1/temperature', JSON.stringify({ celsius: 21.5, sensor: 'A7', ok: true }), { qos: 1, retain: true });
    await outside.publishAsync('factory/line-1/status', 'running', { qos: 0 });
    await outside.publishAsync('factory/line-2/raw', Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]), { qos: 0 });
    await page.waitForSelector('[data-topic="factory"]');
    // Open factory and line-1, then select the temperature topic.
    for (const topic of ['factory', 'factory/line-1']) {
      if ((await page.$(`[data-topic="${topic}"] .twisty[aria-label="Expand"]`)) !== null) await page.click(`[data-topic="${topic}"] .twisty`);
    }
    await page.click('[data-topic="factory/line-1/temperature"] .name');
    await waitFor(page, `document.querySelector('#topic-detail [data-testid=payload]')?.textContent?.includes('"celsius": 21.5') === true`);
    await page.click('#topic-detail [data-view=hex]');
    assert.match((await page.textContent('#topic-detail [data-testid=payload]')) ?? '', /^000000 {2}7b 22 63 65/);
    await page.click('#topic-detail [data-view=json]');
    await page.click('[data-topic="factory/line-2"] .twisty');
    await page.waitForSelector('[data-topic="factory/line-2/raw"]');
    await screenshot('topics');
  });

  test('the publish form reaches an outside subscriber', async () => {
    const subscriber = await connect('outside-subscriber');
    await subscriber.subscribeAsync('commands/#', { qos: 1 });
    const received = new Promise<{ topic: string; payload: string; retain: boolean }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('nothing received')), WAIT_MS);
      subscriber.once('message', (topic, payload, packet) => {
        clearTimeout(timer);
        resolve({ topic, payload: payload.toString(), retain: packet.retain });
      });
    });
    await go('publish');
    await page.fill('#pub-topic', 'commands/line-1/speed');
    await page.fill('#pub-payload', '{"rpm": 1200}');
    await page.selectOption('#pub-qos', '1');
    await page.click('#pub-send');
    assert.deepEqual(await received, { topic: 'commands/line-1/speed', payload: '{"rpm": 1200}', retain: false });
    await waitFor(page, `document.getElementById('pub-result')?.textContent?.startsWith('Published') === true`);
    await screenshot('publish');
  });

  test('kicking a client from the clients table disconnects it', async () => {
    const victim = await connect('victim-client');
    const closed = new Promise<void>((resolve) => victim.once('close', () => resolve()));
    await go('clients');
    await page.fill('#client-search', 'victim');
    await page.waitForSelector('tr[data-client="victim-client"]');
    await waitFor(page, `document.querySelectorAll('#clients tbody tr[data-client]').length === 1`);
    await page.click('button[data-kick="victim-client"]');
    await closed;
    assert.equal(server.broker.query.isConnected('victim-client'), false);
    await page.waitForSelector('tr[data-client="victim-client"]', { state: 'detached' });
  });

  test('subscriptions and retained views', async () => {
    await go('subscriptions');
    await page.waitForSelector('#subscriptions tbody tr td code');
    await screenshot('subscriptions');
    await go('retained');
    await page.waitForSelector('#retained tbody tr td code');
    await page.fill('input[aria-label="Topic filter"]', 'factory/#');
    await waitFor(page, `document.querySelectorAll('#retained tbody tr').length === 1`);
    await page.click('#retained tbody tr:has-text("factory/line-1/temperature")');
    await page.waitForSelector('.detail:not([hidden]) [data-testid=payload]');
    await screenshot('retained');
  });

  test('client detail: session expiry 4294967295 reads "never", 0 "at disconnect"', async () => {
    await connect('v5-session-forever', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 0xffffffff } });
    await go('clients');
    for (const [clientId, expected] of [['v5-session-forever', 'never'], ['mqttjs-sensor', 'at disconnect']] as const) {
      await page.fill('#client-search', clientId);
      await page.click(`tr[data-client="${clientId}"]`);
      await waitFor(page, `document.querySelector('#client-detail:not([hidden]) h2')?.textContent === '${clientId}'`);
      const shown = await page.evaluate<string | undefined>(
        `[...document.querySelectorAll('#client-detail dt')].find((dt) => dt.textContent === 'Session expiry')?.nextElementSibling?.textContent`,
      );
      assert.equal(shown, expected, clientId);
    }
    await page.fill('#client-search', '');
  });

  test('retained: $SYS topics are hidden by default and shown by the toggle, without a Clear button', async () => {
    // The broker has published its $SYS retained messages by now (sys.interval 2 s; the first at start).
    const sys = await fetch(`${base}api/retained?filter=${encodeURIComponent('$SYS/#')}&limit=1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.ok(((await sys.json()) as { total: number }).total > 0, 'the broker holds $SYS retained messages');
    await go('retained');
    await page.fill('input[aria-label="Topic filter"]', '');
    await page.waitForSelector('#retained tbody tr td code');
    const topics = (): Promise<string[]> => page.evaluate<string[]>(`[...document.querySelectorAll('#retained tbody td code')].map((c) => c.textContent)`);
    await waitFor(page, `/\\$SYS hidden/.test(document.querySelector('.pager span')?.textContent ?? '')`);
    assert.deepEqual((await topics()).filter((t) => t.startsWith('$')), [], 'no $SYS row by default');
    assert.ok((await topics()).includes('factory/line-1/temperature'));
    await page.check('#retained-show-sys');
    await waitFor(page, `[...document.querySelectorAll('#retained tbody td code')].some((c) => c.textContent.startsWith('$SYS/'))`);
    assert.ok((await topics()).includes('factory/line-1/temperature'), 'the others stay');
    assert.equal(await page.$$eval('#retained tbody tr', (rows) => rows.filter((r) => r.textContent?.startsWith('$SYS/') === true && r.querySelector('button') !== null).length), 0, 'no Clear button on $SYS rows');
    await page.uncheck('#retained-show-sys');
    await waitFor(page, `![...document.querySelectorAll('#retained tbody td code')].some((c) => c.textContent.startsWith('$'))`);
  });

  test('bridges page: state, counters and Stop / Start', async () => {
    await go('bridges');
    await page.waitForSelector('#bridges tr[data-bridge="cloud"]');
    await waitFor(page, `document.querySelector('#bridges tr[data-bridge="cloud"] .bridge-state')?.textContent?.startsWith('up') === true`);
    assert.match((await page.textContent('#bridges tr[data-bridge="cloud"]')) ?? '', new RegExp(`mqtt://127\\.0\\.0\\.1:${remote.port}`));
    await screenshot('bridges', page, 0.995);
    await page.click('#bridges tr[data-bridge="cloud"] button');
    await waitFor(page, `document.querySelector('#bridges tr[data-bridge="cloud"] .bridge-state')?.textContent?.startsWith('stopped') === true`);
    assert.equal(server.bridges.get('cloud')?.state, 'stopped');
    await page.click('#bridges tr[data-bridge="cloud"] button');
    await waitFor(page, `document.querySelector('#bridges tr[data-bridge="cloud"] .bridge-state')?.textContent?.startsWith('up') === true`);
    assert.equal(server.bridges.get('cloud')?.state, 'up');
  });

  test('on a 390 px phone every page fits the screen width (no sideways scrolling) and the pagers are whole', async () => {
    // Long names are what pushed tables wider than a phone.
    await connect('a-rather-long-client-identifier-of-a-sensor-in-hall-7');
    server.broker.publish({ topic: 'plant/hall-7/line-3/station-12/sensor-a7/temperature/celsius', payload: '21.5', qos: 1, retain: true });
    const phone = watch(await context.newPage(), 'phone');
    phone.setDefaultTimeout(WAIT_MS);
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${base}#/overview`);
    // The token lives in the tab's sessionStorage: a new tab signs in again.
    await phone.fill('#login-token', TOKEN);
    await phone.click('#login button[type=submit]');
    await waitFor(phone, `(document.getElementById('stat-connections')?.textContent ?? '–') !== '–'`);
    const fits = async (what: string): Promise<void> => {
      const size = await phone.evaluate<{ scroll: number; client: number; inner: number }>(
        `({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth, inner: window.innerWidth })`,
      );
      assert.ok(size.inner <= 390, `${what}: a 390 px window (innerWidth ${size.inner})`);
      // clientWidth leaves out a vertical scroll bar, so this is stricter than scrollWidth <= innerWidth.
      assert.ok(size.scroll <= size.client, `${what}: no sideways scrolling (scrollWidth ${size.scroll} > ${size.client})`);
    };
    await fits('overview');
    await screenshot('phone', phone);
    for (const route of ['clients', 'topics', 'publish', 'subscriptions', 'retained', 'bridges']) {
      await phone.click(`#nav a[data-route="${route}"]`);
      await phone.waitForSelector(`#nav a[data-route="${route}"][aria-current="page"]`);
      if (route === 'clients') await phone.waitForSelector('tr[data-client="a-rather-long-client-identifier-of-a-sensor-in-hall-7"]');
      if (route === 'retained') await phone.waitForSelector('#retained tbody tr td code');
      if (route === 'subscriptions') await phone.waitForSelector('#subscriptions tbody tr td code');
      await fits(route);
      const pager = await phone.evaluate<boolean | null>(`(() => {
        const pager = document.querySelector('.pager');
        if (pager === null) return null;
        const width = document.documentElement.clientWidth;
        return [...pager.children].every((child) => {
          const box = child.getBoundingClientRect();
          return box.left >= 0 && box.right <= width && box.width > 0;
        });
      })()`);
      if (pager !== null) assert.ok(pager, `${route}: every part of the pager is on screen`);
      if (route === 'clients') {
        await phone.click('tr[data-client="a-rather-long-client-identifier-of-a-sensor-in-hall-7"]');
        await phone.waitForSelector('#client-detail:not([hidden]) dd');
        await fits('clients with the detail open');
        await screenshot('phone-clients', phone);
      }
      if (route === 'retained') await screenshot('phone-retained', phone);
    }
    await phone.close();
  });
});
