/** The OpenAPI 3.1 description of the REST API (the access routes' part is in openapi-access.ts). */
import { ACCESS_PATHS, ACCESS_SCHEMAS } from './openapi-access.js';

/** JSON Schema of one value, as OpenAPI 3.1 takes it. */
type Schema = Record<string, unknown>;

const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const bool: Schema = { type: 'boolean' };
const nullable = (type: string): Schema => ({ type: [type, 'null'] });
const qos: Schema = { type: 'integer', enum: [0, 1, 2] };
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const page = (item: string): Schema => ({
  type: 'object',
  required: ['items', 'total', 'page', 'limit'],
  properties: { items: { type: 'array', items: ref(item) }, total: int, page: int, limit: int },
});

const pageParams = [
  { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1, default: 1 } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
];
const json = (schema: Schema, description = 'OK'): Schema => ({ description, content: { 'application/json': { schema } } });
const errors = {
  '400': json(ref('Error'), 'Bad request'),
  '401': json(ref('Error'), 'Not signed in: no or a wrong bearer token, or no valid session cookie'),
  '403': json(ref('Error'), 'API disabled (no token and no admin on a non-loopback address), or a viewer asked for a change'),
};
const notFound = { '404': json(ref('Error'), 'Not found') };
const jsonBody = (schema: Schema): Schema => ({ required: false, content: { 'application/json': { schema } } });
const topicParam = {
  name: 'topic',
  in: 'path',
  required: true,
  description: 'The topic, percent-encoded as one segment (encodeURIComponent), slashes included',
  schema: str,
};

const bridgeParam = { name: 'name', in: 'path', required: true, schema: str };
const bridge: Schema = {
  type: 'object',
  properties: {
    name: str,
    url: { type: 'string', description: 'the remote, without credentials' },
    state: { type: 'string', enum: ['connecting', 'up', 'down', 'stopped'] },
    protocolVersion: { type: 'integer', enum: [4, 5] },
    remoteClientId: str,
    localClientId: str,
    since: { type: 'string', format: 'date-time' },
    queued: { type: 'integer', description: 'messages for the remote held here (queued plus in flight)' },
    messagesIn: int,
    messagesOut: int,
    dropped: int,
    connects: int,
    lastError: nullable('string'),
    topics: {
      type: 'array',
      items: { type: 'object', properties: { pattern: str, direction: { type: 'string', enum: ['out', 'in', 'both'] }, qos, localPrefix: str, remotePrefix: str } },
    },
  },
};

const clientSummary: Schema = {
  type: 'object',
  properties: {
    clientId: str,
    connected: bool,
    username: nullable('string'),
    listener: nullable('string'),
    remoteAddress: nullable('string'),
    protocolVersion: { type: ['integer', 'null'], enum: [3, 4, 5, null] },
    keepalive: nullable('integer'),
    connectedAt: { type: ['string', 'null'], format: 'date-time' },
    subscriptions: int,
    inflight: int,
    queued: int,
    bufferedBytes: int,
    sessionExpiryInterval: int,
  },
};

/** The OpenAPI 3.1 description of the REST API, served at /api/openapi.json. */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Starling broker API',
      version,
      description: 'Read and manage a running Starling MQTT broker. See docs/http-api.md.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { session: [] }],
    paths: {
      '/api/overview': { get: { summary: 'Broker totals, counters, memory and listeners', responses: { '200': json(ref('Overview')), ...errors } } },
      '/api/clients': {
        get: {
          summary: 'List and search clients (sessions, connected or not), paged',
          parameters: [
            { name: 'search', in: 'query', description: 'Substring of client id, user name or address', schema: str },
            { name: 'connected', in: 'query', schema: bool },
            { name: 'sort', in: 'query', schema: { type: 'string', enum: ['clientId', 'connectedAt', 'subscriptions', 'inflight', 'queued', 'username', 'remoteAddress'] } },
            { name: 'order', in: 'query', schema: { type: 'string', enum: ['asc', 'desc'] } },
            ...pageParams,
          ],
          responses: { '200': json(page('ClientSummary')), ...errors },
        },
      },
      '/api/clients/{clientId}': {
        get: {
          summary: "One client's detail: subscriptions, inflight and queued messages",
          parameters: [{ name: 'clientId', in: 'path', required: true, schema: str }],
          responses: { '200': json(ref('ClientDetail')), ...errors, ...notFound },
        },
      },
      '/api/clients/{clientId}/disconnect': {
        post: {
          summary: 'Disconnect a client (MQTT 5: DISCONNECT 0x98); optionally end its session',
          parameters: [{ name: 'clientId', in: 'path', required: true, schema: str }],
          requestBody: jsonBody({ type: 'object', properties: { discardSession: bool } }),
          responses: { '200': json({ type: 'object', properties: { disconnected: str } }), ...errors, ...notFound },
        },
      },
      '/api/subscriptions': {
        get: {
          summary: 'List subscriptions, paged',
          parameters: [
            { name: 'clientId', in: 'query', schema: str },
            { name: 'search', in: 'query', description: 'Substring of the topic filter', schema: str },
            ...pageParams,
          ],
          responses: { '200': json(page('Subscription')), ...errors },
        },
      },
      '/api/retained': {
        get: {
          summary: 'List retained messages, paged',
          parameters: [{ name: 'filter', in: 'query', description: 'An MQTT topic filter (+ and # allowed)', schema: str }, ...pageParams],
          responses: { '200': json(page('Retained')), ...errors },
        },
      },
      '/api/retained/{topic}': {
        get: { summary: 'The retained message of one topic', parameters: [topicParam], responses: { '200': json(ref('Retained')), ...errors, ...notFound } },
        delete: { summary: 'Clear the retained message of one topic', parameters: [topicParam], responses: { '204': { description: 'Cleared' }, ...errors, ...notFound } },
      },
      '/api/publish': {
        post: {
          summary: 'Publish a message from the broker',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['topic'],
                  properties: { topic: str, payload: str, encoding: { type: 'string', enum: ['utf8', 'base64'], default: 'utf8' }, qos, retain: bool },
                },
              },
            },
          },
          responses: { '202': json({ type: 'object', properties: { published: str, bytes: int } }, 'Published'), ...errors },
        },
      },
      '/api/bridges': { get: { summary: 'The configured bridges to other brokers, with state and counters', responses: { '200': json({ type: 'object', properties: { items: { type: 'array', items: ref('Bridge') }, total: int } }), ...errors } } },
      '/api/bridges/{name}': { get: { summary: 'One bridge', parameters: [bridgeParam], responses: { '200': json(ref('Bridge')), ...errors, ...notFound } } },
      '/api/bridges/{name}/stop': {
        post: { summary: 'Stop a bridge; its session here keeps collecting messages for the remote', parameters: [bridgeParam], responses: { '200': json(ref('Bridge')), ...errors, ...notFound } },
      },
      '/api/bridges/{name}/start': { post: { summary: 'Start a stopped bridge', parameters: [bridgeParam], responses: { '200': json(ref('Bridge')), ...errors, ...notFound } } },
      ...ACCESS_PATHS,
      '/api/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1 JSON' } } } },
      '/api/access': {
        get: {
          summary: 'How the API is protected, whether this request (its bearer token, session cookie, Host) may use it, how to sign in, and who the caller is; never 401',
          security: [],
          responses: {
            '200': json({
              type: 'object',
              required: ['access', 'authorized'],
              properties: {
                access: { type: 'string', enum: ['sign-in', 'token', 'open-loopback', 'disabled'] },
                authorized: bool,
                reason: { type: 'string', enum: ['unauthorized', 'bad-host', 'api-disabled', 'bad-origin'], description: 'The error code the API would answer, when not authorized' },
                methods: { type: 'array', items: { type: 'string', enum: ['password', 'token'] }, description: 'What a sign-in form offers: admin name and password, the API token' },
                caller: { type: 'object', properties: { name: str, role: { type: 'string', enum: ['administrator', 'viewer'] }, via: { type: 'string', enum: ['api-token', 'loopback', 'session', 'bearer'] } } },
              },
            }),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'http.apiToken or STARLING_API_TOKEN, or an admin token from POST /api/auth/login with "bearer": true' },
        session: { type: 'apiKey', in: 'cookie', name: 'starling_session', description: 'The dashboard session of an admin (POST /api/auth/login)' },
      },
      schemas: {
        Error: { type: 'object', required: ['error', 'message'], properties: { error: str, message: str } },
        ...ACCESS_SCHEMAS,
        ClientSummary: clientSummary,
        ClientDetail: {
          allOf: [
            ref('ClientSummary'),
            {
              type: 'object',
              properties: {
                subscriptionList: { type: 'array', items: ref('Subscription') },
                inflightMessages: {
                  type: 'array',
                  items: { type: 'object', properties: { packetId: int, topic: str, qos, state: { type: 'string', enum: ['publish', 'pubrel'] } } },
                },
                droppedQueueFull: int,
              },
            },
          ],
        },
        Subscription: {
          type: 'object',
          properties: { clientId: str, topicFilter: str, qos, noLocal: bool, retainAsPublished: bool, retainHandling: { type: 'integer', enum: [0, 1, 2] }, shareGroup: nullable('string') },
        },
        Retained: {
          type: 'object',
          properties: { topic: str, qos, payloadBase64: { type: 'string', contentEncoding: 'base64' }, payloadSize: int, receivedAt: { type: 'string', format: 'date-time' } },
        },
        Bridge: bridge,
        Overview: {
          type: 'object',
          properties: {
            version: str,
            node: str,
            startedAt: { type: 'string', format: 'date-time' },
            uptimeSeconds: int,
            memory: { type: 'object', properties: { rss: int, heapUsed: int, heapTotal: int } },
            totals: { type: 'object', additionalProperties: true },
            counters: { type: 'object', additionalProperties: { type: 'integer' } },
            listeners: { type: 'array', items: { type: 'object', properties: { name: str, protocol: str, address: str, port: int } } },
            workers: {
              type: 'array',
              description: 'A worker group (starling --workers N) only: each worker (totals and counters above are the whole group\'s)',
              items: { type: 'object', properties: { worker: str, pid: int, connections: int, sessions: int, messagesReceived: int, messagesSent: int, cpuSeconds: { type: 'number' }, memory: { type: 'object', properties: { rss: int, heapUsed: int, heapTotal: int } } } },
            },
          },
        },
      },
    },
  };
}
