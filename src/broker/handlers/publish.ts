import type { Message } from '../../model/message.js';
import type { PublishPacket } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { BrokerContext } from '../context.js';
import type { Session } from '../session.js';

/** Handles an inbound PUBLISH: routes it and acknowledges by its QoS. */
export function handlePublish(ctx: BrokerContext, conn: Connection, session: Session, packet: PublishPacket): void {
  ctx.stats.messagesReceived++;
  const qos = packet.qos;
  if (qos === 2) {
    const packetId = packet.packetId as number;
    // [MQTT-4.3.3-2] a QoS 2 PUBLISH whose id awaits PUBREL is a duplicate: acknowledge, do not deliver again.
    if (session.beginIncomingQos2(packetId)) {
      ctx.dispatch(toMessage(packet, conn.clientId, true));
    }
    conn.send({ type: 'pubrec', packetId });
    return;
  }
  // Payloads that may outlive this read (queued, inflight, retained) are copied out of the socket chunk.
  ctx.dispatch(toMessage(packet, conn.clientId, qos === 1 || packet.retain));
  if (qos === 1) conn.send({ type: 'puback', packetId: packet.packetId as number }); // [MQTT-4.3.2-2]
}

function toMessage(packet: PublishPacket, origin: string, copyPayload: boolean): Message {
  return {
    topic: packet.topic,
    payload: copyPayload ? Buffer.from(packet.payload) : packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    origin,
    receivedAt: Date.now(),
  };
}
