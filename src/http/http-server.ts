/** The broker's HTTP face: /metrics, /healthz, /readyz, the REST API, the dashboard, MQTT over WebSocket on /mqtt. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { BrokerQuery } from '../broker/query.js';
import type { Logger } from '../broker/logger.js';
import type { BridgeControl } from '../model/bridge.js';
import { AccessError, type AccessErrorKind } from '../auth/access-error.js';
import type { AccessControl } from '../auth/access-control.js';
import type { AdminAccess } from '../auth/admin-access.js';
import { registerAccessRoutes } from './access-api.js';
import { ApiError, createApiRouter, type ListenerView } from './api.js';
import { ApiGuard, isLoopback, type ApiAccessMode } from './api-auth.js';
import { GroupQuery, type GroupView } from './group-view.js';
import { BrokerMetrics } from './metrics.js';
import type { OutboundServices } from './outbound-metrics.js';
import type { Router } from './router.js';
import { StaticFiles } from './static-files.js';
import { listenOn } from '../transport/listen.js';

/** What the HTTP server serves and where. */
export interface HttpServerOptions {
  host: string;
  port: number;
  admin: BrokerQuery;
  version: string;
  logger: Logger;
  /** Bearer token for /api; without one the API is open on loopback and disabled elsewhere. */
  apiToken?: string;
  /** Folder of the built dashboard; undefined: no dashboard. */
  dashboardDir?: string;
  /** The broker's listeners, for the overview. */
  listeners: () => ListenerView[];
  /** The configured bridges (/api/bridges, metrics). */
  bridges?: BridgeControl;
  /** Takes WebSocket upgrades it knows (MQTT on /mqtt); returns false for others. */
  upgrade?: (request: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** Whether the broker accepts clients (for /readyz). */
  ready: () => boolean;
  /** HTTP services the broker calls (auth.http, webhooks), for /metrics. */
  outbound?: OutboundServices;
  /** Users, roles and bans managed at runtime (/api/users, /api/roles, /api/bans). */
  access?: AccessControl;
  /** Admins and their sign-in (/api/admins, /api/auth). */
  admins?: AdminAccess;
  /** In a worker group: metrics and the API show the whole group, gathered through the hub. */
  group?: GroupView;
}

/** The HTTP status of each kind of refused access-control request. */
const ACCESS_STATUS: Record<AccessErrorKind, number> = { 'bad-request': 400, 'not-found': 404, conflict: 409, unauthorized: 401, forbidden: 403, unavailable: 503 };
/** API routes answered without credentials. */
const PUBLIC_ROUTES = new Set(['/api/openapi.json', '/api/auth/login']);

/** A Host header that can go into a header value as it is: a name or IPv4 address, or [IPv6], and a port. */
const SAFE_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The dashboard's Content-Security-Policy: what the page needs and no more. Its own scripts and
 * styles (no inline or evaluated code); images of its own or data: URLs (the favicon); MQTT.js's timer
 * worker, which it starts from a blob: URL (so timers keep running in a background tab); and
 * connections to its own origin, including the MQTT WebSocket on the host the page came from. 'self'
 * alone covers ws:/wss: in CSP 3 browsers; the explicit host keeps older ones working.
 */
export function contentSecurityPolicy(host: string | undefined): string {
  const sameHost = host !== undefined && SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return (
    "default-src 'self'; img-src 'self' data:; " +
    `connect-src 'self'${sameHost}; worker-src blob:; ` +
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
  );
}

/**
 * The broker's HTTP face (node:http): /metrics (Prometheus), /healthz, /readyz, the REST API under
 * /api, the dashboard, and MQTT over WebSocket on /mqtt for the dashboard.
 */
export class HttpServer {
  private readonly server: Server;
  private readonly metrics: BrokerMetrics;
  private readonly api: Router;
  private readonly files: StaticFiles | undefined;
  private readonly guard: ApiGuard;

  constructor(private readonly options: HttpServerOptions) {
    const group = options.group === undefined ? undefined : new GroupQuery(options.group);
    this.metrics = new BrokerMetrics(options.admin, {
      ...(options.outbound === undefined ? {} : { outbound: options.outbound }),
      ...(options.bridges === undefined ? {} : { bridges: options.bridges }),
      ...(options.access === undefined ? {} : { access: options.access }),
      ...(options.admins === undefined ? {} : { admins: options.admins }),
      ...(group === undefined ? {} : { group }),
    });
    this.api = createApiRouter(options.admin, { version: options.version, listeners: options.listeners, ...(options.bridges === undefined ? {} : { bridges: options.bridges }), ...(group === undefined ? {} : { group }) });
    if (options.access !== undefined && options.admins !== undefined) registerAccessRoutes(this.api, options.access, options.admins);
    this.files = options.dashboardDir === undefined ? undefined : new StaticFiles(options.dashboardDir);
    this.guard = new ApiGuard(options.apiToken, isLoopback(options.host), options.admins);
    this.server = createServer({ keepAliveTimeout: 5000 }, (request, response) => {
      this.handle(request, response).catch((error: unknown) => this.fail(response, error));
    });
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (options.upgrade?.(request, socket, head) !== true) socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
  }

  /** How the API is protected now: admins sign in, a token, open because bound to loopback, or disabled. */
  get apiAccess(): ApiAccessMode {
    return this.guard.mode;
  }

  /** Starts listening. */
  listen(): Promise<AddressInfo> {
    const server = this.server;
    if (this.guard.mode === 'disabled') {
      this.options.logger.warn(
        { host: this.options.host },
        'HTTP API disabled: the HTTP server is not on loopback, no API token is set (http.apiToken or STARLING_API_TOKEN) and there is no admin (STARLING_ADMIN_USER / STARLING_ADMIN_PASSWORD)',
      );
    }
    return listenOn(server, this.options.host, this.options.port, 511);
  }

  /** Stops listening and ends idle keep-alive connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      setTimeout(() => this.server.closeAllConnections(), 1000).unref();
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = request.method ?? 'GET';
    if (path === '/healthz') return json(response, 200, { status: 'ok' });
    if (path === '/readyz') return this.options.ready() ? json(response, 200, { status: 'ready' }) : json(response, 503, { status: 'not-ready' });
    if (path === '/metrics') {
      const text = await this.metrics.text();
      response.writeHead(200, { 'content-type': this.metrics.contentType, 'cache-control': 'no-store' });
      response.end(text);
      return;
    }
    if (path === '/api' || path.startsWith('/api/')) return this.handleApi(request, response, method, path, url.searchParams);
    if ((method === 'GET' || method === 'HEAD') && this.files !== undefined) {
      response.setHeader('content-security-policy', contentSecurityPolicy(request.headers.host));
      response.setHeader('x-frame-options', 'DENY');
      response.setHeader('referrer-policy', 'no-referrer');
      if (await this.files.serve(path, response, method === 'HEAD', request.headers['accept-encoding'])) return;
      response.removeHeader('content-security-policy');
    }
    if (path === '/' && this.files === undefined) {
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('Starling: the dashboard is not built (run `npm run build`). /metrics, /healthz, /readyz and /api are served.\n');
      return;
    }
    json(response, 404, { error: 'not-found', message: `nothing at ${path}` });
  }

  private async handleApi(request: IncomingMessage, response: ServerResponse, method: string, path: string, query: URLSearchParams): Promise<void> {
    // Answered without credentials: the dashboard asks first, so it can show its sign-in without a 401.
    if (path === '/api/access' && (method === 'GET' || method === 'HEAD')) return json(response, 200, this.guard.access(request));
    const match = this.api.match(method, path);
    if (match === undefined) throw new ApiError(404, 'not-found', `no API route ${method} ${path}`);
    if ('allowed' in match) {
      response.setHeader('allow', match.allowed.join(', '));
      throw new ApiError(405, 'method-not-allowed', `${method} is not allowed on ${path}`);
    }
    let caller;
    if (!PUBLIC_ROUTES.has(path)) {
      try {
        caller = this.guard.identify(request);
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) response.setHeader('www-authenticate', 'Bearer realm="starling"');
        throw error;
      }
      this.guard.permit(caller, method, path);
    }
    const reply = await match.handler({ request, response, params: match.params, query, caller });
    if (reply.status === 204) {
      response.writeHead(204);
      response.end();
      return;
    }
    json(response, reply.status, reply.body);
  }

  private fail(response: ServerResponse, error: unknown): void {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    if (error instanceof ApiError) {
      json(response, error.status, { error: error.code, message: error.message });
      return;
    }
    if (error instanceof AccessError) {
      json(response, ACCESS_STATUS[error.kind], { error: error.kind, message: error.message });
      return;
    }
    this.options.logger.error({ err: error }, 'HTTP request failed');
    json(response, 500, { error: 'internal', message: 'internal error' });
  }
}

function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  response.end(text);
}
