/** startServer(config): the composition root, the only place that wires every layer together. */
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { AccessControl } from './auth/access-control.js';
import { AdminAccess } from './auth/admin-access.js';
import { BrokerSecurity } from './auth/broker-security.js';
import { scopedPlugin } from './auth/listener-scope.js';
import { BRIDGE_LISTENER, bridgeAccess, BridgeSet } from './bridge/bridge-set.js';
import { LoginBackoff } from './auth/login-backoff.js';
import { Broker, type BrokerInit } from './broker/broker.js';
import type { BrokerPlugin } from './broker/hooks.js';
import type { Logger } from './broker/logger.js';
import type { BridgeControl } from './model/bridge.js';
import type { PublishInput } from './model/message.js';
import { defaultNodeId } from './cluster/node-id.js';
import type { RedisBus } from './cluster/redis/bus.js';
import type { WorkerBus } from './cluster/workers/worker-bus.js';
import { checkBridgesConfig, checkHttpAuthConfig, checkWebhooksConfig, ConfigError } from './config/config.js';
import { crossCheck } from './config/checks.js';
import { unreadableFiles } from './config/file-check.js';
import { planListeners } from './config/listeners.js';
import { schemaDefaults, type AuthConfig, type BridgeConfig, type ClusterConfig, type FeaturesConfig, type HttpConfig, type LimitsConfig, type ListenerConfig, type LogLevel, type StarlingConfig, type SysConfig, type TlsConfig, type WebhookConfig, type WebSocketConfig } from './config/schema.js';
import { createLogger, type LogFormat } from './create-logger.js';
import { startListeners, type BoundListener, type ListenerSet } from './listener-set.js';
import { MemoryAccessStore } from './persistence/memory-access.js';
import type { Persistence } from './persistence/types.js';
import { Webhooks } from './webhooks/webhooks.js';
import { GroupQuery, reportFor, sumOverviews } from './http/group-view.js';
import type { SysPublisherOptions } from './sys/sys-publisher.js';
import { createSysPublisher, startWebServices, type WebServices } from './web-services.js';

export type { BoundListener } from './listener-set.js';

/** What `startServer` accepts: any part of the configuration, plus embedding hooks. */
export interface ServerOptions {
  hosts?: string[];
  /** Shorthand for one host. */
  host?: string;
  port?: number;
  logLevel?: LogLevel;
  /** 'json' (default when embedding), 'pretty', or 'auto' (pretty on a terminal). */
  logFormat?: LogFormat;
  limits?: Partial<LimitsConfig>;
  features?: Partial<FeaturesConfig>;
  /** A logger to use instead of creating one (pino-compatible). */
  logger?: Logger;
  /** Authentication hook, passed to the broker core. */
  authenticate?: BrokerInit['authenticate'];
  /** 'memory' (default for embedding), 'embedded' (durable, in `dataDir`), or a Persistence of your own. */
  store?: 'memory' | 'embedded' | Persistence;
  /** Directory of the embedded store (default ./data). */
  dataDir?: string;
  /** 'full' (default): acknowledge only what is on disk; 'relaxed': acknowledge at once. */
  durability?: 'full' | 'relaxed';
  /** Listeners of every kind with their own settings (docs/configuration.md); given: `port` / `hosts` make no listener. */
  listeners?: ListenerConfig[];
  /** TLS listener (docs/security.md). */
  tls?: TlsConfig;
  /** Password file, ACL file, JWT, HTTP service (auth.http), anonymous policy (docs/security.md). */
  auth?: AuthConfig;
  /** Plugins of the embedding application, run after the built-in authentication ones (docs/hooks.md). */
  plugins?: readonly BrokerPlugin[];
  /** MQTT over WebSocket on its own port; given: enabled (docs/configuration.md). */
  websocket?: Partial<WebSocketConfig>;
  /** HTTP server: metrics, REST API, dashboard; given: enabled (docs/http-api.md). */
  http?: Partial<HttpConfig>;
  /** $SYS topics; given: published (docs/configuration.md). */
  sys?: Partial<SysConfig>;
  /** Run as a node of a cluster on Redis (docs/clustering.md). */
  cluster?: ClusterConfig;
  /** Bridges to other brokers (docs/bridges.md). */
  bridges?: BridgeConfig[];
  /** HTTP endpoints told of broker events (docs/webhooks.md). */
  webhooks?: WebhookConfig[];
  /** Logged as warnings at start (e.g. Mosquitto options that were not translated). */
  warnings?: readonly string[];
}

/** A running Starling: its broker, where it listens, and how to stop it. */
export interface StarlingServer {
  readonly broker: Broker;
  /** Bound addresses of the MQTT listeners. */
  readonly addresses: AddressInfo[];
  /** The MQTT TCP port actually bound (useful with port 0). */
  readonly port: number;
  /** Every listener running, one entry per bound address. */
  readonly listeners: readonly BoundListener[];
  /** The MQTT-over-TLS port actually bound, when TLS is configured. */
  readonly tlsPort: number | undefined;
  /** The MQTT-over-WebSocket port actually bound, when enabled. */
  readonly wsPort: number | undefined;
  /** The HTTP port (metrics, API, dashboard) actually bound, when enabled. */
  readonly httpPort: number | undefined;
  /** The configured bridges: status, start, stop (docs/bridges.md). */
  readonly bridges: BridgeControl;
  readonly logger: Logger;
  /** Re-reads the password, ACL and JWT key files and the TLS certificates (SIGHUP); false if one was rejected (the old one stays). */
  reload(): Promise<boolean>;
  /** Publishes a message from the broker itself (same as `broker.publish`). */
  publish(input: PublishInput): void;
  /** The parts of `close()` not finished yet (for a shutdown that takes long). */
  closing(): string[];
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** What a worker of a group (`starling --workers N`) adds to `startServer`: its bus to the hub. */
export interface WorkerInternals {
  /** The worker's bus: the broker is a node of the group, its store the hub's. */
  bus: WorkerBus;
  logger: Logger;
}

/** Composition root: builds the broker and its listeners from a configuration and starts them. */
export async function startServer(options: ServerOptions | StarlingConfig = {}, worker?: WorkerInternals): Promise<StarlingServer> {
  const config = resolve(options);
  const logger: Logger = worker?.logger ?? (('logger' in options && options.logger) || createLogger(config.logLevel, config.logFormat));
  const problems = [...crossCheck(config, () => 'configuration'), ...unreadableFiles(config)];
  if (problems.length > 0) throw new ConfigError(problems);
  for (const warning of 'warnings' in options ? (options.warnings ?? []) : []) logger.warn({}, warning);
  const planned = planListeners(config);
  // Users, roles, bans and admins managed at runtime: loaded from the store once it is open (below).
  const access = new AccessControl(logger, (username) => security.inPasswordFile(username));
  const security: BrokerSecurity = await BrokerSecurity.create({
    auth: config.auth,
    listeners: planned.map((l) => ({
      name: l.name,
      requireClientCert: l.tls?.requireClientCert === true,
      ...(l.tls?.usernameField === undefined ? {} : { usernameField: l.tls.usernameField }),
      ...(l.auth === undefined ? {} : { auth: l.auth }),
    })),
    plugins: 'plugins' in options ? options.plugins : undefined,
    customAuthenticate: 'authenticate' in options && options.authenticate !== undefined,
    access,
    logger,
  });
  const admins = new AdminAccess(access, new LoginBackoff(config.auth?.loginBackoff ?? {}));
  const maxConnectionsPerListener = { ...config.limits.maxConnectionsPerListener };
  for (const l of planned) if (l.maxConnections !== undefined) maxConnectionsPerListener[l.name] = l.maxConnections;
  // The bridges' local sides come in on an internal listener that only they reach: the other plugins abstain there (docs/bridges.md).
  const plugins = config.bridges.length === 0 ? security.plugins : [bridgeAccess(), ...security.plugins.map((p) => scopedPlugin(p, (listener) => listener !== BRIDGE_LISTENER))];
  const init: BrokerInit = { ...config.limits, maxConnectionsPerListener, ...config.features, logger, plugins, allowAnonymous: security.allowAnonymous };
  if ('authenticate' in options && options.authenticate !== undefined) {
    const authenticate = options.authenticate;
    init.authenticate = config.bridges.length === 0 ? authenticate : (request) => (request.listener === BRIDGE_LISTENER ? undefined : authenticate(request));
  }
  // $SYS runs only when asked for (the command line always asks).
  const sys = createSysPublisher(options.sys === undefined ? undefined : config.sys, worker === undefined ? undefined : groupSys(worker.bus));
  if (sys !== undefined) init.plugins = [...(init.plugins ?? []), sys.plugin];
  const webhooks = new Webhooks(config.webhooks, logger);
  if (webhooks.plugin !== undefined) init.plugins = [...(init.plugins ?? []), webhooks.plugin];
  const outbound = { httpAuth: () => security.httpAuth?.endpoints ?? [], webhooks: () => webhooks.senders };
  // Stops the HTTP services the broker calls: the HTTP authentication service's requests, the webhooks' last sends.
  const closeOutbound = async (): Promise<void> => {
    security.close();
    await webhooks.close();
  };
  // Anonymous policy (docs/security.md): a listener beyond loopback needs authentication or --allow-anonymous.
  for (const l of planned) for (const host of l.hosts) security.checkListener({ name: l.name, host, port: l.port, authenticatesClients: l.tls?.requireClientCert === true });
  const firstPort = planned[0]?.port ?? config.port;
  const cluster: RedisBus | WorkerBus | undefined = worker?.bus ?? (config.cluster === undefined ? undefined : await openCluster(config.cluster, firstPort, logger));
  const store = cluster?.store ?? (await openStore(options, config));
  if (cluster !== undefined) {
    init.cluster = cluster;
    init.durableAcks = true;
  }
  if (store !== undefined) {
    init.store = store;
    init.durableAcks ??= config.durability === 'full';
  }
  const broker = new Broker(init);
  // Each worker answers the others' report requests (the group's metrics and API views).
  worker?.bus.setReporter(reportFor(broker.query));
  try {
    if (store !== undefined) {
      const restored = await broker.restore();
      logger.info({ store: store.name, dataDir: store.name === 'lmdb' ? config.dataDir : undefined, durability: cluster === undefined ? config.durability : undefined, ...restored }, 'store opened');
    }
    if (cluster !== undefined) {
      await cluster.start(broker.cluster!);
      if ('url' in cluster) logger.info({ node: cluster.nodeId, redis: cluster.url }, `cluster node "${cluster.nodeId}" joined through Redis`);
      else logger.info({ node: cluster.nodeId }, `worker ${cluster.nodeId} joined the group`);
    }
    const query = broker.query;
    access.attach({ disconnectClient: (clientId) => query.isConnected(clientId) && query.disconnect(clientId), disconnectUser: (username) => query.disconnectUser(username), disconnectAddress: (matches) => query.disconnectAddress(matches) });
    await access.start(store?.access ?? new MemoryAccessStore());
    const first = await admins.firstAdminFromEnv(process.env);
    if (first === 'created') logger.info({ admin: process.env['STARLING_ADMIN_USER'] }, 'first administrator created from STARLING_ADMIN_USER / STARLING_ADMIN_PASSWORD');
    if (first === 'exists') logger.info({}, 'STARLING_ADMIN_USER ignored: admins exist already (manage them with starling ctl admins or the dashboard)');
  } catch (error) {
    access.close();
    await broker.close().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    await closeOutbound();
    throw error;
  }

  let listeners: ListenerSet;
  try {
    listeners = await startListeners(planned, broker.accept.bind(broker), logger);
  } catch (error) {
    access.close();
    await closeAll(broker, undefined, cluster, store);
    await closeOutbound();
    throw error;
  }
  if (planned.some((l) => l.setting === 'port' && l.loopbackDefault)) {
    logger.info({}, 'listening on loopback only: use --host 0.0.0.0 (or "hosts" in the config file) to accept other machines');
  }
  let web: WebServices;
  // In a worker group the bridges run in worker w1 only: one connection per bridge to its remote, as on one process.
  const bridges = new BridgeSet(worker === undefined || worker.bus.nodeId === 'w1' ? config.bridges : [], { broker, logger });
  try {
    const trustedProxies = planned.find((l) => l.ws !== undefined)?.ws?.trustedProxies ?? [];
    web = await startWebServices({
      broker,
      logger,
      mqttListeners: listeners.bound.map(({ name, protocol, address, port }) => ({ name, protocol, address, port })),
      trustedProxies,
      http: config.http,
      sys,
      bridges,
      access,
      admins,
      ...(cluster === undefined ? {} : { clusterReady: () => cluster.ready }),
      outbound,
      ...(worker === undefined ? {} : { group: worker.bus }),
    });
    bridges.startAll();
  } catch (error) {
    access.close();
    await closeAll(broker, listeners, cluster, store);
    await closeOutbound();
    throw error;
  }
  const first = (protocols: readonly string[]): BoundListener | undefined => listeners.bound.find((l) => protocols.includes(l.protocol));
  const plain = listeners.bound.filter((l) => l.protocol === 'mqtt');
  const pendingSteps = new Set<string>();
  return {
    broker,
    addresses: plain.map((l) => addressOf(l)),
    port: (first(['mqtt']) ?? listeners.bound[0])?.port ?? config.port,
    listeners: listeners.bound,
    tlsPort: first(['mqtts'])?.port,
    wsPort: first(['ws', 'wss'])?.port,
    httpPort: web.httpPort,
    bridges,
    logger,
    publish(input: PublishInput) {
      broker.publish(input);
    },
    async reload() {
      let ok = await security.reload();
      for (const listener of listeners.tls) {
        try {
          listener.reload();
          logger.info({ listener: listener.name }, 'TLS certificates reloaded');
        } catch (error) {
          ok = false;
          logger.error({ listener: listener.name, err: (error as Error).message }, 'TLS certificates not reloaded: the previous ones stay in force');
        }
      }
      return ok;
    },
    async close() {
      // Bridges first: their local sessions end cleanly (stored, holding what the remotes have not taken).
      pendingSteps.add('bridges');
      await bridges.close();
      pendingSteps.delete('bridges');
      // net.Server.close() calls back only once every connection has ended: stop accepting, end them, then wait.
      const step = (name: string, work: Promise<void>): Promise<void> => {
        pendingSteps.add(name);
        return work.finally(() => pendingSteps.delete(name));
      };
      const stopped = Promise.all([step('listeners', listeners.close()), step('web services', web.close())]);
      access.close();
      await step('broker', broker.close());
      await stopped;
      // After the broker: the disconnect events of its shutdown go out with the webhooks' last send.
      await step('webhooks', closeOutbound());
      if (cluster !== undefined) await step('cluster', cluster.close());
      if (store !== undefined) await step('store', store.close());
    },
    closing: () => [...pendingSteps],
  };
}

/** In a worker group, $SYS statistics are the group's, published by worker w1 (events by every worker). */
function groupSys(bus: WorkerBus): Pick<SysPublisherOptions, 'statistics' | 'source'> {
  if (bus.nodeId !== 'w1') return { statistics: false };
  const query = new GroupQuery(bus);
  return {
    async source() {
      const overviews = (await query.overviews()).map(([, o]) => o);
      const { stats, totals } = sumOverviews(overviews);
      const memory = { heapUsed: 0, heapTotal: 0 };
      for (const o of overviews) for (const key of ['heapUsed', 'heapTotal'] as const) memory[key] += o.memory[key];
      return { stats, totals, memory };
    },
  };
}

/**
 * This node of a cluster on Redis; the node id defaults to the host name and MQTT port. Optional
 * engines (ioredis, LMDB) are loaded only when the configuration asks for them: each costs
 * megabytes of memory in every process that loads it.
 */
async function openCluster(cluster: ClusterConfig, port: number, logger: Logger): Promise<RedisBus> {
  const nodeId = cluster.nodeId ?? defaultNodeId(hostname(), port);
  const { RedisBus } = await import('./cluster/redis/bus.js');
  return new RedisBus({ url: cluster.redis, nodeId, ...(cluster.prefix === undefined ? {} : { prefix: cluster.prefix }), logger });
}

/** The store the configuration asks for: none for 'memory' (the broker's own memory is the state). */
async function openStore(options: ServerOptions | StarlingConfig, config: StarlingConfig): Promise<Persistence | undefined> {
  if (typeof options.store === 'object') return options.store;
  if (config.store === 'memory') return undefined;
  const { LmdbPersistence } = await import('./persistence/lmdb.js');
  return new LmdbPersistence({ dataDir: config.dataDir, sync: config.durability === 'full' });
}

/** Stops what started, after a failed start. */
async function closeAll(broker: Broker, listeners: ListenerSet | undefined, cluster: RedisBus | WorkerBus | undefined, store: Persistence | undefined): Promise<void> {
  await Promise.all([listeners?.close(), broker.close()]).catch(() => undefined);
  await cluster?.close().catch(() => undefined);
  await store?.close().catch(() => undefined);
}

function addressOf(l: BoundListener): AddressInfo {
  return { address: l.address, port: l.port, family: l.address.includes(':') ? 'IPv6' : 'IPv4' };
}

/** The full configuration from what an embedding application gave, with the schema's defaults. */
function resolve(options: ServerOptions | StarlingConfig): StarlingConfig {
  const defaults = schemaDefaults();
  const hosts = options.hosts ?? ('host' in options && options.host !== undefined ? [options.host] : defaults.hosts);
  const config: StarlingConfig = {
    ...defaults,
    hosts,
    port: options.port ?? defaults.port,
    logLevel: options.logLevel ?? defaults.logLevel,
    // Embedding keeps JSON logs unless asked; the `starling` command passes its own choice.
    logFormat: options.logFormat ?? 'json',
    limits: { ...defaults.limits, ...options.limits },
    features: { ...defaults.features, ...options.features },
    // The embedding API keeps everything in memory unless asked; the `starling` command passes 'embedded'.
    store: typeof options.store === 'string' ? options.store : 'memory',
    dataDir: options.dataDir ?? defaults.dataDir,
    durability: options.durability ?? defaults.durability,
    listeners: options.listeners ?? [],
    bridges: options.bridges === undefined ? [] : checkBridgesConfig(options.bridges),
    webhooks: options.webhooks === undefined ? [] : checkWebhooksConfig(options.webhooks),
    http: { ...defaults.http, enabled: false },
  };
  delete config.host;
  if (options.tls !== undefined) config.tls = options.tls;
  if (options.auth !== undefined) config.auth = options.auth.http === undefined ? options.auth : { ...options.auth, http: checkHttpAuthConfig(options.auth.http) };
  if (options.cluster !== undefined) config.cluster = options.cluster;
  if (options.websocket !== undefined) config.websocket = { enabled: true, port: 8083, path: '/mqtt', trustedProxies: [], ...options.websocket };
  // HTTP and $SYS run only when asked for (the command line has them by default).
  if (options.http !== undefined) config.http = { ...defaults.http, portIsDefault: options.http.port === undefined, ...options.http };
  if (options.sys !== undefined) config.sys = { ...defaults.sys, ...options.sys };
  return config;
}
