/**
 * `starling ctl` (the built command) against a running broker's API: the first admin on loopback,
 * then sign-in (password on standard input) or the API token; users, roles, bans and admins; a user
 * added by ctl connects at once; exit codes and messages for usage errors, refusals, a viewer and an
 * unreachable broker.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { StarlingServer } from '../../src/server.js';
import { endClients, mqttConnect, refusal } from '../helpers/access.js';
import { startTestBroker } from '../helpers/broker.js';
import { STARLING_CLI } from '../helpers/child-process.js';

const TOKEN = 'ctl-test-token';
const running = new Set<ReturnType<typeof spawn>>();

/** Runs `starling ctl ARGS` with `input` on standard input; resolves with the exit code and output. */
function ctl(args: string[], input = '', env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STARLING_CLI, 'ctl', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env['PATH'], ...env } });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

describe('24 starling ctl', () => {
  let server: StarlingServer;
  let url: string;
  before(async () => {
    server = await startTestBroker({ http: { port: 0 }, auth: { allowAnonymous: false } });
    url = `http://127.0.0.1:${server.httpPort}`;
  });
  after(async () => {
    endClients();
    for (const child of running) child.kill('SIGKILL');
    await server?.close();
  });

  test('the first admin from this machine (open on loopback), then the API asks for a sign-in', async () => {
    const added = await ctl(['--url', url, 'admins', 'add', 'root', '--password', 'first admin pw']);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout.trim(), 'admin root added (administrator)');
    const refused = await ctl(['--url', url, 'users', 'list']);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /sign in .*\[401 unauthorized\] \(give --token, set STARLING_API_TOKEN, or sign in with --user NAME\)/);
  });

  test('signed in (password on standard input): roles and users; a user added by ctl connects at once with its role\'s rules', async () => {
    const sign = ['--url', url, '--user', 'root'];
    const role = await ctl([...sign, 'roles', 'add', 'sensor', '--acl', 'readwrite:sensors/%u/#', '--acl', 'deny:sensors/+/secret'], 'first admin pw\n');
    assert.equal(role.code, 0, role.stderr);
    const user = await ctl([...sign, 'users', 'add', 'probe-1', '--password', 'probe password', '--role', 'sensor'], 'first admin pw\n');
    assert.equal(user.code, 0, user.stderr);
    const client = await mqttConnect(server.port, { protocolVersion: 5, clientId: 'probe-1', username: 'probe-1', password: 'probe password' });
    await client.publishAsync('sensors/probe-1/t', '20', { qos: 1 });
    await assert.rejects(client.publishAsync('sensors/probe-1/secret', 'x', { qos: 1 }), (e: { code?: number }) => e.code === 0x87);
    const shown = await ctl([...sign, 'users', 'show', 'probe-1'], 'first admin pw\n');
    assert.equal(shown.stdout, 'user probe-1\nroles: sensor\nrules: none\n');
    const roles = await ctl([...sign, 'roles', 'show', 'sensor'], 'first admin pw\n');
    assert.match(roles.stdout, /^role sensor\nusers: probe-1\nrules:\n {2}readwrite sensors\/%u\/#\n {2}deny {6}sensors\/\+\/secret\n$/);
    const wrong = await ctl([...sign, 'users', 'list'], 'not the password\n');
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /wrong admin name or password/);
  });

  test('the API token: JSON output, bans (a banned client is refused with 0x8A), user changes and deletion', async () => {
    const env = { STARLING_API_TOKEN: TOKEN };
    const withToken = await startTestBroker({ http: { port: 0, apiToken: TOKEN } });
    try {
      const tokenUrl = `http://127.0.0.1:${withToken.httpPort}`;
      const added = await ctl(['--url', tokenUrl, 'users', 'add', 'dev', '--password', 'gadget secret'], '', env);
      assert.equal(added.code, 0, added.stderr);
      const listed = await ctl(['--url', tokenUrl, '--json', 'users', 'list'], '', env);
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(JSON.parse(listed.stdout).items.map((u: { username: string }) => u.username), ['dev']);
      const set = await ctl(['--url', tokenUrl, 'users', 'set', 'dev', '--acl', 'read:a/#'], '', env);
      assert.equal(set.code, 0, set.stderr);
      const ban = await ctl(['--url', tokenUrl, 'bans', 'add', '--client-id', 'bad-box', '--for', '2h', '--reason', 'tampering'], '', env);
      assert.equal(ban.code, 0, ban.stderr);
      const id = /^ban (\w+) on client id bad-box until \d{4}-/.exec(ban.stdout)?.[1];
      assert.ok(id !== undefined, ban.stdout);
      assert.equal(await refusal(withToken.port, { protocolVersion: 5, clientId: 'bad-box' }), 0x8a);
      assert.match((await ctl(['--url', tokenUrl, 'bans', 'list'], '', env)).stdout, new RegExp(`^ID +BANNED +UNTIL +REASON\\n${id} +client id bad-box +\\S+ +tampering\\n$`));
      assert.equal((await ctl(['--url', tokenUrl, 'bans', 'delete', id], '', env)).code, 0);
      assert.ok((await mqttConnect(withToken.port, { protocolVersion: 5, clientId: 'bad-box' })).connected);
      assert.equal((await ctl(['--url', tokenUrl, 'users', 'delete', 'dev'], '', env)).code, 0);
      const missing = await ctl(['--url', tokenUrl, 'users', 'show', 'dev'], '', env);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /no user "dev" \[404 not-found\]/);
    } finally {
      await withToken.close();
    }
  });

  test('mistakes: usage errors exit 1, refusals 2 with the broker\'s reason, a viewer 3, an unreachable broker 4', async () => {
    const sign = ['--url', url, '--user', 'root'];
    assert.equal((await ctl([...sign, 'admins', 'add', 'watcher', '--role', 'viewer', '--password', 'watch only pw'], 'first admin pw\n')).code, 0);
    const usage = await ctl(['--url', url, 'users', 'frobnicate']);
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /unknown command "users frobnicate"/);
    const badRule = await ctl([...sign, 'users', 'add', 'x', '--password', 'long enough pw', '--acl', 'all:#'], 'first admin pw\n');
    assert.equal(badRule.code, 1);
    assert.match(badRule.stderr, /expected ACCESS:FILTER/);
    const weak = await ctl([...sign, 'users', 'add', 'x', '--password', 'short'], 'first admin pw\n');
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /password refused: password is shorter than 8 characters \[400 bad-request\]/);
    const viewer = await ctl(['--url', url, '--user', 'watcher', 'bans', 'add', '--address', '10.0.0.0/8'], 'watch only pw\n');
    assert.equal(viewer.code, 3);
    assert.match(viewer.stderr, /viewer/);
    const readable = await ctl(['--url', url, '--user', 'watcher', 'admins', 'list'], 'watch only pw\n');
    assert.equal(readable.code, 0);
    assert.match(readable.stdout, /^ADMIN +ROLE\nroot +administrator\nwatcher +viewer\n$/);
    const away = await ctl(['--url', 'http://127.0.0.1:1', 'users', 'list']);
    assert.equal(away.code, 4);
    assert.match(away.stderr, /cannot reach the broker's API at http:\/\/127\.0\.0\.1:1/);
  });
});
