/** docs/bridges.md: every JSON block is a configuration Starling accepts, and its Mosquitto block translates to the first one. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkBridgesConfig } from '../../../src/config/config.js';
import { translateMosquitto } from '../../../src/config/mosquitto.js';

const DOC = readFileSync(join(import.meta.dirname, '../../../docs/bridges.md'), 'utf8');
const blocks = (lang: string): string[] => [...DOC.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

test('every JSON block of docs/bridges.md is a valid bridges configuration', () => {
  const json = blocks('json');
  assert.ok(json.length >= 2);
  for (const block of json) {
    const data = JSON.parse(block) as { bridges: unknown };
    const checked = checkBridgesConfig(data.bridges);
    assert.ok(checked.length > 0);
  }
});

test("the Mosquitto block of docs/bridges.md translates to the first example (mqtts, cleanStart false)", () => {
  const conf = blocks('text').find((b) => b.startsWith('connection '));
  assert.ok(conf !== undefined);
  const { config } = translateMosquitto(conf, 'mosquitto.conf');
  const [bridge] = checkBridgesConfig(config['bridges']);
  const [first] = checkBridgesConfig((JSON.parse(blocks('json')[0]!) as { bridges: unknown }).bridges);
  assert.deepEqual(bridge, { ...first, url: 'mqtts://cloud.example.com:8883', caFile: '/etc/starling/cloud-ca.pem', cleanStart: false });
});
