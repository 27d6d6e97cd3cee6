/** The broker's HTTP face: /metrics, /healthz, /readyz, the REST API, the dashboard, MQTT over WebSocket on /mqtt. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { BrokerQuery } from '../broker/query.js';
import type { Logger } from '../broker/logger.js';
import { ApiError, createApiRouter, type ListenerView } from './api.js';
import { BrokerMetrics } from './metrics.js';
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
  /** Takes WebSocket upgrades it knows (MQTT on /mqtt); returns false for others. */
  upgrade?: (request: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** Whether the broker accepts clients (for /readyz). */
  ready: () => boolean;
}

const CONTENT_SECURITY_POLICY = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'";

/**
 * The broker's HTTP face (node:http): /metrics (Prometheus), /healthz, /readyz, the REST API under
 * /api, the dashboard, and MQTT over WebSocket on /mqtt for the dashboard.
 */
export class HttpServer {
  private readonly server: Server;
  private readonly metrics: BrokerMetrics;
  private readonly api: Router;
  private readonly files: StaticFiles | undefined;
  private readonly tokenDigest: Buffer | undefined;
  private readonly apiMode: 'token' | 'open-loopback' | 'disabled';

  constructor(private readonly options: HttpServerOptions) {
    this.metrics = new BrokerMetrics(options.admin);
    this.api = createApiRouter(options.admin, { version: options.version, listeners: options.listeners });
    this.files = options.dashboardDir === undefined ? undefined : new StaticFiles(options.dashboardDir);
    const token = options.apiToken;
    this.tokenDigest = token === undefined || token === '' ? undefined : digest(token);
    this.apiMode = this.tokenDigest !== undefined ? 'token' : isLoopback(options.host) ? 'open-loopback' : 'disabled';
    this.server = createServer({ keepAliveTimeout: 5000 }, (request, response) => {
      this.handle(request, response).catch((error: unknown) => this.fail(response, error));
    });
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (options.upgrade?.(request, socket, head) !== true) socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
  }

  /** How the API is protected: by token, open because bound to loopback, or disabled. */
  get apiAccess(): 'token' | 'open-loopback' | 'disabled' {
    return this.apiMode;
  }

  /** Starts listening. */
  listen(): Promise<AddressInfo> {
    const server = this.server;
    if (this.apiMode === 'disabled') {
      this.options.logger.warn(
        { host: this.options.host },
        'HTTP API disabled: the HTTP server is not on loopback and no API token is set (http.apiToken or STARLING_API_TOKEN)',
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
      response.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
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
    const match = this.api.match(method, path);
    if (match === undefined) throw new ApiError(404, 'not-found', `no API route ${method} ${path}`);
    if ('allowed' in match) {
      response.setHeader('allow', match.allowed.join(', '));
      throw new ApiError(405, 'method-not-allowed', `${method} is not allowed on ${path}`);
    }
    if (path !== '/api/openapi.json') this.authorize(request, response);
    const reply = await match.handler({ request, response, params: match.params, query });
    if (reply.status === 204) {
      response.writeHead(204);
      response.end();
      return;
    }
    json(response, reply.status, reply.body);
  }

  /** Throws unless the request may use the API. */
  private authorize(request: IncomingMessage, response: ServerResponse): void {
    if (this.apiMode === 'disabled') {
      throw new ApiError(403, 'api-disabled', 'the API needs a token when the HTTP server is not on loopback: set http.apiToken or STARLING_API_TOKEN');
    }
    if (this.apiMode === 'open-loopback') {
      // No token on loopback: still refuse other Host names, so a web page cannot reach us by DNS rebinding.
      if (!isLoopbackHostHeader(request.headers.host)) throw new ApiError(403, 'bad-host', 'without an API token, only loopback Host names are accepted');
      return;
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (match === null || !timingSafeEqual(digest(match[1]!), this.tokenDigest!)) {
      response.setHeader('www-authenticate', 'Bearer realm="starling"');
      throw new ApiError(401, 'unauthorized', 'send the API token as "Authorization: Bearer <token>"');
    }
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
    this.options.logger.error({ err: error }, 'HTTP request failed');
    json(response, 500, { error: 'internal', message: 'internal error' });
  }
}

function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  response.end(text);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** True for an address or name that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function isLoopbackHostHeader(header: string | undefined): boolean {
  if (header === undefined) return false;
  const host = header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.replace(/:\d+$/, '');
  return isLoopback(host);
}
