import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, type StarlingConfig } from '../../../src/config/config.js';
import { translateMosquitto } from '../../../src/config/mosquitto.js';
import { planListeners } from '../../../src/config/listeners.js';
import { tempDir } from '../../helpers/temp-dir.js';

function loaded(text: string, name = 'mosquitto.conf'): { config: StarlingConfig; warnings: string[] } {
  const path = join(tempDir('starling-mosq-'), name);
  writeFileSync(path, text);
  const result = loadConfig(['--config', path], {});
  if (result.help) assert.fail('help');
  return result;
}

test('listener blocks: ports, bind addresses, websockets, TLS files, client certificates, max_connections', () => {
  const { config } = loaded(
    [
      'listener 1883 127.0.0.1',
      'listener 8883',
      'cafile /etc/ca.crt',
      'certfile /etc/server.crt',
      'keyfile /etc/server.key',
      'require_certificate true',
      'use_identity_as_username true',
      'tls_version tlsv1.3',
      'max_connections 100',
      'listener 9001 ::1',
      'protocol websockets',
      'listener 9443',
      'protocol websockets',
      'certfile /etc/server.crt',
      'keyfile /etc/server.key',
      'allow_anonymous true',
    ].join('\n'),
  );
  assert.deepEqual(
    planListeners(config).map((l) => [l.name, l.protocol, l.port, l.hosts, l.tls?.requireClientCert ?? null, l.tls?.usernameField ?? null, l.tls?.minVersion ?? null, l.maxConnections ?? null]),
    [
      ['mqtt:1883', 'mqtt', 1883, ['127.0.0.1'], null, null, null, null],
      ['mqtts:8883', 'mqtts', 8883, ['0.0.0.0'], true, 'CN', 'TLSv1.3', 100],
      ['ws:9001', 'ws', 9001, ['::1'], null, null, null, null],
      ['wss:9443', 'wss', 9443, ['0.0.0.0'], false, null, null, null],
    ],
  );
  assert.equal(config.auth?.allowAnonymous, true);
});

test('globals: persistence, limits, retain_available, sys_interval; Mosquitto defaults are kept (memory store, anonymous refused once a listener is set)', () => {
  const { config } = loaded(
    [
      'persistence true',
      'persistence_location /var/lib/mosquitto/',
      'max_inflight_messages 0',
      'max_queued_messages 200',
      'message_size_limit 1000',
      'max_keepalive 300',
      'max_qos 1',
      'retain_available false',
      'sys_interval 30',
      'persistent_client_expiration 2d',
      'password_file /etc/mosquitto/passwd',
      'acl_file /etc/mosquitto/acl',
      'listener 1883',
    ].join('\n'),
  );
  assert.equal(config.store, 'embedded');
  assert.equal(config.dataDir, '/var/lib/mosquitto/');
  assert.deepEqual(
    [config.limits.maxInflight, config.limits.maxQueuedMessages, config.limits.maxPacketSize, config.limits.maxKeepAlive, config.limits.maxQoS, config.limits.maxSessionExpiry],
    [65_535, 200, 66_542, 300, 1, 172_800],
  );
  assert.equal(config.features.retainAvailable, false);
  assert.equal(config.sys.interval, 30);
  assert.deepEqual(config.auth, { passwordFile: '/etc/mosquitto/passwd', aclFile: '/etc/mosquitto/acl', allowAnonymous: false });
  // Nothing but defaults: Mosquitto's local-only mode is Starling's default listener; its store keeps nothing.
  const bare = loaded('# nothing\n').config;
  assert.deepEqual(bare.listeners, []);
  assert.equal(bare.store, 'memory');
  assert.equal(bare.auth, undefined);
});

test('per_listener_settings true: password_file, acl_file and allow_anonymous belong to the listener above them', () => {
  const { config } = loaded(['per_listener_settings true', 'listener 1883 127.0.0.1', 'allow_anonymous true', 'listener 1884', 'password_file /p', 'acl_file /a'].join('\n'));
  assert.deepEqual(
    config.listeners.map((l) => l.auth),
    [{ allowAnonymous: true }, { allowAnonymous: false, passwordFile: '/p', aclFile: '/a' }],
  );
  assert.equal(config.auth, undefined);
});

test('bridges: connection, address, topic lines with direction, qos and prefixes, and the remote session options', () => {
  const { config, warnings } = loaded(
    [
      'connection cloud',
      'address mqtt.example.com:8883',
      'bridge_cafile /etc/ca.crt',
      'bridge_certfile /etc/edge.crt',
      'bridge_keyfile /etc/edge.key',
      'remote_clientid edge-1',
      'remote_username edge',
      'remote_password s3cret',
      'keepalive_interval 30',
      'bridge_protocol_version mqttv50',
      'try_private false',
      'topic sensors/# out 1 "" edge-1/',
      'topic cmd/# in 2 edge-1/ ""',
      'topic status both',
      'notifications false',
    ].join('\n'),
  );
  assert.deepEqual(config.bridges, [
    {
      name: 'cloud',
      url: 'mqtts://mqtt.example.com:8883',
      caFile: '/etc/ca.crt',
      certFile: '/etc/edge.crt',
      keyFile: '/etc/edge.key',
      clientId: 'edge-1',
      username: 'edge',
      password: 's3cret',
      keepalive: 30,
      protocolVersion: 5,
      tryPrivate: false,
      cleanStart: false,
      topics: [
        { pattern: 'sensors/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: 'edge-1/' },
        { pattern: 'cmd/#', direction: 'in', qos: 2, localPrefix: 'edge-1/', remotePrefix: '' },
        { pattern: 'status', direction: 'both', qos: 0, localPrefix: '', remotePrefix: '' },
      ],
    },
  ]);
  assert.match(warnings.join('\n'), /mosquitto\.conf:15: bridge "cloud": notifications is not translated: .*\/metrics/);
});

test('unknown and unsupported options are listed with what to do; wrong values are errors with file and line', () => {
  const { warnings } = loaded(['log_dest syslog', 'auth_plugin /usr/lib/x.so', 'mount_point site/', 'frobnicate yes', 'listener 1883 127.0.0.1'].join('\n'));
  assert.equal(warnings.length, 4);
  assert.match(warnings[0]!, /:1: log_dest is not translated: Starling logs to standard output/);
  assert.match(warnings[1]!, /:2: auth_plugin is not translated: .*docs\/hooks\.md/);
  assert.match(warnings[2]!, /:3: mount_point is not translated: .*ACL patterns/);
  assert.match(warnings[3]!, /:4: unknown option "frobnicate": .*check its spelling/);
  assert.throws(
    () => translateMosquitto('listener abc\nmax_inflight_messages -3\nallow_anonymous maybe\naddress h:1\n', 'm.conf'),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.errors.join('\n') ===
        [
          'm.conf:1: listener must be an integer from 0 to 65535; got "abc"',
          'm.conf:2: max_inflight_messages must be an integer from 0 to 65535; got "-3"',
          'm.conf:3: allow_anonymous must be true or false; got "maybe"',
          'm.conf:4: address is a bridge option: it must follow a "connection NAME" line',
        ].join('\n'),
  );
});

test('include_dir reads the *.conf files of a directory in name order; --mosquitto-conf forces the format', () => {
  const dir = tempDir('starling-mosq-inc-');
  mkdirSync(join(dir, 'conf.d'));
  writeFileSync(join(dir, 'conf.d', 'b.conf'), 'listener 1885 127.0.0.1\n');
  writeFileSync(join(dir, 'conf.d', 'a.conf'), 'listener 1884 127.0.0.1\n');
  writeFileSync(join(dir, 'conf.d', 'notes.txt'), 'listener 1999\n');
  writeFileSync(join(dir, 'main'), `allow_anonymous true\ninclude_dir ${join(dir, 'conf.d')}\n`);
  const result = loadConfig(['--mosquitto-conf', join(dir, 'main')], {});
  if (result.help) assert.fail('help');
  assert.deepEqual(result.config.listeners.map((l) => l.port), [1884, 1885]);
});
