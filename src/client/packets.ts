/** The packets a client builds from its API's arguments: CONNECT, PUBLISH and SUBSCRIBE requests, checked. */
import { validateTopicFilter, validateTopicName, type MqttError, type Packet, type PublishPacket, type SubscriptionRequest } from '../protocol/index.js';
import type { PublishOptions, SubscribeOptions } from './client-types.js';
import { InvalidArgumentError } from './errors.js';
import type { ResolvedOptions } from './options.js';

/** The CONNECT of a client with these options. */
export function connectPacket(o: ResolvedOptions): Packet {
  const packet: Packet = {
    type: 'connect',
    protocolName: o.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
    protocolVersion: o.protocolVersion,
    clean: o.clean,
    keepalive: o.keepalive,
    clientId: o.clientId,
  };
  if (o.bridge) packet.bridge = true;
  if (o.username !== undefined) packet.username = o.username;
  if (o.password !== undefined) packet.password = o.password;
  if (o.properties !== undefined) packet.properties = o.properties;
  if (o.will !== undefined) {
    const w = o.will;
    packet.will = { topic: w.topic, payload: Buffer.from(w.payload ?? ''), qos: w.qos ?? 0, retain: w.retain ?? false };
    if (w.properties !== undefined) packet.will.properties = w.properties;
  }
  return packet;
}

/** A PUBLISH (no packet id yet); throws InvalidArgumentError for a bad QoS or topic name. */
export function publishPacket(topic: string, payload: string | Uint8Array, options: PublishOptions): PublishPacket {
  const qos = options.qos ?? 0;
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new InvalidArgumentError(`QoS must be 0, 1 or 2, got ${String(qos)}`);
  try {
    validateTopicName(topic);
  } catch (error) {
    throw new InvalidArgumentError((error as MqttError).message);
  }
  const packet: PublishPacket = {
    type: 'publish',
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
    qos,
    retain: options.retain ?? false,
    dup: false,
  };
  if (options.properties !== undefined) packet.properties = options.properties;
  return packet;
}

/** The subscriptions of one subscribe call, `options` applied to plain filters; throws InvalidArgumentError for a bad filter. */
export function subscriptionRequests(target: string | Array<string | SubscriptionRequest>, options: SubscribeOptions): SubscriptionRequest[] {
  const list = Array.isArray(target) ? target : [target];
  if (list.length === 0) throw new InvalidArgumentError('subscribe needs at least one topic filter');
  return list.map((item) => {
    const r: SubscriptionRequest = typeof item === 'string' ? { topicFilter: item, qos: options.qos ?? 0 } : { ...item };
    if (typeof item === 'string') {
      if (options.noLocal !== undefined) r.noLocal = options.noLocal;
      if (options.retainAsPublished !== undefined) r.retainAsPublished = options.retainAsPublished;
      if (options.retainHandling !== undefined) r.retainHandling = options.retainHandling;
    }
    try {
      validateTopicFilter(r.topicFilter);
    } catch (error) {
      throw new InvalidArgumentError((error as MqttError).message);
    }
    return r;
  });
}
