/**
 * The operations side of the command line: --version, --help listing every subcommand,
 * check-config (exit 0 and a summary, or exit 2 and every error), the example config file,
 * STARLING_* environment overrides, and pretty or JSON log lines (--log-format, terminal or not).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { killAll, runProcess, startProcess, STARLING_CLI } from '../helpers/child-process.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = join(import.meta.dirname, '../..');
const starling = (args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof runProcess> => runProcess(process.execPath, [STARLING_CLI, ...args], { env: { ...process.env, ...env } });

describe('48 command line: version, help, check-config, environment, log format', () => {
  after(killAll);

  test('--version and -V print the version of package.json', async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const result = await starling([flag]);
      assert.equal(result.code, 0);
      assert.match(result.stdout, new RegExp(`^starling ${version.replace(/\./g, '\\.')} \\(Node\\.js `));
    }
  });

  test('--help lists every subcommand and the flags with their defaults from the schema', async () => {
    const result = await starling(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['pub', 'sub', 'bench', 'passwd', 'data inspect', 'check-config']) assert.match(result.stdout, new RegExp(`^  ${command} `, 'm'), command);
    assert.match(result.stdout, /--port PORT +MQTT TCP port \(0 picks a free one\) \(default 1883\)/);
    assert.match(result.stdout, /--log-format FORMAT .*\(auto \| pretty \| json\) \(default auto\)/);
    assert.match(result.stdout, /STARLING_LIMITS__MAX_INFLIGHT=50/);
  });

  test('check-config: the example file is valid (exit 0, a summary naming its listeners and bridge)', async () => {
    const result = await starling(['check-config', join(ROOT, 'examples/starling.jsonc')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^configuration is valid/);
    assert.match(result.stdout, /^ {2}local +mqtt +127\.0\.0\.1:1883, \[::1\]:1883$/m);
    assert.match(result.stdout, /^ {2}browser +ws +127\.0\.0\.1:8083 +path \/mqtt; at most 1000 connections$/m);
    assert.match(result.stdout, /^bridge cloud: mqtt:\/\/127\.0\.0\.1:1884/m);
  });

  test('check-config: a bad file exits 2 and lists every error, the environment and a missing file included', async () => {
    const dir = tempDir('starling-48-');
    const file = join(dir, 'bad.jsonc');
    writeFileSync(file, '{\n  // two mistakes\n  "port": "1883",\n  "listeners": [{ "protocol": "mqtts", "certFile": "nope.crt", "keyFile": "nope.key" }],\n}\n');
    const result = await starling(['check-config', file], { STARLING_LIMITS__MAX_INFLIGHT: 'lots' });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.deepEqual(result.stderr.trim().split('\n'), [
      'configuration is not valid: 2 errors',
      `  ${file}:3: port must be an integer from 0 to 65535; got "1883" (a string)`,
      '  STARLING_LIMITS__MAX_INFLIGHT (limits.maxInflight) must be an integer from 1 to 65535; got "lots" (a string)',
    ]);
    writeFileSync(file, '{ "listeners": [{ "protocol": "mqtts", "certFile": "nope.crt", "keyFile": "nope.key" }] }');
    const files = await starling(['check-config', file]);
    assert.equal(files.code, 2);
    assert.match(files.stderr, /listeners\[0\]\.certFile: cannot read "nope\.crt": no such file\n {2}listeners\[0\]\.keyFile: cannot read "nope\.key": no such file/);
  });

  test('the broker refuses a bad config with exit code 2 and every message', async () => {
    const result = await starling(['--port', 'x', '--log-level', 'loud']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^starling: 2 configuration errors:\n {2}--port must be an integer from 0 to 65535; got "x" \(a string\)\n {2}--log-level must be one of fatal/);
  });

  test('an environment variable sets a key; logs are JSON lines when stdout is not a terminal', async () => {
    const broker = startProcess(process.execPath, [STARLING_CLI, '--port', '0', '--no-http', '--store', 'memory'], { ...process.env, STARLING_LIMITS__MAX_QOS: '1', STARLING_HOSTS: '127.0.0.1' });
    const line = await broker.line(/MQTT listening on/);
    const record = JSON.parse(line) as { level: string; time: string; port: number };
    assert.equal(record.level, 'info');
    assert.match(record.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${record.port}`, { reconnectPeriod: 0, connectTimeout: 5000 });
    try {
      const [granted] = await client.subscribeAsync('x', { qos: 2 });
      assert.equal(granted?.qos, 1, 'STARLING_LIMITS__MAX_QOS=1 caps the granted QoS');
    } finally {
      await client.endAsync();
    }
    broker.child.kill('SIGTERM');
    assert.equal(await broker.exited, 0);
  });

  test('--log-format pretty writes one readable line per record: time, level, message, fields', async () => {
    const broker = startProcess(process.execPath, [STARLING_CLI, '--port', '0', '--host', '127.0.0.1', '--no-http', '--store', 'memory', '--log-format', 'pretty']);
    const line = await broker.line(/MQTT listening on/);
    assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}MQTT listening on mqtt:\/\/127\.0\.0\.1:\d+ {2}listener=tcp host=127\.0\.0\.1 port=\d+$/);
    broker.child.kill('SIGTERM');
    assert.equal(await broker.exited, 0);
    assert.ok(broker.lines.every((l) => !l.startsWith('{')), 'no JSON line');
  });
});
