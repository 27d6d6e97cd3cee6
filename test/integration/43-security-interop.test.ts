/**
 * Security interop: Debian's mosquitto_pub / mosquitto_sub with --cafile --cert --key -u -P against
 * the `starling` command (TLS with required client certificates, password file, ACL); `starling
 * passwd` plus SIGHUP adds a user without dropping connections; mosquitto reads a password file
 * written by Starling.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTestCertificates, type CertPair, type TestCertificates } from '../helpers/certs.js';
import { freePort } from '../helpers/mosquitto.js';
import { requireProgram } from '../helpers/programs.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '../..');
const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub';
const MOSQUITTO_SUB = '/usr/bin/mosquitto_sub';
const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
const MOSQUITTO = '/usr/sbin/mosquitto';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

/** Runs a command to completion (bounded). */
function run(file: string, args: string[], timeoutMs = 8000): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: timeoutMs, cwd: ROOT }, (error, stdout, stderr) => {
      children.delete(child);
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
    children.add(child);
  });
}

/** Starts mosquitto_sub with -d and resolves once it has its SUBACK; `messages` are its output lines that are not debug lines. */
async function subscribe(args: string[]): Promise<{ exited: Promise<number | null>; messages: () => string[]; lines: string[] }> {
  // Line-buffered (stdbuf): mosquitto_sub's stdout is otherwise flushed only at exit.
  const sub = start('/usr/bin/stdbuf', ['-oL', MOSQUITTO_SUB, '-d', ...args]);
  await waitForLine(sub.lines, /received SUBACK/);
  return { exited: sub.exited, lines: sub.lines, messages: () => sub.lines.filter((l) => !/^(Client |Subscribed )/.test(l)) };
}

/** Starts a long-running process and collects its output lines. */
function start(file: string, args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(file, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const lines: string[] = [];
  const collect = (chunk: Buffer): void => {
    lines.push(...chunk.toString().split('\n').filter((l) => l.length > 0));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => (children.delete(child), resolve(code))));
  return { child, lines, exited };
}

async function waitForLine(lines: string[], pattern: RegExp, timeoutMs = 8000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (let seen = 0; Date.now() < deadline; ) {
    for (; seen < lines.length; seen++) if (pattern.test(lines[seen] as string)) return lines[seen] as string;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no line matching ${pattern} within ${timeoutMs} ms; got:\n${lines.join('\n')}`);
}

const starlingCli = (args: string[]): [string, string[]] => [process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args]];

describe('mosquitto clients against Starling over mutual TLS with a password file and an ACL', () => {
  let certs: TestCertificates;
  let device: CertPair;
  let passwordFile: string;
  let tlsPort: number;
  let broker: ReturnType<typeof start>;

  const tlsArgs = (user: string, password: string, cert: CertPair | null = device): string[] => [
    '-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', certs.caFile,
    ...(cert === null ? [] : ['--cert', cert.certFile, '--key', cert.keyFile]),
    '-u', user, '-P', password,
  ];

  before(async () => {
    // A missing program fails the file with one line naming its Debian package (never a silent skip).
    for (const program of [MOSQUITTO_PUB, MOSQUITTO_SUB, MOSQUITTO_PASSWD, MOSQUITTO]) requireProgram(program);
    certs = makeTestCertificates();
    device = certs.client('device-1');
    passwordFile = join(certs.dir, 'passwd');
    const aclFile = join(certs.dir, 'acl');
    // One user written by `starling passwd`, one by `mosquitto_passwd`, in the same file.
    const [cmd, args] = starlingCli(['passwd', '-c', '-b', passwordFile, 'alice', 'alice-secret']);
    assert.equal((await run(cmd, args)).code, 0, 'starling passwd -c -b');
    assert.equal((await run(MOSQUITTO_PASSWD, ['-b', passwordFile, 'moss', 'moss-secret'])).code, 0, 'mosquitto_passwd -b');
    writeFileSync(aclFile, 'user alice\ntopic readwrite sensors/#\nuser moss\ntopic read sensors/#\nuser newbie\ntopic readwrite sensors/#\n');
    const [node, brokerArgs] = starlingCli([
      '--port', '0', '--tls-port', '0', '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile,
      '--tls-ca', certs.caFile, '--require-client-cert', '--password-file', passwordFile, '--acl-file', aclFile,
      '--data-dir', tempDir('starling-43-'),
    ]);
    broker = start(node, brokerArgs);
    const line = await waitForLine(broker.lines, /MQTT over TLS listening on mqtts:\/\/127\.0\.0\.1:(\d+)/);
    tlsPort = Number(/mqtts:\/\/127\.0\.0\.1:(\d+)/.exec(line)?.[1]);
  });

  after(async () => {
    for (const child of children) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    await broker?.exited;
    certs?.cleanup();
  });

  test('mosquitto_sub and mosquitto_pub with --cafile --cert --key -u -P exchange a message (3.1.1 and 5.0)', async () => {
    for (const version of ['mqttv311', 'mqttv5']) {
      const sub = await subscribe([...tlsArgs('moss', 'moss-secret'), '-V', version, '-t', 'sensors/#', '-C', '1', '-W', '8', '-v']);
      const pub = await run(MOSQUITTO_PUB, [...tlsArgs('alice', 'alice-secret'), '-V', version, '-t', 'sensors/temp', '-m', `21.5-${version}`, '-q', '1']);
      assert.equal(pub.code, 0, `mosquitto_pub: ${pub.stderr}`);
      assert.equal(await sub.exited, 0, `mosquitto_sub: ${sub.lines.join('\n')}`);
      assert.deepEqual(sub.messages(), [`sensors/temp 21.5-${version}`]);
    }
  });

  test('a wrong password is refused; no client certificate is refused; a read-only user cannot publish', async () => {
    const wrong = await run(MOSQUITTO_PUB, [...tlsArgs('alice', 'nope'), '-t', 'sensors/x', '-m', 'x']);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /bad user ?name or password|not authori[sz]ed/i);
    const noCert = await run(MOSQUITTO_PUB, [...tlsArgs('alice', 'alice-secret', null), '-t', 'sensors/x', '-m', 'x']);
    assert.notEqual(noCert.code, 0, 'no client certificate');

    const sub = await subscribe([...tlsArgs('alice', 'alice-secret'), '-t', 'sensors/#', '-C', '1', '-W', '3', '-v']);
    await run(MOSQUITTO_PUB, [...tlsArgs('moss', 'moss-secret'), '-t', 'sensors/forged', '-m', 'forged', '-q', '1']);
    await sub.exited;
    assert.deepEqual(sub.messages().filter((l) => l.startsWith('sensors/')), [], 'the read-only user’s message was dropped');
  });

  test('starling passwd + SIGHUP: a new user works at once and an open subscription survives the reload', async () => {
    const sub = await subscribe([...tlsArgs('moss', 'moss-secret'), '-t', 'sensors/#', '-C', '2', '-W', '10', '-v']);
    assert.equal((await run(MOSQUITTO_PUB, [...tlsArgs('alice', 'alice-secret'), '-t', 'sensors/a', '-m', 'before', '-q', '1'])).code, 0);
    const refused = await run(MOSQUITTO_PUB, [...tlsArgs('newbie', 'fresh'), '-t', 'sensors/b', '-m', 'x', '-q', '1']);
    assert.notEqual(refused.code, 0, 'newbie is not in the file yet');

    const [cmd, args] = starlingCli(['passwd', '-b', passwordFile, 'newbie', 'fresh']);
    assert.equal((await run(cmd, args)).code, 0);
    process.kill(broker.child.pid as number, 'SIGHUP');
    await waitForLine(broker.lines, /password file reloaded/);
    const ok = await run(MOSQUITTO_PUB, [...tlsArgs('newbie', 'fresh'), '-t', 'sensors/b', '-m', 'after', '-q', '1']);
    assert.equal(ok.code, 0, `newbie after SIGHUP: ${ok.stderr}`);
    assert.equal(await sub.exited, 0);
    assert.deepEqual(sub.messages(), ['sensors/a before', 'sensors/b after'], 'the subscription opened before SIGHUP got both messages');
  });

  test('mosquitto reads a password file written by starling passwd', async () => {
    const file = join(certs.dir, 'for-mosquitto');
    const [cmd, args] = starlingCli(['passwd', '-c', '-b', file, 'starling-user', 's3cret']);
    assert.equal((await run(cmd, args)).code, 0);
    chmodSync(certs.dir, 0o755);
    chmodSync(file, 0o644);
    const port = await freePort();
    const config = join(certs.dir, 'mosquitto.conf');
    writeFileSync(config, `${process.getuid?.() === 0 ? 'user root\n' : ''}listener ${port} 127.0.0.1\npassword_file ${file}\nallow_anonymous false\nlog_dest stderr\n`);
    const mosquitto = start(MOSQUITTO, ['-c', config]);
    await waitForLine(mosquitto.lines, /mosquitto version .* running|Opening ipv4 listen socket/);
    const ok = await run(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(port), '-u', 'starling-user', '-P', 's3cret', '-t', 't', '-m', 'm']);
    const bad = await run(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(port), '-u', 'starling-user', '-P', 'wrong', '-t', 't', '-m', 'm']);
    process.kill(mosquitto.child.pid as number, 'SIGKILL');
    await mosquitto.exited;
    assert.equal(ok.code, 0, `mosquitto accepted the Starling hash: ${ok.stderr}`);
    assert.notEqual(bad.code, 0);
  });
});
