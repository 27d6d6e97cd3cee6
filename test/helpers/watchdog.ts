/**
 * Loaded into every test file's process (`node --import ./test/helpers/watchdog.ts --test …`): a
 * test file can fail, but it can never hang the suite.
 *
 * - A test still running after TEST_LIMIT_MS ends its file with a line naming it.
 * - A file still running FILE_LIMIT_MS after it started ends the same way.
 * - A file whose tests are over but whose process stays alive (a client, server, timer or child
 *   process left open) ends GRACE_MS after its last `after` hook started, naming what is still open.
 *
 * Before such an exit, every process the file started (brokers, mosquitto, redis-server, Chromium)
 * is killed, so nothing outlives the file and holds the runner's pipes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { after, afterEach, beforeEach } from 'node:test';

const TEST_LIMIT_MS = Number(process.env['STARLING_TEST_TIMEOUT_MS'] ?? 180_000);
const FILE_LIMIT_MS = Number(process.env['STARLING_TEST_FILE_TIMEOUT_MS'] ?? 600_000);
const GRACE_MS = 20_000;

/** The test runner's parent process runs this module too: only a test file's own process is watched. */
const inTestFile = process.env['NODE_TEST_CONTEXT']?.startsWith('child') === true;

if (inTestFile) {
  const file = process.argv[1] ?? 'this test file';
  const fileTimer = setTimeout(() => abort(`${file}: still running after ${FILE_LIMIT_MS / 1000} s`), FILE_LIMIT_MS);
  fileTimer.unref();

  const running = new Map<object, NodeJS.Timeout>();
  beforeEach((t) => {
    const timer = setTimeout(() => abort(`test "${t.name}" (${file}) still running after ${TEST_LIMIT_MS / 1000} s`), TEST_LIMIT_MS);
    timer.unref();
    running.set(t, timer);
  });
  afterEach((t) => {
    clearTimeout(running.get(t));
    running.delete(t);
  });
  after(() => {
    // Unreferenced: when nothing else keeps the process alive it exits at once and this never fires.
    const timer = setTimeout(() => abort(`${file}: its tests are over but the process is still alive ${GRACE_MS / 1000} s later`), GRACE_MS);
    timer.unref();
  });
}

/** Reports, kills the processes this file started, and ends the file as failed. */
function abort(why: string): void {
  const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
  process.stderr.write(`# watchdog: ${why}; still open: ${open.join(', ') || 'nothing'}\n`);
  killDescendants(process.pid);
  process.exit(1);
}

/** SIGKILLs every descendant of `pid` (Linux: read from /proc; elsewhere nothing is done). */
function killDescendants(pid: number): void {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid …": comm may hold spaces or parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid);
      if (list === undefined) children.set(ppid, [Number(entry)]);
      else list.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const child = stack.pop() as number;
    stack.push(...(children.get(child) ?? []));
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
