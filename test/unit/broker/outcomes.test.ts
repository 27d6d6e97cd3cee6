/** The outcomes table: every refusal and close has a valid code in each protocol family, and docs/errors.md lists them. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLOSE_REASON_CODES, ConnectRefusal, PublishRefusal, keepsWill, subackCode } from '../../../src/broker/outcomes.js';
import { ReasonCode, SUBACK_FAILURE } from '../../../src/protocol/reason-codes.js';

const v5Codes = new Set<number>(Object.values(ReasonCode));

test('[MQTT-3.2.2-5] every CONNECT refusal has a 3.1.x return code 1-5 and an MQTT 5 reason code >= 0x80', () => {
  for (const [name, outcome] of Object.entries(ConnectRefusal)) {
    assert.ok(outcome.v3 >= 1 && outcome.v3 <= 5, `${name}: v3 ${outcome.v3}`);
    assert.ok(outcome.v5 >= 0x80 && v5Codes.has(outcome.v5), `${name}: v5 ${outcome.v5}`);
  }
});

test('PUBLISH refusals: MQTT 5 failure codes; 3.1.1 acknowledges (0) and drops', () => {
  for (const outcome of Object.values(PublishRefusal)) {
    assert.equal(outcome.v3, 0);
    assert.ok(outcome.v5 >= 0x80 && v5Codes.has(outcome.v5));
  }
});

test('[MQTT-3.9.3-2] a refused subscription is 0x80 before MQTT 5, its own reason code in MQTT 5', () => {
  assert.equal(subackCode(4, ReasonCode.notAuthorized), SUBACK_FAILURE);
  assert.equal(subackCode(3, ReasonCode.quotaExceeded), SUBACK_FAILURE);
  assert.equal(subackCode(5, ReasonCode.quotaExceeded), ReasonCode.quotaExceeded);
});

test('[MQTT-3.14.4-3] only a normal DISCONNECT keeps the will; server DISCONNECT codes are failures', () => {
  assert.equal(keepsWill('client-disconnect'), true);
  for (const reason of ['client-disconnect-with-will', 'socket-closed', 'keep-alive-timeout', 'server-shutdown', 'protocol-error'] as const) assert.equal(keepsWill(reason), false);
  for (const code of Object.values(CLOSE_REASON_CODES)) assert.ok(code !== undefined && code >= 0x80 && v5Codes.has(code));
});

test('docs/errors.md lists every CONNECT refusal code and every server DISCONNECT code', () => {
  const doc = readFileSync(join(import.meta.dirname, '../../../docs/errors.md'), 'utf8').toLowerCase();
  for (const outcome of Object.values(ConnectRefusal)) assert.ok(doc.includes(`0x${outcome.v5.toString(16)}`), `0x${outcome.v5.toString(16)} is documented`);
  for (const code of Object.values(CLOSE_REASON_CODES)) assert.ok(doc.includes(`0x${code.toString(16)}`), `0x${code.toString(16)} is documented`);
});
