/**
 * Authentication: Mosquitto password files (ours and mosquitto_passwd's), CONNACK 4 / 0x86 and
 * 5 / 0x87, reload with a broken file, login back-off, the anonymous policy (loopback only without
 * authentication), JWT passwords, and the HTTP authentication example plugin.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, type JWTPayload } from 'jose';
import { httpAuthPlugin } from '../../examples/http-auth-plugin.js';
import { AnonymousListenerError } from '../../src/auth/broker-security.js';
import { PasswordFile } from '../../src/auth/password-file.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import type { ClientIdentity } from '../../src/broker/hooks.js';
import type { Logger } from '../../src/broker/logger.js';
import type { ProtocolVersion } from '../../src/protocol/types.js';
import { startServer, type ServerOptions, type StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { RawClient, type ConnectFields } from '../helpers/raw-client.js';

const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
let dir: string;
const servers: StarlingServer[] = [];
const raws: RawClient[] = [];

async function broker(options: ServerOptions): Promise<StarlingServer> {
  const server = await startTestBroker(options);
  servers.push(server);
  return server;
}

/** CONNACK return code (3.1.1) or reason code (5.0) for a CONNECT with these fields. */
async function connackCode(server: StarlingServer, fields: ConnectFields, version: ProtocolVersion = 4): Promise<number> {
  const client = await RawClient.connect(server.port);
  raws.push(client);
  const connack = await client.connectMqtt({ clientId: `c${raws.length}`, protocolVersion: version, ...fields }, 7000);
  if (connack.reasonCode !== 0) await client.expectClosed();
  return connack.reasonCode;
}

function credentials(username: string, password?: string): ConnectFields {
  return password === undefined ? { username } : { username, password: Buffer.from(password) };
}

async function writePasswordFile(path: string, users: Record<string, string>): Promise<void> {
  const file = new PasswordFile();
  for (const [user, password] of Object.entries(users)) file.entries.set(user, await hashPassword(password, 1000));
  writeFileSync(path, file.serialize());
}

/** A logger that keeps error lines (for the start-up refusal). */
function captureLogger(lines: string[]): Logger {
  const keep = (_obj: object, msg: string): void => {
    lines.push(msg);
  };
  return { debug: () => undefined, info: () => undefined, warn: keep, error: keep };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'starling-auth-'));
});

after(async () => {
  for (const raw of raws) raw.destroy();
  await Promise.all(servers.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('password file', () => {
  let server: StarlingServer;
  let path: string;
  before(async () => {
    path = join(dir, 'passwd');
    await writePasswordFile(path, { alice: 'secret', bob: 'hunter2' });
    server = await broker({ auth: { passwordFile: path, loginBackoff: { baseDelayMs: 0 } } });
  });

  test('[MQTT-3.1.4-2] a correct user name and password is accepted (3.1.1 and 5.0)', async () => {
    assert.equal(await connackCode(server, credentials('alice', 'secret')), 0);
    assert.equal(await connackCode(server, credentials('bob', 'hunter2'), 5), 0);
  });

  test('a wrong password, an unknown user or a missing password: CONNACK 4 (3.1.1) / 0x86 (5.0)', async () => {
    assert.equal(await connackCode(server, credentials('alice', 'wrong')), 4);
    assert.equal(await connackCode(server, credentials('alice', 'wrong'), 5), 0x86);
    assert.equal(await connackCode(server, credentials('mallory', 'secret')), 4);
    assert.equal(await connackCode(server, credentials('mallory', 'secret'), 5), 0x86);
    assert.equal(await connackCode(server, credentials('alice')), 4);
  });

  test('no credentials once a password file is configured: CONNACK 5 / 0x87 (anonymous refused)', async () => {
    assert.equal(await connackCode(server, {}), 5);
    assert.equal(await connackCode(server, {}, 5), 0x87);
  });

  test("a file made by Debian's mosquitto_passwd ($7$) and a $6$ entry are accepted unchanged", async () => {
    assert.ok(existsSync(MOSQUITTO_PASSWD), 'mosquitto_passwd is not installed: run .ci/run or apt-get install -y mosquitto');
    const mixed = join(dir, 'mixed');
    execFileSync(MOSQUITTO_PASSWD, ['-c', '-b', mixed, 'moss', 'mosquitto-made'], { stdio: 'ignore' });
    // A $6$ entry (SHA-512 of password then salt), as Mosquitto 1.x wrote them.
    const { createHash } = await import('node:crypto');
    const salt = Buffer.from('0123456789ab');
    const sha = createHash('sha512').update('old-style').update(salt).digest('base64');
    writeFileSync(mixed, `${execFileSync('cat', [mixed]).toString()}legacy:$6$${salt.toString('base64')}$${sha}\n`);
    const own = await broker({ auth: { passwordFile: mixed, loginBackoff: { baseDelayMs: 0 } } });
    assert.equal(await connackCode(own, credentials('moss', 'mosquitto-made')), 0);
    assert.equal(await connackCode(own, credentials('moss', 'wrong'), 5), 0x86);
    assert.equal(await connackCode(own, credentials('legacy', 'old-style')), 0);
    assert.equal(await connackCode(own, credentials('legacy', 'old-stylE')), 4);
  });

  test('reload: a broken file is rejected and the old users stay; a good file replaces them; connections stay open', async () => {
    const reloadPath = join(dir, 'reload-passwd');
    await writePasswordFile(reloadPath, { carol: 'one' });
    const own = await broker({ auth: { passwordFile: reloadPath, loginBackoff: { baseDelayMs: 0 } } });
    const connected = await RawClient.connect(own.port);
    raws.push(connected);
    assert.equal((await connected.connectMqtt({ clientId: 'stays', ...credentials('carol', 'one') })).reasonCode, 0);

    writeFileSync(reloadPath, 'carol:plaintext-is-not-accepted\n');
    assert.equal(await own.reload(), false);
    assert.equal(await connackCode(own, credentials('carol', 'one')), 0, 'old users still in force');

    await writePasswordFile(reloadPath, { dave: 'two' });
    assert.equal(await own.reload(), true);
    assert.equal(await connackCode(own, credentials('dave', 'two')), 0);
    assert.equal(await connackCode(own, credentials('carol', 'one')), 4, 'removed user refused');
    connected.send({ type: 'pingreq' });
    await connected.expect('pingresp');
  });

  test('a broken password file at start-up stops the server with the file and line', async () => {
    const broken = join(dir, 'broken');
    writeFileSync(broken, '# users\nalice:$7$notanumber$abc$def\n');
    await assert.rejects(startTestBroker({ auth: { passwordFile: broken } }), /broken:2/);
  });
});

describe('login back-off', () => {
  test('each failure from an address delays its refusal more; a success resets it', async () => {
    const path = join(dir, 'backoff-passwd');
    await writePasswordFile(path, { erin: 'right' });
    const server = await broker({ auth: { passwordFile: path, loginBackoff: { baseDelayMs: 150, maxDelayMs: 1000 } } });
    const timed = async (password: string): Promise<[number, number]> => {
      const started = Date.now();
      const code = await connackCode(server, credentials('erin', password));
      return [code, Date.now() - started];
    };
    const [code1, first] = await timed('wrong');
    const [code2, second] = await timed('wrong');
    assert.equal(code1, 4);
    assert.equal(code2, 4);
    assert.ok(first >= 140, `first refusal delayed (${first} ms)`);
    assert.ok(second >= 290, `second refusal delayed twice as long (${second} ms)`);
    const [ok, fast] = await timed('right');
    assert.equal(ok, 0);
    assert.ok(fast < 140, `a correct password is not delayed (${fast} ms)`);
    const [, reset] = await timed('wrong');
    assert.ok(reset < 290, `the success reset the back-off (${reset} ms)`);
  });
});

describe('anonymous policy', () => {
  test('no authentication configured, loopback listener: anonymous clients are accepted', async () => {
    const server = await broker({});
    assert.equal(await connackCode(server, {}), 0);
    assert.equal(await connackCode(server, {}, 5), 0);
  });

  test('an authentication hook that abstains: anonymous refused (5 / 0x87) unless allowAnonymous', async () => {
    const strict = await broker({ authenticate: () => undefined });
    assert.equal(await connackCode(strict, {}), 5);
    assert.equal(await connackCode(strict, {}, 5), 0x87);
    const open = await broker({ authenticate: () => undefined, auth: { allowAnonymous: true } });
    assert.equal(await connackCode(open, {}), 0);
  });

  test('a password file with allowAnonymous: anonymous accepted, wrong passwords still refused', async () => {
    const path = join(dir, 'anon-passwd');
    await writePasswordFile(path, { frank: 'pw' });
    const server = await broker({ auth: { passwordFile: path, allowAnonymous: true, loginBackoff: { baseDelayMs: 0 } } });
    assert.equal(await connackCode(server, {}), 0);
    assert.equal(await connackCode(server, credentials('frank', 'bad')), 4);
  });

  test('a listener on 0.0.0.0 without authentication refuses to start, and the log says why and what to do', async () => {
    const lines: string[] = [];
    await assert.rejects(startServer({ host: '0.0.0.0', port: 0, logger: captureLogger(lines) }), AnonymousListenerError);
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /refusing to listen on 0\.0\.0\.0.*no authentication.*--password-file.*--allow-anonymous/);
  });

  test('a listener on 0.0.0.0 starts with allowAnonymous, or with a password file', async () => {
    const anyone = await startServer({ host: '0.0.0.0', port: 0, logLevel: 'silent', auth: { allowAnonymous: true } });
    servers.push(anyone);
    assert.equal(await connackCode(anyone, {}), 0);
    const path = join(dir, 'wide-passwd');
    await writePasswordFile(path, { gina: 'pw' });
    const guarded = await startServer({ host: '0.0.0.0', port: 0, logLevel: 'silent', auth: { passwordFile: path } });
    servers.push(guarded);
    assert.equal(await connackCode(guarded, {}), 5);
  });
});

describe('JWT authentication', () => {
  let server: StarlingServer;
  let privateKey: KeyObject;
  let otherKey: KeyObject;
  const seen: ClientIdentity[] = [];

  const token = (claims: JWTPayload, options: { key?: KeyObject; issuer?: string; expires?: string | number; kid?: string } = {}): Promise<string> => {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', ...(options.kid === undefined ? {} : { kid: options.kid }) })
      .setIssuer(options.issuer ?? 'starling-test')
      .setAudience('mqtt')
      .setIssuedAt()
      .setExpirationTime(options.expires ?? '5m');
    return jwt.sign(options.key ?? privateKey);
  };

  before(async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    privateKey = pair.privateKey;
    otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const keyFile = join(dir, 'jwt.pem');
    writeFileSync(keyFile, pair.publicKey.export({ type: 'spki', format: 'pem' }));
    server = await broker({
      auth: { jwt: { keyFile, issuer: 'starling-test', audience: 'mqtt' }, loginBackoff: { baseDelayMs: 0 } },
      plugins: [{ name: 'spy', onConnect: (client) => seen.push(client) }],
    });
  });

  test('a valid token is accepted and its subject becomes the user name', async () => {
    assert.equal(await connackCode(server, { clientId: 'jwt-ok', username: 'ignored', password: Buffer.from(await token({ sub: 'sensor-1' })) }, 5), 0);
    assert.equal(seen.find((c) => c.clientId === 'jwt-ok')?.username, 'sensor-1');
  });

  test('an expired token, a wrong issuer or a foreign signature: CONNACK 4 / 0x86', async () => {
    const expired = await token({ sub: 's' }, { expires: Math.floor(Date.now() / 1000) - 60 });
    assert.equal(await connackCode(server, { username: 'x', password: Buffer.from(expired) }), 4);
    assert.equal(await connackCode(server, { username: 'x', password: Buffer.from(expired) }, 5), 0x86);
    assert.equal(await connackCode(server, { username: 'x', password: Buffer.from(await token({ sub: 's' }, { issuer: 'evil' })) }), 4);
    assert.equal(await connackCode(server, { username: 'x', password: Buffer.from(await token({ sub: 's' }, { key: otherKey })) }, 5), 0x86);
  });

  test('a password that is not a token, or none: not authorized (no other authentication configured)', async () => {
    assert.equal(await connackCode(server, credentials('x', 'plain password')), 5);
    assert.equal(await connackCode(server, {}, 5), 0x87);
  });

  test('publish / subscribe claims become ACL rules (5.0: PUBACK 0x87, SUBACK 0x87)', async () => {
    const client = await RawClient.connect(server.port);
    raws.push(client);
    const jwt = await token({ sub: 'dev-9', publish: ['devices/dev-9/#'], subscribe: ['commands/dev-9/+'] });
    assert.equal((await client.connectMqtt({ clientId: 'jwt-acl', protocolVersion: 5, username: 'dev-9', password: Buffer.from(jwt) })).reasonCode, 0);
    const allowedId = client.publish('devices/dev-9/temp', '21', 1);
    const allowed = await client.expect('puback');
    assert.equal(allowed.packetId, allowedId);
    assert.ok((allowed.reasonCode ?? 0) < 0x80, 'allowed publish acknowledged without error');
    client.publish('devices/dev-1/temp', '21', 1);
    assert.equal((await client.expect('puback')).reasonCode, 0x87);
    const suback = await client.subscribe([
      ['commands/dev-9/reboot', 1],
      ['commands/#', 1],
    ]);
    assert.deepEqual(suback.reasonCodes, [1, 0x87]);
  });

  test('a JWKS file: the key is chosen by kid', async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' };
    const jwksFile = join(dir, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
    const own = await broker({ auth: { jwt: { jwksFile, audience: 'mqtt' }, loginBackoff: { baseDelayMs: 0 } } });
    assert.equal(await connackCode(own, { username: 'u', password: Buffer.from(await token({ sub: 'k' }, { key: pair.privateKey, kid: 'k1' })) }), 0);
    assert.equal(await connackCode(own, { username: 'u', password: Buffer.from(await token({ sub: 'k' }, { key: pair.privateKey, kid: 'k2' })) }), 4);
  });
});

describe('HTTP authentication example plugin (examples/http-auth-plugin.ts)', () => {
  let http: Server;
  let server: StarlingServer;
  const bodies: Record<string, unknown>[] = [];

  before(async () => {
    http = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const request = JSON.parse(body) as { username: string | null; password: string | null };
        bodies.push(request);
        const reply = (status: number, answer?: object): void => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(answer === undefined ? '' : JSON.stringify(answer));
        };
        if (request.username === 'henry' && request.password === 'letmein') reply(200, { allow: true, publish: ['henry/#'] });
        else if (request.username === 'banned') reply(403);
        else if (request.username === 'crash') reply(500);
        else reply(401);
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/auth`;
    server = await broker({ plugins: [httpAuthPlugin({ url, timeoutMs: 1000 })] });
  });

  after(async () => {
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  test('the service decides: 200 allow → 0, 401 → 4, 403 → 5, 500 → 3', async () => {
    assert.equal(await connackCode(server, credentials('henry', 'letmein')), 0);
    assert.deepEqual(bodies.at(-1), { clientId: `c${raws.length}`, username: 'henry', password: 'letmein', remoteAddress: '127.0.0.1', listener: 'tcp' });
    assert.equal(await connackCode(server, credentials('henry', 'nope')), 4);
    assert.equal(await connackCode(server, credentials('banned', 'x'), 5), 0x87);
    assert.equal(await connackCode(server, credentials('crash', 'x'), 5), 0x88);
  });

  test('the publish list the service returned is enforced', async () => {
    const client = await RawClient.connect(server.port);
    raws.push(client);
    assert.equal((await client.connectMqtt({ clientId: 'henry-1', protocolVersion: 5, ...credentials('henry', 'letmein') })).reasonCode, 0);
    client.publish('henry/a', 'x', 1);
    assert.ok(((await client.expect('puback')).reasonCode ?? 0) < 0x80);
    client.publish('other/a', 'x', 1);
    assert.equal((await client.expect('puback')).reasonCode, 0x87);
  });
});
