/**
 * Remembered credentials end to end, on the `starling` command: a password file made with
 * `starling passwd -U` from plaintext (20,000 PBKDF2 iterations), logins that fill the cache, then
 * `starling passwd` changes and deletions picked up on SIGHUP: a changed or deleted password is
 * refused at once (never served from the cache), unchanged users stay remembered.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { killAll, runProcess, startProcess, STARLING_CLI, type Started } from '../helpers/child-process.js';
import { RawClient } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const raws: RawClient[] = [];

/** CONNACK return code (3.1.1) for user / password. */
async function connack(port: number, username: string, password: string): Promise<number> {
  const client = await RawClient.connect(port);
  raws.push(client);
  const answer = await client.connectMqtt({ clientId: `${username}-${raws.length}`, protocolVersion: 4, username, password: Buffer.from(password) }, 8000);
  client.destroy();
  return answer.reasonCode;
}

const passwd = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => runProcess(process.execPath, [STARLING_CLI, 'passwd', ...args], { timeoutMs: 30_000 });

/** The JSON log record of the `n`-th line matching `pattern` (0-based). */
async function record(broker: Started, pattern: RegExp, n: number): Promise<Record<string, unknown>> {
  await broker.line(pattern);
  for (let waited = 0; broker.lines.filter((l) => pattern.test(l)).length <= n; waited++) {
    if (waited > 200) throw new Error(`no ${n + 1}th line matching ${pattern}:\n${broker.lines.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return JSON.parse(broker.lines.filter((l) => pattern.test(l))[n] as string) as Record<string, unknown>;
}

describe('remembered credentials: starling passwd -U, logins, SIGHUP after a change', () => {
  let dir: string;
  let file: string;
  let broker: Started;
  let port: number;

  before(async () => {
    dir = tempDir('starling-49-');
    file = join(dir, 'passwd');
    writeFileSync(file, '# devices\nalice:a-secret\nbob:b-secret\n\ncarol:c:with:colons\n');
    const hashed = await passwd(['-U', file]);
    assert.equal(hashed.code, 0, hashed.stderr);
    broker = startProcess(process.execPath, [STARLING_CLI, '--port', '0', '--password-file', file, '--data-dir', join(dir, 'data'), '--no-http', '--log-format', 'json'], {
      ...process.env,
      STARLING_AUTH__LOGIN_BACKOFF__BASE_DELAY_MS: '0',
    });
    const listening = JSON.parse(await broker.line(/MQTT listening on mqtt:\/\/127\.0\.0\.1/)) as { port: number };
    port = listening.port;
  });

  after(async () => {
    for (const raw of raws) raw.destroy();
    await killAll();
  });

  test('starling passwd -U hashes every plaintext line (default iterations) and refuses a file that is hashed already', async () => {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.deepEqual(lines.map((l) => l.split(':')[0]), ['alice', 'bob', 'carol']);
    for (const line of lines) assert.match(line, /^[a-z]+:\$7\$20000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    const again = await passwd(['-U', file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already has a hash/);
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 3, 'the file was not changed');
    const usage = await passwd(['-U', '-b', file]);
    assert.equal(usage.code, 2, 'usage error');
  });

  test('a changed password is refused after SIGHUP, the new one works, an unchanged user stays remembered; a deleted user is refused', async () => {
    assert.equal(await connack(port, 'alice', 'a-secret'), 0);
    assert.equal(await connack(port, 'bob', 'b-secret'), 0);
    assert.equal(await connack(port, 'carol', 'c:with:colons'), 0, 'the password is everything after the first colon');
    assert.equal(await connack(port, 'alice', 'a-secret'), 0, 'again (remembered)');
    assert.equal(await connack(port, 'alice', 'a-secreT'), 4, 'a wrong password for a remembered user');

    const changed = await passwd(['-b', file, 'alice', 'a-new']);
    assert.equal(changed.code, 0, changed.stderr);
    broker.child.kill('SIGHUP');
    const first = await record(broker, /password file reloaded/, 0);
    assert.deepEqual({ users: first.users, remembered: first.remembered }, { users: 3, remembered: 2 }, 'bob and carol kept, alice forgotten');
    assert.equal(await connack(port, 'alice', 'a-secret'), 4, 'the old password is refused');
    assert.equal(await connack(port, 'alice', 'a-new'), 0);
    assert.equal(await connack(port, 'bob', 'b-secret'), 0);

    const deleted = await passwd(['-D', file, 'bob']);
    assert.equal(deleted.code, 0, deleted.stderr);
    broker.child.kill('SIGHUP');
    const second = await record(broker, /password file reloaded/, 1);
    assert.deepEqual({ users: second.users, remembered: second.remembered }, { users: 2, remembered: 2 }, 'alice (new password) and carol');
    assert.equal(await connack(port, 'bob', 'b-secret'), 4, 'bob is gone from the file, so from the cache');
    assert.equal(await connack(port, 'alice', 'a-new'), 0);
  });
});
