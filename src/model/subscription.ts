/** A subscription as a session holds it (filter, granted QoS, MQTT 5 options). */
import type { QoS } from '../protocol/types.js';

/** One subscription held by a session. */
export interface Subscription {
  /** The filter as the client sent it (for a shared subscription, the whole `$share/{group}/{filter}`). */
  topicFilter: string;
  qos: QoS;
  /** MQTT 5: do not deliver messages this client published itself. */
  noLocal: boolean;
  /** MQTT 5: keep the publisher's RETAIN flag on delivery. */
  retainAsPublished: boolean;
  /** MQTT 5: 0 send retained on subscribe, 1 only for a new subscription, 2 never. */
  retainHandling: 0 | 1 | 2;
  /** MQTT 5 Subscription Identifier sent with the SUBSCRIBE, if any. */
  subscriptionId?: number;
  /** Shared subscription group name (`$share/{group}/…`), if any. */
  shareGroup?: string;
  /** The filter matched against topics (without the `$share/{group}/` prefix). */
  matchFilter: string;
}
