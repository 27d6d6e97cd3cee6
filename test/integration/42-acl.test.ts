/**
 * ACL file (Mosquitto format): the read / write / readwrite / deny matrix for publish, subscribe
 * and receive, `pattern` rules with %c and %u, anonymous rules, in MQTT 3.1.1 and 5.0, and reload
 * (a broken file keeps the old rules).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PasswordFile } from '../../src/auth/password-file.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import type { ProtocolVersion, PublishPacket } from '../../src/protocol/types.js';
import type { StarlingServer } from '../../src/server.js';
import { startTestBroker } from '../helpers/broker.js';
import { RawClient } from '../helpers/raw-client.js';

const ACL = `# Anonymous clients (no user name):
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic write shared/inbox

user bob
topic read alice/#
topic read shared/#

user admin
topic readwrite #

# Every client:
pattern readwrite devices/%c/#
pattern deny devices/%c/locked
pattern read users/%u/inbox
`;

let dir: string;
let aclPath: string;
let server: StarlingServer;
const raws: RawClient[] = [];
let observer: RawClient;

async function client(username: string | undefined, clientId: string, version: ProtocolVersion): Promise<RawClient> {
  const raw = await RawClient.connect(server.port);
  raws.push(raw);
  const fields = username === undefined ? {} : { username, password: Buffer.from(`${username}-pw`) };
  const connack = await raw.connectMqtt({ clientId, protocolVersion: version, ...fields });
  assert.equal(connack.reasonCode, 0, `${username ?? 'anonymous'} connects`);
  return raw;
}

/** Publishes at QoS 1 and returns the PUBACK reason code (0 when absent). */
async function publishCode(raw: RawClient, topic: string, payload = 'x'): Promise<number> {
  const id = raw.publish(topic, payload, 1);
  const puback = await raw.expect('puback');
  assert.equal(puback.packetId, id);
  return puback.reasonCode ?? 0;
}

/** Topics the all-seeing observer receives within `ms`. */
async function observed(ms = 150): Promise<string[]> {
  const topics: string[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return topics;
    try {
      const packet = (await observer.next(left)) as PublishPacket;
      if (packet.type === 'publish') {
        topics.push(packet.topic);
        if (packet.qos === 1) observer.send({ type: 'puback', packetId: packet.packetId as number });
      }
    } catch {
      return topics;
    }
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'starling-acl-'));
  aclPath = join(dir, 'acl');
  writeFileSync(aclPath, ACL);
  const passwords = new PasswordFile();
  for (const user of ['alice', 'bob', 'admin', 'carol']) passwords.entries.set(user, await hashPassword(`${user}-pw`, 1000));
  const passwordPath = join(dir, 'passwd');
  writeFileSync(passwordPath, passwords.serialize());
  server = await startTestBroker({ auth: { passwordFile: passwordPath, aclFile: aclPath, allowAnonymous: true, loginBackoff: { baseDelayMs: 0 } } });
  observer = await client('admin', 'observer', 4);
  assert.deepEqual((await observer.subscribe('#', 1)).reasonCodes, [1]);
});

after(async () => {
  for (const raw of raws) raw.destroy();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const version of [4, 5] as const) {
  const denied = version === 5 ? 0x87 : 0; // 3.1.1 cannot say no: acknowledged and dropped
  const subDenied = version === 5 ? 0x87 : 0x80;

  describe(`ACL publish (write) in MQTT ${version === 5 ? '5.0' : '3.1.1'}`, () => {
    test('per-user topic rules: readwrite and write allow, deny wins, other users and anonymous rules do not apply', async () => {
      const alice = await client('alice', `alice-pub-${version}`, version);
      const ok = (code: number): boolean => code < 0x80;
      assert.ok(ok(await publishCode(alice, 'alice/notes')));
      assert.ok(ok(await publishCode(alice, 'shared/inbox')));
      assert.equal(await publishCode(alice, 'alice/secret/plans'), denied, 'deny wins over readwrite alice/#');
      assert.equal(await publishCode(alice, 'public/news'), denied, 'anonymous rules do not apply to users');
      assert.deepEqual(await observed(), ['alice/notes', 'shared/inbox'], 'only allowed messages are delivered');

      const bob = await client('bob', `bob-pub-${version}`, version);
      assert.equal(await publishCode(bob, 'alice/notes'), denied, 'read-only rule does not allow writing');
      assert.equal(await publishCode(bob, 'shared/inbox'), denied);
      assert.deepEqual(await observed(), []);
    });

    test('pattern rules: %c grants each client its own subtree only; a pattern deny wins', async () => {
      const device = await client('carol', `dev${version}`, version);
      assert.ok((await publishCode(device, `devices/dev${version}/temp`)) < 0x80);
      assert.equal(await publishCode(device, 'devices/other/temp'), denied);
      assert.equal(await publishCode(device, `devices/dev${version}/locked`), denied);
      assert.deepEqual(await observed(), [`devices/dev${version}/temp`]);
      // A client id with "/" would reach into another client's subtree: the pattern does not apply to it.
      const sneaky = await client('carol', `dev${version}/x`, version);
      assert.equal(await publishCode(sneaky, `devices/dev${version}/x/temp`), denied);
    });

    test('anonymous clients: general rules before any user line (read only here) and patterns', async () => {
      const anon = await client(undefined, `anon-pub-${version}`, version);
      assert.equal(await publishCode(anon, 'public/news'), denied, 'read rule does not allow writing');
      assert.ok((await publishCode(anon, `devices/anon-pub-${version}/state`)) < 0x80, '%c patterns apply to anonymous clients');
      assert.deepEqual(await observed(), [`devices/anon-pub-${version}/state`]);
    });
  });

  describe(`ACL subscribe (read) in MQTT ${version === 5 ? '5.0' : '3.1.1'}`, () => {
    test('a subscription must lie within a read rule and not within a deny', async () => {
      const alice = await client('alice', `alice-sub-${version}`, version);
      const suback = await alice.subscribe([
        ['alice/#', 1],
        ['alice/secret/#', 1],
        ['#', 1],
        ['shared/inbox', 1],
        ['$share/g/alice/+', 1],
      ]);
      // A shared subscription is checked by its inner filter.
      assert.deepEqual(suback.reasonCodes, [1, subDenied, subDenied, subDenied, 1]);
    });

    test('%u patterns: each user reads only its own inbox; anonymous clients get no %u rule', async () => {
      const bob = await client('bob', `bob-sub-${version}`, version);
      assert.deepEqual((await bob.subscribe([['users/bob/inbox', 0], ['users/alice/inbox', 0], ['users/+/inbox', 0]])).reasonCodes, [0, subDenied, subDenied]);
      const anon = await client(undefined, `anon-sub-${version}`, version);
      assert.deepEqual((await anon.subscribe([['public/#', 0], ['users/+/inbox', 0], ['alice/#', 0]])).reasonCodes, [0, subDenied, subDenied]);
    });

    test('receive: messages on denied topics are not delivered through a wider subscription', async () => {
      const alice = await client('alice', `alice-recv-${version}`, version);
      assert.deepEqual((await alice.subscribe('alice/#', 1)).reasonCodes, [1]);
      server.publish({ topic: 'alice/secret/diary', payload: 'hidden', qos: 1 });
      server.publish({ topic: 'alice/visible', payload: 'shown', qos: 1 });
      const publish = await alice.expect('publish');
      assert.equal(publish.topic, 'alice/visible');
      alice.send({ type: 'puback', packetId: publish.packetId as number });
      await alice.expectSilence(150);
      await observed();
    });
  });
}

describe('ACL reload', () => {
  test('a broken ACL file is rejected and the old rules stay; a good one applies to connected clients at once', async () => {
    const alice = await client('alice', 'alice-reload', 5);
    assert.ok((await publishCode(alice, 'alice/before')) < 0x80);

    writeFileSync(aclPath, `${ACL}\nthis line is not an ACL rule\n`);
    assert.equal(await server.reload(), false);
    assert.ok((await publishCode(alice, 'alice/after-broken')) < 0x80, 'old rules still in force');

    writeFileSync(aclPath, ACL.replace('topic readwrite alice/#', 'topic read alice/#'));
    assert.equal(await server.reload(), true);
    assert.equal(await publishCode(alice, 'alice/after-reload'), 0x87, 'the new rules apply without reconnecting');
    await observed();
    writeFileSync(aclPath, ACL);
    assert.equal(await server.reload(), true);
  });
});
