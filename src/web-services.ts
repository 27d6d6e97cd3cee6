/** The web side of a running broker: WebSocket listeners, the HTTP server and $SYS, started and stopped together. */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { AccessControl } from './auth/access-control.js';
import type { AdminAccess } from './auth/admin-access.js';
import type { Broker } from './broker/broker.js';
import type { Logger } from './broker/logger.js';
import type { HttpConfig, SysConfig } from './config/schema.js';
import type { ListenerView } from './http/api.js';
import type { OutboundServices } from './http/outbound-metrics.js';
import type { BridgeControl } from './model/bridge.js';
import type { GroupView } from './http/group-view.js';
import type { HttpServer } from './http/http-server.js';
import { defaultDashboardDir } from './http/static-files.js';
import { SysPublisher, type SysPublisherOptions } from './sys/sys-publisher.js';
import { ListenError } from './listener-set.js';
import { describePortHolder } from './transport/address-in-use.js';
import type { WebSocketGateway } from './transport/ws.js';

/** The version in package.json (one level above both src/ and dist/). */
export const STARLING_VERSION: string = readVersion();

function readVersion(): string {
  try {
    const data = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof data.version === 'string' ? data.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The $SYS publisher for a configuration (its plugin must be given to the broker), or undefined. */
export function createSysPublisher(sys: SysConfig | undefined, group?: Pick<SysPublisherOptions, 'statistics' | 'source'>): SysPublisher | undefined {
  if (sys === undefined) return undefined;
  return new SysPublisher({ interval: sys.interval, events: sys.events, version: `starling version ${STARLING_VERSION}`, ...group });
}

/** What startWebServices needs to know of the rest of the server. */
export interface WebServicesInput {
  broker: Broker;
  logger: Logger;
  /** Listeners already running (MQTT over TCP, TLS, WebSocket), for the overview. */
  mqttListeners: ListenerView[];
  /** Proxies whose X-Forwarded-For the HTTP server's /mqtt believes (those of the WebSocket listener). */
  trustedProxies: readonly string[];
  http: HttpConfig | undefined;
  sys: SysPublisher | undefined;
  /** The configured bridges, for the API, the metrics and $SYS. */
  bridges?: BridgeControl;
  /** In a cluster: whether the node reaches the shared state (Redis); /readyz is 503 while not. */
  clusterReady?: () => boolean;
  /** HTTP services the broker calls (auth.http, webhooks), for /metrics. */
  outbound?: OutboundServices;
  /** Users, roles and bans managed at runtime (REST API and metrics). */
  access?: AccessControl;
  /** Admins and their sign-in. */
  admins?: AdminAccess;
  /** In a worker group: metrics and the API show the whole group. */
  group?: GroupView;
}

/** The HTTP server and $SYS publisher, running. */
export interface WebServices {
  /** Port of the HTTP server, if running. */
  readonly httpPort: number | undefined;
  readonly http: HttpServer | undefined;
  /** Stops them (the broker closes the MQTT connections itself). */
  close(): Promise<void>;
}

/**
 * Starts the HTTP server (metrics, API, dashboard, and MQTT over WebSocket on /mqtt) and $SYS for a
 * running broker. On failure, whatever started is stopped again.
 */
export async function startWebServices(input: WebServicesInput): Promise<WebServices> {
  const { broker, logger } = input;
  const views: ListenerView[] = [...input.mqttListeners];
  let http: HttpServer | undefined;
  let httpPort: number | undefined;
  let gateway: WebSocketGateway | undefined;
  const onStream = broker.accept.bind(broker);
  let ready = false;
  const stopAll = async (): Promise<void> => {
    ready = false;
    input.sys?.stop();
    await http?.close();
    gateway?.terminateAll();
  };
  try {
    const httpConfig = input.http;
    if (httpConfig !== undefined && httpConfig.enabled) {
      const admin = broker.query;
      const env = process.env['STARLING_API_TOKEN'];
      const apiToken = httpConfig.apiToken ?? (env === undefined || env === '' ? undefined : env);
      // The HTTP engines (prom-client, ws) are loaded only when HTTP is on: each costs megabytes.
      const [{ HttpServer }, { WebSocketGateway }] = await Promise.all([import('./http/http-server.js'), import('./transport/ws.js')]);
      if (httpConfig.mqtt) gateway = new WebSocketGateway({ name: 'http', path: '/mqtt', trustedProxies: input.trustedProxies });
      gateway?.start(onStream);
      const dashboardDir = httpConfig.dashboard ? defaultDashboardDir() : undefined;
      if (httpConfig.dashboard && dashboardDir === undefined) logger.warn({}, 'dashboard not built (npm run build): serving the API and metrics only');
      const server = new HttpServer({
        host: httpConfig.host,
        port: httpConfig.port,
        admin,
        version: STARLING_VERSION,
        logger,
        ...(apiToken === undefined ? {} : { apiToken }),
        ...(dashboardDir === undefined ? {} : { dashboardDir }),
        listeners: () => views,
        ...(input.bridges === undefined ? {} : { bridges: input.bridges }),
        ...(gateway === undefined ? {} : { upgrade: gateway.handleUpgrade.bind(gateway) }),
        ready: () => ready && (input.clusterReady?.() ?? true),
        ...(input.outbound === undefined ? {} : { outbound: input.outbound }),
        ...(input.access === undefined ? {} : { access: input.access }),
        ...(input.admins === undefined ? {} : { admins: input.admins }),
        ...(input.group === undefined ? {} : { group: input.group }),
      });
      try {
        const address = await server.listen();
        http = server;
        httpPort = address.port;
        views.push(view('http', 'http', address));
        logger.info({ listener: 'http', host: address.address, port: address.port, api: server.apiAccess }, `HTTP (dashboard, /api, /metrics) on ${url('http', address)}/`);
      } catch (error) {
        // The default port taken (another Starling?) costs the HTTP side only; a port you asked for is fatal.
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
        const holder = await describePortHolder(httpConfig.port);
        if (httpConfig.portIsDefault !== true) {
          throw new ListenError(`http.port: port ${httpConfig.port} on ${httpConfig.host} is already in use (EADDRINUSE), ${holder}; stop that process or choose another port (--http-port, or --no-http)`);
        }
        logger.warn({ port: httpConfig.port, err: (error as Error).message }, `HTTP port ${httpConfig.port} (the default) is in use, ${holder}: running without the HTTP server (set --http-port, or --no-http)`);
      }
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  input.sys?.start(broker, input.bridges);
  ready = true;
  return { httpPort, http, close: stopAll };
}

function view(name: string, protocol: string, address: AddressInfo): ListenerView {
  return { name, protocol, address: address.address, port: address.port };
}

function url(scheme: string, address: AddressInfo): string {
  return address.family === 'IPv6' ? `${scheme}://[${address.address}]:${address.port}` : `${scheme}://${address.address}:${address.port}`;
}
