import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { configurationReference } from '../../../src/config/reference.js';
import { SCHEMA } from '../../../src/config/schema.js';
import { leaves, pathText } from '../../../src/config/setting.js';

const PAGE = join(import.meta.dirname, '../../../docs/configuration.md');
const START = '<!-- reference:start -->\n';
const END = '<!-- reference:end -->';

test('docs/configuration.md holds the key reference written from the schema (STARLING_UPDATE_DOCS=1 rewrites it)', () => {
  const page = readFileSync(PAGE, 'utf8');
  const from = page.indexOf(START);
  const to = page.indexOf(END);
  assert.ok(from >= 0 && to > from, 'the page has the reference markers');
  const wanted = `${page.slice(0, from + START.length)}${configurationReference()}${page.slice(to)}`;
  if (process.env['STARLING_UPDATE_DOCS'] === '1') {
    writeFileSync(PAGE, wanted);
    return;
  }
  assert.equal(page, wanted, 'docs/configuration.md is out of date: run STARLING_UPDATE_DOCS=1 node --import tsx --test test/unit/config/reference.test.ts');
});

test('every key of the schema is documented on the page', () => {
  const page = readFileSync(PAGE, 'utf8');
  const missing = leaves(SCHEMA).map(({ path }) => pathText(path)).filter((key) => !page.includes(`\`${key}\``));
  assert.deepEqual(missing, []);
  for (const key of ['listeners[].protocol', 'listeners[].auth.passwordFile', 'bridges[].topics[].remotePrefix']) assert.ok(page.includes(`\`${key}\``), key);
});
