import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger, prettyLine } from '../../src/create-logger.js';

function capture(isTTY: boolean): { stream: PassThrough & { isTTY?: boolean }; text: () => string } {
  const stream: PassThrough & { isTTY?: boolean } = new PassThrough();
  stream.isTTY = isTTY;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

test('auto: pretty lines on a terminal, JSON lines (ISO time, level names) otherwise', async () => {
  const tty = capture(true);
  createLogger('info', 'auto', tty.stream).info({ port: 1883 }, 'hello');
  const pipe = capture(false);
  const json = createLogger('info', 'auto', pipe.stream);
  json.info({ port: 1883 }, 'hello');
  json.flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.match(tty.text(), /^\d\d:\d\d:\d\d\.\d{3} \S*INFO \S* ?hello {2}port=1883\n$/);
  const record = JSON.parse(pipe.text()) as Record<string, unknown>;
  assert.deepEqual([record['level'], record['msg'], record['port'], record['name']], ['info', 'hello', 1883, 'starling']);
  assert.match(String(record['time']), /^\d{4}-\d\d-\d\dT/);
});

test('pretty: strings with spaces are quoted, objects as JSON, errors by their message', () => {
  const line = prettyLine(JSON.stringify({ level: 'warn', time: '2026-12-03T10:15:02.123Z', name: 'starling', msg: 'm', a: 'two words', b: { c: 1 }, err: { message: 'boom', stack: 'x' } }));
  assert.equal(line, '10:15:02.123 WARN  m  a="two words" b={"c":1} err="boom"\n');
});
