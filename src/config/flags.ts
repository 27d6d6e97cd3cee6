/**
 * The broker's command-line flags: each is a shorthand for one key of the schema, so its type,
 * choices, default and help line come from there. Parses argv into a configuration layer.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from './config-error.js';
import type { Layer } from './layer.js';
import { SCHEMA } from './schema.js';
import { defaultText, fromText, pathText, settingAt, type Path, type Setting } from './setting.js';

/** One flag: the key it sets, its argument name, and a help line when the key's doc is not the right one. */
interface Flag {
  readonly flag: string;
  readonly key: Path;
  /** Argument name; absent: a switch that sets `value`. */
  readonly arg?: string;
  readonly value?: unknown;
  readonly multiple?: true;
  readonly doc?: string;
  readonly short?: string;
}

/** Flags by section, in help order. */
const SECTIONS: ReadonlyArray<{ title: string; flags: readonly Flag[] }> = [
  {
    title: 'Options',
    flags: [
      { flag: 'host', key: ['hosts'], arg: 'HOST', multiple: true, doc: 'interface to listen on (repeatable)' },
      { flag: 'port', key: ['port'], arg: 'PORT' },
      { flag: 'log-level', key: ['logLevel'], arg: 'LEVEL' },
      { flag: 'log-format', key: ['logFormat'], arg: 'FORMAT' },
      { flag: 'store', key: ['store'], arg: 'KIND' },
      { flag: 'data-dir', key: ['dataDir'], arg: 'DIR' },
      { flag: 'durability', key: ['durability'], arg: 'MODE' },
      { flag: 'workers', key: ['workers'], arg: 'N' },
      { flag: 'redis', key: ['cluster', 'redis'], arg: 'URL', doc: 'run as a node of a cluster sharing this Redis (docs/clustering.md)' },
      { flag: 'node-id', key: ['cluster', 'nodeId'], arg: 'ID' },
    ],
  },
  {
    title: 'Security (docs/security.md)',
    flags: [
      { flag: 'tls-port', key: ['tls', 'port'], arg: 'PORT', doc: 'MQTT over TLS port' },
      { flag: 'tls-host', key: ['tls', 'hosts'], arg: 'HOST', multiple: true, doc: 'interface of the TLS listener (repeatable)' },
      { flag: 'tls-cert', key: ['tls', 'certFile'], arg: 'FILE', doc: 'server certificate chain (PEM); with --tls-key turns TLS on' },
      { flag: 'tls-key', key: ['tls', 'keyFile'], arg: 'FILE' },
      { flag: 'tls-ca', key: ['tls', 'caFile'], arg: 'FILE' },
      { flag: 'require-client-cert', key: ['tls', 'requireClientCert'], value: true },
      { flag: 'tls-username-field', key: ['tls', 'usernameField'], arg: 'FIELD' },
      { flag: 'tls-min-version', key: ['tls', 'minVersion'], arg: 'VERSION' },
      { flag: 'tls-ciphers', key: ['tls', 'ciphers'], arg: 'LIST' },
      { flag: 'password-file', key: ['auth', 'passwordFile'], arg: 'FILE', doc: 'Mosquitto-format password file (see: starling passwd)' },
      { flag: 'acl-file', key: ['auth', 'aclFile'], arg: 'FILE' },
      { flag: 'allow-anonymous', key: ['auth', 'allowAnonymous'], value: true, doc: 'let in clients without credentials (needed beyond loopback without authentication)' },
      { flag: 'jwt-key', key: ['auth', 'jwt', 'keyFile'], arg: 'FILE' },
      { flag: 'jwt-jwks', key: ['auth', 'jwt', 'jwksFile'], arg: 'FILE' },
      { flag: 'jwt-issuer', key: ['auth', 'jwt', 'issuer'], arg: 'ISS' },
      { flag: 'jwt-audience', key: ['auth', 'jwt', 'audience'], arg: 'AUD' },
    ],
  },
  {
    title: 'WebSocket, HTTP and $SYS (docs/configuration.md, docs/http-api.md)',
    flags: [
      { flag: 'ws-port', key: ['websocket', 'port'], arg: 'PORT', doc: 'MQTT over WebSocket on PORT, path /mqtt (off unless given)' },
      { flag: 'ws-host', key: ['websocket', 'hosts'], arg: 'HOST', multiple: true, doc: 'interface of the WebSocket listener (repeatable)' },
      { flag: 'ws-tls-cert', key: ['websocket', 'certFile'], arg: 'FILE', doc: 'certificate (PEM): the WebSocket listener becomes wss' },
      { flag: 'ws-tls-key', key: ['websocket', 'keyFile'], arg: 'FILE' },
      { flag: 'http-port', key: ['http', 'port'], arg: 'PORT' },
      { flag: 'http-host', key: ['http', 'host'], arg: 'HOST', doc: 'HTTP interface; beyond loopback the API needs STARLING_API_TOKEN' },
      { flag: 'no-http', key: ['http', 'enabled'], value: false, doc: 'no HTTP server' },
      { flag: 'sys-interval', key: ['sys', 'interval'], arg: 'SECS' },
    ],
  },
];

const ALL_FLAGS: readonly Flag[] = SECTIONS.flatMap((s) => s.flags);

/** Flags that are not configuration keys. */
const OWN_FLAGS = {
  config: { type: 'string' },
  'mosquitto-conf': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** What the command line asked for. */
export interface ParsedFlags {
  help: boolean;
  /** --config FILE (Starling JSON/JSONC, or a Mosquitto file, detected). */
  configFile?: string;
  /** --mosquitto-conf FILE. */
  mosquittoFile?: string;
  layer: Layer;
}

/** Parses the broker's argv; a bad flag is a ConfigError that includes the usage. */
export function parseFlags(argv: string[]): ParsedFlags {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { ...OWN_FLAGS };
  for (const f of ALL_FLAGS) options[f.flag] = { type: f.arg === undefined ? 'boolean' : 'string', ...(f.multiple === true ? { multiple: true } : {}) };
  let values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n\n${brokerUsage()}`);
  }
  const value: Record<string, unknown> = {};
  const names = new Map<string, string>();
  for (const f of ALL_FLAGS) {
    const given = values[f.flag];
    if (given === undefined || given === false) continue;
    const setting = settingAt(SCHEMA, f.key) as Setting;
    let item: unknown = f.value;
    if (f.arg !== undefined) item = f.multiple === true ? (given) : fromText(setting, given as string);
    setPath(value, f.key, item);
    names.set(pathText(f.key), `--${f.flag}`);
  }
  // A --ws-* flag turns the WebSocket listener on.
  if (value['websocket'] !== undefined) (value['websocket'] as Record<string, unknown>)['enabled'] = true;
  const flagName = (path: Path): string => names.get(pathText(path)) ?? `command line ${pathText(path)}`;
  const layer: Layer = {
    source: 'command line',
    value,
    where: flagName,
    prefix: (path) => `${flagName(path)}: `,
    required: (path) => (pathText(path) === 'cluster.redis' && names.has('cluster.nodeId') ? '--node-id needs --redis (or "cluster" in the config file)' : undefined),
  };
  const parsed: ParsedFlags = { help: values['help'] === true, layer };
  if (typeof values['config'] === 'string') parsed.configFile = values['config'];
  if (typeof values['mosquitto-conf'] === 'string') parsed.mosquittoFile = values['mosquitto-conf'];
  return parsed;
}

/** Sets `value` at `path` in `target`, creating objects on the way. */
export function setPath(target: Record<string, unknown>, path: Path, value: unknown): void {
  let at = target;
  for (let i = 0; i < path.length - 1; i++) {
    const key = String(path[i]);
    const next = at[key];
    if (typeof next !== 'object' || next === null) at[key] = {};
    at = at[key] as Record<string, unknown>;
  }
  at[String(path[path.length - 1])] = value;
}

/** One help line: the flag, its argument, what it does, its choices and default (from the schema). */
function helpLine(f: Flag): string {
  const setting = settingAt(SCHEMA, f.key) as Setting;
  const left = `  --${f.flag}${f.arg === undefined ? '' : ` ${f.arg}`}`;
  let text = f.doc ?? setting.doc;
  if (setting.kind === 'oneOf') text += ` (${setting.values.join(' | ')})`;
  const fallback = f.arg === undefined ? undefined : defaultText(setting);
  if (fallback !== undefined && fallback !== '[]') text += ` (default ${fallback})`;
  return `${left.padEnd(28)} ${text}`;
}

/** Help text of the broker's flags, derived from the schema. */
export function brokerUsage(): string {
  const lines = [
    'Usage: starling [options]              run the broker',
    '       starling COMMAND [options]      see Commands',
    '',
    'Commands:',
    '  pub            publish messages (mosquitto_pub flags; starling pub --help)',
    '  sub            subscribe and print messages (mosquitto_sub flags)',
    '  bench          load generator (docs/cli.md)',
    '  passwd         create or change a password file',
    '  data inspect   print what the embedded store holds',
    '  ctl            manage users, roles, bans and admins of a running broker (its REST API)',
    '  check-config   check a configuration file: exit 0 and a summary, or exit 2 and every error',
    '',
    'Options:',
    '  --config FILE                configuration: JSON with comments (docs/configuration.md), or a mosquitto.conf (detected)',
    '  --mosquitto-conf FILE        a Mosquitto configuration (docs/migrating-from-mosquitto.md)',
    '  --version, -V                print the version',
    '  --help, -h                   show this help',
  ];
  for (const section of SECTIONS) {
    if (section.title !== 'Options') lines.push('', `${section.title}:`);
    lines.push(...section.flags.map(helpLine));
  }
  lines.push('', 'Every key of the configuration file can also be set from the environment: STARLING_ and the key path in', 'UPPER_SNAKE_CASE, levels joined by __ (e.g. STARLING_LIMITS__MAX_INFLIGHT=50). Flags win over the', 'environment, which wins over the file.', '');
  return lines.join('\n');
}

/** Every flag and the key it sets, for docs/configuration.md. */
export function flagTable(): Array<{ flag: string; key: string }> {
  return ALL_FLAGS.map((f) => ({ flag: `--${f.flag}${f.arg === undefined ? '' : ` ${f.arg}`}`, key: pathText(f.key) }));
}
