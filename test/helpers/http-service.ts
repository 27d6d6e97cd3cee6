/**
 * A real HTTP service for tests (node:http on a free loopback port): the broker's HTTP
 * authentication service or a webhook receiver. It records every request, answers through a
 * handler the test can swap, counts TCP connections (keep-alive), and lets a test wait for requests
 * instead of sleeping.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';

/** One request the service received. */
export interface ReceivedRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** Answers a request; may answer later (a slow service). */
export type Handler = (request: ReceivedRequest, response: ServerResponse) => void | Promise<void>;

/** Writes a JSON answer. */
export function answerJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** Writes an answer with no body. */
export function answerStatus(response: ServerResponse, status: number): void {
  response.writeHead(status, { 'content-length': 0 });
  response.end();
}

/** See the module comment. */
export class TestHttpService {
  readonly requests: ReceivedRequest[] = [];
  /** TCP connections accepted so far. */
  connections = 0;
  handler: Handler;
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    handler: Handler,
  ) {
    this.handler = handler;
    server.on('connection', () => this.connections++);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const url = request.url ?? '/';
        const parsed = new URL(url, 'http://localhost');
        const received: ReceivedRequest = { method: request.method ?? 'GET', url, path: parsed.pathname, query: parsed.searchParams, headers: request.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.requests.push(received);
        for (const wake of this.waiters) wake();
        Promise.resolve(this.handler(received, response)).catch(() => response.destroy());
      });
    });
  }

  /** Starts a service on a free loopback port. */
  static async start(handler: Handler = (_request, response) => answerStatus(response, 204)): Promise<TestHttpService> {
    const server = createServer({ keepAliveTimeout: 30_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TestHttpService(server, (server.address() as AddressInfo).port, handler);
  }

  /** The URL of `path` on this service. */
  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The requests to `path` so far. */
  to(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Resolves once `done(requests)` holds (checked now and at each request); rejects after `timeoutMs`. */
  waitFor(done: (requests: readonly ReceivedRequest[]) => boolean, timeoutMs = 5000, what = 'the expected requests'): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done(this.requests)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no ${what} within ${timeoutMs} ms; received ${this.requests.length}: ${this.requests.map((r) => `${r.method} ${r.url}`).join(', ')}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Stops listening and ends every connection (held answers included). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** A loopback port nothing listens on (taken and released at once): a service that is down. */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
