/** The composition root: startServer(config) builds the broker, its store, cluster bus, listeners and web services. */
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { pino } from 'pino';
import { BrokerSecurity } from './auth/broker-security.js';
import { Broker, type BrokerInit } from './broker/broker.js';
import type { BrokerPlugin } from './broker/hooks.js';
import type { Logger } from './broker/logger.js';
import type { PublishInput } from './model/message.js';
import { defaultNodeId } from './cluster/node-id.js';
import { RedisBus } from './cluster/redis/bus.js';
import { DEFAULT_CONFIG, type ClusterConfig, type FeaturesConfig, type LimitsConfig, type LogLevel, type StarlingConfig } from './config/config.js';
import { checkSecurity, type AuthConfig, type TlsConfig } from './config/security.js';
import { LmdbPersistence } from './persistence/lmdb.js';
import type { Persistence } from './persistence/types.js';
import { TcpListener } from './transport/tcp.js';
import { TlsListener } from './transport/tls.js';
import type { Listener } from './transport/types.js';
import { defaultHttpConfig, defaultSysConfig, defaultWebSocketConfig, type HttpConfig, type SysConfig, type WebSocketConfig } from './config/web.js';
import { createSysPublisher, startWebServices, type WebServices } from './web-services.js';

/** What `startServer` accepts: any part of the configuration, plus embedding hooks. */
export interface ServerOptions {
  hosts?: string[];
  /** Shorthand for one host. */
  host?: string;
  port?: number;
  logLevel?: LogLevel;
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
  /** TLS listener (docs/security.md). */
  tls?: TlsConfig;
  /** Password file, ACL file, JWT, anonymous policy (docs/security.md). */
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
}

/** A running Starling: its broker, where it listens, and how to stop it. */
export interface StarlingServer {
  readonly broker: Broker;
  /** Bound addresses of the MQTT listeners. */
  readonly addresses: AddressInfo[];
  /** The MQTT TCP port actually bound (useful with port 0). */
  readonly port: number;
  /** The MQTT-over-TLS port actually bound, when TLS is configured. */
  readonly tlsPort: number | undefined;
  /** The MQTT-over-WebSocket port actually bound, when enabled. */
  readonly wsPort: number | undefined;
  /** The HTTP port (metrics, API, dashboard) actually bound, when enabled. */
  readonly httpPort: number | undefined;
  readonly logger: Logger;
  /** Re-reads the password, ACL and JWT key files and the TLS certificates (SIGHUP); false if one was rejected (the old one stays). */
  reload(): Promise<boolean>;
  /** Publishes a message from the broker itself (same as `broker.publish`). */
  publish(input: PublishInput): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Composition root: builds the broker and its listeners from a configuration and starts them. */
export async function startServer(options: ServerOptions | StarlingConfig = {}): Promise<StarlingServer> {
  const config = resolve(options);
  const logger: Logger = ('logger' in options && options.logger) || pino({ level: config.logLevel, base: { name: 'starling' } });
  checkSecurity(config, 'configuration');
  const security = await BrokerSecurity.create({
    auth: config.auth,
    tls: config.tls,
    plugins: 'plugins' in options ? options.plugins : undefined,
    customAuthenticate: 'authenticate' in options && options.authenticate !== undefined,
    logger,
  });
  const init: BrokerInit = { ...config.limits, ...config.features, logger, plugins: security.plugins, allowAnonymous: security.allowAnonymous };
  if ('authenticate' in options && options.authenticate !== undefined) init.authenticate = options.authenticate;
  const sys = createSysPublisher(config.sys);
  if (sys !== undefined) init.plugins = [...(init.plugins ?? []), sys.plugin];
  for (const host of config.websocket?.enabled === true ? (config.websocket.hosts ?? config.hosts) : []) {
    security.checkListener({ name: 'ws', host, port: config.websocket?.port ?? 8083, authenticatesClients: false });
  }
  // Anonymous policy (docs/security.md): a listener beyond loopback needs authentication or --allow-anonymous.
  for (const host of config.hosts.length === 0 ? ['127.0.0.1'] : config.hosts) security.checkListener({ name: 'tcp', host, port: config.port, authenticatesClients: false });
  for (const host of config.tls === undefined ? [] : (config.tls.hosts ?? config.hosts)) {
    security.checkListener({ name: 'tls', host, port: config.tls?.port ?? 8883, authenticatesClients: config.tls?.requireClientCert === true });
  }
  const cluster = config.cluster === undefined ? undefined : openCluster(config.cluster, config.port, logger);
  const store = cluster?.store ?? openStore(options, config);
  if (cluster !== undefined) {
    init.cluster = cluster;
    init.durableAcks = true;
  }
  if (store !== undefined) {
    init.store = store;
    init.durableAcks ??= config.durability === 'full';
  }
  const broker = new Broker(init);
  try {
    if (store !== undefined) {
      const restored = await broker.restore();
      logger.info({ store: store.name, dataDir: store.name === 'lmdb' ? config.dataDir : undefined, durability: cluster === undefined ? config.durability : undefined, ...restored }, 'store opened');
    }
    if (cluster !== undefined) {
      await cluster.start(broker.cluster!);
      logger.info({ node: cluster.nodeId, redis: cluster.url }, `cluster node "${cluster.nodeId}" joined through Redis`);
    }
  } catch (error) {
    await broker.close().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    throw error;
  }

  const listeners: Listener[] = [];
  const tlsListeners: TlsListener[] = [];
  const addresses: AddressInfo[] = [];
  const onStream = broker.accept.bind(broker);
  const loopbackOnly = config.hosts.length === 0;
  const hosts = loopbackOnly ? ['127.0.0.1', '::1'] : config.hosts;
  let tlsPort: number | undefined;
  let port = config.port;
  try {
    for (const host of hosts) {
      const listener = new TcpListener({ host, port });
      try {
        const address = await listener.listen(onStream);
        listeners.push(listener);
        addresses.push(address);
        port = address.port; // with port 0, every host shares the first free port
      } catch (error) {
        // A machine without IPv6 has no ::1; the IPv4 loopback is enough.
        if (loopbackOnly && host === '::1') {
          logger.debug({ err: (error as Error).message }, 'IPv6 loopback not available');
          continue;
        }
        throw error;
      }
    }
    if (config.tls !== undefined) tlsPort = await listenTls(config.tls, config.tls.hosts ?? hosts, loopbackOnly, onStream, listeners, tlsListeners, logger);
  } catch (error) {
    await Promise.all(listeners.map((l) => l.close()));
    throw error;
  }
  for (const address of addresses) {
    logger.info({ listener: 'tcp', host: address.address, port: address.port }, `MQTT listening on ${formatAddress(address)}`);
  }
  if (loopbackOnly) {
    logger.info({}, 'listening on loopback only: use --host 0.0.0.0 (or "hosts" in the config file) to accept other machines');
  }
  let web: WebServices;
  try {
    const mqttListeners = addresses.map((a) => ({ name: 'tcp', protocol: 'mqtt', address: a.address, port: a.port }));
    if (tlsPort !== undefined) mqttListeners.push({ name: 'tls', protocol: 'mqtts', address: (config.tls?.hosts ?? hosts)[0] ?? '', port: tlsPort });
    web = await startWebServices({
      broker,
      logger,
      mqttHosts: config.hosts,
      mqttListeners,
      websocket: config.websocket,
      http: config.http,
      sys,
      ...(cluster === undefined ? {} : { clusterReady: () => cluster.ready }),
    });
  } catch (error) {
    await Promise.all([...listeners.map((l) => l.close()), broker.close()]);
    throw error;
  }

  return {
    broker,
    addresses,
    port,
    tlsPort,
    wsPort: web.wsPort,
    httpPort: web.httpPort,
    logger,
    publish(input: PublishInput) {
      broker.publish(input);
    },
    async reload() {
      let ok = await security.reload();
      for (const listener of tlsListeners) {
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
      // net.Server.close() calls back only once every connection has ended: stop accepting, end them, then wait.
      const stopped = Promise.all([...listeners.map((l) => l.close()), web.close()]);
      await broker.close();
      await stopped;
      await cluster?.close();
      await store?.close();
    },
  };
}

/** This node of a cluster on Redis; the node id defaults to the host name and MQTT port. */
function openCluster(cluster: ClusterConfig, port: number, logger: Logger): RedisBus {
  const nodeId = cluster.nodeId ?? defaultNodeId(hostname(), port);
  return new RedisBus({ url: cluster.redis, nodeId, ...(cluster.prefix === undefined ? {} : { prefix: cluster.prefix }), logger });
}

/** The store the configuration asks for: none for 'memory' (the broker's own memory is the state). */
function openStore(options: ServerOptions | StarlingConfig, config: StarlingConfig): Persistence | undefined {
  if (typeof options.store === 'object') return options.store;
  if (config.store === 'memory') return undefined;
  return new LmdbPersistence({ dataDir: config.dataDir, sync: config.durability === 'full' });
}

function resolve(options: ServerOptions | StarlingConfig): StarlingConfig {
  const hosts = options.hosts ?? ('host' in options && options.host !== undefined ? [options.host] : DEFAULT_CONFIG.hosts);
  return {
    hosts,
    port: options.port ?? DEFAULT_CONFIG.port,
    logLevel: options.logLevel ?? DEFAULT_CONFIG.logLevel,
    limits: { ...DEFAULT_CONFIG.limits, ...options.limits },
    features: { ...DEFAULT_CONFIG.features, ...options.features },
    // The embedding API keeps everything in memory unless asked; the `starling` command passes 'embedded'.
    store: typeof options.store === 'string' ? options.store : 'memory',
    dataDir: options.dataDir ?? DEFAULT_CONFIG.dataDir,
    durability: options.durability ?? DEFAULT_CONFIG.durability,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.auth === undefined ? {} : { auth: options.auth }),
    ...(options.websocket === undefined ? {} : { websocket: { ...defaultWebSocketConfig(), enabled: true, ...options.websocket } }),
    ...(options.http === undefined ? {} : { http: { ...defaultHttpConfig(), ...options.http } }),
    ...(options.sys === undefined ? {} : { sys: { ...defaultSysConfig(), ...options.sys } }),
    ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
  };
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6' ? `mqtt://[${address.address}]:${address.port}` : `mqtt://${address.address}:${address.port}`;
}

/** Starts the TLS listener on each host (all on one port, so port 0 picks one free port); returns that port. */
async function listenTls(
  tls: TlsConfig,
  hosts: string[],
  loopbackOnly: boolean,
  onStream: Parameters<Listener['listen']>[0],
  listeners: Listener[],
  tlsListeners: TlsListener[],
  logger: Logger,
): Promise<number> {
  let port = tls.port ?? 8883;
  for (const host of hosts) {
    const listener = new TlsListener({
      host,
      port,
      certFile: tls.certFile as string,
      keyFile: tls.keyFile as string,
      ...(tls.caFile === undefined ? {} : { caFile: tls.caFile }),
      requireClientCert: tls.requireClientCert === true,
      ...(tls.minVersion === undefined ? {} : { minVersion: tls.minVersion }),
      ...(tls.ciphers === undefined ? {} : { ciphers: tls.ciphers }),
      onClientError: (error, remote) => logger.info({ listener: 'tls', remote, err: error.message }, 'TLS handshake failed'),
    });
    try {
      const address = await listener.listen(onStream);
      listeners.push(listener);
      tlsListeners.push(listener);
      port = address.port;
      const where = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
      logger.info({ listener: 'tls', host: address.address, port: address.port, requireClientCert: tls.requireClientCert === true }, `MQTT over TLS listening on mqtts://${where}`);
    } catch (error) {
      if (loopbackOnly && host === '::1') continue;
      throw error;
    }
  }
  return port;
}
