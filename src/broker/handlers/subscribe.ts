import type { Message } from '../../model/message.js';
import type { Subscription } from '../../model/subscription.js';
import type { QoS, SubscribePacket, UnsubscribePacket } from '../../protocol/types.js';
import type { Connection } from '../connection.js';
import type { BrokerContext } from '../context.js';
import type { Session } from '../session.js';

/** Handles SUBSCRIBE: stores each subscription, answers SUBACK, then sends matching retained messages. */
export function handleSubscribe(ctx: BrokerContext, conn: Connection, session: Session, packet: SubscribePacket): void {
  const reasonCodes: number[] = [];
  const retained: { message: Message; qos: QoS }[] = [];
  for (const request of packet.subscriptions) {
    // [MQTT-3.9.3-2] granted QoS may be lower than requested.
    const qos = (request.qos < ctx.options.maxQoS ? request.qos : ctx.options.maxQoS);
    const subscription: Subscription = {
      topicFilter: request.topicFilter,
      qos,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0,
    };
    // [MQTT-3.8.4-3] an identical filter replaces the existing subscription.
    session.setSubscription(subscription);
    ctx.router.subscribe(session, subscription);
    reasonCodes.push(qos);
    // [MQTT-3.3.1-6] retained messages matching the filter are sent to the new subscriber.
    for (const message of ctx.retained.match(request.topicFilter)) {
      retained.push({ message, qos: message.qos < qos ? message.qos : qos });
    }
  }
  // [MQTT-3.8.4-1] SUBACK with the same packet id; [MQTT-3.8.4-5] one code per filter in order.
  conn.send({ type: 'suback', packetId: packet.packetId, reasonCodes });
  // [MQTT-3.3.1-8] messages sent from the retained store carry RETAIN=1.
  for (const { message, qos } of retained) session.deliver(message, qos, true);
}

/** Handles UNSUBSCRIBE: removes each subscription and always answers UNSUBACK [MQTT-3.10.4-4/5]. */
export function handleUnsubscribe(ctx: BrokerContext, conn: Connection, session: Session, packet: UnsubscribePacket): void {
  for (const filter of packet.topicFilters) {
    // [MQTT-3.10.4-1] the filter is compared character by character with existing subscriptions.
    if (session.deleteSubscription(filter)) ctx.router.unsubscribe(session, filter);
  }
  conn.send({ type: 'unsuback', packetId: packet.packetId });
}
