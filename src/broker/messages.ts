/** The one place a broker Message is made from what a publisher sent (a PUBLISH, a will, the API), with its per-hop properties taken off. */
import type { Message } from '../model/message.js';
import type { Properties, QoS } from '../protocol/types.js';

/**
 * The broker's Message: the publisher's properties minus the per-hop ones (Topic Alias, Subscription
 * Identifiers, Will Delay Interval), and the Message Expiry Interval turned into an absolute time
 * (re-sent reduced by the time the message waited here [MQTT-3.3.2-6]). `origin`: the publishing
 * client's id ('' for the broker itself); `props`: the publisher's MQTT 5 properties as received.
 */
export function createMessage(topic: string, payload: Buffer, qos: QoS, retain: boolean, props: Properties | undefined, origin: string, now: number): Message {
  const message: Message = { topic, payload, qos, retain, origin, receivedAt: now, clusterId: undefined };
  if (props !== undefined) {
    const forwarded = forwardedProperties(props);
    if (forwarded !== undefined) message.properties = forwarded;
    if (props.messageExpiryInterval !== undefined) message.expiresAt = now + props.messageExpiryInterval * 1000;
  }
  return message;
}

/** The properties forwarded to subscribers [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-17] [MQTT-3.3.2-18]; the same object when nothing is per-hop. */
function forwardedProperties(props: Properties): Properties | undefined {
  if (props.topicAlias === undefined && props.subscriptionIdentifiers === undefined && props.messageExpiryInterval === undefined && props.willDelayInterval === undefined) {
    return hasAny(props) ? props : undefined;
  }
  const { topicAlias: _alias, subscriptionIdentifiers: _ids, messageExpiryInterval: _expiry, willDelayInterval: _delay, ...rest } = props;
  return hasAny(rest) ? rest : undefined;
}

function hasAny(props: Properties): boolean {
  for (const _key in props) return true;
  return false;
}

/**
 * A copy of `buffer` in memory of its own, for bytes the broker keeps for long (a retained
 * payload, a will). Buffer.from, or a view into what the socket read, would share one of Node's
 * 8 KiB pool slabs, and one long-lived view keeps its whole slab alive: in the soak (bench/soak.ts),
 * retained payloads and the wills of 3,800 connected devices held ever more slabs, and the broker's
 * external memory grew all along.
 */
export function ownedCopy(buffer: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(buffer.length);
  buffer.copy(copy);
  return copy;
}
