/**
 * Keeps docs/conformance.md true.
 *
 * The statement list is test/fixtures/mqtt-311-statements.json (every numbered normative statement of
 * MQTT 3.1.1, Appendix B). The document must give each of them exactly one row, with a status; a row
 * that says `tested` must name test files and test names that exist, and one of those names must cite
 * the statement as `[MQTT-x.x.x-y]`. Citing a statement in a comment does not count.
 *
 * Test names are collected as node:test reports them, not by reading the source: the test files are
 * imported in a child process in which `node:test` is replaced by a recorder, so `describe` bodies run
 * (building data-driven names such as `[${c.spec}] ${c.name}`) while hooks and test bodies do not.
 * Skipped and todo tests prove nothing and are left out. Subtests created inside a test body
 * (`t.test(...)`) are not seen: cite statements in names registered with test()/it().
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOC = 'docs/conformance.md';
const STATEMENTS = 'test/fixtures/mqtt-311-statements.json';
const SELF = 'test/unit/conformance-doc.test.ts';

const STATUSES = ['tested', 'client-only', 'not applicable', 'gap'] as const;
type Status = (typeof STATUSES)[number];
const TARGETS = ['server', 'client', 'both'] as const;
type Target = (typeof TARGETS)[number];

interface Statement {
  id: string;
  summary: string;
  target: Target;
}

/** A test as node:test would report it. */
interface TestName {
  /** Path relative to the repository root, with forward slashes. */
  file: string;
  /** Names of the enclosing describe() blocks, outermost first. */
  suites: string[];
  name: string;
  skipped: boolean;
}

/** One statement row of a mapping table in the document. */
interface Row {
  line: number;
  id: string;
  summary: string;
  target: string;
  status: string;
  /** Test file (repository-relative) to the test names the row names in it. */
  evidence: Map<string, string[]>;
}

const ID = /^MQTT-\d+\.\d+\.\d+-\d+$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTarget(value: unknown): value is Target {
  return typeof value === 'string' && (TARGETS as readonly string[]).includes(value);
}

function isStatus(value: string): value is Status {
  return (STATUSES as readonly string[]).includes(value);
}

function loadStatements(): Statement[] {
  const raw: unknown = JSON.parse(readFileSync(path.join(ROOT, STATEMENTS), 'utf8'));
  assert.ok(Array.isArray(raw), `${STATEMENTS} must hold an array`);
  return raw.map((entry: unknown, i): Statement => {
    assert.ok(isRecord(entry), `${STATEMENTS}[${i}] must be an object`);
    const { id, summary, target } = entry;
    assert.ok(typeof id === 'string' && ID.test(id), `${STATEMENTS}[${i}].id must look like MQTT-1.2.3-4`);
    assert.ok(typeof summary === 'string' && summary.length > 0, `${id} needs a summary`);
    assert.ok(isTarget(target), `${id}: target must be one of ${TARGETS.join(', ')}`);
    return { id, summary, target };
  });
}

/** Every *.test.ts under test/, repository-relative, sorted. */
function testFiles(dir = 'test'): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...testFiles(rel));
    else if (entry.name.endsWith('.test.ts')) out.push(rel);
  }
  return out.sort();
}

/** The `node:test` stand-in: records names, runs describe bodies, never runs hooks or tests. */
const RECORDER = `
const names = globalThis.__conformanceTestNames;
const suites = [];
function parse(args) {
  let name = '';
  let options = {};
  let fn;
  for (const a of args) {
    if (typeof a === 'string') name = a;
    else if (typeof a === 'function') fn = a;
    else if (a !== null && typeof a === 'object') options = a;
  }
  if (name === '' && fn !== undefined) name = fn.name;
  return { name, skipped: Boolean(options.skip) || Boolean(options.todo), fn };
}
function variants(make) {
  const f = make(false);
  f.skip = make(true);
  f.todo = make(true);
  f.only = make(false);
  return f;
}
const inSkipped = () => suites.some((s) => s.skipped);
export const describe = variants((forced) => (...args) => {
  const { name, skipped, fn } = parse(args);
  suites.push({ name, skipped: forced || skipped });
  try {
    if (fn !== undefined) fn({ name, signal: new AbortController().signal, diagnostic() {} });
  } finally {
    suites.pop();
  }
  return Promise.resolve();
});
export const test = variants((forced) => (...args) => {
  const { name, skipped } = parse(args);
  names.push({ file: globalThis.__conformanceTestFile, suites: suites.map((s) => s.name), name, skipped: forced || skipped || inSkipped() });
  return Promise.resolve();
});
export const it = test;
export const suite = describe;
export const skip = test.skip;
export const todo = test.todo;
export const only = test.only;
const noop = () => {};
export const before = noop;
export const after = noop;
export const beforeEach = noop;
export const afterEach = noop;
export const run = noop;
export const mock = new Proxy({}, { get: () => noop });
export const snapshot = new Proxy({}, { get: () => noop });
export default test;
`;

/** Module hooks that hand the recorder to every importer of node:test. */
const HOOKS = `
const RECORDER_URL = ${JSON.stringify(`data:text/javascript,${encodeURIComponent(RECORDER)}`)};
export async function resolve(specifier, context, next) {
  if (specifier === 'node:test' || specifier === 'test') return { url: RECORDER_URL, shortCircuit: true };
  return next(specifier, context);
}
`;

/** Runs in the child process: imports each file with the recorder in place and prints the names. */
const COLLECTOR = `
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
globalThis.__conformanceTestNames = [];
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});
for (const file of JSON.parse(process.env.CONFORMANCE_TEST_FILES)) {
  globalThis.__conformanceTestFile = file;
  await import(pathToFileURL(file).href);
}
process.stdout.write(JSON.stringify(globalThis.__conformanceTestNames));
process.exit(0);
`;

/**
 * The environment for the collector: without STARLING_* variables, because some test names embed
 * settings read from them (the fuzz seed and run count of 13-malformed) and the document cites the
 * names of the default run; and without the test runner's own NODE_TEST_CONTEXT.
 */
function collectorEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('STARLING_') && key !== 'NODE_TEST_CONTEXT'));
}

function collectTestNames(files: string[]): TestName[] {
  const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', COLLECTOR], {
    cwd: ROOT,
    env: { ...collectorEnv(process.env), CONFORMANCE_TEST_FILES: JSON.stringify(files) },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 60_000,
  });
  const raw: unknown = JSON.parse(stdout);
  assert.ok(Array.isArray(raw), 'the collector prints an array');
  return raw.map((entry: unknown): TestName => {
    assert.ok(isRecord(entry));
    const { file, suites, name, skipped } = entry;
    assert.ok(typeof file === 'string' && typeof name === 'string' && typeof skipped === 'boolean' && Array.isArray(suites));
    return { file, suites: suites.map(String), name, skipped };
  });
}

/** Splits a Markdown table row into unescaped cells. */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

/** Reads `` `test/x.test.ts` › `name` · `name` `` groups (one per <br>) from an evidence cell. */
function parseEvidence(cell: string): Map<string, string[]> {
  const evidence = new Map<string, string[]>();
  for (const part of cell.split(/<br\s*\/?>/)) {
    const file = /^\s*`(test\/[^`]+\.test\.ts)`/.exec(part);
    if (file === null) continue;
    const rest = part.slice(file[0].length);
    const names = [...rest.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
    evidence.set(file[1] ?? '', [...(evidence.get(file[1] ?? '') ?? []), ...names]);
  }
  return evidence;
}

interface Doc {
  rows: Row[];
  gapHeadingCount: number | undefined;
  gapListIds: string[];
}

function parseDoc(text: string): Doc {
  const rows: Row[] = [];
  const gapListIds: string[] = [];
  let gapHeadingCount: number | undefined;
  let inGaps = false;
  text.split('\n').forEach((line, index) => {
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading !== null) {
      // "## Gaps (N)" opens the section; its ### subsections stay in it; the next # or ## ends it.
      const gaps = /^Gaps\s*\((\d+)\)\s*$/.exec(heading[2] ?? '');
      if (heading[1] === '##' && gaps !== null) {
        inGaps = true;
        gapHeadingCount = Number(gaps[1]);
      } else if ((heading[1] ?? '').length <= 2) {
        inGaps = false;
      }
      return;
    }
    if (inGaps) {
      const item = /^\s*[-*]\s+\*{0,2}(MQTT-[\d.]+-\d+)/.exec(line);
      if (item !== null) gapListIds.push(item[1] ?? '');
      return;
    }
    if (!/^\|\s*MQTT-/.test(line)) return;
    const [id = '', summary = '', target = '', status = '', evidence = ''] = cells(line);
    rows.push({ line: index + 1, id, summary, target, status, evidence: parseEvidence(evidence) });
  });
  return { rows, gapHeadingCount, gapListIds };
}

function citesId(name: string, id: string): boolean {
  return name.includes(`[${id}]`);
}

/**
 * MQTT 5.0 numbers its statements the same way, with other meanings ([MQTT-3.1.2-22] is a user name
 * rule in 3.1.1 and a keep-alive rule in 5.0). Tests in files named *mqtt5*, and table-driven codec
 * cases named `… v5 …`, cite 5.0 statements: they are never evidence for a 3.1.1 row.
 */
function isMqtt5Test(t: Pick<TestName, 'file' | 'name'>): boolean {
  return /mqtt5/i.test(t.file) || /\]\s+v5\s/.test(t.name);
}

void describe('docs/conformance.md', () => {
  const statements = loadStatements();
  const docPath = path.join(ROOT, DOC);
  assert.ok(existsSync(docPath), `${DOC} is missing`);
  const doc = parseDoc(readFileSync(docPath, 'utf8'));
  let names: TestName[] | undefined;
  const testNames = (): TestName[] => (names ??= collectTestNames(testFiles().filter((f) => f !== SELF)));

  void test('the statement list has ~140 distinct statements', () => {
    const ids = statements.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, 'duplicate ids in the statement list');
    assert.ok(ids.length >= 130, `only ${ids.length} statements`);
  });

  void test('every statement has exactly one row, and every row is a listed statement', () => {
    const known = new Map(statements.map((s) => [s.id, s]));
    const seen = new Map<string, number[]>();
    for (const row of doc.rows) seen.set(row.id, [...(seen.get(row.id) ?? []), row.line]);
    const missing = statements.filter((s) => !seen.has(s.id)).map((s) => s.id);
    const repeated = [...seen].filter(([, lines]) => lines.length > 1).map(([id, lines]) => `${id} (lines ${lines.join(', ')})`);
    const unknown = [...seen.keys()].filter((id) => !known.has(id));
    assert.deepEqual(missing, [], 'statements without a row');
    assert.deepEqual(repeated, [], 'statements with more than one row');
    assert.deepEqual(unknown, [], 'rows for ids not in the statement list');
  });

  void test('every row has a valid status and the summary and target of the statement list', () => {
    const known = new Map(statements.map((s) => [s.id, s]));
    for (const row of doc.rows) {
      const statement = known.get(row.id);
      if (statement === undefined) continue;
      const where = `${DOC}:${row.line} ${row.id}`;
      assert.ok(isStatus(row.status), `${where}: status "${row.status}" is not one of ${STATUSES.join(', ')}`);
      assert.equal(row.summary, statement.summary, `${where}: summary differs from ${STATEMENTS}`);
      assert.equal(row.target, statement.target, `${where}: target differs from ${STATEMENTS}`);
      if (row.status === 'client-only') assert.equal(statement.target, 'client', `${where}: client-only, but the statement binds the ${statement.target}`);
      if (row.status === 'gap') assert.notEqual(statement.target, 'client', `${where}: a gap must be a statement that binds the server`);
      if (row.status !== 'tested') assert.equal(row.evidence.size, 0, `${where}: only tested rows name tests as evidence`);
    }
  });

  void test('every tested row names existing tests, one of which cites the statement in its name', () => {
    const byFile = new Map<string, TestName[]>();
    for (const t of testNames()) if (!t.skipped) byFile.set(t.file, [...(byFile.get(t.file) ?? []), t]);
    const problems: string[] = [];
    for (const row of doc.rows.filter((r) => r.status === 'tested')) {
      const where = `${DOC}:${row.line} ${row.id}`;
      if (row.evidence.size === 0) problems.push(`${where}: tested, but names no test file and test`);
      let cited = false;
      for (const [file, wanted] of row.evidence) {
        const available = byFile.get(file);
        if (available === undefined) {
          problems.push(`${where}: ${file} has no (unskipped) tests`);
          continue;
        }
        if (wanted.length === 0) problems.push(`${where}: names ${file} but no test in it`);
        for (const name of wanted) {
          if (!available.some((t) => t.name === name)) problems.push(`${where}: no test named "${name}" in ${file}`);
          else if (isMqtt5Test({ file, name })) problems.push(`${where}: "${name}" in ${file} cites an MQTT 5.0 statement, not a 3.1.1 one`);
          else if (citesId(name, row.id)) cited = true;
        }
      }
      if (!cited) problems.push(`${where}: tested, but none of the tests it names has [${row.id}] in its name`);
    }
    assert.deepEqual(problems, []);
  });

  void test('the Gaps section lists exactly the gap rows, with their count', () => {
    const gapRows = doc.rows.filter((r) => r.status === 'gap').map((r) => r.id);
    assert.notEqual(doc.gapHeadingCount, undefined, 'the document needs a "## Gaps (N)" section');
    assert.equal(doc.gapHeadingCount, gapRows.length, 'the Gaps heading count is not the number of gap rows');
    assert.deepEqual([...doc.gapListIds].sort(), [...gapRows].sort(), 'the Gaps list is not the set of gap rows');
  });

  void test('statements cited by a test name but not marked tested (information only)', (t) => {
    const cited = new Set<string>();
    for (const n of testNames()) {
      if (n.skipped || isMqtt5Test(n)) continue;
      for (const m of n.name.matchAll(/\[(MQTT-\d+\.\d+\.\d+-\d+)\]/g)) cited.add(m[1] ?? '');
    }
    for (const row of doc.rows) {
      if (row.status !== 'tested' && cited.has(row.id)) {
        t.diagnostic(`${row.id} is ${row.status} in ${DOC} but a test name cites it: check whether that test proves it`);
      }
    }
  });
});
