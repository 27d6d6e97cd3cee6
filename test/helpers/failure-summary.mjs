// Test reporter that prints, after the whole run, one block per failed test (file, name, error), so
// the tail of a long CI log always names what failed. Used beside the TAP reporter by `npm test`.

/** @param {AsyncIterable<{type: string, data: any}>} source */
export default async function* failureSummary(source) {
  const failures = [];
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const { name, file, details, nesting } = event.data;
    const error = details?.error;
    // A suite fails when a test in it fails: name the tests, and suites only when they failed alone
    // (a hook, or the file itself).
    if (error?.failureType === 'subtestsFailed') continue;
    const cause = error?.cause ?? error;
    const message = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause ?? error);
    failures.push({ name, file, nesting, message });
  }
  if (failures.length === 0) return;
  yield `\n# ${failures.length} failed test(s):\n`;
  for (const f of failures) {
    yield `# ✖ ${f.file ?? '?'} › ${f.name}\n`;
    for (const line of f.message.split('\n').slice(0, 12)) yield `#     ${line}\n`;
  }
}
