/** The limits and behaviour of the broker core (BrokerOptions) and their defaults. */
import type { QoS } from '../protocol/types.js';

import type { Persistence } from '../persistence/types.js';
import type { ClusterBus } from '../cluster/types.js';
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin } from './hooks.js';
import type { QueueFullPolicy } from './session.js';
import { DEFAULT_FEATURES, DEFAULT_LIMITS } from '../config/schema.js';

export type { AuthenticateRequest, AuthenticateResult } from './hooks.js';

/** Limits and behaviour of the broker core; every field has a default (see DEFAULT_BROKER_OPTIONS). */
export interface BrokerOptions {
  /** Highest QoS granted to subscriptions and accepted on PUBLISH. */
  maxQoS: QoS;
  /** Seconds a socket may stay open without sending CONNECT. */
  connectTimeout: number;
  /** Unacknowledged QoS 1/2 messages sent to one client at once. */
  maxInflight: number;
  /** QoS 1/2 messages queued per session (offline, or waiting for the inflight window). */
  maxQueuedMessages: number;
  /** Bytes buffered for a slow connection before QoS 0 messages to it are dropped. */
  maxWriteBuffer: number;
  /** Largest packet accepted from a client, in bytes. */
  maxPacketSize: number;
  /** Maximum simultaneous connections; further CONNECTs get CONNACK 3 (server unavailable). */
  maxConnections: number;
  /** Longest client identifier accepted (bytes of UTF-8); longer gets CONNACK 2. */
  maxClientIdLength: number;
  /** Connected clients per listener name ("tcp", "tls", "ws", "http"); a listener not named here has only maxConnections. */
  maxConnectionsPerListener: Readonly<Record<string, number>>;
  /** Sessions held at once, connected and stored; a CONNECT that needs a new one beyond it gets CONNACK 3 / 0x97. */
  maxSessions: number;
  /** Subscriptions one session may hold; more get SUBACK 0x97 (quota exceeded; 0x80 in 3.1.1). */
  maxSubscriptionsPerClient: number;
  /** Levels a topic name or filter may have; deeper gets SUBACK 0x8F / PUBACK 0x90 (3.1.1: 0x80 / dropped). */
  maxTopicLevels: number;
  /** Bytes a topic name or filter may have (UTF-8). */
  maxTopicLength: number;
  /** PUBLISH packets per second one client may send (0: unlimited); a faster client is slowed down, not cut off. */
  maxPublishRate: number;
  /** PUBLISH payload bytes per second one client may send (0: unlimited); likewise slowed down. */
  maxPublishBytesRate: number;
  /** MQTT 5 Receive Maximum we advertise: unacknowledged QoS 2 PUBLISH a client may have in flight to us. */
  receiveMaximum: number;
  /** MQTT 5 Topic Alias Maximum we advertise (aliases a client may use towards us; 0 disables). */
  topicAliasMaximum: number;
  /** Longest session expiry granted, in seconds (0xFFFFFFFF: no cap). Also bounds MQTT 3.1.1 CleanSession=0 sessions. */
  maxSessionExpiry: number;
  /** Longest keep-alive accepted, in seconds; a client asking for more (or for 0) is told this (MQTT 5 Server Keep Alive). */
  maxKeepAlive: number;
  /** Whether retained messages are supported (MQTT 5 Retain Available). */
  retainAvailable: boolean;
  /** Whether filters with + or # are accepted (MQTT 5 Wildcard Subscription Available). */
  wildcardSubscriptionAvailable: boolean;
  /** Whether MQTT 5 Subscription Identifiers are supported. */
  subscriptionIdentifiersAvailable: boolean;
  /** Whether `$share/{group}/{filter}` subscriptions are supported (MQTT 5). */
  sharedSubscriptionAvailable: boolean;
  /** How a shared subscription group picks the member that gets a message. */
  sharedSubscriptionStrategy: 'round-robin' | 'random';
  /** Refuse (reason 0x99) MQTT 5 messages that declare a UTF-8 payload (Payload Format Indicator 1) but are not UTF-8. */
  validateUtf8Payload: boolean;
  /** When set, a client that requests response information gets `${responseInformation}${clientId}` (MQTT 5). */
  responseInformation?: string;
  /** What happens to a new QoS 1/2 message for a session whose queue is full. */
  queueFullPolicy: QueueFullPolicy;
  /** Retained messages kept at most (topics). */
  maxRetainedMessages: number;
  /** What happens to a retained message on a new topic when the limit is reached. */
  retainedFullPolicy: QueueFullPolicy;
  /** Where persistent sessions, their messages and retained messages are stored; none: memory only. */
  store?: Persistence;
  /**
   * The cluster this broker is a node of (routing, sessions and retained messages shared with other
   * nodes); none: a single node. A cluster's bus supplies the store (`store` must be `cluster.store`).
   */
  cluster?: ClusterBus;
  /**
   * true: PUBACK / PUBREC only once the message is durably stored, whenever a persistent session or
   * the retained store holds it. false: acknowledge at once and store in the background (faster; a
   * crash can lose acknowledged messages).
   */
  durableAcks: boolean;
  /** Plugins (authentication, authorization, observers), in order: the first refusal wins. */
  plugins?: readonly BrokerPlugin[];
  /** Shorthand for a plugin with only an authenticate hook (runs before `plugins`). */
  authenticate?: (request: AuthenticateRequest) => AuthenticateResult | Promise<AuthenticateResult>;
  /** Whether a client that no authentication plugin accepted (all abstained) may connect. */
  allowAnonymous: boolean;
}

/**
 * Defaults chosen to be safe on a small machine and generous enough for real loads: the limits and
 * features come from the one configuration schema (src/config/schema.ts), so they are not written twice.
 */
export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  ...DEFAULT_LIMITS,
  ...DEFAULT_FEATURES,
  allowAnonymous: true,
  durableAcks: true,
};
