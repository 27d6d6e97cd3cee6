/** Inbound PUBLISH: checks, authorization, then routing and the acknowledgement its QoS asks for. */
import { isUtf8 } from 'node:buffer';
import { ProtocolViolationError } from '../../protocol/errors.js';
import { ReasonCode } from '../../protocol/reason-codes.js';
import { encodeShortAck } from '../../protocol/encoder.js';
import type { PublishPacket } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { Core } from '../context.js';
import { createMessage, ownedCopy } from '../messages.js';
import { PublishRefusal, type Outcome } from '../outcomes.js';
import type { Session } from '../session.js';
import { levelCount } from './subscribe.js';

/** Handles an inbound PUBLISH: checks it, then routes and acknowledges it (now, or when plugins answer). */
export function handlePublish(core: Core, conn: Connection, session: Session, packet: PublishPacket): void {
  const { stats, options } = core;
  stats.messagesReceived++;
  stats.messagesReceivedByQos[packet.qos]++;
  const qos = packet.qos;
  let topic = packet.topic;
  if (conn.version === 5) {
    const props = packet.properties;
    if (props !== undefined) {
      if (props.topicAlias !== undefined) topic = conn.resolveTopicAlias(topic, props.topicAlias);
      // [MQTT-3.3.4-6] a client never sends a Subscription Identifier.
      if (props.subscriptionIdentifiers !== undefined) throw new ProtocolViolationError('PUBLISH from a client with a Subscription Identifier [MQTT-3.3.4-6]');
    }
    if (qos > options.maxQoS) {
      // [MQTT-3.2.2-11] a QoS above the advertised Maximum QoS is a protocol error (0x9B).
      throw new ProtocolViolationError(`PUBLISH with QoS ${qos} above Maximum QoS ${options.maxQoS}`, ReasonCode.qosNotSupported);
    }
    if (packet.retain && !options.retainAvailable) {
      // [MQTT-3.2.2-14] retained PUBLISH when Retain Available is 0.
      throw new ProtocolViolationError('retained PUBLISH, but retained messages are not available', ReasonCode.retainNotSupported);
    }
    if (options.validateUtf8Payload && props?.payloadFormatIndicator === 1 && !isUtf8(packet.payload)) {
      if (qos === 0) throw new ProtocolViolationError('payload declared UTF-8 is not valid UTF-8', ReasonCode.payloadFormatInvalid);
      refuse(conn, session, packet, PublishRefusal.payloadFormat);
      return;
    }
  }
  // Cheap guards first: UTF-8 is at most 3 bytes per UTF-16 unit, and n levels need n - 1 slashes.
  if ((topic.length * 3 > options.maxTopicLength && Buffer.byteLength(topic) > options.maxTopicLength) || (topic.length >= options.maxTopicLevels && levelCount(topic) > options.maxTopicLevels)) {
    // A topic beyond our limits: MQTT 5 says why (0x90); 3.1.1 can only drop it (acknowledged, logged).
    stats.limitRefusals++;
    core.logger.info({ clientId: conn.clientId, topic: topic.slice(0, 200), limit: 'maxTopicLevels/maxTopicLength' }, 'publish refused: topic beyond limits');
    refuse(conn, session, packet, PublishRefusal.topicBeyondLimits);
    return;
  }
  if (options.maxPublishRate > 0 || options.maxPublishBytesRate > 0) conn.throttlePublish(packet.payload.length);
  if (qos === 2 && conn.version === 5) {
    const packetId = packet.packetId as number;
    if (!session.incomingQos2.has(packetId) && session.incomingQos2.size >= options.receiveMaximum) {
      // [MQTT-3.3.4-9] more unacknowledged QoS 2 PUBLISH than our Receive Maximum.
      throw new ProtocolViolationError(`more than ${options.receiveMaximum} unacknowledged QoS 2 messages`, ReasonCode.receiveMaximumExceeded);
    }
  }
  if (!core.hooks.checksPublish) {
    accept(core, conn, session, packet, topic);
    return;
  }
  const allowed = core.hooks.authorizePublish(conn.identity!, topic, qos, packet.retain);
  if (typeof allowed === 'boolean') {
    if (allowed) accept(core, conn, session, packet, topic);
    else deny(core, conn, session, packet, topic);
    return;
  }
  // An asynchronous authorization: later packets wait so the order of messages is kept.
  conn.holdPackets();
  allowed.then(
    (ok) => {
      if (conn.isClosed()) return;
      try {
        if (ok) accept(core, conn, session, packet, topic);
        else deny(core, conn, session, packet, topic);
      } catch (error) {
        conn.fail(error);
        return;
      }
      conn.releaseHold();
    },
    (error: unknown) => {
      core.logger.error({ clientId: conn.clientId, topic, err: error }, 'publish authorization hook failed');
      if (!conn.isClosed()) {
        deny(core, conn, session, packet, topic);
        conn.releaseHold();
      }
    },
  );
}

/** Routes an accepted PUBLISH and acknowledges it by its QoS, once what it changed in the store is durable. */
function accept(core: Core, conn: Connection, session: Session, packet: PublishPacket, topic: string): void {
  const qos = packet.qos;
  const journal = core.turn.journal;
  const opsBefore = journal === undefined ? 0 : journal.size;
  // Payloads that may outlive this read (queued, inflight, retained) are copied out of the socket
  // chunk; a retained one, kept for long, into memory of its own (ownedCopy: no shared pool slab).
  const payload = packet.retain ? ownedCopy(packet.payload) : qos > 0 ? Buffer.from(packet.payload) : packet.payload;
  let delivered = -1;
  // [MQTT-4.3.3-2] a QoS 2 PUBLISH whose id awaits PUBREL is a duplicate: acknowledged, not delivered again.
  if (qos !== 2 || session.beginIncomingQos2(packet.packetId as number)) {
    delivered = core.router.route(createMessage(topic, payload, qos, packet.retain, packet.properties, conn.clientId, Date.now()), conn.identity);
  }
  if (qos === 0) return;
  // Whatever this message changed in the store (a persistent session's copy, a retained message, a
  // QoS 2 id) must be durable before it is acknowledged [MQTT-4.3.2-2] [MQTT-4.3.3-2].
  const durable = journal !== undefined && journal.size !== opsBefore && core.options.durableAcks;
  const packetId = packet.packetId as number;
  const type = qos === 1 ? 'puback' : 'pubrec';
  // MQTT 5 may say no one was subscribed (0x10): not when it went to subscribers on other nodes.
  if (delivered === 0 && conn.version === 5 && core.cluster?.bus.wantedElsewhere(topic) !== true) conn.sendAck({ type, packetId, reasonCode: ReasonCode.noMatchingSubscribers }, durable);
  else conn.sendAck(encodeShortAck(type, packetId), durable);
}

/** A PUBLISH the plugins refused: logged, then answered as the outcome table says. */
function deny(core: Core, conn: Connection, session: Session, packet: PublishPacket, topic: string): void {
  core.stats.publishDenied++;
  core.logger.info({ clientId: conn.clientId, username: conn.username, topic, qos: packet.qos }, 'publish denied by authorization');
  refuse(conn, session, packet, PublishRefusal.notAuthorized);
}

/** Answers a refused PUBLISH: MQTT 5 gets the reason code; 3.1.x is acknowledged as if accepted (and the message dropped). */
function refuse(conn: Connection, session: Session, packet: PublishPacket, outcome: Outcome): void {
  if (packet.qos === 0) return;
  const reasonCode = conn.version === 5 ? outcome.v5 : outcome.v3;
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
