import { isUtf8 } from 'node:buffer';
import type { Message } from '../../model/message.js';
import { ProtocolViolationError } from '../../protocol/errors.js';
import { ReasonCode } from '../../protocol/reason-codes.js';
import type { Properties, PublishPacket } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { BrokerContext } from '../context.js';
import type { Session } from '../session.js';
import { levelCount } from './subscribe.js';

/** Handles an inbound PUBLISH: checks it, routes it and acknowledges by its QoS. */
export function handlePublish(ctx: BrokerContext, conn: Connection, session: Session, packet: PublishPacket): void {
  ctx.stats.messagesReceived++;
  ctx.stats.messagesReceivedByQos[packet.qos]++;
  const qos = packet.qos;
  const v5 = conn.version === 5;
  let topic = packet.topic;
  let properties: Properties | undefined;
  let expiresAt: number | undefined;
  const now = Date.now();
  if (v5) {
    const props = packet.properties;
    if (props !== undefined) {
      if (props.topicAlias !== undefined) topic = resolveTopicAlias(ctx, conn, topic, props.topicAlias);
      // [MQTT-3.3.4-6] a client never sends a Subscription Identifier.
      if (props.subscriptionIdentifiers !== undefined) throw new ProtocolViolationError('PUBLISH from a client with a Subscription Identifier [MQTT-3.3.4-6]');
      if (props.messageExpiryInterval !== undefined) expiresAt = now + props.messageExpiryInterval * 1000;
      properties = forwardedProperties(props);
    }
    if (qos > ctx.options.maxQoS) {
      // [MQTT-3.2.2-11] a QoS above the advertised Maximum QoS is a protocol error (0x9B).
      throw new ProtocolViolationError(`PUBLISH with QoS ${qos} above Maximum QoS ${ctx.options.maxQoS}`, ReasonCode.qosNotSupported);
    }
    if (packet.retain && !ctx.options.retainAvailable) {
      // [MQTT-3.2.2-14] retained PUBLISH when Retain Available is 0.
      throw new ProtocolViolationError('retained PUBLISH, but retained messages are not available', ReasonCode.retainNotSupported);
    }
    if (ctx.options.validateUtf8Payload && props?.payloadFormatIndicator === 1 && !isUtf8(packet.payload)) {
      if (qos === 0) throw new ProtocolViolationError('payload declared UTF-8 is not valid UTF-8', ReasonCode.payloadFormatInvalid);
      acknowledge(conn, session, packet, ReasonCode.payloadFormatInvalid);
      return;
    }
  }

  const options = ctx.options;
  // Cheap guards first: UTF-8 is at most 3 bytes per UTF-16 unit, and n levels need n - 1 slashes.
  if ((topic.length * 3 > options.maxTopicLength && Buffer.byteLength(topic) > options.maxTopicLength) || (topic.length >= options.maxTopicLevels && levelCount(topic) > options.maxTopicLevels)) {
    // A topic beyond our limits: MQTT 5 says why (0x90); 3.1.1 can only drop it (acknowledged, logged).
    ctx.stats.limitRefusals++;
    ctx.logger.info({ clientId: conn.clientId, topic: topic.slice(0, 200), limit: 'maxTopicLevels/maxTopicLength' }, 'publish refused: topic beyond limits');
    if (qos > 0) acknowledge(conn, session, packet, v5 ? ReasonCode.topicNameInvalid : 0);
    return;
  }
  if (options.maxPublishRate > 0 || options.maxPublishBytesRate > 0) conn.throttlePublish(packet.payload.length);
  if (qos === 2 && v5) {
    const packetId = packet.packetId as number;
    if (!session.incomingQos2.has(packetId) && session.incomingQos2.size >= ctx.options.receiveMaximum) {
      // [MQTT-3.3.4-9] more unacknowledged QoS 2 PUBLISH than our Receive Maximum.
      throw new ProtocolViolationError(`more than ${ctx.options.receiveMaximum} unacknowledged QoS 2 messages`, ReasonCode.receiveMaximumExceeded);
    }
  }
  if (!ctx.hooks.checksPublish) {
    route(ctx, conn, session, packet, topic, properties, expiresAt, now);
    return;
  }
  const allowed = ctx.hooks.authorizePublish(conn.identity!, topic, qos, packet.retain);
  if (typeof allowed === 'boolean') {
    if (allowed) route(ctx, conn, session, packet, topic, properties, expiresAt, now);
    else deny(ctx, conn, session, packet, topic);
    return;
  }
  // An asynchronous authorization: later packets wait so the order of messages is kept.
  conn.holdPackets();
  allowed.then(
    (ok) => {
      if (conn.isClosed()) return;
      try {
        if (ok) route(ctx, conn, session, packet, topic, properties, expiresAt, now);
        else deny(ctx, conn, session, packet, topic);
      } catch (error) {
        conn.fail(error);
        return;
      }
      conn.releaseHold();
    },
    (error: unknown) => {
      ctx.logger.error({ clientId: conn.clientId, topic, err: error }, 'publish authorization hook failed');
      if (!conn.isClosed()) {
        deny(ctx, conn, session, packet, topic);
        conn.releaseHold();
      }
    },
  );
}

/** Routes an accepted PUBLISH and acknowledges it by its QoS. */
function route(ctx: BrokerContext, conn: Connection, session: Session, packet: PublishPacket, topic: string, properties: Properties | undefined, expiresAt: number | undefined, now: number): void {
  const v5 = conn.version === 5;
  const qos = packet.qos;
  // Whatever this message changes in the store (a persistent session's copy, a retained message, a
  // QoS 2 id) must be durable before it is acknowledged.
  const journal = ctx.journal;
  const opsBefore = journal === undefined ? 0 : journal.size;
  if (qos === 2) {
    const packetId = packet.packetId as number;
    // [MQTT-4.3.3-2] a QoS 2 PUBLISH whose id awaits PUBREL is a duplicate: acknowledge, do not deliver again.
    let reasonCode = 0;
    if (session.beginIncomingQos2(packetId)) {
      const delivered = ctx.dispatch(toMessage(packet, topic, properties, expiresAt, conn.clientId, now, true));
      if (delivered === 0 && v5) reasonCode = ReasonCode.noMatchingSubscribers;
    }
    const durable = journal !== undefined && journal.size !== opsBefore && ctx.options.durableAcks;
    conn.sendAck(reasonCode === 0 ? { type: 'pubrec', packetId } : { type: 'pubrec', packetId, reasonCode }, durable);
    return;
  }
  // Payloads that may outlive this read (queued, inflight, retained) are copied out of the socket chunk.
  const delivered = ctx.dispatch(toMessage(packet, topic, properties, expiresAt, conn.clientId, now, qos === 1 || packet.retain));
  if (qos === 0) return;
  // [MQTT-4.3.2-2] PUBACK; MQTT 5 may say no one was subscribed (0x10).
  const packetId = packet.packetId as number;
  const reasonCode = delivered === 0 && v5 ? ReasonCode.noMatchingSubscribers : 0;
  const durable = journal !== undefined && journal.size !== opsBefore && ctx.options.durableAcks;
  conn.sendAck(reasonCode === 0 ? { type: 'puback', packetId } : { type: 'puback', packetId, reasonCode }, durable);
}

/**
 * A PUBLISH the plugins refused: MQTT 5 says so (0x87); MQTT 3.1.1 has no way to, so the message
 * is acknowledged and dropped, and the log says why.
 */
function deny(ctx: BrokerContext, conn: Connection, session: Session, packet: PublishPacket, topic: string): void {
  ctx.stats.publishDenied++;
  ctx.logger.info({ clientId: conn.clientId, username: conn.username, topic, qos: packet.qos }, 'publish denied by authorization');
  if (packet.qos === 0) return;
  acknowledge(conn, session, packet, conn.version === 5 ? ReasonCode.notAuthorized : 0);
}

function acknowledge(conn: Connection, session: Session, packet: PublishPacket, reasonCode: number): void {
  const packetId = packet.packetId as number;
  if (packet.qos === 1) conn.sendAck(reasonCode === 0 ? { type: 'puback', packetId } : { type: 'puback', packetId, reasonCode }, false);
  else if (reasonCode >= 0x80) {
    // A refused QoS 2 message ends its flow here: no PUBREL is expected for it.
    session.releaseIncomingQos2(packetId);
    conn.sendAck({ type: 'pubrec', packetId, reasonCode }, false);
  } else {
    // Accepted (3.1.1 denial included): the id waits for PUBREL like any QoS 2 message.
    session.beginIncomingQos2(packetId);
    conn.sendAck({ type: 'pubrec', packetId }, false);
  }
}

/** Resolves or records an MQTT 5 Topic Alias (client to server). */
function resolveTopicAlias(ctx: BrokerContext, conn: Connection, topic: string, alias: number): string {
  if (alias === 0 || alias > ctx.options.topicAliasMaximum) {
    // [MQTT-3.3.2-9] [MQTT-3.3.2-10] an alias outside 1..Topic Alias Maximum is invalid (0x94).
    throw new ProtocolViolationError(`topic alias ${alias} outside 1..${ctx.options.topicAliasMaximum}`, ReasonCode.topicAliasInvalid);
  }
  conn.aliasIn ??= [];
  if (topic.length > 0) {
    conn.aliasIn[alias] = topic;
    return topic;
  }
  const known = conn.aliasIn[alias];
  if (known === undefined) throw new ProtocolViolationError(`topic alias ${alias} used before it was set`);
  return known;
}

/** The properties forwarded to subscribers: all but the per-hop ones (alias, expiry kept as expiresAt). */
function forwardedProperties(props: Properties): Properties | undefined {
  let out: Properties | undefined;
  for (const key of Object.keys(props) as (keyof Properties)[]) {
    if (key === 'topicAlias' || key === 'messageExpiryInterval' || key === 'subscriptionIdentifiers') continue;
    out ??= {};
    (out as Record<string, unknown>)[key] = props[key];
  }
  return out;
}

function toMessage(packet: PublishPacket, topic: string, properties: Properties | undefined, expiresAt: number | undefined, origin: string, now: number, copyPayload: boolean): Message {
  const message: Message = {
    topic,
    payload: copyPayload ? Buffer.from(packet.payload) : packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    origin,
    receivedAt: now,
    clusterId: undefined,
  };
  if (properties !== undefined) message.properties = properties;
  if (expiresAt !== undefined) message.expiresAt = expiresAt;
  return message;
}
