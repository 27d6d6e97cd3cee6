/**
 * Translates a Mosquitto configuration (mosquitto.conf) into Starling's: listeners, security
 * (global or per listener), persistence, limits and bridges. Options Starling does not have come
 * back as warnings saying what to do; wrong values as errors naming the file, line and option.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config-error.js';
import { MOSQUITTO_ADVICE } from './mosquitto-advice.js';
import { BRIDGE_OPTIONS, translateBridgeOption, type BridgeDraft } from './mosquitto-bridge.js';

/** One option line: where it is, its name, its words and the rest of the line. */
export interface MosquittoLine {
  readonly at: string;
  readonly option: string;
  readonly args: readonly string[];
  readonly rest: string;
}

interface ListenerDraft {
  at: string;
  port: number;
  host?: string;
  websockets: boolean;
  tls: Record<string, unknown>;
  maxConnections?: number;
  auth: Record<string, unknown>;
}

/** What translating produces: a Starling config object (still to be checked) and the warnings. */
export interface Translation {
  config: Record<string, unknown>;
  warnings: string[];
}

/** Integer options that set a limit: the limit, the range Mosquitto takes, and how a value maps (undefined: leave the default). */
const LIMIT_OPTIONS: Readonly<Record<string, { key: string; min: number; max: number; map: (n: number) => number | undefined }>> = {
  // 0 means "no limit" in Mosquitto: the largest value Starling takes.
  max_inflight_messages: { key: 'maxInflight', min: 0, max: 65_535, map: (n) => (n === 0 ? 65_535 : n) },
  max_queued_messages: { key: 'maxQueuedMessages', min: 0, max: 1e9, map: (n) => (n === 0 ? 1e9 : n) },
  max_keepalive: { key: 'maxKeepAlive', min: 0, max: 65_535, map: (n) => (n === 0 ? 65_535 : n) },
  // Starling limits whole packets: leave room for the topic and headers around the payload.
  message_size_limit: { key: 'maxPacketSize', min: 0, max: 268_435_455, map: (n) => (n === 0 ? undefined : Math.min(n + 65_542, 268_435_460)) },
  max_packet_size: { key: 'maxPacketSize', min: 0, max: 268_435_460, map: (n) => (n === 0 ? undefined : Math.max(n, 16)) },
  max_qos: { key: 'maxQoS', min: 0, max: 2, map: (n) => n },
  max_topic_alias: { key: 'topicAliasMaximum', min: 0, max: 65_535, map: (n) => n },
};

const SECURITY = new Set(['password_file', 'acl_file', 'allow_anonymous']);
const LISTENER_OPTIONS = new Set(['protocol', 'cafile', 'certfile', 'keyfile', 'require_certificate', 'use_identity_as_username', 'max_connections', 'tls_version', 'ciphers']);

/** Reads `text` (the content of `file`) as a Mosquitto configuration. */
export function translateMosquitto(text: string, file: string): Translation {
  const lines = readLines(text, file);
  const errors: string[] = [];
  const warnings: string[] = [];
  const perListener = lines.some((l) => l.option === 'per_listener_settings' && l.args[0] === 'true');
  const config: Record<string, unknown> = {};
  const limits: Record<string, unknown> = {};
  const auth: Record<string, unknown> = {};
  const listeners: ListenerDraft[] = [];
  const bridges: BridgeDraft[] = [];
  let defaultListener: ListenerDraft | undefined;
  let current: ListenerDraft | undefined;
  let bridge: BridgeDraft | undefined;
  const ensureDefault = (at: string): ListenerDraft => (defaultListener ??= { at, port: 1883, websockets: false, tls: {}, auth: {} });

  for (const line of lines) {
    const { at, option, args } = line;
    const fail = (message: string): void => void errors.push(`${at}: ${option} ${message}`);
    const integer = (min: number, max: number): number | undefined => {
      const word = args[0] ?? '';
      const n = /^-?\d+$/.test(word) ? Number(word) : NaN;
      if (Number.isInteger(n) && n >= min && n <= max) return n;
      fail(`must be an integer from ${min} to ${max}; got ${JSON.stringify(word)}`);
      return undefined;
    };
    const flag = (): boolean | undefined => {
      if (args[0] === 'true' || args[0] === 'false') return args[0] === 'true';
      fail(`must be true or false; got ${JSON.stringify(args[0] ?? '')}`);
      return undefined;
    };
    const word = (): string | undefined => {
      if (line.rest !== '') return line.rest;
      fail('needs a value');
      return undefined;
    };
    if (option === 'connection') {
      const name = word();
      if (name !== undefined) bridges.push((bridge = { at, name, topics: [], options: {} }));
      current = undefined;
      continue;
    }
    if (bridge !== undefined && BRIDGE_OPTIONS.has(option)) {
      translateBridgeOption(bridge, line, errors, warnings);
      continue;
    }
    if (option === 'listener') {
      const port = integer(0, 65_535);
      if (port === undefined) continue;
      const host = args[1];
      if (host !== undefined && host.startsWith('/')) warnings.push(`${at}: listener on a unix socket (${host}) is not supported: use a TCP port on 127.0.0.1`);
      listeners.push((current = { at, port, ...(host === undefined ? {} : { host }), websockets: false, tls: {}, auth: {} }));
      bridge = undefined;
      continue;
    }
    const target = (): ListenerDraft => current ?? ensureDefault(at);
    if (SECURITY.has(option)) {
      const into = perListener ? target().auth : auth;
      if (option === 'allow_anonymous') {
        const allow = flag();
        if (allow !== undefined) into['allowAnonymous'] = allow;
      } else {
        const path = word();
        if (path !== undefined) into[option === 'password_file' ? 'passwordFile' : 'aclFile'] = path;
      }
      continue;
    }
    if (LISTENER_OPTIONS.has(option)) {
      listenerOption(target(), line, fail, flag, integer, warnings);
      continue;
    }
    const limit = LIMIT_OPTIONS[option];
    if (limit !== undefined) {
      const n = integer(limit.min, limit.max);
      const value = n === undefined ? undefined : limit.map(n);
      if (value !== undefined) limits[limit.key] = value;
      continue;
    }
    switch (option) {
      case 'per_listener_settings':
        flag();
        break;
      case 'port': {
        const port = integer(0, 65_535);
        if (port !== undefined) ensureDefault(at).port = port;
        break;
      }
      case 'bind_address': {
        const host = word();
        if (host !== undefined) ensureDefault(at).host = host;
        break;
      }
      case 'persistence': {
        const on = flag();
        if (on !== undefined) config['store'] = on ? 'embedded' : 'memory';
        break;
      }
      case 'persistence_location': {
        const dir = word();
        if (dir !== undefined) config['dataDir'] = dir;
        break;
      }
      case 'persistent_client_expiration': {
        const seconds = duration(args[0] ?? '');
        if (seconds === undefined) fail(`must be a duration such as 1h, 2d, 1w, 1m or 1y; got ${JSON.stringify(args[0] ?? '')}`);
        else limits['maxSessionExpiry'] = Math.min(seconds, 0xffff_ffff);
        break;
      }
      case 'retain_available': {
        const on = flag();
        if (on !== undefined) config['features'] = { retainAvailable: on };
        break;
      }
      case 'sys_interval': {
        const n = integer(0, 86_400);
        if (n !== undefined) config['sys'] = { interval: n };
        break;
      }
      default: {
        const advice = MOSQUITTO_ADVICE[option] ?? (option.startsWith('plugin_opt_') || option.startsWith('auth_opt_') ? MOSQUITTO_ADVICE['plugin'] : undefined);
        if (advice !== undefined) warnings.push(`${at}: ${option} is not translated: ${advice}`);
        else if (BRIDGE_OPTIONS.has(option)) errors.push(`${at}: ${option} is a bridge option: it must follow a "connection NAME" line`);
        else warnings.push(`${at}: unknown option "${option}": not a Mosquitto option Starling knows; check its spelling, or remove it`);
      }
    }
  }
  if (errors.length > 0) throw new ConfigError(errors);
  const all = defaultListener === undefined ? listeners : [defaultListener, ...listeners];
  if (all.length > 0) {
    config['listeners'] = all.map((l) => listenerConfig(l, perListener));
    // Mosquitto 2 refuses anonymous clients once a listener is configured, unless told otherwise.
    if (!perListener) auth['allowAnonymous'] ??= false;
  }
  if (Object.keys(auth).length > 0) config['auth'] = auth;
  if (Object.keys(limits).length > 0) config['limits'] = limits;
  config['store'] ??= 'memory'; // Mosquitto keeps nothing across restarts unless `persistence true`
  if (bridges.length > 0) config['bridges'] = bridges.map((b) => ({ name: b.name, ...b.options, topics: b.topics }));
  return { config, warnings };
}

function listenerOption(
  listener: ListenerDraft,
  line: MosquittoLine,
  fail: (message: string) => void,
  flag: () => boolean | undefined,
  integer: (min: number, max: number) => number | undefined,
  warnings: string[],
): void {
  const { option, args, rest } = line;
  switch (option) {
    case 'protocol':
      if (args[0] === 'websockets' || args[0] === 'mqtt') listener.websockets = args[0] === 'websockets';
      else fail(`must be mqtt or websockets; got ${JSON.stringify(rest)}`);
      return;
    case 'cafile':
    case 'certfile':
    case 'keyfile':
      if (rest === '') fail('needs a file name');
      else listener.tls[{ cafile: 'caFile', certfile: 'certFile', keyfile: 'keyFile' }[option]] = rest;
      return;
    case 'require_certificate':
    case 'use_identity_as_username': {
      const on = flag();
      if (on !== undefined) listener.tls[option === 'require_certificate' ? 'requireClientCert' : 'useIdentityAsUsername'] = on;
      return;
    }
    case 'max_connections': {
      const n = integer(-1, 1e9);
      if (n !== undefined && n > 0) listener.maxConnections = n;
      return;
    }
    case 'tls_version': {
      const version = { 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3' }[rest];
      if (version !== undefined) listener.tls['minVersion'] = version;
      else warnings.push(`${line.at}: tls_version ${rest} is not supported: Starling accepts TLS 1.2 and 1.3 (tls_version tlsv1.2 or tlsv1.3)`);
      return;
    }
    case 'ciphers':
      if (rest === '') fail('needs a cipher list');
      else listener.tls['ciphers'] = rest;
  }
}

function listenerConfig(l: ListenerDraft, perListener: boolean): Record<string, unknown> {
  const tls = l.tls['certFile'] !== undefined || l.tls['keyFile'] !== undefined;
  const protocol = l.websockets ? (tls ? 'wss' : 'ws') : tls ? 'mqtts' : 'mqtt';
  // Mosquitto binds every interface when no address is given; Starling's IPv4 any-address is the closest.
  const out: Record<string, unknown> = { protocol, port: l.port, hosts: [l.host ?? '0.0.0.0'], ...l.tls };
  if (l.maxConnections !== undefined) out['maxConnections'] = l.maxConnections;
  if (perListener) out['auth'] = { allowAnonymous: false, ...l.auth };
  return out;
}

/** Seconds in a Mosquitto duration: 3600, 1h, 2d, 1w, 1m (30 days), 1y. */
function duration(text: string): number | undefined {
  const match = /^(\d+)([hdwmy]?)$/.exec(text);
  if (match === null) return undefined;
  const unit = { '': 1, h: 3600, d: 86_400, w: 604_800, m: 2_592_000, y: 31_536_000 }[match[2] as '' | 'h' | 'd' | 'w' | 'm' | 'y'];
  return Number(match[1]) * unit;
}

/** The option lines of `text`, with include_dir's files read in place (sorted by name, as Mosquitto does). */
function readLines(text: string, file: string, depth = 0): MosquittoLine[] {
  const out: MosquittoLine[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const at = `${file}:${index + 1}`;
    const [option = '', ...args] = line.split(/\s+/);
    const rest = line.slice(option.length).trim();
    if (option !== 'include_dir') {
      out.push({ at, option, args, rest });
      return;
    }
    if (depth > 4) throw new ConfigError(`${at}: include_dir nested too deeply`);
    let names: string[];
    try {
      names = readdirSync(rest).filter((name) => name.endsWith('.conf')).sort();
    } catch (error) {
      throw new ConfigError(`${at}: include_dir ${rest}: ${(error as Error).message}`);
    }
    for (const name of names) out.push(...readLines(readFileSync(join(rest, name), 'utf8'), join(rest, name), depth + 1));
  });
  return out;
}
