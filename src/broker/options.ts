import type { QoS } from '../protocol/types.js';

/** Result of an authentication hook: accept, or refuse with a CONNACK reason. */
export type AuthenticateResult = 'accept' | 'bad-credentials' | 'not-authorized' | 'server-unavailable';

/** What an authentication hook is told about the client. */
export interface AuthenticateRequest {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  remoteAddress: string | undefined;
}

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
  /** Optional authentication: called for every CONNECT. */
  authenticate?: (request: AuthenticateRequest) => AuthenticateResult | Promise<AuthenticateResult>;
}

/** Defaults chosen to be safe on a small machine and generous enough for real loads. */
export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  maxQoS: 2,
  connectTimeout: 10,
  maxInflight: 100,
  maxQueuedMessages: 10_000,
  maxWriteBuffer: 4 * 1024 * 1024,
  maxPacketSize: 268_435_460,
  maxConnections: 1_000_000,
  maxClientIdLength: 65_535,
};
