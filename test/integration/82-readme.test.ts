/**
 * The README's commands do what it says. The blocks marked
 * `<!-- test/integration/82-readme.test.ts runs this block -->` are run line by line, as written but
 * for three changes that keep a test off the user's machine state: `npm start --` runs the built
 * command directly (`node dist/cli/main.js`, which is what the start script runs), in a temporary
 * folder instead of the checkout; a broker gets port 0 for 1883, a temporary data directory and no
 * HTTP server; a prompt gets its answer on standard input. Every other shell line of the README that
 * runs `npm start -- …` has its flags checked by the command's own parser.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const MARKER = '<!-- test/integration/82-readme.test.ts runs this block -->';
const PASSWORD = 'correct horse battery staple';
const WAIT_MS = 15_000;

const running = new Set<ChildProcess>();

interface Run {
  child: ChildProcess;
  output: string;
  code: number | null;
  exited: Promise<number | null>;
}

/** The command lines of every ```sh block, comments and blank lines left out. */
function shellLines(text: string): string[] {
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) =>
    m[1]!
      .split('\n')
      .map((line) => line.replace(/\s+#.*$/, '').trim())
      .filter((line) => line !== '' && !line.startsWith('#')),
  );
}

/** The blocks the marker names, in order. */
function markedBlocks(): string[][] {
  const blocks = README.split(MARKER).slice(1).map((rest) => shellLines(/^\s*(```sh\n[\s\S]*?```)/.exec(rest)?.[1] ?? ''));
  assert.ok(blocks.length > 0 && blocks.every((b) => b.length > 0), 'README has marked shell blocks');
  return blocks;
}

/** `npm start -- ARGS` → ARGS (the start script is `node dist/cli/main.js`). */
function startArgs(line: string): string[] {
  const match = /^npm start -- (.*)$/.exec(line);
  assert.ok(match, `not an "npm start --" line: ${line}`);
  return match[1]!.split(/\s+/);
}

function start(args: string[], cwd: string, input?: string): Run {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  const run: Run = { child, output: '', code: null, exited: Promise.resolve(null) };
  const collect = (chunk: Buffer): void => {
    run.output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  child.stdin?.end(input);
  run.exited = new Promise((resolve) => {
    child.once('close', (code) => {
      running.delete(child);
      run.code = code;
      resolve(code);
    });
  });
  return run;
}

async function finish(args: string[], cwd: string, input?: string): Promise<Run> {
  const run = start(args, cwd, input);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), WAIT_MS);
  await run.exited;
  clearTimeout(timer);
  return run;
}

/** Starts a broker line of the README: port 1883 becomes 0, plus a temporary data directory, no HTTP. */
async function startBroker(line: string, cwd: string): Promise<{ run: Run; port: number; host: string }> {
  const args = startArgs(line).map((arg, i, all) => (all[i - 1] === '--port' && arg === '1883' ? '0' : arg));
  const run = start([...args, '--data-dir', tempDir('starling-readme-data-'), '--no-http'], cwd);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const match = /"listener":"tcp","host":"([^"]+)","port":(\d+)/.exec(run.output);
    if (match !== null) return { run, host: match[1]!, port: Number(match[2]) };
    if (run.code !== null || Date.now() > deadline) throw new Error(`"${line}" did not start a broker:\n${run.output}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function stop(run: Run): Promise<void> {
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0, run.output);
}

function connect(port: number, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: WAIT_MS, ...options });
}

describe('82 the README\'s commands', () => {
  after(() => {
    for (const child of running) child.kill('SIGKILL');
  });

  test('"accept other machines": a password file made with starling passwd, then a broker on 0.0.0.0 that lets in only that user', async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first (npm test does)`);
    const [block] = markedBlocks();
    assert.equal(block?.length, 2, String(block));
    const [passwd, broker] = block as [string, string];
    const cwd = tempDir('starling-readme-');
    const made = await finish(startArgs(passwd), cwd, `${PASSWORD}\n`);
    assert.equal(made.code, 0, made.output);
    assert.ok(existsSync(join(cwd, 'passwd')), 'the password file is where the next line looks for it');
    const { run, host, port } = await startBroker(broker, cwd);
    assert.equal(host, '0.0.0.0');
    await assert.rejects(connect(port), (error: unknown) => (error as { code?: unknown }).code === 5, 'anonymous clients are refused');
    const alice = await connect(port, { username: 'alice', password: PASSWORD });
    await alice.endAsync();
    await stop(run);
  });

  test('without authentication --host 0.0.0.0 refuses to start and says why; --allow-anonymous lets anyone in', async () => {
    const refused = await finish(['--host', '0.0.0.0', '--port', '0', '--no-http', '--data-dir', tempDir('starling-readme-data-')], tempDir('starling-readme-'));
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /refusing to listen on 0\.0\.0\.0 .*no authentication is configured.*--allow-anonymous/);
    const [, block] = markedBlocks();
    assert.equal(block?.length, 1, String(block));
    const { run, host, port } = await startBroker(block[0]!, tempDir('starling-readme-'));
    assert.equal(host, '0.0.0.0');
    const anyone = await connect(port);
    await anyone.endAsync();
    await stop(run);
  });

  test('every "npm start -- …" line in the README uses flags the command accepts', async () => {
    const lines = shellLines(README).filter((line) => line.startsWith('npm start -- ') && !line.startsWith('npm start -- passwd'));
    assert.ok(lines.length >= 2, lines.join('\n'));
    for (const line of lines) {
      // --help after the flags: they are parsed (an unknown one fails) and nothing starts.
      const parsed = await finish([...startArgs(line), '--help'], tempDir('starling-readme-'));
      assert.equal(parsed.code, 0, `${line}\n${parsed.output}`);
    }
  });
});
