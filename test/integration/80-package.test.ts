/**
 * The npm package as a user gets it: `npm pack`, install the tarball into an empty folder, run the
 * installed `starling` command (help, a broker, a pub/sub round trip through the installed `pub` and
 * `sub`), and import `starling-mqtt`, `starling-mqtt/client` and `starling-mqtt/protocol` from a plain
 * ESM script in that folder.
 *
 * The install uses the repository's locked dependency versions (a package-lock.json derived from
 * ours) and `npm ci --offline`, so it is served from the npm cache that `npm ci` filled and needs no
 * network; only when the cache lacks a tarball does it fall back to `--prefer-offline`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '../..');
const NAME = 'starling-mqtt';
const STEP_TIMEOUT_MS = 120_000;
const WAIT_MS = 20_000;

interface LockEntry {
  dev?: boolean;
  devOptional?: boolean;
  [key: string]: unknown;
}

interface Lockfile {
  packages: Record<string, LockEntry>;
}

interface PackResult {
  filename: string;
  files: { path: string }[];
}

/** What a finished command printed. */
interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

const running = new Set<ChildProcess>();

/** Starts a command; it is killed (by PID) when the file ends, whatever happened. */
function start(command: string, args: string[], cwd: string): { child: ChildProcess; output: Output; exited: Promise<Output> } {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const output: Output = { code: null, stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  const exited = new Promise<Output>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      running.delete(child);
      output.code = code;
      resolve(output);
    });
  });
  return { child, output, exited };
}

/** Runs a command to its end, killing it after `timeoutMs`. */
async function run(command: string, args: string[], cwd: string, timeoutMs = STEP_TIMEOUT_MS): Promise<Output> {
  const { child, exited } = start(command, args, cwd);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `output`'s stdout matches `pattern` (polling what arrived so far). */
async function waitForOutput(output: Output, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const match = pattern.exec(output.stdout);
    if (match !== null) return match;
    if (output.code !== null || Date.now() > deadline) {
      throw new Error(`${what}: no output matching ${pattern}\nstdout:\n${output.stdout}\nstderr:\n${output.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * package.json and package-lock.json of an empty project depending on the tarball: the lock holds our
 * locked versions of the runtime dependencies (the entries not marked dev), hoisted as in our tree.
 */
function consumerProject(tarball: string): { manifest: object; lock: object } {
  const ours = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as Lockfile;
  const spec = `file:${tarball}`;
  const packages: Record<string, unknown> = {
    '': { name: 'starling-package-check', dependencies: { [NAME]: spec } },
    [`node_modules/${NAME}`]: {
      version: ours['version'],
      resolved: spec,
      license: ours['license'],
      dependencies: ours['dependencies'],
      bin: ours['bin'],
      engines: ours['engines'],
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true || entry.devOptional === true) continue;
    packages[path] = entry;
  }
  return {
    manifest: { name: 'starling-package-check', private: true, type: 'module', dependencies: { [NAME]: spec } },
    lock: { name: 'starling-package-check', lockfileVersion: 3, requires: true, packages },
  };
}

describe('80 the npm package, packed and installed', () => {
  let project: string;
  let bin: string;
  let packed: PackResult;

  before(async () => {
    for (const built of ['dist/cli/main.js', 'dist/index.js', 'dist/dashboard/index.html']) {
      assert.ok(existsSync(join(ROOT, built)), `${built} is missing: run "npm run build" first (npm test does)`);
    }
    const packDir = tempDir('starling-pack-');
    // --ignore-scripts: `prepare` would build again; npm test has just built.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], ROOT);
    assert.equal(pack.code, 0, `npm pack failed:\n${pack.stderr}`);
    const results = JSON.parse(pack.stdout) as PackResult[];
    assert.equal(results.length, 1);
    packed = results[0]!;

    project = tempDir('starling-installed-');
    const { manifest, lock } = consumerProject(join(packDir, packed.filename));
    writeFileSync(join(project, 'package.json'), JSON.stringify(manifest, null, 2));
    writeFileSync(join(project, 'package-lock.json'), JSON.stringify(lock, null, 2));
    const flags = ['--no-audit', '--no-fund'];
    let install = await run('npm', ['ci', '--offline', ...flags], project);
    if (install.code !== 0 && /ENOTCACHED/.test(install.stderr)) {
      // A cache without some tarball (cleaned, or filled by another lockfile): fetch just what is missing.
      install = await run('npm', ['ci', '--prefer-offline', ...flags], project);
    }
    assert.equal(install.code, 0, `npm ci of the tarball failed:\n${install.stderr}`);
    bin = join(project, 'node_modules/.bin/starling');
  });

  after(() => {
    for (const child of running) child.kill('SIGKILL');
  });

  test('is named starling-mqtt and ships dist, docs, examples, the systemd unit, README and LICENSE, not the sources or tests', () => {
    assert.match(packed.filename, /^starling-mqtt-\d+\.\d+\.\d+.*\.tgz$/);
    const files = packed.files.map((f) => f.path);
    for (const expected of ['LICENSE', 'README.md', 'package.json', 'dist/cli/main.js', 'dist/index.d.ts', 'dist/dashboard/index.html', 'docs/configuration.md', 'docs/deployment.md', 'examples/http-auth-plugin.ts', 'packaging/starling.service']) {
      assert.ok(files.includes(expected), `${expected} is not in the tarball`);
    }
    const stray = files.filter((f) => /^(src|test|bench|dashboard|node_modules|\.ci)\//.test(f) || f === 'packaging/Dockerfile');
    assert.deepEqual(stray, []);
    const manifest = JSON.parse(readFileSync(join(project, 'node_modules', NAME, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(manifest['name'], NAME);
    assert.deepEqual(manifest['bin'], { starling: 'dist/cli/main.js' });
    assert.equal(manifest['license'], 'MIT');
    assert.match(readFileSync(join(project, 'node_modules', NAME, 'LICENSE'), 'utf8'), /^MIT License[\s\S]*The Starling authors/);
  });

  test('the installed starling command answers --version (the package version) and --help', async () => {
    const version = await run(bin, ['--version'], project, WAIT_MS);
    assert.equal(version.code, 0, version.stderr);
    const ours = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    assert.match(version.stdout, new RegExp(`^starling ${ours.version.replace(/\./g, '\\.')} `));
    const help = await run(bin, ['--help'], project, WAIT_MS);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: starling/);
  });

  test('the installed broker starts on port 0 with a temporary data directory; installed pub and sub make a round trip', async () => {
    const dataDir = tempDir('starling-installed-data-');
    const broker = start(bin, ['--host', '127.0.0.1', '--port', '0', '--no-http', '--data-dir', dataDir], project);
    const [, port] = await waitForOutput(broker.output, /MQTT listening on mqtt:\/\/127\.0\.0\.1:(\d+)/, 'installed broker');
    const target = ['-h', '127.0.0.1', '-p', port!];

    const retained = await run(bin, ['pub', ...target, '-t', 'package/check', '-m', 'retained hello', '-q', '1', '-r'], project, WAIT_MS);
    assert.equal(retained.code, 0, retained.stderr);
    // The retained message arrives once the subscription is in place; then a live one follows.
    const sub = start(bin, ['sub', ...target, '-t', 'package/#', '-q', '1', '-v', '-C', '2', '-W', '20'], project);
    await waitForOutput(sub.output, /package\/check retained hello\n/, 'installed sub');
    const live = await run(bin, ['pub', ...target, '-t', 'package/live', '-m', 'live hello', '-q', '1'], project, WAIT_MS);
    assert.equal(live.code, 0, live.stderr);
    const done = await sub.exited;
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(done.stdout.trim().split('\n'), ['package/check retained hello', 'package/live live hello']);

    broker.child.kill('SIGTERM');
    const stopped = await broker.exited;
    assert.equal(stopped.code, 0, stopped.stderr);
  });

  test('an ESM script in the installing project imports starling-mqtt, starling-mqtt/client and starling-mqtt/protocol; the README\'s embedding example runs', async () => {
    writeFileSync(
      join(project, 'check.mjs'),
      `import { startServer } from 'starling-mqtt';
import { connect } from 'starling-mqtt/client';
import { encodePacket } from 'starling-mqtt/protocol';

const server = await startServer({ host: '127.0.0.1', port: 0, store: 'memory', logLevel: 'silent' });
try {
  const client = await connect('mqtt://127.0.0.1:' + server.port, { clientId: 'package-check' });
  const subscription = await client.subscribe('esm/check', { qos: 1 });
  await client.publish('esm/check', 'from the installed library', { qos: 1 });
  for await (const message of subscription) {
    console.log('received ' + message.payload.toString());
    break;
  }
  await client.end();
  console.log('pingreq ' + encodePacket({ type: 'pingreq' }, 4).toString('hex'));
  try {
    await import('starling-mqtt/dist/server.js');
    console.log('deep import allowed');
  } catch (error) {
    console.log('deep import refused: ' + error.code);
  }
} finally {
  await server.close();
}
`,
    );
    const result = await run(process.execPath, ['check.mjs'], project, WAIT_MS);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), [
      'received from the installed library',
      'pingreq c000',
      'deep import refused: ERR_PACKAGE_PATH_NOT_EXPORTED',
    ]);
    // The README's embedding example, verbatim (it is plain JavaScript as well as TypeScript).
    const example = /## Embedding[\s\S]*?```ts\n([\s\S]*?)```/.exec(readFileSync(join(ROOT, 'README.md'), 'utf8'))?.[1];
    assert.ok(example?.includes("from 'starling-mqtt'"), 'the README embedding example imports starling-mqtt');
    writeFileSync(join(project, 'readme-example.mjs'), example ?? '');
    const readme = await run(process.execPath, ['readme-example.mjs'], project, WAIT_MS);
    assert.equal(readme.code, 0, readme.stderr);
    assert.match(readme.stdout, /^listening on \d+\n$/);
    for (const types of ['dist/index.d.ts', 'dist/client/index.d.ts', 'dist/protocol/index.d.ts']) {
      assert.ok(existsSync(join(project, 'node_modules', NAME, types)), `${types} (named by the exports map) is not installed`);
    }
  });
});
