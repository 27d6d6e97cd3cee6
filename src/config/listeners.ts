/**
 * The listeners a configuration asks for, resolved: `listeners` entries with their defaults, or the
 * plain listener of `port` / `hosts`, plus the `tls` and `websocket` shorthands. Pure: server.ts
 * starts what this plans, check-config prints it.
 */
import type { ListenerAuthConfig, StarlingConfig } from './schema.js';

/** Listener protocols. */
export type ListenerProtocol = 'mqtt' | 'mqtts' | 'ws' | 'wss';

/** One listener, ready to start: where it binds and what it needs. */
export interface PlannedListener {
  /** Unique name: in logs, per-listener limits, per-listener auth and the API. */
  name: string;
  protocol: ListenerProtocol;
  port: number;
  hosts: string[];
  /** True when the hosts are the loopback default (127.0.0.1 and ::1): a missing ::1 is no error. */
  loopbackDefault: boolean;
  /** The setting it comes from, for messages: "listeners[1]", "port", "tls", "websocket". */
  setting: string;
  tls?: { certFile: string; keyFile: string; caFile?: string; requireClientCert: boolean; usernameField?: string; minVersion?: 'TLSv1.2' | 'TLSv1.3'; ciphers?: string };
  ws?: { path: string; trustedProxies: string[] };
  maxConnections?: number;
  /** Its own authentication (instead of the global `auth`). */
  auth?: ListenerAuthConfig;
}

const DEFAULT_PORTS: Readonly<Record<ListenerProtocol, number>> = { mqtt: 1883, mqtts: 8883, ws: 8083, wss: 8084 };
const LOOPBACK = ['127.0.0.1', '::1'];

/** The listeners of `config`, in start order; names are made unique by a suffix when defaults collide. */
export function planListeners(config: Pick<StarlingConfig, 'hosts' | 'port' | 'listeners' | 'tls' | 'websocket'>): PlannedListener[] {
  const defaultHosts = (given: string[] | undefined): { hosts: string[]; loopbackDefault: boolean } => {
    if (given !== undefined && given.length > 0) return { hosts: given, loopbackDefault: false };
    if (config.hosts.length > 0) return { hosts: config.hosts, loopbackDefault: false };
    return { hosts: LOOPBACK, loopbackDefault: true };
  };
  const planned: PlannedListener[] = [];
  if (config.listeners.length === 0) planned.push({ name: 'tcp', protocol: 'mqtt', port: config.port, ...defaultHosts(undefined), setting: 'port' });
  const taken = new Set(config.listeners.flatMap((l) => (l.name === undefined ? [] : [l.name])));
  config.listeners.forEach((l, i) => {
    const port = l.port ?? DEFAULT_PORTS[l.protocol];
    const entry: PlannedListener = {
      name: l.name ?? uniqueName(`${l.protocol}:${port}`, taken),
      protocol: l.protocol,
      port,
      ...defaultHosts(l.hosts ?? (l.host === undefined ? undefined : [l.host])),
      setting: `listeners[${i}]`,
    };
    if ((l.protocol === 'mqtts' || l.protocol === 'wss') && l.certFile !== undefined && l.keyFile !== undefined) {
      const usernameField = l.usernameField ?? (l.useIdentityAsUsername === true ? 'CN' : undefined);
      entry.tls = {
        certFile: l.certFile,
        keyFile: l.keyFile,
        requireClientCert: l.requireClientCert === true,
        ...(l.caFile === undefined ? {} : { caFile: l.caFile }),
        ...(usernameField === undefined ? {} : { usernameField }),
        ...(l.minVersion === undefined ? {} : { minVersion: l.minVersion }),
        ...(l.ciphers === undefined ? {} : { ciphers: l.ciphers }),
      };
    }
    if (l.protocol === 'ws' || l.protocol === 'wss') entry.ws = { path: l.path ?? '/mqtt', trustedProxies: l.trustedProxies ?? [] };
    if (l.maxConnections !== undefined) entry.maxConnections = l.maxConnections;
    if (l.auth !== undefined) entry.auth = l.auth;
    planned.push(entry);
  });
  const tls = config.tls;
  if (tls?.certFile !== undefined && tls.keyFile !== undefined) {
    planned.push({
      name: 'tls',
      protocol: 'mqtts',
      port: tls.port ?? 8883,
      ...defaultHosts(tls.hosts),
      setting: 'tls',
      tls: {
        certFile: tls.certFile,
        keyFile: tls.keyFile,
        requireClientCert: tls.requireClientCert === true,
        ...(tls.caFile === undefined ? {} : { caFile: tls.caFile }),
        ...(tls.usernameField === undefined ? {} : { usernameField: tls.usernameField }),
        ...(tls.minVersion === undefined ? {} : { minVersion: tls.minVersion }),
        ...(tls.ciphers === undefined ? {} : { ciphers: tls.ciphers }),
      },
    });
  }
  const ws = config.websocket;
  if (ws !== undefined && ws.enabled) {
    const secure = ws.certFile !== undefined && ws.keyFile !== undefined;
    planned.push({
      name: secure ? 'wss' : 'ws',
      protocol: secure ? 'wss' : 'ws',
      port: ws.port,
      ...defaultHosts(ws.hosts),
      setting: 'websocket',
      ws: { path: ws.path, trustedProxies: ws.trustedProxies },
      ...(secure ? { tls: { certFile: ws.certFile as string, keyFile: ws.keyFile as string, requireClientCert: false } } : {}),
    });
  }
  return planned;
}

function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  taken.add(name);
  return name;
}

/** Two listeners with one name (a name given twice, or given as one of the shorthands' tcp / tls / ws / wss). */
export function duplicateNames(planned: readonly PlannedListener[]): string[] {
  const seen = new Map<string, PlannedListener>();
  const errors: string[] = [];
  for (const listener of planned) {
    const other = seen.get(listener.name);
    if (other !== undefined) errors.push(`${listener.setting}.name: "${listener.name}" is also the name of ${other.setting}; listener names must be unique`);
    seen.set(listener.name, listener);
  }
  return errors;
}
