/** The client options of a bridge's connection to the remote broker, from its configuration. */
import { readFileSync } from 'node:fs';
import { parseUrl, type ConnectOptions, type ReconnectOptions } from '../client/index.js';
import type { BridgeConfig } from '../config/schema.js';

/** Session Expiry Interval asked of an MQTT 5 remote for a persistent session: never. */
const NEVER = 0xffff_ffff;

/** Back-off between attempts to reach the remote: 0.5 s doubling to 30 s, with jitter (Mosquitto waits 5 to 30 s). */
export const REMOTE_RECONNECT: ReconnectOptions = { initialDelay: 500, maxDelay: 30_000, retryRefused: true };

/** The remote's URL without credentials, for logs and the API. */
export function describeRemote(url: string): string {
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  return parsed.toString().replace(/\/$/, '');
}

/** The client id on the remote when none is configured: Mosquitto's `hostname.bridge-name`. */
export function defaultRemoteClientId(host: string, name: string): string {
  return `${host}.${name}`;
}

/**
 * Options for the remote client: URL, version, credentials, keep-alive, session, TLS files, and
 * manual acknowledgement (a message from the remote is acknowledged once this broker has it).
 */
export function remoteOptions(config: BridgeConfig, clientId: string, reconnect: ReconnectOptions = REMOTE_RECONNECT): ConnectOptions {
  const options: ConnectOptions = {
    ...parseUrl(config.url),
    protocolVersion: config.protocolVersion,
    clientId,
    clean: config.cleanStart,
    keepalive: config.keepalive,
    manualAck: true,
    reconnect,
    connectTimeout: 15_000,
    // MQTT 5 has No Local and Retain As Published; 3.1.1 needs Mosquitto's bridge flag for the same.
    bridge: config.tryPrivate && config.protocolVersion === 4,
  };
  if (config.username !== undefined) options.username = config.username;
  if (config.password !== undefined) options.password = config.password;
  if (config.protocolVersion === 5 && !config.cleanStart) options.properties = { sessionExpiryInterval: NEVER };
  if (config.caFile !== undefined || config.certFile !== undefined) {
    options.tls = {};
    if (config.caFile !== undefined) options.tls.ca = readFileSync(config.caFile);
    if (config.certFile !== undefined) options.tls.cert = readFileSync(config.certFile);
    if (config.keyFile !== undefined) options.tls.key = readFileSync(config.keyFile);
  }
  return options;
}
