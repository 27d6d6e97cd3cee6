/**
 * The dashboard's access pages end to end in headless Chromium: an admin signs in (session cookie),
 * the banner says why MQTT refused the live connection and takes MQTT credentials, roles and users are
 * added (a user added here connects at once with MQTT.js), a connected client is banned from the Bans
 * page and disconnected, and a viewer sees the pages without their write controls. Any console error
 * or warning fails the test during which it happened. Screenshots: docs/images/dashboard-*.png.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type { StarlingServer } from '../../src/server.js';
import { endClients, expectStatus, mqttConnect, serverDisconnect } from '../helpers/access.js';
import { ensureDashboardBuilt, launchBrowser, screenshot, waitFor, watchPage, type TestBrowser } from '../helpers/browser.js';
import { startTestBroker } from '../helpers/broker.js';

const WAIT_MS = 8000;
const ADMIN = { username: 'ada', password: 'analytical engine' };
const VIEWER = { username: 'vera', password: 'look but not touch' };

let server: StarlingServer;
let chromium: TestBrowser;
const contexts: BrowserContext[] = [];
let page: Page;
let base: string;
const problems: string[] = [];

async function go(target: Page, route: string): Promise<void> {
  await target.click(`#nav a[data-route="${route}"]`);
  await target.waitForSelector(`#nav a[data-route="${route}"][aria-current="page"]`);
}

async function newPage(label: string): Promise<Page> {
  // A context of its own: its own cookie jar, so each admin has its own session.
  const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  contexts.push(context);
  const created = watchPage(await context.newPage(), label, problems);
  created.setDefaultTimeout(WAIT_MS);
  return created;
}

async function signIn(target: Page, who: { username: string; password: string }): Promise<void> {
  await target.goto(base);
  await target.waitForSelector('#login-admin');
  await target.fill('#login-admin', who.username);
  await target.fill('#login-admin-password', who.password);
  await target.click('#login button[type=submit]');
  await target.waitForSelector('#sign-out');
}

describe('55 dashboard: sign-in, users, roles, bans in headless Chromium', () => {
  before(async () => {
    ensureDashboardBuilt();
    // Only users managed here get into MQTT: the dashboard's own live connection needs credentials too.
    server = await startTestBroker({ http: { port: 0 }, auth: { allowAnonymous: false } });
    base = `http://127.0.0.1:${server.httpPort}/`;
    // The first admin from this machine (the API is open on loopback until one exists), and a viewer.
    await expectStatus(server.httpPort!, 201, 'POST', '/api/admins', ADMIN);
    await expectStatus(server.httpPort!, 201, 'POST', '/api/admins', { ...VIEWER, role: 'viewer' }, { authorization: `Bearer ${(await expectStatus(server.httpPort!, 200, 'POST', '/api/auth/login', { ...ADMIN, bearer: true })).body.token as string}` });
    chromium = await launchBrowser();
    page = await newPage('admin');
  });
  afterEach(() => {
    assert.deepEqual(problems.splice(0), [], 'the page reported no error or warning');
  });
  after(async () => {
    endClients();
    for (const context of contexts) await context.close().catch(() => undefined);
    await chromium?.close();
    await server?.close();
  });

  test('the sign-in form asks for an admin; a wrong password says so; signed in, the banner says why MQTT refused the live view and takes MQTT credentials', async () => {
    await page.goto(base);
    await page.waitForSelector('#login-admin');
    assert.equal(await page.$('#login-token'), null, 'no API token is set: no token field');
    await screenshot(page, 'sign-in-admin', 0.995);
    await page.fill('#login-admin', ADMIN.username);
    await page.fill('#login-admin-password', 'not the password');
    await page.click('#login button[type=submit]');
    await waitFor(page, `document.getElementById('login-reason')?.textContent === 'wrong admin name or password'`);
    // The browser logs the 401 of the refused sign-in itself: expected here, and only here.
    assert.ok(problems.splice(0).every((p) => /401 \(Unauthorized\)/.test(p)));
    await page.fill('#login-admin', ADMIN.username);
    await page.fill('#login-admin-password', ADMIN.password);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#stat-connections');
    assert.equal(await page.textContent('#who-name'), 'ada (administrator)');
    await page.waitForSelector('#live-problem:not([hidden])');
    assert.match((await page.textContent('#live-problem')) ?? '', /MQTT refused the dashboard's connection — not authorized \(CONNACK 0x87\)/);
    assert.equal(await page.textContent('#live'), 'refused');
    await screenshot(page, 'mqtt-refused');
    // An MQTT user for the dashboard itself, then its credentials in the banner.
    await expectStatus(server.httpPort!, 201, 'POST', '/api/users', { username: 'dashboard', password: 'live view secret' }, { authorization: `Bearer ${(await expectStatus(server.httpPort!, 200, 'POST', '/api/auth/login', { ...ADMIN, bearer: true })).body.token as string}` });
    await page.fill('#mqtt-user', 'dashboard');
    await page.fill('#mqtt-password', 'live view secret');
    await page.click('#mqtt-login button[type=submit]');
    await waitFor(page, `document.getElementById('live')?.textContent === 'online'`);
    assert.equal(await page.isHidden('#live-problem'), true);
  });

  test('roles and users are added from their pages; a user added here connects at once with its role\'s rules', async () => {
    await go(page, 'roles');
    await page.fill('#role-name', 'sensor');
    await page.fill('#role-rules', 'readwrite sensors/%u/#\ndeny sensors/+/secret');
    await page.click('#role-save');
    await page.waitForSelector('tr[data-role="sensor"]');
    await screenshot(page, 'roles');
    await go(page, 'users');
    await page.waitForSelector('#user-form');
    await page.fill('#user-name', 'probe-7');
    await page.fill('#user-password', 'probe seven pw');
    await page.check('#user-roles input[value="sensor"]');
    await page.fill('#user-rules', 'read commands/%u');
    await page.click('#user-save');
    await page.waitForSelector('tr[data-user="probe-7"]');
    const probe = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'probe-7', username: 'probe-7', password: 'probe seven pw' });
    await probe.publishAsync('sensors/probe-7/t', '21', { qos: 1 });
    await assert.rejects(probe.publishAsync('sensors/probe-7/secret', 'x', { qos: 1 }), (e: { code?: number }) => e.code === 0x87);
    // A weak password is refused with the broker's reason, shown in the form.
    await page.click('#user-panel button.small');
    await page.fill('#user-name', 'weakling');
    await page.fill('#user-password', 'short');
    await page.click('#user-save');
    await waitFor(page, `/shorter than 8 characters/.test(document.getElementById('user-result')?.textContent ?? '')`);
    assert.ok(problems.splice(0).every((p) => /400 \(Bad Request\)/.test(p)), 'only the browser\'s own note of the 400');
    await page.click('tr[data-user="probe-7"]');
    await waitFor(page, `document.getElementById('user-rules')?.value === 'read commands/%u'`);
    await screenshot(page, 'users');
  });

  test('banning a connected client from the Bans page disconnects it (DISCONNECT 0x98) and lists the ban', async () => {
    const victim = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'victim-7', username: 'probe-7', password: 'probe seven pw' });
    const gone = serverDisconnect(victim);
    await go(page, 'bans');
    await page.selectOption('#ban-kind', 'clientId');
    await page.fill('#ban-value', 'victim-7');
    await page.selectOption('#ban-for', '1');
    await page.fill('#ban-reason', 'tampering with the meter');
    await page.click('#ban-add');
    assert.equal(await gone, 0x98);
    await page.waitForSelector('#bans tr[data-ban]');
    assert.match((await page.textContent('#bans')) ?? '', /client id victim-7.*tampering with the meter.*admin:ada/s);
    await screenshot(page, 'bans');
  });

  test('a viewer sees the pages without their write controls, and signs out', async () => {
    const viewer = await newPage('viewer');
    await signIn(viewer, VIEWER);
    assert.equal(await viewer.textContent('#who-name'), 'vera (viewer)');
    await go(viewer, 'users');
    await viewer.waitForSelector('tr[data-user="probe-7"]');
    assert.equal(await viewer.isVisible('button[data-delete="probe-7"]'), false);
    assert.equal(await viewer.$('#user-save'), null);
    await go(viewer, 'bans');
    await viewer.waitForSelector('#bans tr[data-ban]');
    assert.equal(await viewer.$('#ban-form'), null);
    assert.equal(await viewer.$('button[data-lift]'), null);
    await viewer.click('#sign-out');
    await viewer.waitForSelector('#login-admin');
  });
});
