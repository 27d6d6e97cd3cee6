import type { QoS } from '../protocol/types.js';

/** One subscription held by a session. */
export interface Subscription {
  topicFilter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
}
