import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Broker, type BrokerInit } from './broker/broker.js';
import type { Logger } from './broker/logger.js';
import type { PublishInput } from './model/message.js';
import { DEFAULT_CONFIG, type FeaturesConfig, type LimitsConfig, type LogLevel, type StarlingConfig } from './config/config.js';
import { TcpListener } from './transport/tcp.js';
import type { Listener } from './transport/types.js';

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
}

/** A running Starling: its broker, where it listens, and how to stop it. */
export interface StarlingServer {
  readonly broker: Broker;
  /** Bound addresses of the MQTT listeners. */
  readonly addresses: AddressInfo[];
  /** The MQTT TCP port actually bound (useful with port 0). */
  readonly port: number;
  readonly logger: Logger;
  /** Publishes a message from the broker itself (same as `broker.publish`). */
  publish(input: PublishInput): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Composition root: builds the broker and its listeners from a configuration and starts them. */
export async function startServer(options: ServerOptions | StarlingConfig = {}): Promise<StarlingServer> {
  const config = resolve(options);
  const logger: Logger = ('logger' in options && options.logger) || pino({ level: config.logLevel, base: { name: 'starling' } });
  const init: BrokerInit = { ...config.limits, ...config.features, logger };
  if ('authenticate' in options && options.authenticate !== undefined) init.authenticate = options.authenticate;
  const broker = new Broker(init);

  const listeners: Listener[] = [];
  const addresses: AddressInfo[] = [];
  const onStream = broker.accept.bind(broker);
  const loopbackOnly = config.hosts.length === 0;
  const hosts = loopbackOnly ? ['127.0.0.1', '::1'] : config.hosts;
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

  return {
    broker,
    addresses,
    port,
    logger,
    publish(input: PublishInput) {
      broker.publish(input);
    },
    async close() {
      // net.Server.close() calls back only once every connection has ended: stop accepting, end them, then wait.
      const stopped = Promise.all(listeners.map((l) => l.close()));
      await broker.close();
      await stopped;
    },
  };
}

function resolve(options: ServerOptions | StarlingConfig): StarlingConfig {
  const hosts = options.hosts ?? ('host' in options && options.host !== undefined ? [options.host] : DEFAULT_CONFIG.hosts);
  return {
    hosts,
    port: options.port ?? DEFAULT_CONFIG.port,
    logLevel: options.logLevel ?? DEFAULT_CONFIG.logLevel,
    limits: { ...DEFAULT_CONFIG.limits, ...options.limits },
    features: { ...DEFAULT_CONFIG.features, ...options.features },
  };
}

function formatAddress(address: AddressInfo): string {
  return address.family === 'IPv6' ? `mqtt://[${address.address}]:${address.port}` : `mqtt://${address.address}:${address.port}`;
}
