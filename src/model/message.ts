/** An application message as the broker holds it (not a wire packet), and what the in-process API accepts. */
import type { Properties, QoS } from '../protocol/types.js';

/** An application message as the broker holds it (not a wire packet). */
export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  /** The RETAIN flag the publisher set. */
  retain: boolean;
  /** MQTT 5 publish properties, forwarded to subscribers. */
  properties?: Properties;
  /** Who published it: a client id, or '' for the broker's own API. */
  origin: string;
  /** Milliseconds since the epoch when the broker received it. */
  receivedAt: number;
  /** Milliseconds since the epoch after which it is not delivered (MQTT 5 message expiry). */
  expiresAt?: number;
  /**
   * In a cluster: the message's id across nodes (set when it first leaves its node). Created as
   * undefined so every message has the same shape before and after the id is set.
   */
  clusterId?: string | undefined;
}

/** Input accepted by `Broker.publish` (the in-process API). */
export interface PublishInput {
  topic: string;
  payload?: Buffer | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
}
