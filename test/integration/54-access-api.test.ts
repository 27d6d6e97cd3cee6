/**
 * The REST API of access control: bad input answered with a clear 4xx and nothing half-applied;
 * admins (administrator, viewer) signing in with a session cookie (HttpOnly, SameSite=Strict, own
 * origin only) or a bearer token; the shared API token still working; the first admin from the
 * environment; every change audited (who, what, when) and counted in /metrics; runtime users beside a
 * password file and ACL file, in the documented order of evaluation.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PasswordFile } from '../../src/auth/password-file.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import type { Logger } from '../../src/broker/logger.js';
import type { StarlingServer } from '../../src/server.js';
import { call, endClients, expectStatus, mqttConnect, refusal } from '../helpers/access.js';
import { startTestBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/temp-dir.js';

const TOKEN = 'shared-api-token-for-scripts';
const PASSWORD = 'correct horse battery';
const servers: StarlingServer[] = [];
const records: Record<string, unknown>[] = [];
const capture: Logger = {
  debug() {},
  info: (obj, msg) => records.push({ ...obj, msg }),
  warn: (obj, msg) => records.push({ ...obj, msg }),
  error: (obj, msg) => records.push({ ...obj, msg }),
};

async function broker(options: Parameters<typeof startTestBroker>[0] = {}): Promise<StarlingServer> {
  const server = await startTestBroker({ http: { port: 0 }, logger: capture, ...options });
  servers.push(server);
  return server;
}

function cookieOf(reply: { headers: Headers }): string {
  const header = reply.headers.get('set-cookie') ?? '';
  return header.split(';')[0]!;
}

describe('54 access control through the REST API', () => {
  let server: StarlingServer;
  let http: number;
  const asToken = { authorization: `Bearer ${TOKEN}` };
  before(async () => {
    process.env['STARLING_ADMIN_USER'] = 'root';
    process.env['STARLING_ADMIN_PASSWORD'] = 'admin secret 42';
    try {
      server = await broker({ http: { port: 0, apiToken: TOKEN } });
    } finally {
      delete process.env['STARLING_ADMIN_USER'];
      delete process.env['STARLING_ADMIN_PASSWORD'];
    }
    http = server.httpPort!;
  });
  after(async () => {
    endClients();
    for (const s of servers) await s.close();
  });

  test('the first admin comes from STARLING_ADMIN_USER / STARLING_ADMIN_PASSWORD; the API then asks for a sign-in, and the shared API token still works', async () => {
    assert.ok(records.some((r) => r['action'] === 'admin.create' && r['actor'] === 'env' && r['target'] === 'root'), 'audited as made by env');
    const access = (await expectStatus(http, 200, 'GET', '/api/access')).body;
    assert.deepEqual(access, { access: 'sign-in', authorized: false, reason: 'unauthorized', methods: ['password', 'token'] });
    const refused = await call(http, 'GET', '/api/users');
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="starling"');
    await expectStatus(http, 200, 'GET', '/api/users', undefined, asToken);
    const doc = (await expectStatus(http, 200, 'GET', '/api/openapi.json')).body;
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    for (const route of ['GET /api/users', 'POST /api/users', 'PUT /api/users/{username}', 'DELETE /api/users/{username}', 'POST /api/roles', 'PUT /api/roles/{name}', 'POST /api/bans', 'DELETE /api/bans/{id}', 'POST /api/admins', 'PUT /api/admins/{username}', 'POST /api/auth/login', 'POST /api/auth/logout']) {
      assert.ok(documented.includes(route), `${route} is in the OpenAPI document`);
    }
  });

  test('sign-in: a session cookie (HttpOnly, SameSite=Strict) for the dashboard, a bearer token for scripts; wrong passwords 401; sign-out ends them', async () => {
    assert.equal((await call(http, 'POST', '/api/auth/login', { username: 'root', password: 'wrong password' })).status, 401);
    assert.equal((await call(http, 'POST', '/api/auth/login', { username: 'nobody', password: 'wrong password' })).status, 401);
    const signed = await expectStatus(http, 200, 'POST', '/api/auth/login', { username: 'root', password: 'admin secret 42' });
    const setCookie = signed.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^starling_session=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    assert.equal(signed.body.token, undefined, 'the cookie session is never readable by the page');
    const cookie = { cookie: cookieOf(signed) };
    assert.equal((await expectStatus(http, 200, 'GET', '/api/access', undefined, cookie)).body.caller.name, 'admin:root');
    await expectStatus(http, 201, 'POST', '/api/roles', { name: 'by-cookie' }, { ...cookie, origin: `http://127.0.0.1:${http}` });
    const foreign = await call(http, 'POST', '/api/roles', { name: 'csrf' }, { ...cookie, origin: 'http://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.error, 'bad-origin');
    assert.equal((await call(http, 'POST', '/api/roles', { name: 'csrf' }, { ...cookie, 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal((await call(http, 'GET', '/api/roles/csrf', undefined, asToken)).status, 404, 'nothing was made cross-site');
    const bearer = await expectStatus(http, 200, 'POST', '/api/auth/login', { username: 'root', password: 'admin secret 42', bearer: true, ttlSeconds: 120 });
    assert.equal(bearer.headers.get('set-cookie'), null);
    const asBearer = { authorization: `Bearer ${bearer.body.token as string}` };
    await expectStatus(http, 200, 'GET', '/api/admins', undefined, asBearer);
    assert.equal((await call(http, 'GET', '/api/admins', undefined, { cookie: `starling_session=${bearer.body.token as string}` })).status, 401, 'a bearer token is not a cookie session');
    await expectStatus(http, 204, 'POST', '/api/auth/logout', undefined, asBearer);
    assert.equal((await call(http, 'GET', '/api/admins', undefined, asBearer)).status, 401, 'signed out');
    const out = await expectStatus(http, 204, 'POST', '/api/auth/logout', undefined, cookie);
    assert.match(out.headers.get('set-cookie') ?? '', /^starling_session=; .*Max-Age=0$/);
    assert.equal((await call(http, 'GET', '/api/users', undefined, cookie)).status, 401);
    assert.ok(records.some((r) => r['action'] === 'admin.sign-in-failed' && r['target'] === 'nobody'));
  });

  test('a viewer reads but cannot change anything (403 with the reason); it may change its own password; the last administrator stays', async () => {
    await expectStatus(http, 201, 'POST', '/api/admins', { username: 'eve', password: 'viewer password', role: 'viewer' }, asToken);
    const signed = await expectStatus(http, 200, 'POST', '/api/auth/login', { username: 'eve', password: 'viewer password', bearer: true });
    const asViewer = { authorization: `Bearer ${signed.body.token as string}` };
    await expectStatus(http, 200, 'GET', '/api/users', undefined, asViewer);
    for (const [method, path, body] of [['POST', '/api/users', { username: 'v', password: PASSWORD }], ['DELETE', '/api/admins/root', undefined], ['POST', '/api/bans', { clientId: 'x' }], ['POST', '/api/publish', { topic: 't' }], ['PUT', '/api/admins/eve', { role: 'administrator' }]] as const) {
      const refused = await call(http, method, path, body, asViewer);
      assert.equal(refused.status, 403, `${method} ${path}`);
      assert.match(refused.body.message, /viewer/);
    }
    assert.equal((await call(http, 'GET', '/api/users/v', undefined, asToken)).status, 404, 'nothing was written');
    await expectStatus(http, 200, 'PUT', '/api/admins/eve', { password: 'a new viewer pw' }, asViewer);
    assert.equal((await call(http, 'DELETE', '/api/admins/root', undefined, asToken)).status, 409, 'the last administrator');
    assert.equal((await call(http, 'PUT', '/api/admins/root', { role: 'viewer' }, asToken)).status, 409);
  });

  test('bad input: unknown fields, invalid topics, weak or empty passwords, unknown roles, oversized or non-JSON bodies → 4xx with a reason, nothing half-applied', async () => {
    const cases: [unknown, RegExp][] = [
      [{ username: 'u1', password: PASSWORD, colour: 'red' }, /unknown field "colour"/],
      [{ username: 'u1', password: PASSWORD, acl: [{ topic: 'a/#/b', access: 'read' }] }, /acl\[0\]\.topic .* not a valid topic filter/],
      [{ username: 'u1', password: '' }, /password is empty/],
      [{ username: 'u1', password: 'abc' }, /shorter than 8/],
      [{ username: 'u1', password: PASSWORD, roles: ['no-such-role'] }, /unknown role "no-such-role"/],
      [{ username: '', password: PASSWORD }, /user name is empty/],
    ];
    for (const [body, reason] of cases) {
      const reply = await call(http, 'POST', '/api/users', body, asToken);
      assert.equal(reply.status, 400, JSON.stringify(body));
      assert.equal(reply.body.error, 'bad-request');
      assert.match(reply.body.message, reason);
    }
    assert.equal((await expectStatus(http, 200, 'GET', '/api/users', undefined, asToken)).body.total, 0, 'no user was created');
    await expectStatus(http, 201, 'POST', '/api/users', { username: 'u1', password: PASSWORD, acl: [{ topic: 'a/#', access: 'read' }] }, asToken);
    assert.equal((await call(http, 'POST', '/api/users', { username: 'u1', password: PASSWORD }, asToken)).status, 409);
    assert.equal((await call(http, 'PUT', '/api/users/u1', { acl: [{ topic: 'ok/#', access: 'read' }, { topic: 'bad/#/x', access: 'read' }] }, asToken)).status, 400);
    assert.equal((await call(http, 'PUT', '/api/users/u1', { password: 'short', acl: [] }, asToken)).status, 400);
    assert.deepEqual((await expectStatus(http, 200, 'GET', '/api/users/u1', undefined, asToken)).body.acl, [{ topic: 'a/#', access: 'read' }], 'the user is as it was');
    assert.equal((await call(http, 'PUT', '/api/users/nobody', { acl: [] }, asToken)).status, 404);
    const big = await call(http, 'POST', '/api/roles', { name: 'big', acl: Array.from({ length: 5000 }, (_, i) => ({ topic: `t/${'x'.repeat(60)}/${i}`, access: 'read' })) }, asToken);
    assert.equal(big.status, 413);
    assert.match(big.body.message, /larger than 262144 bytes/);
    assert.equal((await call(http, 'POST', '/api/roles', 'name=x', { ...asToken, 'content-type': 'application/x-www-form-urlencoded' })).status, 415);
    assert.equal((await call(http, 'POST', '/api/roles', '{"name":', asToken)).status, 400);
    assert.equal((await call(http, 'POST', '/api/bans', { clientId: 'a', address: '10.0.0.1' }, asToken)).status, 400);
    assert.equal((await call(http, 'POST', '/api/bans', { address: '10.0.0.0/40' }, asToken)).status, 400);
    assert.equal((await expectStatus(http, 200, 'GET', '/api/roles', undefined, asToken)).body.total, 1, 'only the role made by cookie exists');
    // Deleting a role takes it from its users in the same write.
    await expectStatus(http, 201, 'POST', '/api/roles', { name: 'temp', acl: [{ topic: 'x', access: 'read' }] }, asToken);
    await expectStatus(http, 200, 'PUT', '/api/users/u1', { roles: ['temp'] }, asToken);
    await expectStatus(http, 204, 'DELETE', '/api/roles/temp', undefined, asToken);
    assert.deepEqual((await expectStatus(http, 200, 'GET', '/api/users/u1', undefined, asToken)).body.roles, []);
  });

  test('every change is audited (who, what, when; never a password) and counted in /metrics', async () => {
    const audit = records.filter((r) => r['audit'] === true);
    const created = audit.find((r) => r['action'] === 'user.create' && r['target'] === 'u1');
    assert.ok(created !== undefined);
    assert.equal(created['actor'], 'api-token');
    assert.ok(!Number.isNaN(Date.parse(created['at'] as string)));
    assert.ok(audit.some((r) => r['action'] === 'role.create' && r['actor'] === 'admin:root'));
    assert.ok(audit.some((r) => r['action'] === 'role.delete' && JSON.stringify(r['takenFrom']) === '["u1"]'));
    assert.ok(!JSON.stringify(records).includes(PASSWORD), 'no password in any log line');
    const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
    assert.match(metrics, /^starling_access_changes_total\{action="user\.create"\} 1$/m);
    assert.match(metrics, /^starling_access_changes_total\{action="admin\.sign-in"\} [3-9]$/m);
    assert.match(metrics, /^starling_access_users 1$/m);
    assert.match(metrics, /^starling_access_admins 2$/m);
  });

  test('runtime users beside a password file and an ACL file: the file keeps its users (409 for its names); a deny anywhere wins, a grant anywhere allows', async () => {
    const dir = tempDir('starling-access-files-');
    const file = new PasswordFile();
    file.entries.set('filer', await hashPassword('filer-password', 1000));
    writeFileSync(join(dir, 'passwd'), file.serialize());
    writeFileSync(join(dir, 'acl'), 'user filer\ntopic readwrite files/#\n\npattern read shared/#\npattern deny shared/locked\n');
    const withFiles = await broker({ auth: { passwordFile: join(dir, 'passwd'), aclFile: join(dir, 'acl') } });
    const port = withFiles.httpPort!;
    const conflict = await call(port, 'POST', '/api/users', { username: 'filer', password: PASSWORD });
    assert.equal(conflict.status, 409);
    assert.match(conflict.body.message, /password file/);
    await expectStatus(port, 201, 'POST', '/api/users', { username: 'runner', password: PASSWORD, acl: [{ topic: 'runtime/#', access: 'readwrite' }, { topic: 'shared/locked', access: 'write' }] });
    const runner = await mqttConnect(withFiles.port, { protocolVersion: 5, clientId: 'runner', username: 'runner', password: PASSWORD });
    const filer = await mqttConnect(withFiles.port, { protocolVersion: 5, clientId: 'filer', username: 'filer', password: 'filer-password' });
    await runner.publishAsync('runtime/a', 'x', { qos: 1 });
    await assert.rejects(runner.publishAsync('shared/locked', 'x', { qos: 1 }), (e: { code?: number }) => e.code === 0x87, 'the file\'s deny wins over a runtime grant');
    await assert.rejects(runner.publishAsync('files/a', 'x', { qos: 1 }), (e: { code?: number }) => e.code === 0x87, 'unmatched: denied (an ACL file is configured)');
    await filer.publishAsync('files/a', 'x', { qos: 1 });
    assert.equal(await refusal(withFiles.port, { protocolVersion: 5, clientId: 'x', username: 'stranger', password: PASSWORD }), 0x86, 'a name neither source knows');
    assert.equal(await refusal(withFiles.port, { protocolVersion: 5, clientId: 'y', username: 'runner', password: 'filer-password' }), 0x86);
  });
});
