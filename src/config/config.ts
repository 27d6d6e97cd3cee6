/** The configuration of a Starling process: defaults, the JSON file and the command-line flags, validated into one StarlingConfig. */
import { readFileSync } from 'node:fs';
import { asBoolean, asChoice, asInteger, asObject, asPort, asString, ConfigError } from './values.js';

export { ConfigError } from './values.js';
import { parseArgs } from 'node:util';
import { applyAuthObject, applySecurityFlags, applyTlsObject, SECURITY_FLAGS, SECURITY_USAGE, type AuthConfig, type TlsConfig } from './security.js';
import { applyWebFlags, applyWebObject, defaultHttpConfig, defaultSysConfig, WEB_FLAGS, WEB_USAGE, type HttpConfig, type SysConfig, type WebSocketConfig } from './web.js';
import { isValidNodeId } from '../cluster/node-id.js';

/** Log levels, as pino names them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** One log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Broker limits settable from the config file (see docs/configuration.md). */
export interface LimitsConfig {
  maxInflight: number;
  maxQueuedMessages: number;
  maxWriteBuffer: number;
  maxPacketSize: number;
  maxConnections: number;
  maxClientIdLength: number;
  maxSessions: number;
  maxConnectionsPerListener: Record<string, number>;
  maxSubscriptionsPerClient: number;
  maxTopicLevels: number;
  maxTopicLength: number;
  maxPublishRate: number;
  maxPublishBytesRate: number;
  queueFullPolicy: 'drop-new' | 'drop-oldest';
  maxRetainedMessages: number;
  retainedFullPolicy: 'drop-new' | 'drop-oldest';
  connectTimeout: number;
  maxQoS: 0 | 1 | 2;
  receiveMaximum: number;
  topicAliasMaximum: number;
  maxSessionExpiry: number;
  maxKeepAlive: number;
}

/** Optional protocol features (MQTT 5 advertises each in CONNACK). */
export interface FeaturesConfig {
  retainAvailable: boolean;
  wildcardSubscriptionAvailable: boolean;
  subscriptionIdentifiersAvailable: boolean;
  sharedSubscriptionAvailable: boolean;
  sharedSubscriptionStrategy: 'round-robin' | 'random';
  validateUtf8Payload: boolean;
  /** Prefix of the Response Information sent to clients that request it; unset: none is sent. */
  responseInformation?: string;
}

/** The whole validated configuration of a Starling process. */
export interface StarlingConfig {
  /** Interfaces to listen on; empty means loopback only (127.0.0.1 and ::1). */
  hosts: string[];
  /** MQTT TCP port (0 picks a free one). */
  port: number;
  logLevel: LogLevel;
  limits: LimitsConfig;
  features: FeaturesConfig;
  /** Persistence: 'embedded' (durable, in `dataDir`) or 'memory' (nothing survives a restart). */
  store: 'memory' | 'embedded';
  /** Directory of the embedded store. */
  dataDir: string;
  /** 'full': acknowledge only what is on disk; 'relaxed': acknowledge at once, write in the background. */
  durability: 'full' | 'relaxed';
  /** TLS listener (mqtts); absent: none. See docs/security.md. */
  tls?: TlsConfig;
  /** Authentication and authorization; absent: anonymous on loopback only. */
  auth?: AuthConfig;
  /** MQTT over WebSocket listener; absent or not enabled: none. */
  websocket?: WebSocketConfig;
  /** HTTP server (metrics, API, dashboard); absent: none (the command line has it by default). */
  http?: HttpConfig;
  /** $SYS publication; absent: none (the command line has it by default). */
  sys?: SysConfig;
  /** Cluster on Redis (docs/clustering.md); absent: a single node with its own store. */
  cluster?: ClusterConfig;
}

/** A node of a cluster on Redis. */
export interface ClusterConfig {
  /** Redis URL: redis://[user:password@]host:port[/db], rediss:// for TLS. */
  redis: string;
  /** This node's id; default: derived from the host name and the MQTT port (stable across restarts). */
  nodeId?: string;
  /** Prefix of every Redis key and channel (default "starling"). */
  prefix?: string;
}

/** Defaults: a broker on 1883, loopback only, as Mosquitto 2 does. */
export const DEFAULT_CONFIG: StarlingConfig = {
  hosts: [],
  port: 1883,
  logLevel: 'info',
  store: 'embedded',
  dataDir: './data',
  durability: 'full',
  limits: {
    maxInflight: 100,
    maxQueuedMessages: 10_000,
    maxWriteBuffer: 4 * 1024 * 1024,
    maxPacketSize: 268_435_460,
    maxConnections: 1_000_000,
    maxClientIdLength: 65_535,
    maxSessions: 1_000_000,
    maxConnectionsPerListener: {},
    maxSubscriptionsPerClient: 10_000,
    maxTopicLevels: 128,
    maxTopicLength: 65_535,
    maxPublishRate: 0,
    maxPublishBytesRate: 0,
    queueFullPolicy: 'drop-new',
    maxRetainedMessages: 1_000_000,
    retainedFullPolicy: 'drop-new',
    connectTimeout: 10,
    maxQoS: 2,
    receiveMaximum: 65_535,
    topicAliasMaximum: 1024,
    maxSessionExpiry: 0xffff_ffff,
    maxKeepAlive: 65_535,
  },
  features: {
    retainAvailable: true,
    wildcardSubscriptionAvailable: true,
    subscriptionIdentifiersAvailable: true,
    sharedSubscriptionAvailable: true,
    sharedSubscriptionStrategy: 'round-robin',
    validateUtf8Payload: false,
  },
  http: defaultHttpConfig(),
  sys: defaultSysConfig(),
};


const USAGE = `Usage: starling [options]

Options:
  --host HOST        interface to listen on (repeatable; default: 127.0.0.1 and ::1 only)
  --port PORT        MQTT TCP port (default 1883; 0 picks a free port)
  --config FILE      JSON configuration file (see docs/configuration.md)
  --log-level LEVEL  fatal | error | warn | info | debug | trace | silent (default info)
  --store KIND       embedded (durable, default) | memory (nothing survives a restart)
  --data-dir DIR     directory of the embedded store (default ./data)
  --durability MODE  full (acknowledge only what is on disk, default) | relaxed (faster; a crash can lose acknowledged messages)
  --redis URL        run as a node of a cluster sharing this Redis (redis://host:6379); see docs/clustering.md
  --node-id ID       this node's id in the cluster (default: host name and MQTT port, e.g. web1-1883)
  --help             show this help
`;

/** Help text for the broker command. */
export function usage(): string {
  return USAGE + SECURITY_USAGE + WEB_USAGE;
}

/** Result of reading the command line: a config, or a request for help. */
export type CommandLine = { help: true } | { help: false; config: StarlingConfig };

/** Builds the configuration from defaults, then the config file, then command-line flags. */
export function loadConfig(argv: string[]): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        host: { type: 'string', multiple: true },
        port: { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        store: { type: 'string' },
        'data-dir': { type: 'string' },
        durability: { type: 'string' },
        redis: { type: 'string' },
        'node-id': { type: 'string' },
        ...SECURITY_FLAGS,
        ...WEB_FLAGS,
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n\n${USAGE}${SECURITY_USAGE}${WEB_USAGE}`);
  }
  const { values } = parsed;
  if (values.help === true) return { help: true };
  let config = structuredClone(DEFAULT_CONFIG);
  if (values.config !== undefined) config = mergeFile(config, values.config);
  if (values.host !== undefined) config.hosts = values.host;
  if (values.port !== undefined) config.port = asPort(values.port, '--port');
  if (values['log-level'] !== undefined) config.logLevel = parseLogLevel(values['log-level'], '--log-level');
  if (values.store !== undefined) config.store = asChoice(values.store, '--store', ['memory', 'embedded'] as const);
  if (values['data-dir'] !== undefined) config.dataDir = asString(values['data-dir'], '--data-dir');
  if (values.durability !== undefined) config.durability = asChoice(values.durability, '--durability', ['full', 'relaxed'] as const);
  if (values.redis !== undefined) config.cluster = { ...config.cluster, redis: asRedisUrl(values.redis, '--redis') };
  if (values['node-id'] !== undefined) {
    if (config.cluster === undefined) throw new ConfigError('--node-id needs --redis (or "cluster" in the config file)');
    config.cluster.nodeId = asNodeId(values['node-id'], '--node-id');
  }
  applySecurityFlags(config, values);
  applyWebFlags(config, values);
  return { help: false, config };
}

function mergeFile(base: StarlingConfig, path: string): StarlingConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return applyConfigObject(base, data, path);
}

/** Validates a config object (as read from a file) and merges it over `base`. */
export function applyConfigObject(base: StarlingConfig, data: unknown, source: string): StarlingConfig {
  const config = structuredClone(base);
  const root = asObject(data, source);
  for (const [key, value] of Object.entries(root)) {
    switch (key) {
      case 'host':
        config.hosts = [asString(value, `${source}: host`)];
        break;
      case 'hosts':
        if (!Array.isArray(value)) throw new ConfigError(`${source}: hosts must be an array of strings`);
        config.hosts = value.map((h, i) => asString(h, `${source}: hosts[${i}]`));
        break;
      case 'port':
        config.port = asPort(value, `${source}: port`);
        break;
      case 'logLevel':
        config.logLevel = parseLogLevel(value, `${source}: logLevel`);
        break;
      case 'store':
        config.store = asChoice(value, `${source}: store`, ['memory', 'embedded'] as const);
        break;
      case 'dataDir':
        config.dataDir = asString(value, `${source}: dataDir`);
        break;
      case 'durability':
        config.durability = asChoice(value, `${source}: durability`, ['full', 'relaxed'] as const);
        break;
      case 'limits':
        applyLimits(config.limits, asObject(value, `${source}: limits`), source);
        break;
      case 'features':
        applyFeatures(config.features, asObject(value, `${source}: features`), source);
        break;
      case 'tls':
        applyTlsObject(config, value, source);
        break;
      case 'auth':
        applyAuthObject(config, value, source);
        break;
      case 'websocket':
      case 'http':
      case 'sys':
        applyWebObject(config, key, value, source);
        break;
      case 'cluster':
        config.cluster = asClusterConfig(value, `${source}: cluster`);
        break;
      default:
        throw new ConfigError(`${source}: unknown key "${key}" (known: host, hosts, port, logLevel, store, dataDir, durability, limits, features, tls, auth, websocket, http, sys, cluster)`);
    }
  }
  return config;
}

/** The integer limits and their allowed ranges [min, max]. */
const INTEGER_LIMITS = {
  maxInflight: [1, 65_535],
  maxQueuedMessages: [0, 1e9],
  maxWriteBuffer: [1024, 2 ** 40],
  maxPacketSize: [16, 268_435_460],
  maxConnections: [1, 1e9],
  maxClientIdLength: [23, 65_535],
  maxSessions: [1, 1e9],
  maxSubscriptionsPerClient: [1, 1e9],
  maxTopicLevels: [1, 65_535],
  maxTopicLength: [1, 65_535],
  maxPublishRate: [0, 1e9],
  maxPublishBytesRate: [0, 2 ** 40],
  maxRetainedMessages: [0, 1e9],
  connectTimeout: [1, 3600],
  receiveMaximum: [1, 65_535],
  topicAliasMaximum: [0, 65_535],
  maxSessionExpiry: [0, 0xffff_ffff],
  maxKeepAlive: [1, 65_535],
} as const satisfies Partial<Record<keyof LimitsConfig, readonly [number, number]>>;

const POLICIES = ['drop-new', 'drop-oldest'] as const;

function applyLimits(limits: LimitsConfig, data: Record<string, unknown>, source: string): void {
  for (const [key, value] of Object.entries(data)) {
    const where = `${source}: limits.${key}`;
    if (Object.hasOwn(INTEGER_LIMITS, key)) {
      const [min, max] = INTEGER_LIMITS[key as keyof typeof INTEGER_LIMITS];
      limits[key as keyof typeof INTEGER_LIMITS] = asInteger(value, where, min, max);
      continue;
    }
    switch (key) {
      case 'maxQoS':
        limits.maxQoS = asInteger(value, where, 0, 2) as 0 | 1 | 2;
        break;
      case 'queueFullPolicy':
      case 'retainedFullPolicy':
        limits[key] = asChoice(value, where, POLICIES);
        break;
      case 'maxConnectionsPerListener': {
        const perListener: Record<string, number> = {};
        for (const [name, n] of Object.entries(asObject(value, where))) perListener[name] = asInteger(n, `${where}.${name}`, 1, 1e9);
        limits.maxConnectionsPerListener = perListener;
        break;
      }
      default:
        throw new ConfigError(`${source}: unknown key "limits.${key}"`);
    }
  }
}

function applyFeatures(features: FeaturesConfig, data: Record<string, unknown>, source: string): void {
  for (const [key, value] of Object.entries(data)) {
    const where = `${source}: features.${key}`;
    switch (key) {
      case 'retainAvailable':
      case 'wildcardSubscriptionAvailable':
      case 'subscriptionIdentifiersAvailable':
      case 'sharedSubscriptionAvailable':
      case 'validateUtf8Payload':
        features[key] = asBoolean(value, where);
        break;
      case 'sharedSubscriptionStrategy':
        if (value !== 'round-robin' && value !== 'random') throw new ConfigError(`${where} must be "round-robin" or "random"`);
        features.sharedSubscriptionStrategy = value;
        break;
      case 'responseInformation':
        features.responseInformation = asString(value, where);
        break;
      default:
        throw new ConfigError(`${source}: unknown key "features.${key}"`);
    }
  }
}







function parseLogLevel(value: unknown, where: string): LogLevel {
  if (typeof value !== 'string' || !(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new ConfigError(`${where} must be one of ${LOG_LEVELS.join(', ')}`);
  }
  return value as LogLevel;
}

function asRedisUrl(value: unknown, where: string): string {
  const url = asString(value, where);
  if (!/^rediss?:\/\/[^\s]+$/.test(url)) throw new ConfigError(`${where}: expected redis://host:port or rediss://host:port, got "${url}"`);
  return url;
}

function asNodeId(value: unknown, where: string): string {
  const id = asString(value, where);
  if (!isValidNodeId(id)) throw new ConfigError(`${where}: a node id is 1-128 of A-Z a-z 0-9 . _ : - (got "${id}")`);
  return id;
}

function asClusterConfig(value: unknown, where: string): ClusterConfig {
  const object = asObject(value, where);
  let cluster: ClusterConfig | undefined;
  const rest: Partial<ClusterConfig> = {};
  for (const [key, item] of Object.entries(object)) {
    switch (key) {
      case 'redis':
        cluster = { redis: asRedisUrl(item, `${where}.redis`) };
        break;
      case 'nodeId':
        rest.nodeId = asNodeId(item, `${where}.nodeId`);
        break;
      case 'prefix':
        rest.prefix = asNodeId(item, `${where}.prefix`);
        break;
      default:
        throw new ConfigError(`${where}: unknown key "${key}" (known: redis, nodeId, prefix)`);
    }
  }
  if (cluster === undefined) throw new ConfigError(`${where}: "redis" (the Redis URL) is required`);
  return { ...cluster, ...rest };
}
