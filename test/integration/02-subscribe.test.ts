import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodePacket } from '../../src/protocol/encoder.js';
import type { PublishPacket } from '../../src/protocol/types.js';
import { startTestServer, type TestServer } from '../helpers/broker.js';
import { inProcessOnly } from '../helpers/worker-broker.js';
import { TestClients, type RawClient } from '../helpers/raw-client.js';

describe('02 subscribe', () => {
  let server: TestServer;
  let qos1Server: TestServer;
  let noWildcardServer: TestServer;
  let clients: TestClients;
  let qos1Clients: TestClients;
  let noWildcardClients: TestClients;
  let idCounter = 0;

  before(async () => {
    server = await startTestServer();
    qos1Server = await startTestServer({ limits: { maxQoS: 1 } });
    noWildcardServer = await startTestServer({ features: { wildcardSubscriptionAvailable: false } });
    clients = new TestClients(() => server.port);
    qos1Clients = new TestClients(() => qos1Server.port);
    noWildcardClients = new TestClients(() => noWildcardServer.port);
  });

  after(async () => {
    await clients.closeAll();
    await qos1Clients.closeAll();
    await noWildcardClients.closeAll();
    await Promise.all([server.close(), qos1Server.close(), noWildcardServer.close()]);
  });

  /** A fresh client id, so tests never share sessions. */
  function nextId(prefix: string): string {
    idCounter++;
    return `${prefix}-${idCounter}`;
  }

  /**
   * Reads PUBLISH packets until the one on `sentinel` (which the client is subscribed to and which
   * was published last); returns those before it. A missing or extra delivery is then visible
   * without waiting for silence.
   */
  async function publishesUntil(client: RawClient, sentinel: string): Promise<PublishPacket[]> {
    const out: PublishPacket[] = [];
    for (;;) {
      const packet = await client.next();
      // A PUBREL may come before the sentinel (it does when the message crossed workers first).
      if (packet.type === 'pubrel') {
        client.send({ type: 'pubcomp', packetId: packet.packetId });
        continue;
      }
      if (packet.type !== 'publish') throw new Error(`expected PUBLISH or PUBREL, got ${packet.type}`);
      if (packet.packetId !== undefined) client.send({ type: packet.qos === 2 ? 'pubrec' : 'puback', packetId: packet.packetId });
      if (packet.topic === sentinel) return out;
      out.push(packet);
    }
  }

  /** Subscribes one client to `filter`, publishes each topic from the broker, returns the topics received. */
  async function topicsMatched(filter: string, topics: string[]): Promise<string[]> {
    const id = nextId('match');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    const suback = await client.subscribe([
      [filter, 0],
      [sentinel, 0],
    ]);
    assert.deepEqual(suback.reasonCodes, [0, 0]);
    for (const topic of topics) server.broker.publish({ topic, payload: topic });
    server.broker.publish({ topic: sentinel, payload: 'end' });
    const received = (await publishesUntil(client, sentinel)).map((p) => p.topic);
    client.disconnect();
    return received;
  }

  test('[MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-2.3.1-7] [MQTT-3.8.4-5] [MQTT-3.9.3-1] SUBACK has the same packet id and one code per filter, in order', async () => {
    const client = await clients.rawConnected({ clientId: nextId('suback') });
    client.send({
      type: 'subscribe',
      packetId: 0x1234,
      subscriptions: [
        { topicFilter: 'order/a', qos: 2 },
        { topicFilter: 'order/b', qos: 0 },
        { topicFilter: 'order/c', qos: 1 },
        { topicFilter: 'order/+/d', qos: 0 },
      ],
    });
    const suback = await client.expect('suback');
    assert.equal(suback.packetId, 0x1234);
    assert.deepEqual(suback.reasonCodes, [2, 0, 1, 0]);
  });

  test('[MQTT-3.9.3-2] [MQTT-3.8.4-6] granted QoS is min(requested, maxQoS) and messages are sent at the granted QoS', inProcessOnly('publishes at QoS 2 through the in-process API on a maxQoS 1 broker (a client may not)'), async () => {
    const client = await qos1Clients.rawConnected({ clientId: nextId('maxqos') });
    const suback = await client.subscribe([
      ['granted/0', 0],
      ['granted/1', 1],
      ['granted/2', 2],
    ]);
    assert.deepEqual(suback.reasonCodes, [0, 1, 1]);
    qos1Server.broker.publish({ topic: 'granted/2', payload: 'x', qos: 2 });
    const publish = await client.expect('publish');
    assert.equal(publish.qos, 1);
  });

  test('[MQTT-4.7.1-2] "#" matches the parent level and every level below', async () => {
    const seen = await topicsMatched('sport/#', ['sport', 'sport/tennis', 'sport/tennis/player1', 'sports', 'other/sport']);
    assert.deepEqual(seen, ['sport', 'sport/tennis', 'sport/tennis/player1']);
  });

  test('[MQTT-4.7.1-2] "#" alone matches every topic not starting with $', async () => {
    const seen = await topicsMatched('#', ['a', 'a/b', '/leading', 'trailing/']);
    assert.deepEqual(seen, ['a', 'a/b', '/leading', 'trailing/']);
  });

  test('[MQTT-4.7.1-3] "+" matches exactly one level', async () => {
    const seen = await topicsMatched('sport/tennis/+', ['sport/tennis/player1', 'sport/tennis/player2', 'sport/tennis/player1/ranking', 'sport/tennis']);
    assert.deepEqual(seen, ['sport/tennis/player1', 'sport/tennis/player2']);
  });

  test('[MQTT-4.7.1-3] "+" matches an empty level', async () => {
    const seen = await topicsMatched('a/+/c', ['a//c', 'a/b/c', 'a/c', 'a/b/b/c']);
    assert.deepEqual(seen, ['a//c', 'a/b/c']);
    const leading = await topicsMatched('+/finance', ['/finance', 'x/finance', 'finance']);
    assert.deepEqual(leading, ['/finance', 'x/finance']);
    const trailing = await topicsMatched('sport/+', ['sport/', 'sport', 'sport/x/']);
    assert.deepEqual(trailing, ['sport/']);
  });

  test('[MQTT-3.3.2-3] "+" and "#" combined: only topics matching the filter are sent, under their own name', async () => {
    const seen = await topicsMatched('+/tennis/#', ['sport/tennis', 'sport/tennis/player1', 'tennis', 'x/y/tennis']);
    assert.deepEqual(seen, ['sport/tennis', 'sport/tennis/player1']);
  });

  test('[MQTT-4.7.2-1] topics starting with $ are not matched by "#" or "+/x"', async () => {
    assert.deepEqual(await topicsMatched('#', ['$SYS/x', 'plain/x']), ['plain/x']);
    assert.deepEqual(await topicsMatched('+/x', ['$SYS/x', 'plain/x']), ['plain/x']);
    assert.deepEqual(await topicsMatched('+', ['$SYS', 'plain']), ['plain']);
  });

  test('[MQTT-4.7.2-1] topics starting with $ are matched by filters starting with $', inProcessOnly('a broker without $SYS topics (the starling command publishes $SYS/broker/… at start)'), async () => {
    assert.deepEqual(await topicsMatched('$SYS/#', ['$SYS/x', '$SYS/a/b', 'SYS/x']), ['$SYS/x', '$SYS/a/b']);
    assert.deepEqual(await topicsMatched('$SYS/+', ['$SYS/x', '$SYS/a/b']), ['$SYS/x']);
  });

  test('[MQTT-4.7.2-1] a client publishing to a $ topic reaches $ filters only', async () => {
    const id = nextId('dollar');
    const subscriber = await clients.rawConnected({ clientId: id });
    await subscriber.subscribe([
      ['#', 0],
      ['$app/status', 0],
    ]);
    const publisher = await clients.rawConnected({ clientId: nextId('dollar-pub') });
    publisher.publish('$app/status', 'up');
    publisher.publish('app/status', 'plain');
    const first = await subscriber.expect('publish');
    const second = await subscriber.expect('publish');
    assert.deepEqual([first.topic, second.topic], ['$app/status', 'app/status']);
    await subscriber.expectSilence(100);
  });

  test('[MQTT-3.3.5-1] overlapping subscriptions deliver one copy at the highest QoS', async () => {
    const id = nextId('overlap');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    await client.subscribe([
      ['overlap/#', 0],
      ['overlap/+', 2],
      ['overlap/x', 1],
      [sentinel, 0],
    ]);
    server.broker.publish({ topic: 'overlap/x', payload: 'once', qos: 2 });
    server.broker.publish({ topic: sentinel, payload: 'end' });
    const received = await publishesUntil(client, sentinel);
    assert.equal(received.length, 1, `one copy, got ${received.length}`);
    assert.equal(received[0]?.qos, 2);
  });

  test('[MQTT-3.8.4-3] subscribing again to the same filter replaces its QoS', async () => {
    const id = nextId('resub');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    assert.deepEqual((await client.subscribe('resub/t', 2)).reasonCodes, [2]);
    assert.deepEqual((await client.subscribe([['resub/t', 0], [sentinel, 0]])).reasonCodes, [0, 0]);
    server.broker.publish({ topic: 'resub/t', payload: 'x', qos: 2 });
    server.broker.publish({ topic: sentinel, payload: 'end' });
    const received = await publishesUntil(client, sentinel);
    assert.equal(received.length, 1, 'one subscription, one copy');
    assert.equal(received[0]?.qos, 0);
  });

  test('[MQTT-3.10.4-4] [MQTT-3.10.4-2] [MQTT-2.3.1-7] UNSUBSCRIBE stops delivery and is answered with UNSUBACK of the same id', async () => {
    const id = nextId('unsub');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    await client.subscribe([
      ['unsub/t', 1],
      [sentinel, 0],
    ]);
    server.broker.publish({ topic: 'unsub/t', payload: 'before' });
    assert.equal((await client.expect('publish')).payload.toString(), 'before');
    client.send({ type: 'unsubscribe', packetId: 0x0beef, topicFilters: ['unsub/t'] });
    const unsuback = await client.expect('unsuback');
    assert.equal(unsuback.packetId, 0x0beef);
    server.broker.publish({ topic: 'unsub/t', payload: 'after' });
    server.broker.publish({ topic: sentinel, payload: 'end' });
    assert.deepEqual(await publishesUntil(client, sentinel), []);
  });

  test('[MQTT-3.3.5-1] after unsubscribing the higher-QoS overlapping filter, delivery uses the remaining one', async () => {
    const id = nextId('overlap-unsub');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    await client.subscribe([
      ['ou/#', 1],
      ['ou/+', 2],
      [sentinel, 0],
    ]);
    client.send({ type: 'unsubscribe', packetId: 9, topicFilters: ['ou/+'] });
    await client.expect('unsuback');
    server.broker.publish({ topic: 'ou/x', payload: 'x', qos: 2 });
    server.broker.publish({ topic: sentinel, payload: 'end' });
    const received = await publishesUntil(client, sentinel);
    assert.deepEqual(
      received.map((p) => p.qos),
      [1],
    );
  });

  test('[MQTT-3.8.4-4] a SUBSCRIBE with several filters acts as a sequence of SUBSCRIBEs answered by one SUBACK', async () => {
    const id = nextId('multi');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    // The third request repeats the first filter: as in a sequence, it replaces the first one.
    client.send({
      type: 'subscribe',
      packetId: 21,
      subscriptions: [
        { topicFilter: 'multi/a', qos: 1 },
        { topicFilter: 'multi/b', qos: 2 },
        { topicFilter: 'multi/a', qos: 0 },
        { topicFilter: sentinel, qos: 0 },
      ],
    });
    const suback = await client.expect('suback');
    assert.equal(suback.packetId, 21);
    assert.deepEqual(suback.reasonCodes, [1, 2, 0, 0]);
    // One SUBACK only: the next packet is already a delivery.
    server.broker.publish({ topic: 'multi/a', payload: 'a', qos: 2 });
    server.broker.publish({ topic: 'multi/b', payload: 'b', qos: 2 });
    server.broker.publish({ topic: sentinel, payload: 'end' });
    const received = await publishesUntil(client, sentinel);
    assert.deepEqual(
      received.map((p) => [p.topic, p.qos]),
      [
        ['multi/a', 0],
        ['multi/b', 2],
      ],
    );
  });

  test('[MQTT-3.8.3-2] [MQTT-3.8.4-5] a server without wildcard support answers 0x80 for wildcard filters and grants the others', async () => {
    const client = await noWildcardClients.rawConnected({ clientId: nextId('nowild') });
    const suback = await client.subscribe([
      ['nowild/t', 1],
      ['nowild/+', 1],
      ['nowild/#', 0],
      ['#', 2],
      ['nowild/u', 2],
    ]);
    assert.deepEqual(suback.reasonCodes, [1, 0x80, 0x80, 0x80, 2]);
    // The refused filters subscribe to nothing; the granted ones work; the connection stays open.
    noWildcardServer.broker.publish({ topic: 'nowild/x', payload: 'refused filter', qos: 1 });
    noWildcardServer.broker.publish({ topic: 'nowild/u', payload: 'granted filter', qos: 2 });
    const publish = await client.expect('publish');
    assert.equal(publish.topic, 'nowild/u');
    assert.equal(publish.qos, 2);
    client.send({ type: 'pubrec', packetId: publish.packetId as number });
    assert.equal((await client.expect('pubrel')).packetId, publish.packetId);
    client.send({ type: 'pubcomp', packetId: publish.packetId as number });
    await client.expectSilence(150);
  });

  test('[MQTT-3.10.4-6] an UNSUBSCRIBE with several filters removes each of them and is answered by one UNSUBACK', async () => {
    const id = nextId('multi-unsub');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    await client.subscribe([
      ['mu/a', 0],
      ['mu/+/b', 1],
      ['mu/c', 2],
      [sentinel, 0],
    ]);
    client.send({ type: 'unsubscribe', packetId: 31, topicFilters: ['mu/a', 'mu/+/b', 'mu/never'] });
    assert.equal((await client.expect('unsuback')).packetId, 31);
    for (const topic of ['mu/a', 'mu/x/b', 'mu/c']) server.broker.publish({ topic, payload: topic, qos: 1 });
    server.broker.publish({ topic: sentinel, payload: 'end' });
    // Only the filter left out of the UNSUBSCRIBE still delivers; no second UNSUBACK came before it.
    assert.deepEqual(
      (await publishesUntil(client, sentinel)).map((p) => p.topic),
      ['mu/c'],
    );
  });

  test('[MQTT-3.10.4-3] QoS 1 and 2 deliveries already started complete after UNSUBSCRIBE', async () => {
    const id = nextId('unsub-inflight');
    const client = await clients.rawConnected({ clientId: id, clean: false });
    await client.subscribe([
      ['ui/one', 1],
      ['ui/two', 2],
    ]);
    server.broker.publish({ topic: 'ui/one', payload: 'acked after unsubscribe', qos: 1 });
    server.broker.publish({ topic: 'ui/one', payload: 'left unacknowledged', qos: 1 });
    server.broker.publish({ topic: 'ui/two', payload: 'exactly once', qos: 2 });
    const [acked, unacked, two] = await client.expectMany('publish', 3);
    assert.ok(acked !== undefined && unacked !== undefined && two !== undefined);
    client.send({ type: 'unsubscribe', packetId: 41, topicFilters: ['ui/one', 'ui/two'] });
    assert.equal((await client.expect('unsuback')).packetId, 41);

    // The client may still acknowledge what it received; the QoS 2 flow goes on to PUBREL.
    client.send({ type: 'puback', packetId: acked.packetId as number });
    client.send({ type: 'pubrec', packetId: two.packetId as number });
    assert.equal((await client.expect('pubrel')).packetId, two.packetId);
    client.send({ type: 'pubcomp', packetId: two.packetId as number });
    await client.expectSilence(150);
    client.destroy();

    // The unacknowledged one is still owed: it is resent on reconnect, and it alone.
    const again = await clients.raw();
    const connack = await again.connectMqtt({ clientId: id, clean: false });
    assert.equal(connack.sessionPresent, true);
    const resent = await again.expect('publish');
    assert.equal(resent.payload.toString(), 'left unacknowledged');
    assert.equal(resent.packetId, unacked.packetId);
    assert.equal(resent.dup, true);
    again.send({ type: 'puback', packetId: resent.packetId as number });
    server.broker.publish({ topic: 'ui/one', payload: 'after unsubscribe', qos: 1 });
    await again.expectSilence(150);
  });

  test('[MQTT-4.7.3-4] matching neither normalizes nor substitutes: case, slashes, spaces and Unicode forms count', async () => {
    assert.deepEqual(await topicsMatched('Norm/Ab', ['norm/ab', 'NORM/AB', 'Norm/Ab/', 'Norm//Ab', ' Norm/Ab', 'Norm/\uff21b', 'Norm/Ab']), ['Norm/Ab']);
    // U+00E9 (precomposed) and e + U+0301 (decomposed) look alike but are different names.
    assert.deepEqual(await topicsMatched('caf\u00e9/+', ['cafe\u0301/x', 'caf\u00e9/x']), ['caf\u00e9/x']);
    assert.deepEqual(await topicsMatched('cafe\u0301/+', ['cafe\u0301/x', 'caf\u00e9/x']), ['cafe\u0301/x']);
  });

  test('a subscription made after a topic was already routed (to nobody) still receives it', async () => {
    server.broker.publish({ topic: 'late/topic', payload: 'to nobody' });
    const client = await clients.rawConnected({ clientId: nextId('late') });
    await client.subscribe('late/topic', 0);
    server.broker.publish({ topic: 'late/topic', payload: 'to the new subscriber' });
    assert.equal((await client.expect('publish')).payload.toString(), 'to the new subscriber');
  });

  test('[MQTT-3.10.4-5] UNSUBACK is sent even when no filter matched a subscription', async () => {
    const client = await clients.rawConnected({ clientId: nextId('unsub-unknown') });
    client.send({ type: 'unsubscribe', packetId: 42, topicFilters: ['never/subscribed', 'nor/+/this'] });
    const unsuback = await client.expect('unsuback');
    assert.equal(unsuback.packetId, 42);
  });

  test('[MQTT-3.10.4-1] UNSUBSCRIBE compares filters character by character (no wildcard matching)', async () => {
    const id = nextId('unsub-exact');
    const sentinel = `sentinel/${id}`;
    const client = await clients.rawConnected({ clientId: id });
    await client.subscribe([
      ['exact/a', 0],
      [sentinel, 0],
    ]);
    client.send({ type: 'unsubscribe', packetId: 3, topicFilters: ['exact/+', 'exact/#'] });
    await client.expect('unsuback');
    server.broker.publish({ topic: 'exact/a', payload: 'still' });
    server.broker.publish({ topic: sentinel, payload: 'end' });
    assert.deepEqual(
      (await publishesUntil(client, sentinel)).map((p) => p.topic),
      ['exact/a'],
    );
  });

  for (const filter of ['a/#/b', 'a/b#', 'a+/b', '']) {
    test(`[MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.7.3-1] invalid topic filter "${filter}" closes the connection`, async () => {
      const client = await clients.rawConnected({ clientId: nextId('badfilter') });
      client.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: filter, qos: 0 }] });
      await client.expectClosed();
    });
  }

  test('[MQTT-4.7.1-2] UNSUBSCRIBE with an invalid topic filter closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('badunsub') });
    client.send({ type: 'unsubscribe', packetId: 1, topicFilters: ['a/#/b'] });
    await client.expectClosed();
  });

  test('[MQTT-3.8.1-1] SUBSCRIBE with reserved flags other than 0010 closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('subflags') });
    const bytes = encodePacket({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'a', qos: 0 }] }, 4);
    bytes[0] = 0x80;
    client.send(bytes);
    await client.expectClosed();
  });

  test('[MQTT-3.10.1-1] UNSUBSCRIBE with reserved flags other than 0010 closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('unsubflags') });
    const bytes = encodePacket({ type: 'unsubscribe', packetId: 1, topicFilters: ['a'] }, 4);
    bytes[0] = 0xa0;
    client.send(bytes);
    await client.expectClosed();
  });

  test('[MQTT-3.8.3-3] SUBSCRIBE without any topic filter closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('subempty') });
    client.send(Buffer.from([0x82, 0x02, 0x00, 0x01]));
    await client.expectClosed();
  });

  test('[MQTT-3.8.3-4] SUBSCRIBE requesting QoS 3 closes the connection', async () => {
    const client = await clients.rawConnected({ clientId: nextId('subqos3') });
    const bytes = encodePacket({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'a', qos: 0 }] }, 4);
    bytes[bytes.length - 1] = 3;
    client.send(bytes);
    await client.expectClosed();
  });

  test('subscriptions of one client do not leak to another', async () => {
    const a = await clients.rawConnected({ clientId: nextId('iso-a') });
    const b = await clients.rawConnected({ clientId: nextId('iso-b') });
    await a.subscribe('iso/t', 0);
    await b.subscribe('iso/other', 0);
    server.broker.publish({ topic: 'iso/t', payload: 'a only' });
    assert.equal((await a.expect('publish')).payload.toString(), 'a only');
    await b.expectSilence(100);
  });
});
