/**
 * Example plugin: authenticates clients against an HTTP service (see docs/hooks.md).
 *
 * For each CONNECT it POSTs `{ clientId, username, password, remoteAddress, listener }` as JSON to
 * `url` and maps the answer:
 *
 * - 200 with `{ "allow": true }` (optionally `"username"`, `"publish"`, `"subscribe"`): accepted;
 * - 401: bad user name or password (CONNACK 4 / 0x86);
 * - 403, or 200 with `{ "allow": false }`: not authorized (CONNACK 5 / 0x87);
 * - anything else, a network error or no answer within `timeoutMs`: server unavailable (3 / 0x88).
 *
 * The `publish` / `subscribe` lists the service returns (topic filters) are attached to the client
 * and enforced by the plugin's authorize hooks.
 *
 *     import { startServer } from 'starling-mqtt';
 *     await startServer({ plugins: [httpAuthPlugin({ url: 'http://127.0.0.1:8080/mqtt/auth' })] });
 */
import type { AuthenticateRequest, AuthenticateResult, BrokerPlugin, ClientIdentity } from 'starling-mqtt';

/** Settings of the HTTP authentication plugin. */
export interface HttpAuthOptions {
  /** Endpoint that decides (POST, JSON body). */
  url: string;
  /** Milliseconds to wait for an answer (default 2000). */
  timeoutMs?: number;
}

/** What the service may answer with status 200. */
interface ServiceAnswer {
  allow?: unknown;
  username?: unknown;
  publish?: unknown;
  subscribe?: unknown;
}

/** Whether `topic` matches the MQTT topic filter `filter` (no `$` special case needed here). */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

/** The topic filters the service granted this client, or undefined when it said nothing. */
function granted(client: ClientIdentity, key: 'httpPublish' | 'httpSubscribe'): string[] | undefined {
  const value = client.attributes?.[key];
  return Array.isArray(value) ? (value as string[]) : undefined;
}

/** Builds the plugin. */
export function httpAuthPlugin(options: HttpAuthOptions): BrokerPlugin {
  const timeoutMs = options.timeoutMs ?? 2000;

  async function authenticate(request: AuthenticateRequest): Promise<AuthenticateResult> {
    let response: Response;
    try {
      response = await fetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          clientId: request.clientId,
          username: request.username ?? null,
          password: request.password?.toString('utf8') ?? null,
          remoteAddress: request.remoteAddress ?? null,
          listener: request.listener,
        }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch {
      return 'server-unavailable';
    }
    if (response.status === 401) return 'bad-credentials';
    if (response.status === 403) return 'not-authorized';
    if (response.status !== 200) return 'server-unavailable';
    let answer: ServiceAnswer;
    try {
      answer = (await response.json()) as ServiceAnswer;
    } catch {
      return 'server-unavailable';
    }
    if (answer.allow !== true) return 'not-authorized';
    const attributes: Record<string, unknown> = {};
    const publish = stringList(answer.publish);
    const subscribe = stringList(answer.subscribe);
    if (publish !== undefined) attributes['httpPublish'] = publish;
    if (subscribe !== undefined) attributes['httpSubscribe'] = subscribe;
    return typeof answer.username === 'string' ? { accept: true, username: answer.username, attributes } : { accept: true, attributes };
  }

  return {
    name: 'http-auth',
    authenticate,
    // Abstain (undefined) when the service gave no list, so other plugins (an ACL file) decide.
    authorizePublish: (client, topic) => granted(client, 'httpPublish')?.some((f) => matches(f, topic)),
    authorizeSubscribe: (client, filter) => granted(client, 'httpSubscribe')?.some((f) => f === filter || matches(f, filter)),
    authorizeReceive: (client, topic) => granted(client, 'httpSubscribe')?.some((f) => matches(f, topic)),
  };
}
