/** auth.http and webhooks in the configuration file and the environment: defaults shown, errors naming the file, line, key and value. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, type LoadedConfig } from '../../../src/config/config.js';
import { tempDir } from '../../helpers/temp-dir.js';

const dir = tempDir('starling-config-http-');

function fileWith(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function errorsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.errors];
    throw error;
  }
  assert.fail('the configuration was accepted');
}

test('a file with auth.http and webhooks loads; the environment overrides a key of auth.http', () => {
  const path = fileWith(
    'good.jsonc',
    `{
      "auth": { "http": { "authenticateUrl": "https://auth.example.com/mqtt", "onFailure": "ignore" } },
      "webhooks": [{ "name": "w1", "url": "http://127.0.0.1:8080/e", "events": ["message.published"], "topics": ["a/#"], "batch": { "maxEvents": 10 } }],
    }`,
  );
  const loaded = loadConfig(['--config', path], { STARLING_AUTH__HTTP__TIMEOUT_MS: '500' }) as LoadedConfig;
  assert.deepEqual(loaded.config.auth?.http, { authenticateUrl: 'https://auth.example.com/mqtt', onFailure: 'ignore', timeoutMs: 500 });
  assert.deepEqual(loaded.config.webhooks, [{ name: 'w1', url: 'http://127.0.0.1:8080/e', events: ['message.published'], topics: ['a/#'], batch: { maxEvents: 10 } }]);
  assert.deepEqual((loadConfig([], {}) as LoadedConfig).config.webhooks, []);
});

test('bad values are refused with the file, the line, the key, the value and what was expected', () => {
  const path = fileWith(
    'bad.jsonc',
    `{
  "auth": {
    "http": {
      "authenticateUrl": "ftp://auth",
      "timeoutMs": "2s",
      "onFailure": "open",
      "retries": 3
    }
  },
  "webhooks": [
    { "name": "w 1", "url": "http://x/e", "events": ["client.connected", "client.kicked"], "retry": { "maxAttempts": 0 } }
  ]
}`,
  );
  assert.deepEqual(errorsOf(() => loadConfig(['--config', path], {})), [
    `${path}:4: auth.http.authenticateUrl must be an http:// or https:// URL; got "ftp://auth" (a string)`,
    `${path}:5: auth.http.timeoutMs must be an integer from 1 to 60000; got "2s" (a string)`,
    `${path}:6: auth.http.onFailure must be one of deny, allow, ignore; got "open" (a string)`,
    `${path}:7: unknown key "auth.http.retries" (known: authenticateUrl, publishUrl, subscribeUrl, method, bodyFormat, headers, timeoutMs, cacheTtlMs, cacheMaxEntries, onFailure, maxConcurrent)`,
    `${path}:11: webhooks[0].name must be 1-64 of A-Z a-z 0-9 . _ -; got "w 1" (a string)`,
    `${path}:11: webhooks[0].events[1] must be one of client.connected, client.disconnected, client.subscribed, client.unsubscribed, message.published; got "client.kicked" (a string)`,
    `${path}:11: webhooks[0].retry.maxAttempts must be an integer from 1 to 1000; got 0`,
  ]);
});

test('cross-key problems: no URL to ask, a body format with GET, a bad header, message events without topics, duplicate names', () => {
  const path = fileWith(
    'cross.json',
    JSON.stringify({
      auth: { http: { method: 'GET', bodyFormat: 'form', headers: { 'x-ok': 'a\r\nb' } } },
      webhooks: [
        { name: 'w', url: 'http://x/e', events: ['message.published'] },
        { name: 'w', url: 'http://x/e', events: ['client.connected'], topics: ['a/#'], signatureHeader: 'x-sig', retry: { initialDelayMs: 5000, maxDelayMs: 1000 } },
      ],
    }),
  );
  assert.deepEqual(errorsOf(() => loadConfig(['--config', path], {})), [
    `${path}: auth.http needs at least one of authenticateUrl, publishUrl and subscribeUrl (the URLs of the service)`,
    `${path}: auth.http.bodyFormat is for method POST; with GET the request is in the query string`,
    `${path}: auth.http.headers.x-ok must be a header value without line breaks or control characters; got "a\\r\\nb"`,
    `${path}: webhooks[0] ("w").topics must list the topic filters of the messages to send (e.g. ["sensors/#"]), since events has message.published`,
    `${path}: webhooks[1] ("w").name: "w" is already the name of webhooks[0]; webhook names must be unique`,
    `${path}: webhooks[1] ("w").topics is for message.published events, which events does not list`,
    `${path}: webhooks[1] ("w").signatureHeader needs secret (the key the body is signed with)`,
    `${path}: webhooks[1] ("w").retry.initialDelayMs (5000) must not be above retry.maxDelayMs (1000)`,
  ]);
});

test('STARLING_WEBHOOKS takes the list as JSON', () => {
  const loaded = loadConfig([], { STARLING_WEBHOOKS: '[{"name":"env","url":"https://h.example/x","events":["client.connected"]}]' }) as LoadedConfig;
  assert.equal(loaded.config.webhooks[0]?.name, 'env');
  assert.deepEqual(errorsOf(() => loadConfig([], { STARLING_WEBHOOKS: '[{"name":"env","url":"nope","events":["client.connected"]}]' })), ['STARLING_WEBHOOKS (webhooks[0].url) must be an http:// or https:// URL; got "nope" (a string)']);
});
