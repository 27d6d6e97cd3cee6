/** Translation of Mosquitto bridge options (after a `connection NAME` line) into Starling's `bridges` entries. */
import { MOSQUITTO_ADVICE } from './mosquitto-advice.js';
import type { MosquittoLine } from './mosquitto.js';

/** A bridge being read: its name, its options so far (Starling keys) and its topic lines. */
export interface BridgeDraft {
  at: string;
  name: string;
  options: Record<string, unknown>;
  topics: Array<Record<string, unknown>>;
  /** Host and port from `address`, joined into the URL once the TLS options are known. */
  address?: string;
}

/** Options that belong to the bridge above them (translated or not). */
export const BRIDGE_OPTIONS: ReadonlySet<string> = new Set([
  'address',
  'addresses',
  'topic',
  'remote_clientid',
  'clientid',
  'remote_username',
  'username',
  'remote_password',
  'password',
  'cleansession',
  'keepalive_interval',
  'bridge_protocol_version',
  'bridge_cafile',
  'bridge_certfile',
  'bridge_keyfile',
  'try_private',
  ...Object.keys(MOSQUITTO_ADVICE).filter((o) => o.startsWith('bridge_') || o.startsWith('local_') || o.startsWith('notification') || ['start_type', 'restart_timeout', 'idle_timeout', 'threshold', 'round_robin'].includes(o)),
]);

const DIRECTIONS = new Set(['out', 'in', 'both']);

/** Applies one option line to `bridge`; wrong values go to `errors`, untranslated options to `warnings`. */
export function translateBridgeOption(bridge: BridgeDraft, line: MosquittoLine, errors: string[], warnings: string[]): void {
  const { at, option, args, rest } = line;
  const where = `${at}: bridge "${bridge.name}": ${option}`;
  const flag = (key: string): void => {
    if (args[0] === 'true' || args[0] === 'false') bridge.options[key] = args[0] === 'true';
    else errors.push(`${where} must be true or false; got ${JSON.stringify(rest)}`);
  };
  switch (option) {
    case 'address':
    case 'addresses': {
      const [first] = rest.split(/[\s,]+/);
      if (first === undefined || first === '') errors.push(`${where} needs host[:port]`);
      else {
        bridge.address = first;
        if (rest.split(/[\s,]+/).length > 1) warnings.push(`${at}: bridge "${bridge.name}": only the first address (${first}) is used: Starling bridges do not fail over between addresses`);
      }
      break;
    }
    case 'topic': {
      const topic = topicLine(args, where, errors);
      if (topic !== undefined) bridge.topics.push(topic);
      break;
    }
    case 'remote_clientid':
    case 'clientid':
      bridge.options['clientId'] = rest;
      break;
    case 'remote_username':
    case 'username':
      bridge.options['username'] = rest;
      break;
    case 'remote_password':
    case 'password':
      bridge.options['password'] = rest;
      break;
    case 'cleansession':
      flag('cleanStart');
      break;
    case 'try_private':
      flag('tryPrivate');
      break;
    case 'keepalive_interval': {
      const n = /^\d+$/.test(rest) ? Number(rest) : NaN;
      if (n >= 5 && n <= 65_535) bridge.options['keepalive'] = n;
      else errors.push(`${where} must be an integer from 5 to 65535; got ${JSON.stringify(rest)}`);
      break;
    }
    case 'bridge_protocol_version': {
      const version = { mqttv311: 4, mqttv50: 5 }[rest];
      if (version !== undefined) bridge.options['protocolVersion'] = version;
      else errors.push(`${where} must be mqttv311 or mqttv50 (MQTT 3.1 bridges are not supported); got ${JSON.stringify(rest)}`);
      break;
    }
    case 'bridge_cafile':
    case 'bridge_certfile':
    case 'bridge_keyfile':
      bridge.options[{ bridge_cafile: 'caFile', bridge_certfile: 'certFile', bridge_keyfile: 'keyFile' }[option]] = rest;
      break;
    default:
      warnings.push(`${at}: bridge "${bridge.name}": ${option} is not translated: ${MOSQUITTO_ADVICE[option] ?? 'not supported by Starling bridges'}`);
  }
  finishUrl(bridge);
}

/** `topic PATTERN [out|in|both [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]]`; "" stands for an empty pattern or prefix. */
function topicLine(args: readonly string[], where: string, errors: string[]): Record<string, unknown> | undefined {
  const unquote = (word: string | undefined): string => (word === undefined || word === '""' ? '' : word);
  const [pattern, direction = 'out', qos = '0', local, remote] = args;
  if (pattern === undefined) {
    errors.push(`${where} needs a pattern`);
    return undefined;
  }
  if (!DIRECTIONS.has(direction)) {
    errors.push(`${where}: direction must be out, in or both; got ${JSON.stringify(direction)}`);
    return undefined;
  }
  if (!['0', '1', '2'].includes(qos)) {
    errors.push(`${where}: qos must be 0, 1 or 2; got ${JSON.stringify(qos)}`);
    return undefined;
  }
  return { pattern: unquote(pattern), direction, qos: Number(qos), localPrefix: unquote(local), remotePrefix: unquote(remote) };
}

/** The URL from the address and whether TLS was asked for (bridge_cafile, as Mosquitto decides). */
function finishUrl(bridge: BridgeDraft): void {
  if (bridge.address === undefined) return;
  const tls = bridge.options['caFile'] !== undefined;
  const hostPort = bridge.address.includes(':') && !bridge.address.startsWith('[') && bridge.address.split(':').length > 2 ? `[${bridge.address}]` : bridge.address;
  bridge.options['url'] = `${tls ? 'mqtts' : 'mqtt'}://${hostPort}`;
  // Mosquitto's bridge defaults differ from Starling's: a persistent remote session unless cleansession true.
  bridge.options['cleanStart'] ??= false;
}
