import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyConfigObject, ConfigError, DEFAULT_CONFIG, loadConfig, type StarlingConfig } from '../../../src/config/config.js';
import { isLoopbackHost } from '../../../src/auth/broker-security.js';

function config(argv: string[]): { config: StarlingConfig } {
  const result = loadConfig(argv);
  if (result.help) assert.fail('unexpected help');
  return result;
}

test('security flags fill tls and auth', () => {
  const { config: c } = config([
    '--tls-port', '8884', '--tls-cert', 'c.pem', '--tls-key', 'k.pem', '--tls-ca', 'ca.pem', '--require-client-cert',
    '--tls-username-field', 'CN', '--tls-min-version', 'TLSv1.3', '--password-file', 'pw', '--acl-file', 'acl', '--allow-anonymous',
  ]);
  assert.deepEqual(c.tls, { port: 8884, certFile: 'c.pem', keyFile: 'k.pem', caFile: 'ca.pem', requireClientCert: true, usernameField: 'CN', minVersion: 'TLSv1.3' });
  assert.deepEqual(c.auth, { passwordFile: 'pw', aclFile: 'acl', allowAnonymous: true });
});

test('no security flags: no tls, no auth (anonymous on loopback only)', () => {
  const { config: c } = config([]);
  assert.equal(c.tls, undefined);
  assert.equal(c.auth, undefined);
});

test('inconsistent TLS settings are refused with a message naming what is missing', () => {
  assert.throws(() => loadConfig(['--tls-cert', 'c.pem']), (e: unknown) => e instanceof ConfigError && /certificate and a key/.test(e.message));
  assert.throws(() => loadConfig(['--tls-cert', 'c', '--tls-key', 'k', '--require-client-cert']), /CA/);
  assert.throws(() => loadConfig(['--tls-cert', 'c', '--tls-key', 'k', '--tls-min-version', 'TLSv1.0']), /TLSv1.2, TLSv1.3/);
  assert.throws(() => loadConfig(['--jwt-issuer', 'x']), /exactly one of a key file/);
});

test('config file keys tls and auth, unknown keys refused', () => {
  const c = applyConfigObject(DEFAULT_CONFIG, {
    tls: { port: 0, hosts: ['0.0.0.0'], certFile: 'c', keyFile: 'k', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
    auth: { passwordFile: 'pw', jwt: { keyFile: 'jwt.pem', issuer: 'i', algorithms: ['ES256'] }, loginBackoff: { baseDelayMs: 100 } },
  }, 'file.json');
  assert.deepEqual(c.tls?.hosts, ['0.0.0.0']);
  assert.deepEqual(c.auth?.jwt?.algorithms, ['ES256']);
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, { tls: { cert: 'x' } }, 'f'), /unknown key "tls.cert"/);
  assert.throws(() => applyConfigObject(DEFAULT_CONFIG, { auth: { allowAnonymous: 'yes' } }, 'f'), /auth.allowAnonymous must be true or false/);
});

test('loopback hosts', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '192.168.1.2', 'example.com', '10.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
});
