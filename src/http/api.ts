/** The REST API routes over the broker's query view (docs/http-api.md). */
import type { IncomingMessage } from 'node:http';
import { CLIENT_SORT_KEYS, type BrokerQuery, type ClientQuery, type ClientSortKey } from '../broker/query.js';
import type { BridgeControl, BridgeStatus } from '../model/bridge.js';
import { isValidTopicFilter, isValidTopicName } from '../protocol/topic.js';
import { sumOverviews, workerSummary, type GroupQuery, type WorkerSummary } from './group-view.js';
import { openApiDocument } from './openapi.js';
import { Router, type JsonReply } from './router.js';

/** Largest JSON body the API reads (a publish payload included). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** A listener as the overview shows it. */
export interface ListenerView {
  name: string;
  protocol: string;
  address: string;
  port: number;
}

/** What the REST API needs besides the broker. */
export interface ApiOptions {
  version: string;
  /** The broker's listeners (MQTT, WebSocket, HTTP), for the overview. */
  listeners: () => ListenerView[];
  /** The configured bridges, if any. */
  bridges?: BridgeControl;
  /** In a worker group: the views are the whole group's, gathered from every worker. */
  group?: GroupQuery;
}

/** A client error with a stable code, answered as JSON. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The REST API's routes over the broker's admin view (see docs/http-api.md). */
export function createApiRouter(admin: BrokerQuery, options: ApiOptions): Router {
  const router = new Router();
  router.on('GET', '/api/openapi.json', () => ok(openApiDocument(options.version)));
  const group = options.group;
  router.on('GET', '/api/overview', async () => {
    let stats = admin.stats;
    let totals = admin.totals();
    const own = process.memoryUsage();
    let memory = { rss: own.rss, heapUsed: own.heapUsed, heapTotal: own.heapTotal };
    let workers: WorkerSummary[] | undefined;
    if (group !== undefined) {
      const overviews = await group.overviews();
      ({ stats, totals } = sumOverviews(overviews.map(([, o]) => o)));
      memory = { rss: 0, heapUsed: 0, heapTotal: 0 };
      for (const [, o] of overviews) for (const key of ['rss', 'heapUsed', 'heapTotal'] as const) memory[key] += o.memory[key];
      workers = overviews.map(([worker, o]) => workerSummary(worker, o));
    }
    return ok({
      version: options.version,
      node: process.version,
      startedAt: new Date(stats.startedAt).toISOString(),
      uptimeSeconds: Math.floor((Date.now() - stats.startedAt) / 1000),
      memory,
      totals,
      ...(workers === undefined ? {} : { workers }),
      counters: {
        connectionsAccepted: stats.connectionsAccepted,
        connectionsRefused: stats.connectionsRefused,
        authFailures: stats.authFailures,
        messagesReceived: stats.messagesReceived,
        messagesSent: stats.messagesSent,
        bytesReceived: stats.bytesReceived,
        bytesSent: stats.bytesSent,
        dropped: stats.droppedBufferFull + stats.droppedQueueFull + stats.droppedExpired + stats.droppedTooLarge,
      },
      listeners: options.listeners(),
    });
  });
  router.on('GET', '/api/clients', async ({ query }) => ok(group === undefined ? admin.clients(clientQuery(query)) : await group.clients(clientQuery(query))));
  router.on('GET', '/api/clients/:clientId', async ({ params }) => {
    const detail = group === undefined ? admin.client(params['clientId']!) : await group.client(params['clientId']!);
    if (detail === undefined) throw new ApiError(404, 'not-found', `no client "${params['clientId']}"`);
    return ok(detail);
  });
  router.on('POST', '/api/clients/:clientId/disconnect', async ({ params, request }) => {
    const body = await readJson(request);
    const discard = body['discardSession'];
    if (discard !== undefined && typeof discard !== 'boolean') throw new ApiError(400, 'bad-request', 'discardSession must be true or false');
    const done = group === undefined ? admin.disconnect(params['clientId']!, discard === true) : await group.disconnect(params['clientId']!, discard === true);
    if (!done) throw new ApiError(404, 'not-found', `no client "${params['clientId']}"`);
    return ok({ disconnected: params['clientId'] });
  });
  router.on('GET', '/api/subscriptions', async ({ query }) => {
    const q: Parameters<BrokerQuery['subscriptions']>[0] = pageQuery(query);
    const clientId = query.get('clientId');
    const search = query.get('search');
    if (clientId !== null) q.clientId = clientId;
    if (search !== null) q.search = search;
    return ok(group === undefined ? admin.subscriptions(q) : await group.subscriptions(q));
  });
  router.on('GET', '/api/retained', ({ query }) => {
    const q: Parameters<BrokerQuery['retained']>[0] = pageQuery(query);
    const filter = query.get('filter');
    if (filter !== null && filter !== '') {
      if (!isValidTopicFilter(filter)) throw new ApiError(400, 'bad-request', `"${filter}" is not a valid topic filter`);
      q.filter = filter;
    }
    return ok(admin.retained(q));
  });
  router.on('GET', '/api/retained/*topic', ({ params }) => {
    const message = admin.retainedMessage(params['topic']!);
    if (message === undefined) throw new ApiError(404, 'not-found', `no retained message on "${params['topic']}"`);
    return ok(message);
  });
  router.on('DELETE', '/api/retained/*topic', ({ params }) => {
    if (!admin.deleteRetained(params['topic']!)) throw new ApiError(404, 'not-found', `no retained message on "${params['topic']}"`);
    return { status: 204, body: undefined };
  });
  addBridgeRoutes(router, options.bridges);
  router.on('POST', '/api/publish', async ({ request }) => {
    const body = await readJson(request);
    const { topic, payload = '', encoding = 'utf8', qos = 0, retain = false } = body;
    if (typeof topic !== 'string' || !isValidTopicName(topic)) throw new ApiError(400, 'bad-request', 'topic must be a valid topic name (no wildcards)');
    if (typeof payload !== 'string') throw new ApiError(400, 'bad-request', 'payload must be a string');
    if (encoding !== 'utf8' && encoding !== 'base64') throw new ApiError(400, 'bad-request', 'encoding must be "utf8" or "base64"');
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new ApiError(400, 'bad-request', 'qos must be 0, 1 or 2');
    if (typeof retain !== 'boolean') throw new ApiError(400, 'bad-request', 'retain must be true or false');
    const bytes = Buffer.from(payload, encoding);
    admin.publish({ topic, payload: bytes, qos, retain });
    return { status: 202, body: { published: topic, bytes: bytes.length } };
  });
  return router;
}

/** GET /api/bridges, GET /api/bridges/{name}, POST /api/bridges/{name}/start and /stop. */
function addBridgeRoutes(router: Router, bridges: BridgeControl | undefined): void {
  const find = (name: string): BridgeStatus => {
    const status = bridges?.get(name);
    if (status === undefined) throw new ApiError(404, 'not-found', `no bridge "${name}"`);
    return status;
  };
  router.on('GET', '/api/bridges', () => {
    const items = bridges?.list() ?? [];
    return ok({ items, total: items.length });
  });
  router.on('GET', '/api/bridges/:name', ({ params }) => ok(find(params['name']!)));
  for (const action of ['start', 'stop'] as const) {
    router.on('POST', `/api/bridges/:name/${action}`, async ({ params }) => {
      const name = params['name']!;
      find(name);
      await bridges![action](name);
      return ok(find(name));
    });
  }
}

function ok(body: unknown): JsonReply {
  return { status: 200, body };
}

function integer(query: URLSearchParams, name: string): number | undefined {
  const text = query.get(name);
  if (text === null || text === '') return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ApiError(400, 'bad-request', `${name} must be a positive integer`);
  return n;
}

/** `page` and `limit` from the query string (positive integers), as the list routes take them. */
export function pageQuery(query: URLSearchParams): { page?: number; limit?: number } {
  const out: { page?: number; limit?: number } = {};
  const page = integer(query, 'page');
  const limit = integer(query, 'limit');
  if (page !== undefined) out.page = page;
  if (limit !== undefined) out.limit = limit;
  return out;
}

function clientQuery(query: URLSearchParams): ClientQuery {
  const q: ClientQuery = pageQuery(query);
  const search = query.get('search');
  if (search !== null) q.search = search;
  const connected = query.get('connected');
  if (connected === 'true' || connected === 'false') q.connected = connected === 'true';
  else if (connected !== null && connected !== '') throw new ApiError(400, 'bad-request', 'connected must be true or false');
  const sort = query.get('sort');
  if (sort !== null && sort !== '') {
    if (!(CLIENT_SORT_KEYS as readonly string[]).includes(sort)) throw new ApiError(400, 'bad-request', `sort must be one of ${CLIENT_SORT_KEYS.join(', ')}`);
    q.sort = sort as ClientSortKey;
  }
  const order = query.get('order');
  if (order === 'asc' || order === 'desc') q.order = order;
  else if (order !== null && order !== '') throw new ApiError(400, 'bad-request', 'order must be asc or desc');
  return q;
}

/**
 * Reads a JSON object body. An empty body is `{}`. A body must be sent as application/json: a
 * browser cannot send that cross-site without a preflight, which this server never grants.
 */
export async function readJson(request: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const type = request.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith('application/json')) {
    discard(request);
    throw new ApiError(415, 'unsupported-media-type', 'send the body as application/json');
  }
  const tooLarge = new ApiError(413, 'too-large', `body larger than ${limit} bytes`);
  if (Number(request.headers['content-length']) > limit) {
    discard(request);
    throw tooLarge;
  }
  // Read with events, not for-await: leaving a for-await early destroys the socket, and the client would
  // see a reset connection instead of the 413. Past the limit the rest is read and thrown away (bounded).
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      request.off('data', onData);
      request.off('end', onEnd);
      discard(request);
      reject(tooLarge);
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks));
    request.on('data', onData);
    request.once('end', onEnd);
    request.once('error', reject);
  });
  const text = body.toString('utf8').trim();
  if (text === '') return {};
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'bad-request', 'body is not valid JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ApiError(400, 'bad-request', 'body must be a JSON object');
  return data as Record<string, unknown>;
}

/** Most bytes of a refused body read and thrown away (so the client sees the answer); beyond it the connection is cut. */
const DISCARD_LIMIT = 16 * 1024 * 1024;

/** Reads the rest of a refused body without keeping it, up to DISCARD_LIMIT. */
function discard(request: IncomingMessage): void {
  let seen = 0;
  request.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DISCARD_LIMIT) request.destroy();
  });
  request.resume();
}
