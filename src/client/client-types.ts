/** The types of the client's API: publish and subscribe options, CONNACK, UNSUBACK, states and events. */
import type { Properties, QoS } from '../protocol/index.js';
import type { Message } from './subscription.js';

/** Options of one publish. */
export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** MQTT 5 PUBLISH properties. */
  properties?: Properties;
}

/** Options applied to every filter of one subscribe call (a SubscriptionRequest may override per filter). */
export interface SubscribeOptions {
  qos?: QoS;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
  /** MQTT 5 SUBSCRIBE properties (subscription identifier, user properties). */
  properties?: Properties;
}

/** The server's CONNACK: whether it kept a session, and (MQTT 5) its limits and assigned id. */
export interface ConnackInfo {
  sessionPresent: boolean;
  reasonCode: number;
  properties?: Properties;
}

/** Ack of an UNSUBSCRIBE (reason codes only in MQTT 5). */
export interface UnsubscribeResult {
  reasonCodes: number[];
  properties?: Properties;
}

/** Lifecycle of a client. */
export type ClientState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** Events a client emits. `error` is emitted only when someone listens for it. */
export interface ClientEvents {
  /** Every received application message. */
  message: [message: Message];
  /** After every successful CONNACK, the first one included. */
  connect: [connack: ConnackInfo];
  /** The connection was lost; the client reconnects unless reconnect is off. */
  offline: [error: Error | undefined];
  /** A reconnect attempt is scheduled. */
  reconnecting: [attempt: number, delayMs: number];
  /** A non-fatal problem: server DISCONNECT, keep-alive timeout, failed reconnect attempt. */
  error: [error: Error];
  /** The client is closed for good. */
  close: [error: Error | undefined];
}
