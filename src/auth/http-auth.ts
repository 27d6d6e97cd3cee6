/**
 * `auth.http`: authentication and authorization by an HTTP service, configured not coded. Each
 * CONNECT, PUBLISH or SUBSCRIBE check is one request (JSON, form or query string) to its URL; the
 * answer allows, denies or ignores (the next source decides), and is cached for `cacheTtlMs`. When
 * the service gives no usable answer, `onFailure` decides. Answers come asynchronously: only the
 * asking client's packets wait (docs/security.md, "HTTP authentication and authorization").
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { AuthenticateRefusal, AuthenticateRequest, AuthenticateResult, AuthorizeResult, BrokerPlugin, ClientIdentity, Maybe } from '../broker/hooks.js';
import type { Logger } from '../broker/logger.js';
import { HTTP_AUTH_DEFAULTS, type HttpAuthConfig } from '../config/schema.js';
import { HttpEndpoint, type HttpRequest, type Interpretation } from '../outbound/http-endpoint.js';
import type { QoS } from '../protocol/types.js';
import { AnswerCache } from './answer-cache.js';
import type { LoginBackoff } from './login-backoff.js';

/** What a request asks: CONNECT, or a PUBLISH / SUBSCRIBE. */
export type HttpAuthAction = 'authenticate' | 'publish' | 'subscribe';

/** The fields of one request, as the service receives them (null: absent). */
type Fields = Record<string, string | number | boolean | null>;

/** The service's decision. */
interface Decision {
  result: 'allow' | 'deny' | 'ignore';
  /** For a denied CONNECT: CONNACK 4 / 0x86 or 5 / 0x87. */
  refusal?: AuthenticateRefusal;
  /** For an allowed CONNECT: the user name ACLs and plugins see from now on. */
  username?: string;
}

const ALLOW: Decision = { result: 'allow' };

/** One URL of the service with its cache, its counters and its HTTP endpoint. */
export class HttpAuthEndpoint {
  readonly endpoint: HttpEndpoint;
  /** Checks answered from the cache, or by a request already on its way for the same question. */
  cacheHits = 0;
  /** Answers by result (cached ones included). */
  readonly answers = { allow: 0, deny: 0, ignore: 0 };
  private readonly cache: AnswerCache<Decision>;
  /** Requests in flight by key: the same question asked again meanwhile waits for the same answer. */
  private readonly pending = new Map<string, Promise<Decision | undefined>>();

  constructor(
    readonly action: HttpAuthAction,
    url: string,
    private readonly config: HttpAuthConfig,
    logger: Logger,
  ) {
    const method = config.method ?? HTTP_AUTH_DEFAULTS.method;
    this.endpoint = new HttpEndpoint({
      name: `auth.${action}`,
      what: 'HTTP authentication service',
      url,
      method,
      headers: config.headers ?? {},
      timeoutMs: config.timeoutMs ?? HTTP_AUTH_DEFAULTS.timeoutMs,
      maxConcurrent: config.maxConcurrent ?? HTTP_AUTH_DEFAULTS.maxConcurrent,
      logger,
      whileDown: whileDown(action, config.onFailure ?? HTTP_AUTH_DEFAULTS.onFailure),
    });
    this.cache = new AnswerCache(config.cacheTtlMs ?? HTTP_AUTH_DEFAULTS.cacheTtlMs, config.cacheMaxEntries ?? HTTP_AUTH_DEFAULTS.cacheMaxEntries);
  }

  /** The service's decision on `fields` (at once when cached), or undefined when it gave none. */
  ask(fields: Fields): Maybe<Decision | undefined> {
    const request = this.request(fields);
    // The key is a digest of the whole request, so a cached answer is for exactly the same question
    // and no password is kept in memory as a key.
    const key = createHash('sha256')
      .update(request.body ?? request.query?.toString() ?? '')
      .digest('base64');
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.cacheHits++;
      this.answers[cached.result]++;
      return cached;
    }
    const inFlight = this.pending.get(key);
    if (inFlight !== undefined) {
      this.cacheHits++;
      return inFlight.then((decision) => {
        if (decision !== undefined) this.answers[decision.result]++;
        return decision;
      });
    }
    const asked = this.endpoint.call(request, (status, body) => interpret(this.action, status, body)).then((outcome) => {
      this.pending.delete(key);
      if (!outcome.ok) return undefined;
      this.answers[outcome.answer.result]++;
      this.cache.set(key, outcome.answer);
      return outcome.answer;
    });
    this.pending.set(key, asked);
    return asked;
  }

  private request(fields: Fields): HttpRequest {
    if ((this.config.method ?? HTTP_AUTH_DEFAULTS.method) === 'GET') return { query: formOf(fields) };
    if ((this.config.bodyFormat ?? HTTP_AUTH_DEFAULTS.bodyFormat) === 'form') return { body: formOf(fields).toString(), contentType: 'application/x-www-form-urlencoded' };
    return { body: JSON.stringify(fields), contentType: 'application/json' };
  }
}

/** The service's URLs as plugins: one that authenticates (placed with the password files) and one that authorizes (after the ACL file). */
export class HttpAuth {
  /** The URLs configured, for metrics. */
  readonly endpoints: HttpAuthEndpoint[] = [];
  /** The CONNECT check, when `authenticateUrl` is set. */
  readonly authenticator: BrokerPlugin | undefined;
  /** The PUBLISH / SUBSCRIBE checks, when `publishUrl` or `subscribeUrl` is set. */
  readonly authorizer: BrokerPlugin | undefined;
  private readonly onFailure: 'deny' | 'allow' | 'ignore';

  constructor(config: HttpAuthConfig, logger: Logger, backoff?: LoginBackoff) {
    this.onFailure = config.onFailure ?? HTTP_AUTH_DEFAULTS.onFailure;
    const endpoint = (action: HttpAuthAction, url: string | undefined): HttpAuthEndpoint | undefined => {
      if (url === undefined) return undefined;
      const made = new HttpAuthEndpoint(action, url, config, logger);
      this.endpoints.push(made);
      return made;
    };
    const authenticate = endpoint('authenticate', config.authenticateUrl);
    const publish = endpoint('publish', config.publishUrl);
    const subscribe = endpoint('subscribe', config.subscribeUrl);
    if (authenticate !== undefined) {
      this.authenticator = {
        name: 'http-authenticate',
        authenticate: (request) => settle(authenticate.ask(connectFields(request)), (decision) => this.admission(decision, request.remoteAddress, backoff)),
      };
    }
    if (publish !== undefined || subscribe !== undefined) {
      const authorizer: BrokerPlugin = { name: 'http-authorize' };
      if (publish !== undefined) {
        authorizer.authorizePublish = (client, topic, qos, retain) =>
          settle(publish.ask({ action: 'publish', ...clientFields(client), topic, qos, retain }), (decision) => this.authorization(decision));
      }
      if (subscribe !== undefined) {
        authorizer.authorizeSubscribe = (client, topicFilter, qos: QoS) =>
          settle(subscribe.ask({ action: 'subscribe', ...clientFields(client), topic: topicFilter, qos }), (decision) => this.authorization(decision));
      }
      this.authorizer = authorizer;
    }
  }

  /** Aborts the requests in flight (the broker is closing). */
  close(): void {
    for (const endpoint of this.endpoints) endpoint.endpoint.close();
  }

  private admission(decision: Decision | undefined, address: string | undefined, backoff: LoginBackoff | undefined): Maybe<AuthenticateResult> {
    if (decision === undefined) return this.onFailure === 'deny' ? 'server-unavailable' : this.onFailure === 'allow' ? 'accept' : undefined;
    switch (decision.result) {
      case 'allow':
        backoff?.succeeded(address);
        return decision.username === undefined ? 'accept' : { accept: true, username: decision.username };
      case 'deny': {
        const refusal = decision.refusal ?? 'bad-credentials';
        // Guessing passwords against the service is slowed down like guessing them against the password file.
        return refusal === 'bad-credentials' && backoff !== undefined ? backoff.refuse(address, refusal) : refusal;
      }
      case 'ignore':
        return undefined;
    }
  }

  private authorization(decision: Decision | undefined): AuthorizeResult {
    if (decision === undefined) return this.onFailure === 'deny' ? false : this.onFailure === 'allow' ? true : undefined;
    return decision.result === 'allow' ? true : decision.result === 'deny' ? false : undefined;
  }
}

/** Applies `then` at once to an immediate value (a cache hit keeps the broker's path synchronous), or when the promise resolves. */
function settle<T, R>(value: Maybe<T>, then: (value: T) => Maybe<R>): Maybe<R> {
  return value instanceof Promise ? value.then(then) : then(value);
}

/** What the service reads of a client. */
function clientFields(client: ClientIdentity): Fields {
  return { clientId: client.clientId, username: client.username ?? null, address: client.remoteAddress ?? null, listener: client.listener };
}

/** What the service reads of a CONNECT: the password as text, or in base64 when it is not UTF-8. */
function connectFields(request: AuthenticateRequest): Fields {
  const fields: Fields = { action: 'connect', ...clientFields(request), protocolVersion: request.protocolVersion };
  const password = request.password;
  if (password === undefined) fields['password'] = null;
  else if (isUtf8(password)) fields['password'] = password.toString('utf8');
  else fields['passwordBase64'] = password.toString('base64');
  return fields;
}

/** The fields as a form or query string; absent ones are left out. */
function formOf(fields: Fields): URLSearchParams {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) if (value !== null) form.append(key, String(value));
  return form;
}

/**
 * Reads an answer: 200 / 204 with an empty body allows; 200 with JSON `{"result": "allow" | "deny" |
 * "ignore"}` says so (a CONNECT's `"reason": "not-authorized"` and `"username"` are taken too); 401
 * and 403 deny. Anything else is no usable answer.
 */
export function interpret(action: HttpAuthAction, status: number, body: string): Interpretation<Decision> {
  if (status === 401) return { answer: { result: 'deny', refusal: 'bad-credentials' } };
  if (status === 403) return { answer: { result: 'deny', refusal: 'not-authorized' } };
  if (status !== 200 && status !== 204) return { failure: `status ${status}` };
  if (body.trim() === '') return { answer: ALLOW };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { failure: 'an answer that is not JSON' };
  }
  const answer = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const result = answer['result'];
  if (result !== 'allow' && result !== 'deny' && result !== 'ignore') return { failure: 'an answer without "result": "allow", "deny" or "ignore"' };
  if (result === 'deny') return { answer: { result, refusal: answer['reason'] === 'not-authorized' ? 'not-authorized' : 'bad-credentials' } };
  const username = answer['username'];
  if (result === 'allow' && action === 'authenticate' && typeof username === 'string' && username !== '') return { answer: { result, username } };
  return { answer: { result } };
}

function whileDown(action: HttpAuthAction, onFailure: 'deny' | 'allow' | 'ignore'): string {
  const what = action === 'authenticate' ? 'clients connecting' : action === 'publish' ? 'publishes' : 'subscriptions';
  if (onFailure === 'ignore') return `${what} are decided by the other sources (onFailure "ignore")`;
  if (onFailure === 'allow') return `${what} are allowed (onFailure "allow")`;
  return action === 'authenticate' ? `${what} are refused with CONNACK 3 / 0x88 (onFailure "deny")` : `${what} are denied (onFailure "deny")`;
}
