/**
 * Keeps docs/conformance.md true.
 *
 * The document has two parts, each opened by a level-1 heading: `# MQTT 3.1.1 conformance`, checked
 * against test/fixtures/mqtt-311-statements.json (every numbered normative statement of MQTT 3.1.1,
 * Appendix B), and `# MQTT 5.0 conformance`, checked against test/fixtures/mqtt-5-statements.json
 * (Appendix B of MQTT 5.0). In each part every statement of its list has exactly one row, with a
 * status; a row that says `tested` must name test files and test names that exist, and one of those
 * names must cite the statement as `[MQTT-x.x.x-y]`. Citing a statement in a comment does not count.
 *
 * The two versions number their statements the same way with other meanings, so a citation counts
 * only for the version its test is about (see isMqtt5Test): a test about MQTT 5 is evidence for 5.0
 * rows only, any other test for 3.1.1 rows only.
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

/** One part of the document: one protocol version, its statement list and its level-1 heading. */
interface Part {
  version: '3.1.1' | '5.0';
  /** The part's level-1 heading, `# <heading>`. */
  heading: string;
  statements: string;
  /** Appendix B lists 141 statements for 3.1.1 and 251 for 5.0; a shorter list is a truncated one. */
  minimum: number;
}

const PARTS: readonly Part[] = [
  { version: '3.1.1', heading: 'MQTT 3.1.1 conformance', statements: 'test/fixtures/mqtt-311-statements.json', minimum: 130 },
  { version: '5.0', heading: 'MQTT 5.0 conformance', statements: 'test/fixtures/mqtt-5-statements.json', minimum: 240 },
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTarget(value: unknown): value is Target {
  return typeof value === 'string' && (TARGETS as readonly string[]).includes(value);
}

function isStatus(value: string): value is Status {
  return (STATUSES as readonly string[]).includes(value);
}

function loadStatements(STATEMENTS: string): Statement[] {
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
// A pipe is written asynchronously: exit only once everything is out (a large list was cut off).
process.stdout.write(JSON.stringify(globalThis.__conformanceTestNames), () => process.exit(0));
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

/**
 * Splits the document at its level-1 headings and parses each part named in PARTS. Lines before the
 * first such heading, or under another level-1 heading, belong to no part.
 */
function parseParts(text: string): Map<string, Doc> {
  const parts = new Map<string, Doc>();
  let current: { heading: string; lines: { line: string; index: number }[] } | undefined;
  const flush = (): void => {
    if (current !== undefined) parts.set(current.heading, parseDoc(current.lines));
  };
  text.split('\n').forEach((line, index) => {
    const top = /^#\s+(.*?)\s*$/.exec(line);
    if (top !== null) {
      flush();
      current = { heading: top[1] ?? '', lines: [] };
      return;
    }
    current?.lines.push({ line, index });
  });
  flush();
  return parts;
}

function parseDoc(lines: { line: string; index: number }[]): Doc {
  const rows: Row[] = [];
  const gapListIds: string[] = [];
  let gapHeadingCount: number | undefined;
  let inGaps = false;
  lines.forEach(({ line, index }) => {
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
 * rule in 3.1.1 and a keep-alive rule in 5.0). A test is about MQTT 5, and its citations are 5.0 ids,
 * when its file name contains `mqtt5` (test/integration/3x-mqtt5-*.test.ts), or when its own name
 * says so: the word `v5` (the codec's table-driven cases, `[MQTT-…] v5 PUBLISH …`, `v5: …`) or
 * `MQTT 5` / `MQTT5` / `MQTT v5` / `MQTT 5.0`. Such a test is evidence for 5.0 rows only; every other
 * test is evidence for 3.1.1 rows only. A test that covers both versions at once belongs to the
 * version its name or file gives, so cite in it only the statements of that version.
 */
function isMqtt5Test(t: Pick<TestName, 'file' | 'name'>): boolean {
  return /mqtt5/i.test(t.file) || /(?:^|[^\w.-])v5\b/.test(t.name) || /\bMQTT ?v?5(?:\.0)?\b/.test(t.name);
}

void describe('docs/conformance.md', () => {
  const docPath = path.join(ROOT, DOC);
  assert.ok(existsSync(docPath), `${DOC} is missing`);
  const parts = parseParts(readFileSync(docPath, 'utf8'));
  let names: TestName[] | undefined;
  const testNames = (): TestName[] => (names ??= collectTestNames(testFiles().filter((f) => f !== SELF)));

  for (const part of PARTS) {
    const statements = loadStatements(part.statements);
    const STATEMENTS = part.statements;
    const v5 = part.version === '5.0';
    const doc: Doc = parts.get(part.heading) ?? { rows: [], gapHeadingCount: undefined, gapListIds: [] };
    /** Whether a test's citations are of this part's version. */
    const ofThisVersion = (t: Pick<TestName, 'file' | 'name'>): boolean => isMqtt5Test(t) === v5;

    void describe(`MQTT ${part.version}`, () => {
      void test(`the document has a "# ${part.heading}" part`, () => {
        assert.ok(parts.has(part.heading), `${DOC} needs a level-1 heading "# ${part.heading}"`);
      });

      void test(`the statement list has at least ${part.minimum} distinct statements`, () => {
        const ids = statements.map((s) => s.id);
        assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${STATEMENTS}`);
        assert.ok(ids.length >= part.minimum, `only ${ids.length} statements in ${STATEMENTS}`);
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

      void test(`every tested row names existing tests, one of which is about MQTT ${part.version} and cites the statement in its name`, () => {
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
              else if (!ofThisVersion({ file, name })) {
                problems.push(`${where}: "${name}" in ${file} cites MQTT ${v5 ? '3.1.1' : '5.0'} statements, not ${part.version} ones`);
              } else if (citesId(name, row.id)) cited = true;
            }
          }
          if (!cited) problems.push(`${where}: tested, but none of the tests it names has [${row.id}] in its name`);
        }
        assert.deepEqual(problems, []);
      });

      void test('the Gaps section lists exactly the gap rows, with their count', () => {
        const gapRows = doc.rows.filter((r) => r.status === 'gap').map((r) => r.id);
        assert.notEqual(doc.gapHeadingCount, undefined, `the "${part.heading}" part needs a "## Gaps (N)" section`);
        assert.equal(doc.gapHeadingCount, gapRows.length, 'the Gaps heading count is not the number of gap rows');
        assert.deepEqual([...doc.gapListIds].sort(), [...gapRows].sort(), 'the Gaps list is not the set of gap rows');
      });

      void test('statements cited by a test name but not marked tested (information only)', (t) => {
        const cited = new Set<string>();
        for (const n of testNames()) {
          if (n.skipped || !ofThisVersion(n)) continue;
          for (const m of n.name.matchAll(/\[(MQTT-\d+\.\d+\.\d+-\d+)\]/g)) cited.add(m[1] ?? '');
        }
        for (const row of doc.rows) {
          if (row.status !== 'tested' && cited.has(row.id)) {
            t.diagnostic(`${row.id} is ${row.status} in the MQTT ${part.version} part of ${DOC} but a test name cites it: check whether that test proves it`);
          }
        }
      });
    });
  }
});
