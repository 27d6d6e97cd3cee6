/** Flags shared by `starling pub` and `starling sub` (mosquitto_pub / mosquitto_sub compatible) → ConnectOptions. */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseUrl, type ConnectOptions, type Properties, type ProtocolVersion, type QoS, type UserProperty } from '../client/index.js';
import { UsageError } from './exit-codes.js';

/** parseArgs option table of the connection flags. */
export const CONNECTION_FLAGS = {
  host: { type: 'string', short: 'h' },
  port: { type: 'string', short: 'p' },
  url: { type: 'string', short: 'L' },
  username: { type: 'string', short: 'u' },
  pw: { type: 'string', short: 'P' },
  id: { type: 'string', short: 'i' },
  'id-prefix': { type: 'string', short: 'I' },
  keepalive: { type: 'string', short: 'k' },
  'protocol-version': { type: 'string', short: 'V' },
  'disable-clean-session': { type: 'boolean', short: 'c' },
  'session-expiry-interval': { type: 'string', short: 'x' },
  qos: { type: 'string', short: 'q' },
  timeout: { type: 'string', short: 'W' },
  'will-topic': { type: 'string' },
  'will-payload': { type: 'string' },
  'will-qos': { type: 'string' },
  'will-retain': { type: 'boolean' },
  cafile: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** Help text for the connection flags. */
export const CONNECTION_USAGE = `Connection:
  -h, --host HOST          broker host (default localhost)
  -p, --port PORT          broker port (default 1883, 8883 with TLS)
  -L, --url URL            mqtt[s]://[user[:pass]@]host[:port] or ws[s]://host[:port]/path
  -u, --username USER      -P, --pw PASSWORD
  -i, --id ID              client id (default random)    -I, --id-prefix PREFIX
  -k, --keepalive SEC      keep alive (default 60)
  -V, --protocol-version   5 | 311 | 31 (also mqttv5, mqttv311, mqttv31; default 311)
  -c, --disable-clean-session   resume the session (use with -i)
  -x, --session-expiry-interval SEC   MQTT 5 session expiry
  -q, --qos 0|1|2          QoS (default 0)
  -W, --timeout SEC        give up after SEC seconds (exit code 3)
  -D, --property COMMAND NAME VALUE   MQTT 5 property; user-property takes NAME VALUE:
                           -D publish user-property k v, -D connect session-expiry-interval 60
      --will-topic T --will-payload P --will-qos Q --will-retain
      --cafile FILE --cert FILE --key FILE   TLS (implied by --cafile or mqtts://)
      --insecure           do not check the server certificate's host name
      --quiet              no error messages on stderr (exit codes only)
      --help
`;

/** The MQTT 5 properties given with -D, by the command they belong to. */
export type PropertySets = Partial<Record<'connect' | 'publish' | 'subscribe' | 'unsubscribe' | 'will' | 'disconnect', Properties>>;

const NUMERIC = new Set([
  'maximum-packet-size',
  'message-expiry-interval',
  'payload-format-indicator',
  'receive-maximum',
  'request-problem-information',
  'request-response-information',
  'session-expiry-interval',
  'subscription-identifier',
  'topic-alias',
  'topic-alias-maximum',
  'will-delay-interval',
]);
const STRING = new Set(['content-type', 'response-topic', 'correlation-data', 'user-property', 'authentication-method']);

/** Removes every `-D command name value [value]` from argv and returns them as property sets. */
export function extractProperties(argv: string[]): { rest: string[]; properties: PropertySets } {
  const rest: string[] = [];
  const properties: PropertySets = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg !== '-D' && arg !== '--property') {
      rest.push(arg);
      continue;
    }
    const command = argv[i + 1];
    const name = argv[i + 2];
    const value = argv[i + 3];
    if (command === undefined || name === undefined || value === undefined) throw new UsageError('-D needs a command, a property name and a value');
    if (!['connect', 'publish', 'subscribe', 'unsubscribe', 'will', 'disconnect'].includes(command)) {
      throw new UsageError(`-D: unknown command "${command}" (connect, publish, subscribe, unsubscribe, will, disconnect)`);
    }
    const set = (properties[command as keyof PropertySets] ??= {}) as Record<string, unknown>;
    i += 3;
    if (name === 'user-property') {
      const v = argv[++i];
      if (v === undefined) throw new UsageError('-D … user-property needs a name and a value');
      ((set['userProperties'] ??= []) as UserProperty[]).push([value, v]);
      continue;
    }
    const key = name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (NUMERIC.has(name)) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`-D ${name} needs a non-negative integer`);
      if (name === 'subscription-identifier') set['subscriptionIdentifiers'] = [n];
      else set[key] = n;
    } else if (STRING.has(name)) {
      set[key] = name === 'correlation-data' ? Buffer.from(value) : value;
    } else {
      throw new UsageError(`-D: unknown property "${name}"`);
    }
  }
  return { rest, properties };
}

/** Parses `--protocol-version`. */
export function parseVersion(value: string | undefined): ProtocolVersion {
  switch (value) {
    case undefined:
    case '311':
    case 'mqttv311':
    case '4':
      return 4;
    case '5':
    case 'mqttv5':
      return 5;
    case '31':
    case 'mqttv31':
    case '3':
      return 3;
    default:
      throw new UsageError(`--protocol-version must be 5, 311 or 31, got "${value}"`);
  }
}

/** Parses a whole number in [min, max]. */
export function parseInteger(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

/** Parses a QoS flag. */
export function parseQos(value: string | undefined, flag: string): QoS {
  return value === undefined ? 0 : (parseInteger(value, flag, 0, 2) as QoS);
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
}

/** The values parseArgs gives for CONNECTION_FLAGS. */
export type ConnectionValues = { [K in keyof typeof CONNECTION_FLAGS]?: (typeof CONNECTION_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** Builds ConnectOptions from the connection flags (--url first, then the single flags over it). */
export function connectOptions(v: ConnectionValues, props: PropertySets): ConnectOptions {
  const o: ConnectOptions = v.url === undefined ? {} : parseUrl(v.url);
  o.reconnect = false;
  if (v.host !== undefined) o.host = v.host;
  o.host ??= 'localhost';
  const version = parseVersion(v['protocol-version']);
  o.protocolVersion = version;
  if (version !== 5 && Object.keys(props).length > 0) throw new UsageError('-D (MQTT 5 properties) needs -V 5');
  const tls = v.cafile !== undefined || v.cert !== undefined || v.insecure === true;
  if (tls) {
    o.tls = {};
    if (v.cafile !== undefined) o.tls.ca = readPem(v.cafile, '--cafile');
    if (v.cert !== undefined) o.tls.cert = readPem(v.cert, '--cert');
    if (v.key !== undefined) o.tls.key = readPem(v.key, '--key');
    if (v.insecure === true) o.tls.verifyHostname = false;
    if (o.protocol === undefined || o.protocol === 'mqtt') o.protocol = 'mqtts';
    if (o.protocol === 'ws') o.protocol = 'wss';
  }
  if (v.port !== undefined) o.port = parseInteger(v.port, '--port', 1, 65_535);
  if (v.username !== undefined) o.username = v.username;
  if (v.pw !== undefined) o.password = v.pw;
  if (v.id !== undefined) o.clientId = v.id;
  else if (v['id-prefix'] !== undefined) o.clientId = v['id-prefix'] + String(process.pid);
  if (v.keepalive !== undefined) o.keepalive = parseInteger(v.keepalive, '--keepalive', 0, 65_535);
  if (v['disable-clean-session'] === true) {
    if (v.id === undefined && version !== 5) throw new UsageError('-c (disable clean session) needs a client id (-i)');
    o.clean = false;
  }
  const properties: Properties = { ...props.connect };
  if (v['session-expiry-interval'] !== undefined) {
    if (version !== 5) throw new UsageError('-x needs -V 5');
    properties.sessionExpiryInterval = parseInteger(v['session-expiry-interval'], '-x', 0, 0xffffffff);
  } else if (version === 5 && o.clean === false && properties.sessionExpiryInterval === undefined) {
    properties.sessionExpiryInterval = 0xffffffff; // mosquitto_sub -c with v5: keep the session
  }
  if (Object.keys(properties).length > 0) o.properties = properties;
  if (v['will-topic'] !== undefined) {
    o.will = { topic: v['will-topic'], payload: v['will-payload'] ?? '', qos: parseQos(v['will-qos'], '--will-qos'), retain: v['will-retain'] === true };
    if (props.will !== undefined) o.will.properties = props.will;
  } else if (v['will-payload'] !== undefined || v['will-qos'] !== undefined || v['will-retain'] === true) {
    throw new UsageError('--will-payload, --will-qos and --will-retain need --will-topic');
  }
  if (v.timeout !== undefined) o.connectTimeout = parseInteger(v.timeout, '--timeout', 1, 2_000_000) * 1000;
  return o;
}

/** parseArgs over `options`, turning its errors into UsageError. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T): ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
