/**
 * The one configuration schema: every key with its type, range, default and documentation. The
 * defaults, the validation, --help, docs/configuration.md and the config types all come from here.
 * Pure (no I/O, no Node modules): the broker core takes its default options from it.
 */
import { isValidNodeId } from '../cluster/node-id.js';
import { isValidTopicFilter } from '../protocol/topic.js';
import { bool, defaultOf, int, list, obj, oneOf, record, str, type ObjValue, type ValueOf } from './setting.js';

/** Log levels, as pino names them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** Listener protocols: MQTT over TCP, TLS, WebSocket and WebSocket over TLS. */
export const LISTENER_PROTOCOLS = ['mqtt', 'mqtts', 'ws', 'wss'] as const;
/** TLS versions a listener can be limited to. */
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
/** What a client gets on a topic no ACL rule matches; auto: everything until some rule applies to the client, then nothing. */
export const DEFAULT_ACCESS = ['auto', 'readwrite', 'read', 'write', 'deny'] as const;

const nodeId = (value: string): string | undefined => (isValidNodeId(value) ? undefined : '1-128 of A-Z a-z 0-9 . _ : -');
const redisUrl = (value: string): string | undefined => (/^rediss?:\/\/\S+$/.test(value) ? undefined : 'a redis://host:port or rediss://host:port URL');
const urlPath = (value: string): string | undefined => (value.startsWith('/') ? undefined : 'a path starting with /');
const port = (doc: string, defaultPort: number) => int(0, 65_535, { doc, default: defaultPort });
const optionalPort = (doc: string, text: string) => int(0, 65_535, { doc, defaultText: text });
const hosts = (doc: string, text: string) => list(str({ doc: 'an interface address' }), { doc, defaultText: text });
const file = (doc: string) => str({ doc });
const policy = (doc: string) => oneOf(['drop-new', 'drop-oldest'], { doc, default: 'drop-new' });
const httpUrl = (value: string): string | undefined => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : 'an http:// or https:// URL';
  } catch {
    return 'an http:// or https:// URL';
  }
};
const topicFilter = (value: string): string | undefined => (isValidTopicFilter(value) && !value.startsWith('$share/') ? undefined : 'a valid MQTT topic filter (not $share/…)');
const headers = (doc: string) => record(str({ doc: 'a header value', allowEmpty: true }), { doc, defaultText: '{}' });

const LIMITS = obj(
  {
    maxInflight: int(1, 65_535, { doc: 'QoS 1/2 messages sent to one client and not yet acknowledged', default: 100 }),
    maxQueuedMessages: int(0, 1e9, { doc: 'QoS 1/2 messages queued per session (offline, or behind the inflight window)', default: 10_000 }),
    maxWriteBuffer: int(1024, 2 ** 40, { doc: 'bytes waiting to be sent to one connection before QoS 0 messages to it are dropped', default: 4 * 1024 * 1024 }),
    maxPacketSize: int(16, 268_435_460, { doc: 'largest packet accepted from a client, in bytes', default: 268_435_460 }),
    maxConnections: int(1, 1e9, { doc: 'connected clients; beyond it CONNACK 3 (server unavailable)', default: 1_000_000 }),
    maxClientIdLength: int(23, 65_535, { doc: 'longest client identifier in UTF-8 bytes; longer gets CONNACK 2', default: 65_535 }),
    maxSessions: int(1, 1e9, { doc: 'sessions held at once, connected and stored; beyond it CONNACK 3 / 0x97', default: 1_000_000 }),
    maxConnectionsPerListener: record(int(1, 1e9, { doc: 'connected clients on this listener' }), { doc: 'connected clients per listener name, e.g. {"tcp": 50000} (also listeners[].maxConnections)', default: {} }),
    maxSubscriptionsPerClient: int(1, 1e9, { doc: 'subscriptions one session may hold; more get SUBACK 0x97 (0x80 in 3.1.1)', default: 10_000 }),
    maxTopicLevels: int(1, 65_535, { doc: 'levels of a topic name or filter (as Mosquitto: 200); deeper gets SUBACK 0x8F / PUBACK 0x90', default: 200 }),
    maxTopicLength: int(1, 65_535, { doc: 'bytes of a topic name or filter', default: 65_535 }),
    maxPublishRate: int(0, 1e9, { doc: 'PUBLISH packets per second one client may send (0: unlimited); a faster client is slowed down', default: 0 }),
    maxPublishBytesRate: int(0, 2 ** 40, { doc: 'payload bytes per second one client may publish (0: unlimited); likewise slowed down', default: 0 }),
    queueFullPolicy: policy('when a session queue is full: refuse the new message or drop the oldest queued one'),
    maxRetainedMessages: int(0, 1e9, { doc: 'retained topics kept', default: 1_000_000 }),
    retainedFullPolicy: policy('when the retained limit is reached: keep no new topic, or evict the least recently set one'),
    connectTimeout: int(1, 3600, { doc: 'seconds a new connection may take to send CONNECT', default: 10 }),
    maxQoS: oneOf([0, 1, 2], { doc: 'highest QoS granted to subscriptions and accepted on PUBLISH', default: 2 }),
    receiveMaximum: int(1, 65_535, { doc: 'MQTT 5 Receive Maximum: unacknowledged QoS 2 messages a client may have in flight to us', default: 65_535 }),
    topicAliasMaximum: int(0, 65_535, { doc: 'MQTT 5 Topic Alias Maximum towards the broker (0 disables)', default: 1024 }),
    maxSessionExpiry: int(0, 0xffff_ffff, { doc: 'longest session expiry granted, in seconds (4294967295: never expires)', default: 0xffff_ffff }),
    maxKeepAlive: int(1, 65_535, { doc: 'longest keep-alive accepted, in seconds (MQTT 5 Server Keep Alive above it)', default: 65_535 }),
  },
  { doc: 'broker limits', always: true },
);

const FEATURES = obj(
  {
    retainAvailable: bool({ doc: 'retained messages (MQTT 5 Retain Available)', default: true }),
    wildcardSubscriptionAvailable: bool({ doc: 'filters with + or # (MQTT 5 Wildcard Subscription Available)', default: true }),
    subscriptionIdentifiersAvailable: bool({ doc: 'MQTT 5 Subscription Identifiers', default: true }),
    sharedSubscriptionAvailable: bool({ doc: '$share/{group}/{filter} subscriptions', default: true }),
    sharedSubscriptionStrategy: oneOf(['round-robin', 'random'], { doc: 'how a shared group picks the member for each message', default: 'round-robin' }),
    validateUtf8Payload: bool({ doc: 'refuse (0x99) MQTT 5 payloads marked UTF-8 that are not', default: false }),
    responseInformation: str({ doc: 'prefix of the MQTT 5 Response Information sent to clients that ask (unset: none)' }),
  },
  { doc: 'optional protocol features', always: true },
);

const TLS = obj(
  {
    port: optionalPort('port of the TLS listener (0 picks a free one)', '8883'),
    hosts: hosts('interfaces of the TLS listener', 'as hosts'),
    certFile: file('server certificate chain (PEM)'),
    keyFile: file('private key of the certificate (PEM)'),
    caFile: file('CA certificates that client certificates must chain to'),
    requireClientCert: bool({ doc: 'mutual TLS: refuse clients without a certificate signed by caFile', defaultText: 'false' }),
    usernameField: str({ doc: 'client-certificate subject field used as the user name (e.g. CN)' }),
    minVersion: oneOf(TLS_VERSIONS, { doc: 'lowest TLS version accepted', defaultText: 'TLSv1.2' }),
    ciphers: str({ doc: 'OpenSSL cipher list for TLS 1.2', defaultText: "Node's" }),
  },
  { doc: 'the TLS listener (mqtts) of the shorthand flags; absent: none' },
);

const LISTENER_AUTH = obj(
  {
    passwordFile: file('Mosquitto-format password file for this listener'),
    aclFile: file('Mosquitto-format ACL file for this listener'),
    allowAnonymous: bool({ doc: 'let in clients without credentials on this listener', defaultText: 'only when no authentication is configured' }),
  },
  { doc: "this listener's own authentication (instead of auth), as Mosquitto's per_listener_settings" },
);

const LISTENER = obj(
  {
    name: str({ doc: 'name in logs, limits and the API', defaultText: 'protocol:port', check: (v) => (/^[A-Za-z0-9._:-]{1,64}$/.test(v) ? undefined : '1-64 of A-Z a-z 0-9 . _ : -') }),
    protocol: oneOf(LISTENER_PROTOCOLS, { doc: 'mqtt (TCP), mqtts (TLS), ws (WebSocket), wss (WebSocket over TLS)', default: 'mqtt' }),
    port: optionalPort('port (0 picks a free one)', '1883, 8883, 8083 or 8084 by protocol'),
    host: str({ doc: 'interface to listen on (shorthand for hosts)' }),
    hosts: hosts('interfaces to listen on', 'as hosts'),
    certFile: file('server certificate chain (PEM; mqtts and wss)'),
    keyFile: file('private key of the certificate (PEM; mqtts and wss)'),
    caFile: file('CA certificates client certificates must chain to (mqtts)'),
    requireClientCert: bool({ doc: 'mutual TLS (mqtts): refuse clients without a certificate signed by caFile', defaultText: 'false' }),
    useIdentityAsUsername: bool({ doc: "the client certificate's CN is the user name (Mosquitto's use_identity_as_username)", defaultText: 'false' }),
    usernameField: str({ doc: 'client-certificate subject field used as the user name (e.g. CN, emailAddress)' }),
    minVersion: oneOf(TLS_VERSIONS, { doc: 'lowest TLS version accepted (mqtts)', defaultText: 'TLSv1.2' }),
    ciphers: str({ doc: 'OpenSSL cipher list for TLS 1.2 (mqtts)', defaultText: "Node's" }),
    path: str({ doc: 'URL path of MQTT over WebSocket (ws, wss)', defaultText: '/mqtt', check: urlPath }),
    trustedProxies: list(str({ doc: 'an address or CIDR range' }), { doc: 'proxies whose X-Forwarded-For is believed (ws, wss)', defaultText: '[]' }),
    maxConnections: int(1, 1e9, { doc: 'connected clients on this listener; beyond it CONNACK 3 / 0x89', defaultText: 'only limits.maxConnections' }),
    auth: LISTENER_AUTH,
  },
  { doc: 'one listener' },
);

const BRIDGE_TOPIC = obj(
  {
    pattern: str({ doc: 'topic filter, as in a Mosquitto topic line', required: true }),
    direction: oneOf(['out', 'in', 'both'], { doc: 'out: local to remote; in: remote to local; both', default: 'out' }),
    qos: oneOf([0, 1, 2], { doc: 'QoS of the bridge subscription and publications', default: 0 }),
    localPrefix: str({ doc: 'prefix of the topic on this broker', default: '', allowEmpty: true }),
    remotePrefix: str({ doc: 'prefix of the topic on the remote broker', default: '', allowEmpty: true }),
  },
  { doc: 'one topic mapping' },
);

const BRIDGE = obj(
  {
    name: str({ doc: 'name of the bridge (logs, metrics, API)', required: true, check: (v) => (/^[A-Za-z0-9._-]{1,64}$/.test(v) ? undefined : '1-64 of A-Z a-z 0-9 . _ -') }),
    url: str({ doc: 'remote broker: mqtt://, mqtts://, ws:// or wss:// host[:port]', required: true }),
    clientId: str({ doc: 'client id on the remote broker', defaultText: 'host name and bridge name' }),
    username: str({ doc: 'user name on the remote broker' }),
    password: str({ doc: 'password on the remote broker', allowEmpty: true }),
    protocolVersion: oneOf([4, 5], { doc: 'MQTT version towards the remote: 4 (3.1.1) or 5', default: 4 }),
    keepalive: int(5, 65_535, { doc: 'keep-alive towards the remote, in seconds', default: 60 }),
    cleanStart: bool({ doc: 'start a clean remote session on each connect (false: a persistent one)', default: true }),
    tryPrivate: bool({ doc: 'tell a Mosquitto remote that this is a bridge (loop detection)', default: true }),
    caFile: file('CA certificates the remote certificate must chain to (mqtts, wss)'),
    certFile: file('client certificate for the remote (PEM)'),
    keyFile: file('private key of certFile (PEM)'),
    topics: list(BRIDGE_TOPIC, { doc: 'topic mappings', required: true }),
  },
  { doc: 'one bridge' },
);

/**
 * Defaults of `auth.http`. Applied where the settings are used (not filled in by the schema), so an
 * application passing `auth.http` to startServer may leave them out; the schema shows them.
 */
export const HTTP_AUTH_DEFAULTS = { method: 'POST', bodyFormat: 'json', timeoutMs: 2000, cacheTtlMs: 60_000, cacheMaxEntries: 10_000, onFailure: 'deny', maxConcurrent: 64 } as const;

const HTTP_AUTH = obj(
  {
    authenticateUrl: str({ doc: 'URL asked at each CONNECT (client id, user name, password, address)', check: httpUrl }),
    publishUrl: str({ doc: 'URL asked whether a client may publish to a topic', check: httpUrl }),
    subscribeUrl: str({ doc: 'URL asked whether a client may subscribe to a topic filter', check: httpUrl }),
    method: oneOf(['POST', 'GET'], { doc: 'POST: the request in the body; GET: in the query string', defaultText: HTTP_AUTH_DEFAULTS.method }),
    bodyFormat: oneOf(['json', 'form'], { doc: 'body of a POST: JSON, or form (application/x-www-form-urlencoded)', defaultText: HTTP_AUTH_DEFAULTS.bodyFormat }),
    headers: headers('headers sent with every request, e.g. {"authorization": "Bearer …"}'),
    timeoutMs: int(1, 60_000, { doc: 'milliseconds to wait for an answer (waiting for a free request slot included)', defaultText: String(HTTP_AUTH_DEFAULTS.timeoutMs) }),
    cacheTtlMs: int(0, 86_400_000, { doc: 'milliseconds an answer is reused for the same request (0: no cache)', defaultText: String(HTTP_AUTH_DEFAULTS.cacheTtlMs) }),
    cacheMaxEntries: int(1, 10_000_000, { doc: 'answers kept per URL (the least recently used go first)', defaultText: String(HTTP_AUTH_DEFAULTS.cacheMaxEntries) }),
    onFailure: oneOf(['deny', 'allow', 'ignore'], {
      doc: 'when the service gives no usable answer (down, timeout, another status): deny (CONNACK 3 / 0x88, denied), allow, or ignore (the next source decides)',
      defaultText: HTTP_AUTH_DEFAULTS.onFailure,
    }),
    maxConcurrent: int(1, 10_000, { doc: 'requests in flight at once per URL; more wait for a slot', defaultText: String(HTTP_AUTH_DEFAULTS.maxConcurrent) }),
  },
  { doc: 'authentication and authorization by an HTTP service (docs/security.md)' },
);

/** Broker events a webhook can be told of. */
export const WEBHOOK_EVENTS = ['client.connected', 'client.disconnected', 'client.subscribed', 'client.unsubscribed', 'message.published'] as const;

/** Defaults of a webhook (applied where used, as HTTP_AUTH_DEFAULTS). */
export const WEBHOOK_DEFAULTS = {
  payloadEncoding: 'utf8',
  maxPayloadBytes: 65_536,
  signatureHeader: 'x-starling-signature',
  timeoutMs: 5000,
  maxQueuedEvents: 10_000,
  batch: { maxEvents: 100, maxWaitMs: 1000 },
  retry: { maxAttempts: 5, initialDelayMs: 500, maxDelayMs: 30_000 },
} as const;

const WEBHOOK = obj(
  {
    name: str({ doc: 'name in logs and metrics', required: true, check: (v) => (/^[A-Za-z0-9._-]{1,64}$/.test(v) ? undefined : '1-64 of A-Z a-z 0-9 . _ -') }),
    url: str({ doc: 'where the events are POSTed (JSON)', required: true, check: httpUrl }),
    events: list(oneOf(WEBHOOK_EVENTS, { doc: 'an event' }), { doc: 'the events sent (docs/webhooks.md)', required: true }),
    topics: list(str({ doc: 'a topic filter', check: topicFilter }), { doc: 'topic filters of the message.published events sent', defaultText: '[]' }),
    payloadEncoding: oneOf(['utf8', 'base64'], { doc: 'how message payloads are written in events', defaultText: WEBHOOK_DEFAULTS.payloadEncoding }),
    maxPayloadBytes: int(0, 268_435_455, { doc: 'payload bytes put in an event; the rest is cut off (payloadTruncated)', defaultText: String(WEBHOOK_DEFAULTS.maxPayloadBytes) }),
    headers: headers('headers sent with every request, e.g. {"authorization": "Bearer …"}'),
    secret: str({ doc: 'key of an HMAC-SHA256 signature of each body, sent as signatureHeader: sha256=<hex>' }),
    signatureHeader: str({ doc: 'header that carries the signature', defaultText: WEBHOOK_DEFAULTS.signatureHeader }),
    timeoutMs: int(1, 300_000, { doc: 'milliseconds to wait for an answer to one request', defaultText: String(WEBHOOK_DEFAULTS.timeoutMs) }),
    maxQueuedEvents: int(1, 10_000_000, { doc: 'events waiting to be sent; beyond it new events are dropped and counted', defaultText: String(WEBHOOK_DEFAULTS.maxQueuedEvents) }),
    batch: obj(
      {
        maxEvents: int(1, 100_000, { doc: 'events in one request', defaultText: String(WEBHOOK_DEFAULTS.batch.maxEvents) }),
        maxWaitMs: int(0, 3_600_000, { doc: 'milliseconds an event may wait for others to join its request', defaultText: String(WEBHOOK_DEFAULTS.batch.maxWaitMs) }),
      },
      { doc: 'batching of events into requests' },
    ),
    retry: obj(
      {
        maxAttempts: int(1, 1000, { doc: 'attempts per request, the first included; then its events are dropped and counted', defaultText: String(WEBHOOK_DEFAULTS.retry.maxAttempts) }),
        initialDelayMs: int(1, 3_600_000, { doc: 'delay before the first retry; doubled for each further one', defaultText: String(WEBHOOK_DEFAULTS.retry.initialDelayMs) }),
        maxDelayMs: int(1, 86_400_000, { doc: 'longest delay between attempts', defaultText: String(WEBHOOK_DEFAULTS.retry.maxDelayMs) }),
      },
      { doc: 'retries of a failed request, with exponential back-off' },
    ),
  },
  { doc: 'one webhook' },
);

/** The whole configuration of a Starling process. */
export const SCHEMA = obj(
  {
    host: str({ doc: 'shorthand for hosts with one entry' }),
    hosts: list(str({ doc: 'an interface address' }), { doc: 'interfaces of the plain MQTT listener', default: [], defaultText: '127.0.0.1 and ::1 (loopback only)' }),
    port: port('MQTT TCP port (0 picks a free one)', 1883),
    logLevel: oneOf(LOG_LEVELS, { doc: 'log level', default: 'info' }),
    logFormat: oneOf(['auto', 'pretty', 'json'], { doc: 'log lines: pretty for people, json for machines; auto: pretty on a terminal', default: 'auto' }),
    store: oneOf(['embedded', 'memory'], { doc: 'embedded: durable in dataDir; memory: nothing survives a restart', default: 'embedded' }),
    dataDir: str({ doc: 'directory of the embedded store', default: './data' }),
    durability: oneOf(['full', 'relaxed'], { doc: 'full: acknowledge only what is on disk; relaxed: acknowledge at once', default: 'full' }),
    workers: int(1, 1024, { doc: 'worker processes of one broker on this machine (auto: one per core; 1: a single process), docs/workers.md', default: 1, auto: true }),
    limits: LIMITS,
    features: FEATURES,
    listeners: list(LISTENER, { doc: 'listeners of every kind, each with its own settings (docs/configuration.md)', default: [] }),
    tls: TLS,
    auth: obj(
      {
        passwordFile: file('Mosquitto-format password file'),
        aclFile: file('Mosquitto-format ACL file'),
        allowAnonymous: bool({ doc: 'let in clients no authentication accepted', defaultText: 'only when no authentication is configured' }),
        jwt: obj(
          {
            keyFile: file('public key (PEM or JWK) that verifies JWT passwords'),
            jwksFile: file('JWKS file; the token kid selects the key'),
            issuer: str({ doc: 'required iss' }),
            audience: str({ doc: 'required aud' }),
            algorithms: list(str({ doc: 'a JWS algorithm' }), { doc: 'accepted alg values', defaultText: 'what the key type allows' }),
            usernameClaim: str({ doc: 'claim that becomes the user name', defaultText: 'sub' }),
            publishClaim: str({ doc: 'claim listing filters the client may publish to', defaultText: 'publish' }),
            subscribeClaim: str({ doc: 'claim listing filters it may subscribe to', defaultText: 'subscribe' }),
            clockToleranceSeconds: int(0, 3600, { doc: 'allowed clock skew for exp / nbf', defaultText: '0' }),
          },
          { doc: 'JWT authentication (the password is a token)' },
        ),
        defaultAccess: obj(
          {
            anonymous: oneOf(DEFAULT_ACCESS, { doc: 'for clients without a user name', default: 'auto' }),
            authenticated: oneOf(DEFAULT_ACCESS, { doc: 'for clients with a user name', default: 'auto' }),
          },
          { doc: 'access on a topic no ACL rule (file or runtime) matches; auto: readwrite until a rule applies to the client, then deny' },
        ),
        loginBackoff: obj(
          {
            baseDelayMs: int(0, 60_000, { doc: 'delay of the first refusal after a failed login', defaultText: '250' }),
            maxDelayMs: int(0, 60_000, { doc: 'longest delay', defaultText: '5000' }),
          },
          { doc: 'delay of refusals after failed logins, per client address' },
        ),
        http: HTTP_AUTH,
        credentialCache: obj(
          {
            maxEntries: int(0, 10_000_000, { doc: 'users whose verified password is remembered (0: off; least recently seen dropped first)', defaultText: '100000' }),
            ttlSeconds: int(1, 30 * 86_400, { doc: 'a remembered password is forgotten this long after its user was last seen', defaultText: '3600' }),
          },
          { doc: 'passwords verified against a password file, remembered as a keyed MAC so a reconnecting device skips the hash' },
        ),
        hashConcurrency: int(1, 64, { doc: 'password hashes computed at once on the thread pool (the rest wait their turn)', defaultText: '2' }),
      },
      { doc: 'authentication and authorization; absent: anonymous on loopback only' },
    ),
    websocket: obj(
      {
        enabled: bool({ doc: 'on when the section is present, unless false', default: true }),
        port: port('port of the WebSocket listener', 8083),
        hosts: hosts('interfaces of the WebSocket listener', 'as hosts'),
        path: str({ doc: 'URL path that carries MQTT', default: '/mqtt', check: urlPath }),
        trustedProxies: list(str({ doc: 'an address or CIDR range' }), { doc: 'proxies whose X-Forwarded-For is believed', default: [] }),
        certFile: file('certificate (PEM): with keyFile the listener is wss'),
        keyFile: file('private key (PEM) of certFile'),
      },
      { doc: 'MQTT over WebSocket on its own port; absent: none' },
    ),
    http: obj(
      {
        enabled: bool({ doc: 'run the HTTP server', default: true }),
        host: str({ doc: 'HTTP interface', default: '127.0.0.1' }),
        port: port('HTTP port: /metrics, /healthz, /readyz, /api, dashboard', 18083),
        apiToken: str({ doc: 'bearer token of the REST API (also STARLING_API_TOKEN)' }),
        dashboard: bool({ doc: 'serve the dashboard', default: true }),
        mqtt: bool({ doc: 'MQTT over WebSocket on /mqtt of the HTTP port (for the dashboard)', default: true }),
      },
      { doc: 'the HTTP server', always: true },
    ),
    sys: obj(
      {
        interval: int(0, 86_400, { doc: 'seconds between $SYS publications (0: none)', default: 10 }),
        events: bool({ doc: 'publish client connect / disconnect events', default: true }),
      },
      { doc: '$SYS topics', always: true },
    ),
    cluster: obj(
      {
        redis: str({ doc: 'Redis URL: redis://[user:password@]host:port[/db], rediss:// for TLS', required: true, check: redisUrl }),
        nodeId: str({ doc: "this node's id", defaultText: 'host name and MQTT port', check: nodeId }),
        prefix: str({ doc: 'prefix of every Redis key and channel', defaultText: 'starling', check: nodeId }),
      },
      { doc: 'cluster on Redis (docs/clustering.md); absent: a single node' },
    ),
    bridges: list(BRIDGE, { doc: 'connections to other MQTT brokers (docs/bridges.md)', default: [] }),
    webhooks: list(WEBHOOK, { doc: 'HTTP endpoints told of broker events (docs/webhooks.md)', default: [] }),
  },
  { doc: 'the configuration', always: true },
);

/** The whole validated configuration of a Starling process. */
export type StarlingConfig = ValueOf<typeof SCHEMA> & {
  http: ValueOf<typeof SCHEMA>['http'] & {
    /** Set by the loader when the port is the default: then a taken port costs only the HTTP server. */
    portIsDefault?: boolean;
  };
};
/** One log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];
/** Broker limits. */
export type LimitsConfig = ObjValue<typeof LIMITS.fields>;
/** Optional protocol features (MQTT 5 advertises each in CONNACK). */
export type FeaturesConfig = ObjValue<typeof FEATURES.fields>;
/** One entry of `listeners`. */
export type ListenerConfig = ObjValue<typeof LISTENER.fields>;
/** A listener's own authentication. */
export type ListenerAuthConfig = ObjValue<typeof LISTENER_AUTH.fields>;
/** The TLS listener of the shorthand flags. */
export type TlsConfig = ObjValue<typeof TLS.fields>;
/** Authentication and authorization. */
export type AuthConfig = NonNullable<StarlingConfig['auth']>;
/** Authentication and authorization by an HTTP service. */
export type HttpAuthConfig = NonNullable<AuthConfig['http']>;
/** JWT authentication. */
export type JwtConfig = NonNullable<AuthConfig['jwt']>;
/** MQTT over WebSocket on its own port. */
export type WebSocketConfig = NonNullable<StarlingConfig['websocket']>;
/** The HTTP server. */
export type HttpConfig = StarlingConfig['http'];
/** $SYS topics. */
export type SysConfig = StarlingConfig['sys'];
/** A node of a cluster on Redis. */
export type ClusterConfig = NonNullable<StarlingConfig['cluster']>;
/** One bridge to another broker. */
export type BridgeConfig = ObjValue<typeof BRIDGE.fields>;
/** One webhook. */
export type WebhookConfig = ObjValue<typeof WEBHOOK.fields>;
/** One topic mapping of a bridge. */
export type BridgeTopicConfig = ObjValue<typeof BRIDGE_TOPIC.fields>;

/** Every default, derived from the schema (a fresh object each call). */
export function schemaDefaults(): StarlingConfig {
  return defaultOf(SCHEMA) as StarlingConfig;
}

/** Defaults of the broker limits (the broker core's DEFAULT_BROKER_OPTIONS come from here). */
export const DEFAULT_LIMITS: Readonly<LimitsConfig> = defaultOf(LIMITS) as LimitsConfig;
/** Defaults of the protocol features. */
export const DEFAULT_FEATURES: Readonly<FeaturesConfig> = defaultOf(FEATURES) as FeaturesConfig;
