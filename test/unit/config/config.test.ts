import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyConfigObject, ConfigError, DEFAULT_CONFIG, loadConfig } from '../../../src/config/config.js';

test('defaults: port 1883, loopback only, info logs', () => {
  const result = loadConfig([]);
  assert.equal(result.help, false);
  if (result.help) return;
  assert.equal(result.config.port, 1883);
  assert.deepEqual(result.config.hosts, []);
  assert.equal(result.config.logLevel, 'info');
});

test('flags override defaults; --host repeats', () => {
  const result = loadConfig(['--host', '0.0.0.0', '--host', '::', '--port', '1884', '--log-level', 'debug']);
  assert.ok(!result.help);
  if (result.help) return;
  assert.deepEqual(result.config.hosts, ['0.0.0.0', '::']);
  assert.equal(result.config.port, 1884);
  assert.equal(result.config.logLevel, 'debug');
});

test('config object: limits merge over defaults', () => {
  const config = applyConfigObject(DEFAULT_CONFIG, { port: 2000, limits: { maxInflight: 5 } }, 'test');
  assert.equal(config.port, 2000);
  assert.equal(config.limits.maxInflight, 5);
  assert.equal(config.limits.maxQueuedMessages, DEFAULT_CONFIG.limits.maxQueuedMessages);
  assert.equal(DEFAULT_CONFIG.limits.maxInflight, 100, 'defaults are not mutated');
});

test('config object: bad values are refused with the key named', () => {
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, { port: 70000 }, 'f'), (e: unknown) => e instanceof ConfigError && /port/.test(e.message));
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, { limits: { maxQoS: 3 } }, 'f'), /limits\.maxQoS/);
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, { limits: { bogus: 1 } }, 'f'), /unknown key "limits\.bogus"/);
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, { logLevel: 'loud' }, 'f'), /logLevel/);
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, [], 'f'), /must be an object/);
  assert.throws(() => loadConfig(['--port', 'abc']), ConfigError);
});

test('cluster: --redis turns cluster mode on, --node-id names the node; the config file has the same keys', () => {
  const result = loadConfig(['--redis', 'redis://127.0.0.1:6379', '--node-id', 'node-1']);
  assert.equal(result.help, false);
  if (result.help) return;
  assert.deepEqual(result.config.cluster, { redis: 'redis://127.0.0.1:6379', nodeId: 'node-1' });
  const fromFile = applyConfigObject(DEFAULT_CONFIG, { cluster: { redis: 'rediss://user:pw@redis.example:6380/2', nodeId: 'a.b_c:1-2', prefix: 'prod' } }, 'test.json');
  assert.deepEqual(fromFile.cluster, { redis: 'rediss://user:pw@redis.example:6380/2', nodeId: 'a.b_c:1-2', prefix: 'prod' });
  assert.equal(loadConfig([]).help === false && (loadConfig([]) as { config: { cluster?: unknown } }).config.cluster, undefined, 'no cluster by default');
});

test('cluster: bad values are refused with the flag or key named', () => {
  assert.throws(() => loadConfig(['--redis', 'http://x']), (e: unknown) => e instanceof ConfigError && /--redis/.test(e.message));
  assert.throws(() => loadConfig(['--node-id', 'n1']), (e: unknown) => e instanceof ConfigError && /--node-id needs --redis/.test(e.message));
  assert.throws(() => loadConfig(['--redis', 'redis://h:1', '--node-id', 'bad id']), (e: unknown) => e instanceof ConfigError && /--node-id/.test(e.message));
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, { cluster: { nodeId: 'x' } }, 'f.json'), (e: unknown) => e instanceof ConfigError && /f\.json: cluster\.redis is required/.test(e.message));
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, { cluster: { redis: 'redis://h:1', nodes: 3 } }, 'f.json'), (e: unknown) => e instanceof ConfigError && /unknown key "cluster\.nodes"/.test(e.message));
});
