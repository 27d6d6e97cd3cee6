import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_BROKER_OPTIONS } from '../../../src/broker/options.js';
import { applyConfigObject, ConfigError, DEFAULT_CONFIG, loadConfig, type StarlingConfig } from '../../../src/config/config.js';
import { envLayer, envName } from '../../../src/config/env.js';
import { planListeners } from '../../../src/config/listeners.js';
import { DEFAULT_LIMITS, SCHEMA } from '../../../src/config/schema.js';
import { leaves, pathText } from '../../../src/config/setting.js';
import { tempDir } from '../../helpers/temp-dir.js';

function load(argv: string[], env: Record<string, string> = {}): StarlingConfig {
  const result = loadConfig(argv, env);
  if (result.help) assert.fail('unexpected help');
  return result.config;
}

function errorsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.errors;
    throw error;
  }
  return assert.fail('no ConfigError');
}

function file(name: string, text: string): string {
  const path = join(tempDir('starling-schema-'), name);
  writeFileSync(path, text);
  return path;
}

test('one list of defaults: the broker core and the config take theirs from the schema (maxTopicLevels 200, as Mosquitto)', () => {
  for (const [key, value] of Object.entries(DEFAULT_LIMITS)) assert.deepEqual((DEFAULT_BROKER_OPTIONS as unknown as Record<string, unknown>)[key], value, key);
  assert.equal(DEFAULT_BROKER_OPTIONS.maxTopicLevels, 200);
  assert.equal(DEFAULT_CONFIG.limits.maxTopicLevels, 200);
  assert.deepEqual(DEFAULT_CONFIG.limits, DEFAULT_LIMITS);
});

test('strict types: "1883" for a port and "5" for a limit in a file are both refused, naming key, value and what is expected', () => {
  const path = file('strict.json', '{\n  "port": "1883",\n  "limits": { "maxInflight": "5" }\n}\n');
  const errors = errorsOf(() => loadConfig(['--config', path], {}));
  assert.deepEqual(errors, [
    `${path}:2: port must be an integer from 0 to 65535; got "1883" (a string)`,
    `${path}:3: limits.maxInflight must be an integer from 1 to 65535; got "5" (a string)`,
  ]);
});

test('strings from the command line and the environment are parsed to the type of their key', () => {
  const config = load(['--port', '1884', '--allow-anonymous'], { STARLING_LIMITS__MAX_INFLIGHT: '50', STARLING_FEATURES__RETAIN_AVAILABLE: 'false', STARLING_HOSTS: '0.0.0.0,::' });
  assert.equal(config.port, 1884);
  assert.equal(config.limits.maxInflight, 50);
  assert.equal(config.features.retainAvailable, false);
  assert.deepEqual(config.hosts, ['0.0.0.0', '::']);
  assert.equal(config.auth?.allowAnonymous, true);
});

test('environment: STARLING_ + key path in UPPER_SNAKE_CASE joined by __; flags win over it, it wins over the file', () => {
  assert.equal(envName(['limits', 'maxInflight']), 'STARLING_LIMITS__MAX_INFLIGHT');
  assert.equal(envName(['http', 'apiToken']), 'STARLING_HTTP__API_TOKEN');
  const path = file('layers.jsonc', '{ "port": 1000, "logLevel": "warn", "limits": { "maxQoS": 1 } }');
  const config = load(['--config', path, '--port', '3000'], { STARLING_PORT: '2000', STARLING_LOG_LEVEL: 'debug', STARLING_LIMITS__MAX_QOS: '0' });
  assert.equal(config.port, 3000);
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.limits.maxQoS, 0);
  // Lists of objects take JSON.
  const listeners = load([], { STARLING_LISTENERS: '[{"port": 1999}]' }).listeners;
  assert.deepEqual(listeners, [{ protocol: 'mqtt', port: 1999 }]);
});

test('every leaf key of the schema can be named by an environment variable that round-trips to it', () => {
  for (const { path, setting } of leaves(SCHEMA)) {
    if (setting.kind === 'list' || setting.kind === 'record') continue;
    const name = envName(path);
    assert.match(name, /^STARLING_[A-Z0-9_]+$/, pathText(path));
    const { layer, warnings } = envLayer({ [name]: 'x' });
    assert.deepEqual(warnings, [], name);
    let at: unknown = layer?.value;
    for (const key of path) at = (at as Record<string, unknown>)[key as string];
    assert.notEqual(at, undefined, `${name} sets ${pathText(path)}`);
  }
  const value = load([], { [envName(['limits', 'maxClientIdLength'])]: '100', [envName(['sys', 'interval'])]: '0' });
  assert.equal(value.limits.maxClientIdLength, 100);
  assert.equal(value.sys.interval, 0);
});

test('a bad environment value names the variable and the key; an unknown STARLING_ variable is a warning', () => {
  assert.deepEqual(errorsOf(() => loadConfig([], { STARLING_LIMITS__MAX_INFLIGHT: 'many' })), ['STARLING_LIMITS__MAX_INFLIGHT (limits.maxInflight) must be an integer from 1 to 65535; got "many" (a string)']);
  const result = loadConfig([], { STARLING_PROT: '1' });
  assert.ok(!result.help);
  assert.match(result.warnings.join('\n'), /STARLING_PROT is not a setting/);
});

test('comments and trailing commas are allowed; a syntax error names line and column', () => {
  const good = file('ok.json', '{\n  // plain TCP\n  "port": 1885, /* block */\n  "limits": { "maxInflight": 7, },\n}\n');
  assert.equal(load(['--config', good]).limits.maxInflight, 7);
  const bad = file('bad.json', '{\n  "port": 1885\n  "logLevel": "info"\n}\n');
  assert.match(errorsOf(() => loadConfig(['--config', bad], {}))[0] ?? '', /bad\.json:3:3: not valid JSON: comma expected/);
});

test('every error is reported at once, each with its full key path', () => {
  const errors = errorsOf(() =>
    applyConfigObject(DEFAULT_CONFIG, { logLevel: 'loud', listeners: [{ port: 1 }, { protocol: 'mqtts', tls: {} }], bridges: [{ name: 'b', topics: [] }] }, 'f.json'),
  );
  assert.ok(errors.includes('f.json: logLevel must be one of fatal, error, warn, info, debug, trace, silent; got "loud" (a string)'), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('f.json: unknown key "listeners[1].tls"')), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('f.json: bridges[0].url is required')), errors.join('\n'));
});

test('listeners: several of each kind with their own settings; port/hosts then add a listener only when set', () => {
  const base = { listeners: [{ port: 1884 }, { port: 1885, host: '0.0.0.0', maxConnections: 3 }, { protocol: 'mqtts', certFile: 'c', keyFile: 'k', caFile: 'ca', requireClientCert: true, useIdentityAsUsername: true }] };
  const planned = planListeners(applyConfigObject(DEFAULT_CONFIG, base, 'f'));
  assert.deepEqual(
    planned.map((l) => [l.name, l.protocol, l.port, l.hosts, l.maxConnections, l.tls?.usernameField]),
    [
      ['mqtt:1884', 'mqtt', 1884, ['127.0.0.1', '::1'], undefined, undefined],
      ['mqtt:1885', 'mqtt', 1885, ['0.0.0.0'], 3, undefined],
      ['mqtts:8883', 'mqtts', 8883, ['127.0.0.1', '::1'], undefined, 'CN'],
    ],
  );
  const withPort = planListeners(applyConfigObject(DEFAULT_CONFIG, { ...base, port: 1999 }, 'f'));
  assert.deepEqual(withPort.map((l) => l.name), ['mqtt:1884', 'mqtt:1885', 'mqtts:8883', 'tcp']);
  assert.equal(withPort[3]?.port, 1999);
  // Without listeners: the plain listener of port/hosts, plus the tls and websocket shorthands.
  const shorthands = planListeners(load(['--port', '0', '--tls-cert', 'c', '--tls-key', 'k', '--ws-port', '0']));
  assert.deepEqual(shorthands.map((l) => [l.name, l.protocol]), [['tcp', 'mqtt'], ['tls', 'mqtts'], ['ws', 'ws']]);
});

test('listeners: settings that do not fit the protocol, and duplicate names, are refused with the listener named', () => {
  const errors = errorsOf(() =>
    applyConfigObject(DEFAULT_CONFIG, { listeners: [{ protocol: 'mqtt', certFile: 'c' }, { protocol: 'mqtts', certFile: 'c' }, { protocol: 'mqtts', certFile: 'c', keyFile: 'k', requireClientCert: true }, { protocol: 'mqtt', path: '/x' }] }, 'f'),
  );
  assert.deepEqual(errors, [
    'f: listeners[0].certFile is for TLS listeners (protocol mqtts or wss); this one is mqtt (set protocol "mqtts")',
    'f: listeners[1]: an mqtts listener needs certFile and keyFile (the server certificate and its key)',
    'f: listeners[2].requireClientCert needs caFile (the CA that signs client certificates)',
    'f: listeners[3].path is for WebSocket listeners (protocol ws or wss); this one is mqtt',
  ]);
  assert.deepEqual(errorsOf(() => applyConfigObject(DEFAULT_CONFIG, { listeners: [{ name: 'a', port: 1 }, { name: 'a', port: 2 }] }, 'f')), [
    'f: listeners[1].name: "a" is also the name of listeners[0]; listener names must be unique',
  ]);
});

test('bridges: the keys of issue 15; unknown keys, bad URLs and looping prefixes are refused naming the bridge and the key', () => {
  const bridges = [
    {
      name: 'cloud',
      url: 'mqtt://host:1883',
      clientId: 'edge-1',
      topics: [
        { pattern: 'sensors/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: 'edge-1/' },
        { pattern: 'cmd/#', direction: 'in', qos: 1, localPrefix: 'edge-1/', remotePrefix: '' },
      ],
    },
  ];
  assert.deepEqual(applyConfigObject(DEFAULT_CONFIG, { bridges }, 'f').bridges[0]?.topics[1], bridges[0]?.topics[1]);
  const bad = (bridge: Record<string, unknown>): readonly string[] => errorsOf(() => applyConfigObject(DEFAULT_CONFIG, { bridges: [{ ...bridges[0], ...bridge }] }, 'f'));
  assert.match(bad({ remote: 'x' }).join('\n'), /unknown key "bridges\[0\]\.remote"/);
  assert.match(bad({ url: 'tcp://host' }).join('\n'), /bridges\[0\] \("cloud"\)\.url must be mqtt:\/\/, mqtts:\/\/, ws:\/\/ or wss:\/\//);
  assert.match(bad({ url: 'mqtt://h', caFile: 'ca.pem' }).join('\n'), /bridges\[0\] \("cloud"\)\.caFile is only for a TLS remote/);
  const loop = bad({ topics: [{ pattern: '#', direction: 'out' }, { pattern: 'cmd/#', direction: 'in', localPrefix: 'edge/' }] });
  assert.match(loop.join('\n'), /bridges\[0\] \("cloud"\)\.topics\[0\]: a message that topics\[1\] brings in .* would loop/);
  assert.match(bad({ topics: [{ pattern: 'a/#/b' }] }).join('\n'), /topics\[0\]\.pattern: "a\/#\/b" is not a valid topic filter/);
});

test('property: any integer outside a limit range, or any string, is refused for an integer limit with its key named', () => {
  fc.assert(
    fc.property(fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 65_536 }), fc.string()), (value) => {
      const errors = errorsOf(() => applyConfigObject(DEFAULT_CONFIG, { limits: { maxInflight: value } }, 'f'));
      return errors.length === 1 && errors[0]!.startsWith('f: limits.maxInflight must be an integer from 1 to 65535; got ');
    }),
  );
});
