/** Router.route: the one owner of delivery, driven with real parts (index, retained store, sessions) and recording links. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { plainRoute, SendResult, type OutgoingFlight, type SessionLink } from '../../../src/broker/delivery.js';
import { Hooks, type BrokerPlugin } from '../../../src/broker/hooks.js';
import { Journal } from '../../../src/broker/journal.js';
import { silentLogger } from '../../../src/broker/logger.js';
import { createMessage } from '../../../src/broker/messages.js';
import { DEFAULT_BROKER_OPTIONS, type BrokerOptions } from '../../../src/broker/options.js';
import { RetainedMessages } from '../../../src/broker/retained.js';
import { Router } from '../../../src/broker/router.js';
import { SessionRegistry } from '../../../src/broker/sessions.js';
import { BrokerStats } from '../../../src/broker/stats.js';
import { SubscriptionIndex } from '../../../src/broker/subscription-index.js';
import type { Message } from '../../../src/model/message.js';
import type { Subscription } from '../../../src/model/subscription.js';
import type { StoreOp } from '../../../src/persistence/types.js';
import type { QoS } from '../../../src/protocol/types.js';

interface Sent {
  topic: string;
  qos: QoS;
  retain: boolean;
  ids: readonly number[] | undefined;
}

function link(): SessionLink & { sent: Sent[] } {
  const sent: Sent[] = [];
  return {
    sent,
    sendAtMostOnce(message, retain, route) {
      sent.push({ topic: message.topic, qos: 0, retain, ids: route.subscriptionIds });
      return SendResult.sent;
    },
    sendFlight(flight: OutgoingFlight) {
      sent.push({ topic: flight.message.topic, qos: flight.qos, retain: flight.retain, ids: flight.route.subscriptionIds });
      return SendResult.sent;
    },
    sendPubrel() {},
  };
}

function setup(options: Partial<BrokerOptions> = {}, plugins: BrokerPlugin[] = []) {
  const opts = { ...DEFAULT_BROKER_OPTIONS, ...options };
  const index = new SubscriptionIndex('round-robin');
  const retained = new RetainedMessages();
  const ops: StoreOp[] = [];
  const journal = new Journal(() => undefined);
  const stats = new BrokerStats();
  const router = new Router(index, retained, journal, opts, stats, new Hooks(plugins, true), silentLogger, undefined);
  const sessions = new SessionRegistry(index, opts.maxInflight, opts.maxQueuedMessages, opts.queueFullPolicy);
  const take = (): StoreOp[] => ops.splice(0).concat(journal.take());
  const client = (clientId: string, ...subscriptions: Subscription[]) => {
    const session = sessions.create(clientId);
    session.identity = { clientId, username: clientId, remoteAddress: undefined, listener: 'tcp' };
    const l = link();
    session.link = l;
    for (const s of subscriptions) {
      session.setSubscription(s);
      index.subscribe(session, s);
    }
    return { session, sent: l.sent };
  };
  return { router, retained, stats, client, take };
}

function sub(topicFilter: string, qos: QoS, extra: Partial<Subscription> = {}): Subscription {
  const shared = /^\$share\/([^/]+)\/(.*)$/.exec(topicFilter);
  return { topicFilter, matchFilter: shared?.[2] ?? topicFilter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0, ...(shared ? { shareGroup: shared[1]! } : {}), ...extra };
}

function msg(topic: string, qos: QoS, origin = 'publisher', retain = false, payload = 'x'): Message {
  return createMessage(topic, Buffer.from(payload), qos, retain, undefined, origin, Date.now());
}

describe('Router.route', () => {
  test('[MQTT-3.3.5-1] one delivery per session at the highest QoS of its overlapping subscriptions, capped by the message QoS', () => {
    const { router, client } = setup();
    const a = client('a', sub('s/+', 0), sub('s/#', 2, { subscriptionId: 7 }));
    const b = client('b', sub('s/x', 1));
    assert.equal(router.route(msg('s/x', 1)), 2);
    assert.deepEqual(a.sent, [{ topic: 's/x', qos: 1, retain: false, ids: [7] }]);
    assert.deepEqual(b.sent.map((s) => s.qos), [1]);
    router.route(msg('s/x', 2));
    assert.deepEqual(a.sent.map((s) => s.qos), [1, 2]);
    assert.deepEqual(b.sent.map((s) => s.qos), [1, 1]);
  });

  test('[MQTT-3.8.3-3] No Local: not sent back to the publisher; [MQTT-3.3.1-12] Retain As Published keeps RETAIN', () => {
    const { router, client } = setup();
    const me = client('me', sub('n/#', 1, { noLocal: true }));
    const other = client('other', sub('n/#', 1, { retainAsPublished: true }));
    router.route(msg('n/1', 1, 'me', true));
    assert.deepEqual(me.sent, []);
    assert.deepEqual(other.sent.map((s) => s.retain), [true]);
    router.route(msg('n/2', 1, 'other', true));
    assert.deepEqual(me.sent.map((s: Sent) => [s.topic, s.retain]), [['n/2', false]], '[MQTT-3.3.1-9] live delivery RETAIN=0');
  });

  test('MQTT 5 4.8.2: a shared group gets each message once, members in turn; a member that goes away hands its QoS 1 messages on', () => {
    const { router, client } = setup();
    const m1 = client('m1', sub('$share/g/w/#', 1));
    const m2 = client('m2', sub('$share/g/w/#', 1));
    for (let i = 0; i < 4; i++) router.route(msg(`w/${i}`, 1));
    assert.equal(m1.sent.length + m2.sent.length, 4);
    assert.equal(m1.sent.length, 2);
    // m1 never acknowledged: its flights go to m2 when it leaves.
    m1.session.link = undefined;
    router.handOn(m1.session, true);
    assert.equal(m2.sent.length, 4);
  });

  test('retained: stored and journaled; cleared by an empty payload; the limit drops new (counted) or evicts the oldest', () => {
    const { router, retained, stats, take } = setup({ maxRetainedMessages: 2 });
    router.route(msg('r/1', 1, 'p', true, 'one'));
    router.route(msg('r/2', 1, 'p', true, 'two'));
    router.route(msg('r/3', 1, 'p', true, 'three'));
    assert.deepEqual(retained.all().map((m) => m.topic).sort(), ['r/1', 'r/2']);
    assert.equal(stats.droppedRetainedFull, 1);
    assert.deepEqual(take().map((op) => op.op), ['putRetained', 'putRetained']);
    router.route(msg('r/1', 0, 'p', true, ''));
    assert.equal(retained.has('r/1'), false);
    assert.deepEqual(take(), [{ op: 'deleteRetained', topic: 'r/1' }]);

    const evicting = setup({ maxRetainedMessages: 1, retainedFullPolicy: 'drop-oldest' });
    evicting.router.route(msg('e/1', 0, 'p', true));
    evicting.router.route(msg('e/2', 0, 'p', true));
    assert.deepEqual(evicting.retained.all().map((m) => m.topic), ['e/2']);
    assert.deepEqual(evicting.take().map((op) => op.op), ['putRetained', 'deleteRetained', 'putRetained']);
  });

  test('clearRetained goes through the journal (so a restart does not bring the message back); $SYS topics never touch the store', () => {
    const { router, take } = setup();
    router.route(msg('c/1', 0, 'p', true));
    router.route(msg('$SYS/x', 0, '', true));
    take();
    assert.equal(router.clearRetained('c/1'), true);
    assert.equal(router.clearRetained('c/1'), false);
    assert.equal(router.clearRetained('$SYS/x'), true);
    assert.deepEqual(take(), [{ op: 'deleteRetained', topic: 'c/1' }]);
  });

  test('sendRetained: RETAIN=1 at the effective QoS [MQTT-3.3.1-8]; an expired retained message is removed instead', () => {
    const { router, client, retained } = setup();
    router.route(msg('t/live', 2, 'p', true));
    const expired = createMessage('t/old', Buffer.from('x'), 1, true, { messageExpiryInterval: 1 }, 'p', Date.now() - 5000);
    router.route(expired);
    const s = client('s');
    router.sendRetained(s.session, sub('t/#', 1), Date.now());
    assert.deepEqual(s.sent.map((m) => [m.topic, m.qos, m.retain]), [['t/live', 1, true]]);
    assert.equal(retained.has('t/old'), false);
  });

  test('ACL read rules: a session whose client may not receive the topic is skipped', () => {
    const deny: BrokerPlugin = { name: 'no-secret', authorizeReceive: (client, topic) => !(client.clientId === 'b' && topic.startsWith('secret/')) };
    const { router, client } = setup({}, [deny]);
    const a = client('a', sub('secret/#', 0));
    const b = client('b', sub('secret/#', 0));
    assert.equal(router.route(msg('secret/1', 0)), 1);
    assert.equal(a.sent.length, 1);
    assert.equal(b.sent.length, 0);
  });

  test('a full queue drops and counts: the session and the broker counters agree', () => {
    const { router, client, stats } = setup({ maxQueuedMessages: 2, maxInflight: 1 });
    const s = client('slow', sub('q/#', 1));
    for (let i = 0; i < 5; i++) router.route(msg(`q/${i}`, 1));
    assert.equal(s.sent.length, 1, 'one in flight');
    assert.equal(s.session.queuedCount, 2);
    assert.equal(s.session.droppedQueueFull, 2);
    assert.equal(stats.droppedQueueFull, 2);
    assert.equal(router.deliverTo(s.session, msg('q/x', 1), plainRoute(1)), false);
    assert.equal(stats.droppedQueueFull, 3);
  });
});
