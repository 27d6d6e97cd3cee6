/** Client options, and how a `mqtt://user:pass@host:port` style URL turns into them. */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Properties, ProtocolVersion, QoS } from '../protocol/index.js';
import { InvalidArgumentError } from './errors.js';

/** How the bytes travel: plain TCP, TLS, WebSocket or WebSocket over TLS. */
export type TransportProtocol = 'mqtt' | 'mqtts' | 'ws' | 'wss';

/** The last will, published by the server if the client goes away without DISCONNECT. */
export interface WillOptions {
  topic: string;
  payload?: string | Uint8Array;
  qos?: QoS;
  retain?: boolean;
  /** MQTT 5 will properties (will delay interval, message expiry, content type, user properties …). */
  properties?: Properties;
}

/** TLS settings for mqtts:// and wss:// (PEM strings or Buffers, as node:tls takes them). */
export interface TlsOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Verify the server certificate chain (default true). */
  rejectUnauthorized?: boolean;
  /** Check that the certificate names the host (default true); false is mosquitto's `--insecure`. */
  verifyHostname?: boolean;
  /** Server name for SNI and certificate checks (default: the host name). */
  servername?: string;
}

/** Automatic reconnection: exponential backoff from `initialDelay` to `maxDelay`, with jitter. */
export interface ReconnectOptions {
  /** First delay in ms (default 100). */
  initialDelay?: number;
  /** Largest delay in ms (default 30 000). */
  maxDelay?: number;
  /** Give up after this many failed attempts in a row (default: never). */
  maxAttempts?: number;
  /** Keep retrying after a CONNACK refusal such as bad credentials (default false: such a refusal closes the client). */
  retryRefused?: boolean;
}

/** Everything `connect()` accepts; a URL given beside it fills what is not set here. */
export interface ConnectOptions {
  protocol?: TransportProtocol;
  host?: string;
  port?: number;
  /** WebSocket path (default /mqtt). */
  path?: string;
  /** 5 = MQTT 5.0, 4 = 3.1.1 (default), 3 = 3.1. */
  protocolVersion?: ProtocolVersion;
  /** Default: "starling-" and random hex (3.1 limits ids to 23 characters, which this respects). */
  clientId?: string;
  /** Clean Session (3.1.x) / Clean Start (5.0); default true. */
  clean?: boolean;
  /** Keep alive in seconds (default 60; 0 disables it). */
  keepalive?: number;
  username?: string;
  password?: string | Uint8Array;
  will?: WillOptions;
  /** MQTT 5 CONNECT properties (session expiry, receive maximum, user properties …). */
  properties?: Properties;
  tls?: TlsOptions;
  /** Ms to wait for the transport and CONNACK (default 30 000). */
  connectTimeout?: number;
  /** false disables automatic reconnection (default: on, with the defaults of ReconnectOptions). */
  reconnect?: boolean | ReconnectOptions;
  /** Extra HTTP headers for the WebSocket upgrade request. */
  wsHeaders?: Record<string, string>;
  /**
   * Opens the byte stream itself, instead of TCP, TLS or WebSocket (e.g. one end of an in-memory
   * pair to an embedded broker); protocol, host and port then only name the server in messages.
   */
  stream?: () => Duplex | Promise<Duplex>;
  /**
   * The application acknowledges each received QoS 1/2 message with `client.acknowledge(message)`:
   * PUBACK / PUBREC go out only then (default false: at once, on receipt).
   */
  manualAck?: boolean;
  /** Tell the server this client is a bridge (Mosquitto's `try_private`: protocol level | 0x80; MQTT 3.1 / 3.1.1 only). */
  bridge?: boolean;
}

/** Options after defaults and URL merging: what the client actually uses. */
export interface ResolvedOptions {
  protocol: TransportProtocol;
  host: string;
  port: number;
  path: string;
  protocolVersion: ProtocolVersion;
  clientId: string;
  clean: boolean;
  keepalive: number;
  username: string | undefined;
  password: Buffer | undefined;
  will: WillOptions | undefined;
  properties: Properties | undefined;
  tls: TlsOptions;
  connectTimeout: number;
  reconnect: Required<ReconnectOptions> | false;
  wsHeaders: Record<string, string>;
  stream: (() => Duplex | Promise<Duplex>) | undefined;
  manualAck: boolean;
  bridge: boolean;
}

const DEFAULT_PORTS: Record<TransportProtocol, number> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };
const SCHEMES: Record<string, TransportProtocol> = {
  'mqtt:': 'mqtt',
  'tcp:': 'mqtt',
  'mqtts:': 'mqtts',
  'ssl:': 'mqtts',
  'tls:': 'mqtts',
  'ws:': 'ws',
  'wss:': 'wss',
};

/** Parses `mqtt[s]://`, `ws[s]://` URLs (user, password, host, port, path) into options. */
export function parseUrl(url: string): ConnectOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`invalid URL "${url}"`);
  }
  const protocol = SCHEMES[parsed.protocol];
  if (protocol === undefined) {
    throw new InvalidArgumentError(`unsupported URL scheme "${parsed.protocol}" (use mqtt:, mqtts:, ws: or wss:)`);
  }
  const options: ConnectOptions = { protocol, host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') };
  if (parsed.port !== '') options.port = Number(parsed.port);
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password);
  if ((protocol === 'ws' || protocol === 'wss') && parsed.pathname !== '' && parsed.pathname !== '/') options.path = parsed.pathname;
  return options;
}

/** A random client id that fits MQTT 3.1's 23-character limit. */
export function randomClientId(prefix = 'starling-'): string {
  return prefix + randomBytes(6).toString('hex');
}

/** Applies defaults and checks ranges. */
export function resolveOptions(target: string | ConnectOptions | undefined, extra: ConnectOptions = {}): ResolvedOptions {
  const fromTarget = typeof target === 'string' ? parseUrl(target) : (target ?? {});
  const o: ConnectOptions = { ...fromTarget, ...extra };
  const protocol = o.protocol ?? 'mqtt';
  const keepalive = o.keepalive ?? 60;
  if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65_535) throw new InvalidArgumentError(`keepalive must be 0..65535 seconds, got ${keepalive}`);
  const port = o.port ?? DEFAULT_PORTS[protocol];
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new InvalidArgumentError(`port must be 1..65535, got ${port}`);
  const version = o.protocolVersion ?? 4;
  if (version !== 3 && version !== 4 && version !== 5) throw new InvalidArgumentError(`protocolVersion must be 3, 4 or 5`);
  const reconnect = o.reconnect === false ? false : { initialDelay: 100, maxDelay: 30_000, maxAttempts: Infinity, retryRefused: false, ...(o.reconnect === true ? {} : o.reconnect) };
  return {
    protocol,
    host: o.host ?? 'localhost',
    port,
    path: o.path ?? '/mqtt',
    protocolVersion: version,
    clientId: o.clientId ?? randomClientId(),
    clean: o.clean ?? true,
    keepalive,
    username: o.username,
    password: o.password === undefined ? undefined : Buffer.from(o.password),
    will: o.will,
    properties: o.properties,
    tls: o.tls ?? {},
    connectTimeout: o.connectTimeout ?? 30_000,
    reconnect,
    wsHeaders: o.wsHeaders ?? {},
    stream: o.stream,
    manualAck: o.manualAck ?? false,
    bridge: o.bridge ?? false,
  };
}
