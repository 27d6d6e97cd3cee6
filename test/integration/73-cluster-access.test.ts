/**
 * Runtime access control in a cluster, black-box: two `starling` processes on one real redis-server
 * (`auth.allowAnonymous: false` from the environment, so only runtime users get in). A user, a role
 * change, a ban, a deletion or an admin session made through one node's API takes effect on the other
 * within a second: through Redis (the store) and its change channel.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, endClients, expectStatus, mqttConnect, refusal, serverDisconnect } from '../helpers/access.js';
import { startCluster, waitUntil, type Cluster, type ClusterNode } from '../helpers/cluster.js';

const PASSWORD = 'correct horse battery';
const TEST = { timeout: 30_000 };

let cluster: Cluster | undefined;
let n1: ClusterNode;
let n2: ClusterNode;

/** Milliseconds until `check` holds (polled every 10 ms), failing after a second: the promise of the design. */
async function withinASecond(check: () => Promise<boolean>, what: string): Promise<number> {
  const started = Date.now();
  await waitUntil(check, 1000, () => what, 10);
  return Date.now() - started;
}

describe('73 access control across a cluster', () => {
  before(async () => {
    process.env['STARLING_AUTH__ALLOW_ANONYMOUS'] = 'false';
    try {
      cluster = await startCluster(2, 'acc');
    } finally {
      delete process.env['STARLING_AUTH__ALLOW_ANONYMOUS'];
    }
    [n1, n2] = cluster.nodes as [ClusterNode, ClusterNode];
  }, { timeout: 30_000 });
  after(async () => {
    endClients();
    await cluster?.close();
  }, { timeout: 30_000 });

  test('a user created on node 1 connects on node 2 within a second; anonymous clients stay out', TEST, async () => {
    assert.equal(await refusal(n2.port, { protocolVersion: 5, clientId: 'anon' }), 0x87);
    await expectStatus(n1.httpPort, 201, 'POST', '/api/users', { username: 'roaming', password: PASSWORD });
    await withinASecond(async () => (await call(n2.httpPort, 'GET', '/api/users/roaming')).status === 200, 'node 2 knows the user');
    const client = await mqttConnect(n2.port, { protocolVersion: 5, clientId: 'roaming-1', username: 'roaming', password: PASSWORD });
    assert.ok(client.connected);
  });

  test('a role changed on node 2 applies to a client connected to node 1 at its next PUBLISH', TEST, async () => {
    await expectStatus(n1.httpPort, 201, 'POST', '/api/roles', { name: 'meter', acl: [{ topic: 'meters/%u/#', access: 'readwrite' }] });
    await expectStatus(n1.httpPort, 201, 'POST', '/api/users', { username: 'm1', password: PASSWORD, roles: ['meter'] });
    const m1 = await mqttConnect(n1.port, { protocolVersion: 5, clientId: 'm1', username: 'm1', password: PASSWORD });
    await m1.publishAsync('meters/m1/kwh', '1', { qos: 1 });
    await expectStatus(n2.httpPort, 200, 'PUT', '/api/roles/meter', { acl: [{ topic: 'meters/%u/#', access: 'read' }] });
    await withinASecond(async () => {
      try {
        await m1.publishAsync('meters/m1/kwh', '2', { qos: 1 });
        return false;
      } catch (error) {
        return (error as { code?: number }).code === 0x87;
      }
    }, 'node 1 refuses the publish the new rules deny');
  });

  test('a ban made on node 2 disconnects the client on node 1 (DISCONNECT 0x98) within a second; node 1 then refuses it with 0x8A', TEST, async () => {
    await expectStatus(n1.httpPort, 201, 'POST', '/api/users', { username: 'rogue', password: PASSWORD });
    const rogue = await mqttConnect(n1.port, { protocolVersion: 5, clientId: 'rogue-1', username: 'rogue', password: PASSWORD });
    const gone = serverDisconnect(rogue, 1000);
    const started = Date.now();
    const ban = (await expectStatus(n2.httpPort, 201, 'POST', '/api/bans', { username: 'rogue', reason: 'cluster test' })).body;
    assert.equal(await gone, 0x98);
    assert.ok(Date.now() - started < 1000);
    assert.equal(await refusal(n1.port, { protocolVersion: 5, clientId: 'rogue-2', username: 'rogue', password: PASSWORD }), 0x8a);
    await expectStatus(n1.httpPort, 204, 'DELETE', `/api/bans/${ban.id as string}`);
    await withinASecond(async () => {
      try {
        (await mqttConnect(n2.port, { protocolVersion: 5, clientId: 'rogue-3', username: 'rogue', password: PASSWORD })).end(true);
        return true;
      } catch {
        return false;
      }
    }, 'node 2 lets the user in again');
  });

  test('a user deleted on node 1 is disconnected from node 2', TEST, async () => {
    const client = await mqttConnect(n2.port, { protocolVersion: 5, clientId: 'roaming-2', username: 'roaming', password: PASSWORD });
    const gone = serverDisconnect(client, 1000);
    await expectStatus(n1.httpPort, 204, 'DELETE', '/api/users/roaming');
    assert.equal(await gone, 0x98);
  });

  test('an admin session opened on node 1 works on node 2 (a load balancer may send the dashboard anywhere), and signing out ends it on both', TEST, async () => {
    await expectStatus(n1.httpPort, 201, 'POST', '/api/admins', { username: 'ops', password: 'night shift 9' });
    await withinASecond(async () => (await call(n2.httpPort, 'GET', '/api/access')).body.access === 'sign-in', 'node 2 asks for a sign-in');
    const signed = await expectStatus(n1.httpPort, 200, 'POST', '/api/auth/login', { username: 'ops', password: 'night shift 9', bearer: true });
    const auth = { authorization: `Bearer ${signed.body.token as string}` };
    await withinASecond(async () => (await call(n2.httpPort, 'GET', '/api/users', undefined, auth)).status === 200, 'node 2 accepts the session');
    await expectStatus(n2.httpPort, 204, 'POST', '/api/auth/logout', undefined, auth);
    await withinASecond(async () => (await call(n1.httpPort, 'GET', '/api/users', undefined, auth)).status === 401, 'node 1 forgot the session');
  });
});
