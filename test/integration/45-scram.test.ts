/**
 * SCRAM-SHA-512 over MQTT 5 enhanced authentication, against the password file: the `$7$` hash
 * (PBKDF2-SHA512) is the SCRAM salted password, so existing users (mosquitto_passwd's included) can
 * use it. The client side of SCRAM is written here, independently of the server's.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/auth/password-hash.js';
import { PasswordFile } from '../../src/auth/password-file.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { TestClients, type RawClient } from '../helpers/raw-client.js';

const METHOD = 'SCRAM-SHA-512';
const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';

/** The client half of SCRAM-SHA-512 (RFC 5802). */
class ScramClient {
  readonly nonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private authMessage = '';
  private saltedPassword = Buffer.alloc(0);

  constructor(
    private readonly user: string,
    private readonly password: string,
  ) {}

  first(): Buffer {
    this.clientFirstBare = `n=${this.user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${this.nonce}`;
    return Buffer.from(`n,,${this.clientFirstBare}`);
  }

  final(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString();
    const attrs = new Map(text.split(',').map((p) => [p[0], p.slice(2)] as const));
    const nonce = attrs.get('r')!;
    assert.ok(nonce.startsWith(this.nonce), 'the server nonce extends ours');
    this.saltedPassword = pbkdf2Sync(this.password, Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 64, 'sha512');
    const withoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`;
    this.authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const clientKey = createHmac('sha512', this.saltedPassword).update('Client Key').digest();
    const signature = createHmac('sha512', createHash('sha512').update(clientKey).digest()).update(this.authMessage).digest();
    const proof = Buffer.alloc(64);
    for (let i = 0; i < 64; i++) proof[i] = clientKey[i]! ^ signature[i]!;
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  /** True when the server-final-message proves the server knows the salted password. */
  verify(serverFinal: Buffer): boolean {
    const expected = createHmac('sha512', createHmac('sha512', this.saltedPassword).update('Server Key').digest()).update(this.authMessage).digest();
    return serverFinal.toString() === `v=${expected.toString('base64')}`;
  }
}

describe('45 SCRAM-SHA-512 against the password file', () => {
  let dir: string;
  let server: StarlingServer;
  const clients = new TestClients(() => server.port);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'starling-scram-'));
    const path = join(dir, 'passwords');
    const file = new PasswordFile();
    file.entries.set('alice', await hashPassword('wonderland', 1000));
    file.entries.set('a,b=c', await hashPassword('odd name', 1000));
    writeFileSync(path, file.serialize());
    server = await startTestBroker({ auth: { passwordFile: path, loginBackoff: { baseDelayMs: 0 } } });
  });
  after(async () => {
    await clients.closeAll();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function scram(user: string, password: string, clientId: string): Promise<{ client: RawClient; reasonCode: number; verified: boolean }> {
    const scramClient = new ScramClient(user, password);
    const client = await clients.raw({ version: 5 });
    client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId, properties: { authenticationMethod: METHOD, authenticationData: scramClient.first() } });
    const challenge = await client.expect('auth');
    assert.equal(challenge.reasonCode, 0x18);
    assert.equal(challenge.properties?.authenticationMethod, METHOD);
    client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: scramClient.final(challenge.properties.authenticationData!) } });
    const connack = await client.expect('connack');
    const final = connack.properties?.authenticationData;
    return { client, reasonCode: connack.reasonCode, verified: final !== undefined && scramClient.verify(final) };
  }

  test('[MQTT-4.12.0-2] [MQTT-4.12.0-4] a user of the password file logs in with SCRAM-SHA-512, and the server proves it knows the salted password', async () => {
    const { client, reasonCode, verified } = await scram('alice', 'wonderland', 'scram-ok');
    assert.equal(reasonCode, 0);
    assert.ok(verified, 'server signature checks out');
    await client.subscribe('scram/t', 1);
    client.publish('scram/t', 'hello', 1);
    assert.equal((await client.expect('publish')).payload.toString(), 'hello');
  });

  test('a wrong password and an unknown user both get CONNACK 0x86 after the full exchange (no user enumeration)', async () => {
    assert.equal((await scram('alice', 'looking-glass', 'scram-bad')).reasonCode, 0x86);
    assert.equal((await scram('mallory', 'anything', 'scram-who')).reasonCode, 0x86);
  });

  test('user names with "," and "=" are escaped as RFC 5802 says', async () => {
    const { reasonCode, verified } = await scram('a,b=c', 'odd name', 'scram-odd');
    assert.equal(reasonCode, 0);
    assert.ok(verified);
  });

  test('[MQTT-4.12.1-1] re-authentication with SCRAM-SHA-512 ends with AUTH 0x00 and the server-final message', async () => {
    const { client } = await scram('alice', 'wonderland', 'scram-re');
    const again = new ScramClient('alice', 'wonderland');
    client.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: METHOD, authenticationData: again.first() } });
    const challenge = await client.expect('auth');
    assert.equal(challenge.reasonCode, 0x18);
    client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: again.final(challenge.properties!.authenticationData!) } });
    const done = await client.expect('auth');
    assert.equal(done.reasonCode, 0);
    assert.ok(again.verify(done.properties!.authenticationData!));
  });

  test('a password file made by mosquitto_passwd works with SCRAM-SHA-512 unchanged', async () => {
    assert.ok(existsSync(MOSQUITTO_PASSWD), 'mosquitto_passwd is not installed: run .ci/run or apt-get install -y mosquitto');
    const path = join(dir, 'mosquitto-passwords');
    execFileSync(MOSQUITTO_PASSWD, ['-c', '-b', path, 'bob', 'builder']);
    const own = await startTestBroker({ auth: { passwordFile: path, loginBackoff: { baseDelayMs: 0 } } });
    const ownClients = new TestClients(() => own.port);
    try {
      const scramClient = new ScramClient('bob', 'builder');
      const client = await ownClients.raw({ version: 5 });
      client.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId: 'scram-mosq', properties: { authenticationMethod: METHOD, authenticationData: scramClient.first() } });
      const challenge = await client.expect('auth');
      client.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: METHOD, authenticationData: scramClient.final(challenge.properties!.authenticationData!) } });
      const connack = await client.expect('connack');
      assert.equal(connack.reasonCode, 0);
      assert.ok(scramClient.verify(connack.properties!.authenticationData!));
    } finally {
      await ownClients.closeAll();
      await own.close();
    }
  });
});
