/**
 * packaging/: the Dockerfile and the systemd unit, checked as far as this machine allows. Docker
 * cannot run here, so the image's command line is run directly (its paths moved into temporary
 * folders, ports 0): it refuses to start without the password file, starts with one, answers its
 * own HEALTHCHECK, and lets in only clients with credentials. The systemd unit is checked by
 * `systemd-analyze verify` and `systemd-analyze security --offline`, and its ExecStart line is run the
 * same way. What this does not prove (a real `docker build`, the unit under a running systemd) is
 * listed in docs/deployment.md.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { requireProgram } from '../helpers/programs.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');
const DOCKERFILE = readFileSync(join(ROOT, 'packaging/Dockerfile'), 'utf8');
const DOCKERIGNORE = readFileSync(join(ROOT, 'packaging/Dockerfile.dockerignore'), 'utf8');
const UNIT = readFileSync(join(ROOT, 'packaging/starling.service'), 'utf8');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const WAIT_MS = 15_000;

const running = new Set<ChildProcess>();

/** A finished or running process with what it printed. */
interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  code: number | null;
  exited: Promise<number | null>;
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  running.add(child);
  const run: Run = { child, stdout: '', stderr: '', code: null, exited: Promise.resolve(null) };
  child.stdout?.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  run.exited = new Promise((resolve) => {
    child.once('close', (code) => {
      running.delete(child);
      run.code = code;
      resolve(code);
    });
  });
  return run;
}

/** Runs to the end (killed after WAIT_MS). */
async function finish(command: string, args: string[]): Promise<Run> {
  const run = start(command, args);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), WAIT_MS);
  await run.exited;
  clearTimeout(timer);
  return run;
}

/** The broker's JSON log records so far. */
function records(run: Run): Record<string, unknown>[] {
  return run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Waits for the log record of a listener (`tcp`, `http`) and returns it. */
async function listening(run: Run, listener: string): Promise<{ host: string; port: number }> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const record = records(run).find((r) => r['listener'] === listener && typeof r['port'] === 'number');
    if (record !== undefined) return { host: String(record['host']), port: record['port'] as number };
    if (run.code !== null || Date.now() > deadline) throw new Error(`no ${listener} listener logged\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The JSON array of a Dockerfile instruction in exec form (`CMD [...]`), joined across `\` lines. */
function execForm(instruction: string, text = DOCKERFILE): string[] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  const match = new RegExp(`^${instruction}\\s+(?:--\\S+\\s+)*(?:CMD\\s+)?(\\[.*\\])\\s*$`, 'm').exec(joined);
  assert.ok(match, `no ${instruction} in exec form in packaging/Dockerfile`);
  return JSON.parse(match[1]!) as string[];
}

/** The value of a `Key=` line of the unit (the last one, as systemd reads it). */
function unitValues(key: string): string[] {
  return [...UNIT.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);
}

/** A password file with one user, made by the starling passwd command. */
async function passwordFile(dir: string): Promise<string> {
  const file = join(dir, 'passwd');
  const made = await finish(process.execPath, [CLI, 'passwd', '-c', '-b', file, 'alice', 's3cret']);
  assert.equal(made.code, 0, made.stderr);
  return file;
}

/**
 * Runs the broker with `args` (an image's CMD or a unit's ExecStart), its fixed paths moved into a
 * temporary folder and ports 0, and checks what an operator relies on.
 */
async function checkCommandLine(args: string[], paths: Record<string, string>): Promise<Run> {
  const moved = args.map((arg) => paths[arg] ?? arg);
  const broker = start(process.execPath, [CLI, ...moved, '--port', '0', '--http-port', '0']);
  const mqttListener = await listening(broker, 'tcp');
  assert.equal(mqttListener.host, '0.0.0.0', 'listens on every interface');
  const anonymous = mqtt.connectAsync(`mqtt://127.0.0.1:${mqttListener.port}`, { reconnectPeriod: 0, connectTimeout: WAIT_MS });
  await assert.rejects(anonymous, (error: unknown) => (error as { code?: unknown }).code === 5, 'an anonymous client is refused (not authorized)');
  const alice = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttListener.port}`, { username: 'alice', password: 's3cret', reconnectPeriod: 0, connectTimeout: WAIT_MS });
  await alice.endAsync();
  return broker;
}

async function stop(broker: Run): Promise<void> {
  broker.child.kill('SIGTERM');
  assert.equal(await broker.exited, 0, broker.stderr);
}

describe('81 packaging: Dockerfile and systemd unit', () => {
  after(() => {
    for (const child of running) child.kill('SIGKILL');
  });

  test('Dockerfile: multi-stage on node:20-bookworm-slim, non-root user, data volume, only files the build context admits', () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first (npm test does)`);
    const stages = [...DOCKERFILE.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gm)].map((m) => m[1]);
    assert.deepEqual(stages, ['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    assert.match(DOCKERFILE, /^COPY --from=build \/build\/dist \.\/dist$/m);
    const users = [...DOCKERFILE.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(users, ['starling'], 'runs as the starling user');
    assert.match(DOCKERFILE, /^VOLUME \["\/var\/lib\/starling"\]$/m);
    assert.deepEqual(execForm('ENTRYPOINT'), ['starling']);
    // Every local COPY source exists and passes the .dockerignore filter (an allow-list).
    const admitted = DOCKERIGNORE.split('\n').filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    const sources = [...DOCKERFILE.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    assert.ok(sources.length >= 5, `COPY sources: ${sources.join(' ')}`);
    for (const source of sources) {
      assert.ok(existsSync(join(ROOT, source)), `COPY ${source}: no such file in the repository`);
      assert.ok(admitted.includes(source.replace(/\/$/, '')), `COPY ${source}: left out of the build context by Dockerfile.dockerignore`);
    }
  });

  test('Dockerfile CMD: refuses to start without the password file; with one it listens on 0.0.0.0, answers its HEALTHCHECK and lets in only clients with credentials', async () => {
    const cmd = execForm('CMD');
    for (const flag of ['--host', '0.0.0.0', '--data-dir', '/var/lib/starling', '--password-file', '/etc/starling/passwd']) assert.ok(cmd.includes(flag), `CMD has ${flag}`);
    const dir = tempDir('starling-docker-cmd-');
    const data = tempDir('starling-docker-data-');

    const without = start(process.execPath, [CLI, ...cmd.map((arg) => ({ '/var/lib/starling': data, '/etc/starling/passwd': join(dir, 'passwd') })[arg] ?? arg), '--port', '0', '--http-port', '0']);
    const timer = setTimeout(() => without.child.kill('SIGKILL'), WAIT_MS);
    assert.notEqual(await without.exited, 0, 'starts without a password file');
    clearTimeout(timer);
    assert.match(without.stderr, /passwordFile: cannot read .*passwd/);

    const file = await passwordFile(dir);
    const broker = await checkCommandLine(cmd, { '/var/lib/starling': data, '/etc/starling/passwd': file });
    const http = await listening(broker, 'http');
    assert.equal(http.host, '0.0.0.0');
    const healthcheck = execForm('HEALTHCHECK');
    assert.equal(healthcheck[0], 'node');
    assert.match(healthcheck.join(' '), /http:\/\/127\.0\.0\.1:18083\/healthz/);
    const probe = healthcheck.map((arg) => arg.replace('127.0.0.1:18083', `127.0.0.1:${http.port}`));
    const healthy = await finish(process.execPath, probe.slice(1));
    assert.equal(healthy.code, 0, `HEALTHCHECK failed: ${healthy.stderr}`);
    await stop(broker);
    const unhealthy = await finish(process.execPath, probe.slice(1));
    assert.equal(unhealthy.code, 1, 'HEALTHCHECK fails once the broker is gone');
  });

  test('systemd unit: dedicated user, state directory, restart on failure, reload by SIGHUP', () => {
    assert.deepEqual(unitValues('User'), ['starling']);
    assert.deepEqual(unitValues('StateDirectory'), ['starling']);
    assert.deepEqual(unitValues('Restart'), ['on-failure']);
    assert.deepEqual(unitValues('ExecReload'), ['/bin/kill -HUP $MAINPID']);
    assert.deepEqual(unitValues('NoNewPrivileges'), ['yes']);
    assert.deepEqual(unitValues('ProtectSystem'), ['strict']);
    assert.deepEqual(unitValues('CapabilityBoundingSet'), ['']);
  });

  test('systemd unit: systemd-analyze verify finds nothing; security --offline rates its exposure 2.0 or lower', async () => {
    requireProgram(SYSTEMD_ANALYZE);
    const dir = tempDir('starling-unit-');
    const unit = join(dir, 'starling.service');
    copyFileSync(join(ROOT, 'packaging/starling.service'), unit);
    // verify checks that ExecStart's program exists: point it at one that does here.
    writeFileSync(unit, UNIT.replace('ExecStart=/usr/local/bin/starling ', `ExecStart=${process.execPath} `));
    const verify = await finish(SYSTEMD_ANALYZE, ['verify', unit]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warnings');
    const security = await finish(SYSTEMD_ANALYZE, ['security', '--offline=true', unit]);
    assert.equal(security.code, 0, security.stderr);
    const level = /Overall exposure level for starling\.service: (\d+\.\d+)/.exec(security.stdout);
    assert.ok(level, security.stdout);
    assert.ok(Number(level[1]) <= 2.0, `exposure ${level[1]}:\n${security.stdout}`);
  });

  test('systemd unit ExecStart: with the password file it listens on 0.0.0.0 and lets in only clients with credentials', async () => {
    const [execStart] = unitValues('ExecStart');
    assert.ok(execStart);
    const [program, ...args] = execStart.split(/\s+/);
    assert.equal(program, '/usr/local/bin/starling', 'where npm install -g puts the command');
    assert.equal(args.pop(), '$STARLING_OPTS');
    const file = await passwordFile(tempDir('starling-unit-etc-'));
    const broker = await checkCommandLine(args, { '/var/lib/starling': tempDir('starling-unit-data-'), '/etc/starling/passwd': file });
    await stop(broker);
  });
});
