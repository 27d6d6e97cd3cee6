import type { Message } from '../../model/message.js';
import type { Subscription } from '../../model/subscription.js';
import { ReasonCode, SUBACK_FAILURE } from '../../protocol/reason-codes.js';
import { parseSharedSubscription } from '../../protocol/topic.js';
import type { QoS, SubscribePacket, SubscriptionRequest, UnsubscribePacket } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { BrokerContext } from '../context.js';
import type { Maybe } from '../hooks.js';
import type { Session } from '../session.js';

/** Handles SUBSCRIBE: authorizes each filter, then applies the subscription (now, or when plugins answer). */
export function handleSubscribe(ctx: BrokerContext, conn: Connection, session: Session, packet: SubscribePacket): void {
  const identity = conn.identity!;
  let pending = false;
  const decisions = packet.subscriptions.map((request): Maybe<boolean> => {
    const answer = ctx.hooks.authorizeSubscribe(identity, request.topicFilter, request.qos);
    if (typeof answer !== 'boolean') pending = true;
    return answer;
  });
  if (!pending) {
    applySubscribe(ctx, conn, session, packet, decisions as boolean[]);
    return;
  }
  // Asynchronous authorization: later packets wait, so SUBACK and deliveries keep their order.
  conn.holdPackets();
  Promise.all(decisions.map(async (d) => d)).then(
    (allowed) => {
      if (conn.isClosed()) return;
      try {
        applySubscribe(ctx, conn, session, packet, allowed);
      } catch (error) {
        conn.fail(error);
        return;
      }
      conn.releaseHold();
    },
    (error: unknown) => {
      ctx.logger.error({ clientId: conn.clientId, err: error }, 'subscribe authorization hook failed');
      if (conn.isClosed()) return;
      applySubscribe(ctx, conn, session, packet, packet.subscriptions.map(() => false));
      conn.releaseHold();
    },
  );
}

/** Stores each allowed subscription, answers SUBACK, then sends matching retained messages. */
function applySubscribe(ctx: BrokerContext, conn: Connection, session: Session, packet: SubscribePacket, allowed: boolean[]): void {
  const v5 = conn.version === 5;
  const reasonCodes: number[] = [];
  const retained: { message: Message; subscription: Subscription }[] = [];
  const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0];
  const journal = ctx.journal;
  const changesBefore = journal === undefined ? 0 : journal.size;
  for (let i = 0; i < packet.subscriptions.length; i++) {
    const request = packet.subscriptions[i] as SubscriptionRequest;
    const refusal = allowed[i] === true ? refusalOf(ctx, session, request, subscriptionId) : ReasonCode.notAuthorized;
    if (refusal === ReasonCode.notAuthorized) ctx.stats.subscribeDenied++;
    else if (refusal === ReasonCode.quotaExceeded || refusal === ReasonCode.topicFilterInvalid) ctx.stats.limitRefusals++;
    if (refusal !== undefined) {
      reasonCodes.push(v5 ? refusal : SUBACK_FAILURE);
      ctx.logger.info({ clientId: conn.clientId, topicFilter: request.topicFilter, reasonCode: refusal }, 'subscription refused');
      continue;
    }
    const shared = parseSharedSubscription(request.topicFilter);
    // [MQTT-3.9.3-2] granted QoS may be lower than requested.
    const qos = request.qos < ctx.options.maxQoS ? request.qos : ctx.options.maxQoS;
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
    if (previous !== undefined && previous.shareGroup !== subscription.shareGroup) ctx.router.unsubscribe(session, previous);
    session.setSubscription(subscription);
    ctx.router.subscribe(session, subscription);
    reasonCodes.push(qos);
    // [MQTT-3.3.1-6] retained messages matching the filter are sent to the new subscriber, as Retain
    // Handling says (MQTT 5 [MQTT-3.3.1-9..11]); never for a shared subscription (MQTT 5 section 4.8.2).
    if (shared !== undefined || !ctx.options.retainAvailable) continue;
    if (subscription.retainHandling === 2 || (subscription.retainHandling === 1 && previous !== undefined)) continue;
    for (const message of ctx.retained.match(subscription.matchFilter)) retained.push({ message, subscription });
  }
  session.journal?.putSession(session);
  // [MQTT-3.8.4-1] SUBACK with the same packet id; [MQTT-3.8.4-5] one code per filter in order.
  // In a cluster a new filter reaches the other nodes with the next commit: SUBACK waits for it, so
  // a message published on another node after SUBACK finds this subscription.
  const suback = { type: 'suback', packetId: packet.packetId, reasonCodes } as const;
  if (ctx.cluster !== undefined) conn.sendAck(suback, journal !== undefined && journal.size !== changesBefore);
  else conn.send(suback);
  // [MQTT-3.3.1-8] messages sent from the retained store carry RETAIN=1.
  const now = Date.now();
  for (const { message, subscription } of retained) {
    if (message.expiresAt !== undefined && now >= message.expiresAt) {
      ctx.retained.delete(message.topic);
      continue;
    }
    const qos: QoS = message.qos < subscription.qos ? message.qos : subscription.qos;
    session.deliver(message, qos, true, subscription.subscriptionId === undefined ? undefined : [subscription.subscriptionId]);
  }
}

/** Why a subscription request is refused (an MQTT 5 reason code), or undefined when it is accepted. */
function refusalOf(ctx: BrokerContext, session: Session, request: SubscriptionRequest, subscriptionId: number | undefined): number | undefined {
  const filter = request.topicFilter;
  const options = ctx.options;
  const shared = filter.startsWith('$share/');
  // Levels are those of the filter matched against topics: `$share/{group}/` is not counted.
  const levels = levelCount(filter) - (shared ? 2 : 0);
  if (Buffer.byteLength(filter) > options.maxTopicLength || levels > options.maxTopicLevels) return ReasonCode.topicFilterInvalid;
  if (!session.subscriptions.has(filter) && session.subscriptions.size >= options.maxSubscriptionsPerClient) return ReasonCode.quotaExceeded;
  if (shared && !ctx.options.sharedSubscriptionAvailable) return ReasonCode.sharedSubscriptionsNotSupported;
  if (!ctx.options.wildcardSubscriptionAvailable && (filter.includes('+') || filter.includes('#'))) return ReasonCode.wildcardSubscriptionsNotSupported;
  if (subscriptionId !== undefined && !ctx.options.subscriptionIdentifiersAvailable) return ReasonCode.subscriptionIdentifiersNotSupported;
  return undefined;
}

/** Handles UNSUBSCRIBE: removes each subscription and always answers UNSUBACK [MQTT-3.10.4-4/5]. */
export function handleUnsubscribe(ctx: BrokerContext, conn: Connection, session: Session, packet: UnsubscribePacket): void {
  const reasonCodes: number[] = [];
  for (const filter of packet.topicFilters) {
    // [MQTT-3.10.4-1] the filter is compared character by character with existing subscriptions.
    const removed = session.deleteSubscription(filter);
    if (removed !== undefined) ctx.router.unsubscribe(session, removed);
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
