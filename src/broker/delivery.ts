/** How a message reaches one session: the Route its subscriptions grant, the QoS and RETAIN flag it is sent with, the deliveries a session holds, and what it needs from its connection to send them. */
import type { Message } from '../model/message.js';
import type { Subscription } from '../model/subscription.js';
import type { QoS } from '../protocol/types.js';

/**
 * What a session's matching subscription(s) grant a message: shared and immutable (the router caches
 * one per session and topic), so routing a message allocates nothing for it.
 */
export interface Route {
  /** The highest QoS granted [MQTT-3.3.5-1]. */
  readonly qos: QoS;
  /** MQTT 5 Retain As Published on a matching subscription [MQTT-3.3.1-12]. */
  readonly retainAsPublished: boolean;
  /** MQTT 5 Subscription Identifiers of every matching subscription [MQTT-3.3.4-3]. */
  readonly subscriptionIds: readonly number[] | undefined;
  /** The shared group (SharedGroup.key) the delivery came through, if any. */
  readonly shareKey: string | undefined;
}

/** A route with nothing but a QoS: deliveries whose subscription is not known here (forwarded between cluster nodes). */
export function plainRoute(qos: QoS, subscriptionIds?: readonly number[], shareKey?: string): Route {
  return { qos, retainAsPublished: false, subscriptionIds, shareKey };
}

/** The route one subscription grants (`shareKey`: it is a member of that shared group). */
export function routeOf(subscription: Subscription, shareKey?: string): Route {
  return {
    qos: subscription.qos,
    retainAsPublished: subscription.retainAsPublished,
    subscriptionIds: subscription.subscriptionId === undefined ? undefined : [subscription.subscriptionId],
    shareKey,
  };
}

/** The route of several overlapping subscriptions of one session: the highest QoS, any Retain As Published, every identifier. */
export function aggregateRoute(subscriptions: readonly Subscription[]): Route {
  let qos: QoS = 0;
  let retainAsPublished = false;
  let subscriptionIds: number[] | undefined;
  for (const s of subscriptions) {
    if (s.qos > qos) qos = s.qos;
    if (s.retainAsPublished) retainAsPublished = true;
    if (s.subscriptionId !== undefined) (subscriptionIds ??= []).push(s.subscriptionId);
  }
  return { qos, retainAsPublished, subscriptionIds, shareKey: undefined };
}

/** [MQTT-3.3.5-1] a message is delivered at the lower of its own QoS and the granted QoS. */
export function effectiveQos(message: Message, route: Route): QoS {
  return message.qos < route.qos ? message.qos : route.qos;
}

/**
 * The RETAIN flag of a live delivery: 0 [MQTT-3.3.1-9], unless the subscription asked for Retain
 * As Published (MQTT 5 [MQTT-3.3.1-12]).
 */
export function liveRetain(message: Message, route: Route): boolean {
  return route.retainAsPublished && message.retain;
}

/** A QoS 1/2 message sent to the client and not yet fully acknowledged. */
export interface OutgoingFlight {
  readonly packetId: number;
  readonly message: Message;
  readonly qos: 1 | 2;
  readonly retain: boolean;
  readonly route: Route;
  /** 'publish': waiting for PUBACK / PUBREC; 'pubrel': PUBREL sent, waiting for PUBCOMP. */
  state: 'publish' | 'pubrel';
  /** Position in the session's stored deliveries, when the session is persisted. */
  readonly seq: number | undefined;
}

/** A message waiting for a place in the inflight window (or for the client to come back). */
export interface QueuedDelivery {
  readonly message: Message;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly route: Route;
  /** Position in the session's stored deliveries, when the session is persisted. */
  seq?: number | undefined;
}

/** Outcome of handing a PUBLISH to a connection. */
export const SendResult = {
  /** Written (or queued for this turn's write). */
  sent: 0,
  /** QoS 0 dropped: the connection's write buffer is full. */
  bufferFull: 1,
  /** Larger than the client's Maximum Packet Size: discarded as if sent [MQTT-3.1.2-25]. */
  tooLarge: 2,
  /** Expired before it could be sent (MQTT 5 Message Expiry Interval). */
  expired: 3,
  /** The connection is gone. */
  offline: 4,
} as const;
/** One of SendResult. */
export type SendResult = (typeof SendResult)[keyof typeof SendResult];

/** What the session needs from an online connection to send packets. */
export interface SessionLink {
  /** Sends a QoS 0 PUBLISH now. */
  sendAtMostOnce(message: Message, retain: boolean, route: Route): SendResult;
  /**
   * Sends the PUBLISH of a QoS 1/2 flight (`dup`: a retransmission). `stored`: the delivery was
   * written to the store this turn (a first QoS 2 send then waits for the commit).
   */
  sendFlight(flight: OutgoingFlight, dup: boolean, stored: boolean): SendResult;
  /**
   * Sends a PUBREL for a QoS 2 flight. `stored`: the flight's PUBREL stage was written to the store
   * this turn (the PUBREL then waits for the commit).
   */
  sendPubrel(packetId: number, stored: boolean): void;
}
