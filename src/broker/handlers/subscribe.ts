/** Inbound SUBSCRIBE and UNSUBSCRIBE: authorization, limits, the subscription index, SUBACK, then retained messages. */
import type { Subscription } from '../../model/subscription.js';
import { ReasonCode } from '../../protocol/reason-codes.js';
import { parseSharedSubscription } from '../../protocol/topic.js';
import type { QoS, SubscribePacket, SubscriptionRequest, UnsubscribePacket } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { Core } from '../context.js';
import type { Maybe } from '../hooks.js';
import { subackCode } from '../outcomes.js';
import type { Session } from '../session.js';

/** Handles SUBSCRIBE: authorizes each filter, then applies the subscription (now, or when plugins answer). */
export function handleSubscribe(core: Core, conn: Connection, session: Session, packet: SubscribePacket): void {
  const identity = conn.identity!;
  let pending = false;
  const decisions = packet.subscriptions.map((request): Maybe<boolean> => {
    const answer = core.hooks.authorizeSubscribe(identity, request.topicFilter, request.qos);
    if (typeof answer !== 'boolean') pending = true;
    return answer;
  });
  if (!pending) {
    applySubscribe(core, conn, session, packet, decisions as boolean[]);
    return;
  }
  // Asynchronous authorization: later packets wait, so SUBACK and deliveries keep their order.
  conn.holdPackets();
  Promise.all(decisions.map(async (d) => d)).then(
    (allowed) => {
      if (conn.isClosed()) return;
      try {
        applySubscribe(core, conn, session, packet, allowed);
      } catch (error) {
        conn.fail(error);
        return;
      }
      conn.releaseHold();
    },
    (error: unknown) => {
      core.logger.error({ clientId: conn.clientId, err: error }, 'subscribe authorization hook failed');
      if (conn.isClosed()) return;
      applySubscribe(core, conn, session, packet, packet.subscriptions.map(() => false));
      conn.releaseHold();
    },
  );
}

/** Stores each allowed subscription, answers SUBACK, then sends matching retained messages. */
function applySubscribe(core: Core, conn: Connection, session: Session, packet: SubscribePacket, allowed: boolean[]): void {
  const reasonCodes: number[] = [];
  const retained: Subscription[] = [];
  const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0];
  const journal = core.turn.journal;
  const changesBefore = journal === undefined ? 0 : journal.size;
  for (let i = 0; i < packet.subscriptions.length; i++) {
    const request = packet.subscriptions[i] as SubscriptionRequest;
    const refusal = allowed[i] === true ? refusalOf(core, session, request, subscriptionId) : ReasonCode.notAuthorized;
    if (refusal === ReasonCode.notAuthorized) core.stats.subscribeDenied++;
    else if (refusal === ReasonCode.quotaExceeded || refusal === ReasonCode.topicFilterInvalid) core.stats.limitRefusals++;
    if (refusal !== undefined) {
      reasonCodes.push(subackCode(conn.version, refusal));
      core.logger.info({ clientId: conn.clientId, topicFilter: request.topicFilter, reasonCode: refusal }, 'subscription refused');
      continue;
    }
    const shared = parseSharedSubscription(request.topicFilter);
    // [MQTT-3.9.3-2] granted QoS may be lower than requested.
    const qos = request.qos < core.options.maxQoS ? request.qos : core.options.maxQoS;
    const subscription: Subscription = {
      topicFilter: request.topicFilter,
      matchFilter: shared?.filter ?? request.topicFilter,
      qos,
      noLocal: request.noLocal ?? false,
      retainAsPublished: request.retainAsPublished ?? false,
      retainHandling: request.retainHandling ?? 0,
    };
    if (subscriptionId !== undefined) subscription.subscriptionId = subscriptionId;
    if (shared !== undefined) subscription.shareGroup = shared.group;
    // [MQTT-3.8.4-3] an identical filter replaces the existing subscription.
    const previous = session.subscriptions.get(request.topicFilter);
    if (previous !== undefined && previous.shareGroup !== subscription.shareGroup) core.index.unsubscribe(session, previous);
    session.setSubscription(subscription);
    core.index.subscribe(session, subscription);
    reasonCodes.push(qos);
    // [MQTT-3.3.1-6] retained messages matching the filter are sent to the new subscriber, as Retain
    // Handling says (MQTT 5 [MQTT-3.3.1-9..11]); never for a shared subscription (MQTT 5 section 4.8.2).
    if (shared !== undefined || !core.options.retainAvailable) continue;
    if (subscription.retainHandling === 2 || (subscription.retainHandling === 1 && previous !== undefined)) continue;
    retained.push(subscription);
  }
  session.journal?.putSession(session);
  // [MQTT-3.8.4-1] SUBACK with the same packet id; [MQTT-3.8.4-5] one code per filter in order.
  // In a cluster a new filter reaches the other nodes with the next commit: SUBACK waits for it, so
  // a message published on another node after SUBACK finds this subscription.
  const suback = { type: 'suback', packetId: packet.packetId, reasonCodes } as const;
  if (core.cluster !== undefined) conn.sendAck(suback, journal !== undefined && journal.size !== changesBefore);
  else conn.send(suback);
  // [MQTT-3.3.1-8] messages sent from the retained store carry RETAIN=1, after the SUBACK.
  const now = Date.now();
  for (const subscription of retained) core.router.sendRetained(session, subscription, now);
  if (core.hooks.observesSubscriptions) {
    const identity = conn.identity!;
    for (let i = 0; i < packet.subscriptions.length; i++) {
      const code = reasonCodes[i] as number;
      if (code < 0x80) core.hooks.subscribed(identity, (packet.subscriptions[i] as SubscriptionRequest).topicFilter, code as QoS);
    }
  }
}

/** Why a subscription request is refused (an MQTT 5 reason code), or undefined when it is accepted. */
function refusalOf(core: Core, session: Session, request: SubscriptionRequest, subscriptionId: number | undefined): number | undefined {
  const filter = request.topicFilter;
  const options = core.options;
  const shared = filter.startsWith('$share/');
  // Levels are those of the filter matched against topics: `$share/{group}/` is not counted.
  const levels = levelCount(filter) - (shared ? 2 : 0);
  if (Buffer.byteLength(filter) > options.maxTopicLength || levels > options.maxTopicLevels) return ReasonCode.topicFilterInvalid;
  if (!session.subscriptions.has(filter) && session.subscriptions.size >= options.maxSubscriptionsPerClient) return ReasonCode.quotaExceeded;
  if (shared && !core.options.sharedSubscriptionAvailable) return ReasonCode.sharedSubscriptionsNotSupported;
  if (!core.options.wildcardSubscriptionAvailable && (filter.includes('+') || filter.includes('#'))) return ReasonCode.wildcardSubscriptionsNotSupported;
  if (subscriptionId !== undefined && !core.options.subscriptionIdentifiersAvailable) return ReasonCode.subscriptionIdentifiersNotSupported;
  return undefined;
}

/** Handles UNSUBSCRIBE: removes each subscription and always answers UNSUBACK [MQTT-3.10.4-4/5]. */
export function handleUnsubscribe(core: Core, conn: Connection, session: Session, packet: UnsubscribePacket): void {
  const reasonCodes: number[] = [];
  for (const filter of packet.topicFilters) {
    // [MQTT-3.10.4-1] the filter is compared character by character with existing subscriptions.
    const removed = session.deleteSubscription(filter);
    if (removed !== undefined) {
      core.index.unsubscribe(session, removed);
      if (core.hooks.observesSubscriptions) core.hooks.unsubscribed(conn.identity!, filter);
    }
    reasonCodes.push(removed !== undefined ? ReasonCode.success : ReasonCode.noSubscriptionExisted);
  }
  session.journal?.putSession(session);
  if (conn.version === 5) conn.send({ type: 'unsuback', packetId: packet.packetId, reasonCodes });
  else conn.send({ type: 'unsuback', packetId: packet.packetId });
}

/** Number of levels of a topic name or filter. */
export function levelCount(topic: string): number {
  let levels = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 0x2f) levels++;
  return levels;
}
