/**
 * The web part of the configuration: the MQTT-over-WebSocket listener, the HTTP server (metrics,
 * REST API, dashboard) and $SYS (docs/configuration.md). Kept beside config.ts, which calls into it
 * for the `websocket`, `http` and `sys` keys and the matching flags.
 */
import { asBoolean, asInteger, asObject, asPort, asString, asStrings, ConfigError } from './values.js';

/** MQTT over WebSocket on its own port. */
export interface WebSocketConfig {
  /** Off unless asked for (a --ws-* flag, or `enabled: true`). */
  enabled: boolean;
  /** Port (default 8083; 0 picks a free one). */
  port: number;
  /** Interfaces (default: the same as the plain MQTT listener). */
  hosts?: string[];
  /** URL path (default /mqtt). */
  path: string;
  /** Proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed. */
  trustedProxies: string[];
  /** With both: the listener is wss (WebSocket over TLS). */
  certFile?: string;
  keyFile?: string;
}

/** The HTTP server: /metrics, /healthz, /readyz, the REST API and the dashboard. */
export interface HttpConfig {
  enabled: boolean;
  host: string;
  port: number;
  /** Bearer token of the REST API (also from STARLING_API_TOKEN). */
  apiToken?: string;
  /** Serve the dashboard (default true). */
  dashboard: boolean;
  /** Carry MQTT over WebSocket on /mqtt of the HTTP port, for the dashboard (default true). */
  mqtt: boolean;
}

/** $SYS topics. */
export interface SysConfig {
  /** Seconds between publications (default 10; 0: none). */
  interval: number;
  /** Publish client connect / disconnect events (default true). */
  events: boolean;
}

/** The parts of StarlingConfig this module fills. */
export interface WebConfigTarget {
  websocket?: WebSocketConfig;
  http?: HttpConfig;
  sys?: SysConfig;
}

// Functions, not constants: config.ts builds DEFAULT_CONFIG from them while this module may still be
// loading (the two import each other).
/** Defaults of the WebSocket listener. */
export function defaultWebSocketConfig(): WebSocketConfig {
  return { enabled: false, port: 8083, path: '/mqtt', trustedProxies: [] };
}

/** Defaults of the HTTP server: loopback, port 18083. */
export function defaultHttpConfig(): HttpConfig {
  return { enabled: true, host: '127.0.0.1', port: 18083, dashboard: true, mqtt: true };
}

/** Defaults of $SYS: every 10 seconds, with events. */
export function defaultSysConfig(): SysConfig {
  return { interval: 10, events: true };
}

/** parseArgs options for the web flags. */
export const WEB_FLAGS = {
  'ws-port': { type: 'string' },
  'ws-host': { type: 'string', multiple: true },
  'ws-tls-cert': { type: 'string' },
  'ws-tls-key': { type: 'string' },
  'http-port': { type: 'string' },
  'http-host': { type: 'string' },
  'no-http': { type: 'boolean' },
  'sys-interval': { type: 'string' },
} as const;

/** Help text for the web flags. */
export const WEB_USAGE = `
WebSocket, HTTP and $SYS (docs/configuration.md, docs/http-api.md, docs/dashboard.md):
  --ws-port PORT        MQTT over WebSocket on PORT, path /mqtt (8083 is usual; off unless given)
  --ws-host HOST        interface of the WebSocket listener (repeatable; default: as --host)
  --ws-tls-cert FILE    certificate (PEM): the WebSocket listener becomes wss
  --ws-tls-key FILE     private key (PEM) for --ws-tls-cert
  --http-port PORT      HTTP port: /metrics, /healthz, /readyz, /api, dashboard (default 18083)
  --http-host HOST      HTTP interface (default 127.0.0.1); beyond loopback the API needs
                        STARLING_API_TOKEN (or http.apiToken)
  --no-http             no HTTP server
  --sys-interval SECS   publish $SYS every SECS seconds (default 10; 0: never)
`;

/** Flag values as parseArgs returns them. */
export type WebFlagValues = { [K in keyof typeof WEB_FLAGS]?: (typeof WEB_FLAGS)[K] extends { multiple: true } ? string[] : (typeof WEB_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** Applies the web flags over `config` (file values already in place). */
export function applyWebFlags(config: WebConfigTarget, values: WebFlagValues): void {
  if (values['ws-port'] !== undefined || values['ws-host'] !== undefined || values['ws-tls-cert'] !== undefined || values['ws-tls-key'] !== undefined) {
    const ws: WebSocketConfig = { ...defaultWebSocketConfig(), ...config.websocket, enabled: true };
    if (values['ws-port'] !== undefined) ws.port = asPort(values['ws-port'], '--ws-port');
    if (values['ws-host'] !== undefined) ws.hosts = values['ws-host'];
    if (values['ws-tls-cert'] !== undefined) ws.certFile = values['ws-tls-cert'];
    if (values['ws-tls-key'] !== undefined) ws.keyFile = values['ws-tls-key'];
    config.websocket = ws;
  }
  if (values['http-port'] !== undefined || values['http-host'] !== undefined || values['no-http'] === true) {
    const http: HttpConfig = { ...defaultHttpConfig(), ...config.http };
    if (values['http-port'] !== undefined) http.port = asPort(values['http-port'], '--http-port');
    if (values['http-host'] !== undefined) http.host = values['http-host'];
    if (values['no-http'] === true) http.enabled = false;
    config.http = http;
  }
  if (values['sys-interval'] !== undefined) config.sys = { ...defaultSysConfig(), ...config.sys, interval: asInteger(Number(values['sys-interval']), '--sys-interval', 0, 86_400) };
  checkWeb(config, 'command line');
}

/** Applies a `websocket`, `http` or `sys` object from a config file. */
export function applyWebObject(config: WebConfigTarget, key: 'websocket' | 'http' | 'sys', data: unknown, source: string): void {
  const object = asObject(data, `${source}: ${key}`);
  if (key === 'websocket') config.websocket = websocketObject({ ...defaultWebSocketConfig(), ...config.websocket, enabled: true }, object, source);
  else if (key === 'http') config.http = httpObject({ ...defaultHttpConfig(), ...config.http }, object, source);
  else config.sys = sysObject({ ...defaultSysConfig(), ...config.sys }, object, source);
}

function websocketObject(ws: WebSocketConfig, data: Record<string, unknown>, source: string): WebSocketConfig {
  for (const [key, value] of Object.entries(data)) {
    const where = `${source}: websocket.${key}`;
    switch (key) {
      case 'enabled':
        ws.enabled = asBoolean(value, where);
        break;
      case 'port':
        ws.port = asPort(value, where);
        break;
      case 'hosts':
        ws.hosts = asStrings(value, where);
        break;
      case 'path':
        ws.path = asString(value, where);
        if (!ws.path.startsWith('/')) throw new ConfigError(`${where} must start with /`);
        break;
      case 'trustedProxies':
        ws.trustedProxies = asStrings(value, where);
        break;
      case 'certFile':
      case 'keyFile':
        ws[key] = asString(value, where);
        break;
      default:
        throw new ConfigError(`${source}: unknown key "websocket.${key}" (known: enabled, port, hosts, path, trustedProxies, certFile, keyFile)`);
    }
  }
  checkWeb({ websocket: ws }, source);
  return ws;
}

function httpObject(http: HttpConfig, data: Record<string, unknown>, source: string): HttpConfig {
  for (const [key, value] of Object.entries(data)) {
    const where = `${source}: http.${key}`;
    switch (key) {
      case 'enabled':
      case 'dashboard':
      case 'mqtt':
        http[key] = asBoolean(value, where);
        break;
      case 'host':
      case 'apiToken':
        http[key] = asString(value, where);
        break;
      case 'port':
        http.port = asPort(value, where);
        break;
      default:
        throw new ConfigError(`${source}: unknown key "http.${key}" (known: enabled, host, port, apiToken, dashboard, mqtt)`);
    }
  }
  return http;
}

function sysObject(sys: SysConfig, data: Record<string, unknown>, source: string): SysConfig {
  for (const [key, value] of Object.entries(data)) {
    const where = `${source}: sys.${key}`;
    switch (key) {
      case 'interval':
        sys.interval = asInteger(value, where, 0, 86_400);
        break;
      case 'events':
        sys.events = asBoolean(value, where);
        break;
      default:
        throw new ConfigError(`${source}: unknown key "sys.${key}" (known: interval, events)`);
    }
  }
  return sys;
}

function checkWeb(config: WebConfigTarget, source: string): void {
  const ws = config.websocket;
  if (ws !== undefined && (ws.certFile === undefined) !== (ws.keyFile === undefined)) {
    throw new ConfigError(`${source}: wss needs both a certificate and a key (--ws-tls-cert and --ws-tls-key, or websocket.certFile and websocket.keyFile)`);
  }
}






