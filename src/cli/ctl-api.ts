/** The REST API of a running broker as `starling ctl` calls it: credentials (API token or admin sign-in), JSON requests, and errors that say what to do. */

/** A refusal from the API (4xx) or a broker that cannot be reached (or failed, 5xx); `exitCode` is what ctl exits with. */
export class CtlError extends Error {
  constructor(
    message: string,
    /** 2: refused (bad request, not found, conflict); 3: not signed in or not allowed; 4: unreachable or server error. */
    readonly exitCode: 2 | 3 | 4,
  ) {
    super(message);
  }
}

/** Exit code of each HTTP status class. */
function exitCodeOf(status: number): 2 | 3 | 4 {
  if (status === 401 || status === 403) return 3;
  return status >= 500 ? 4 : 2;
}

/** A connection to one broker's API. */
export class CtlApi {
  private bearer: string | undefined;
  private signedIn = false;

  constructor(
    /** e.g. http://127.0.0.1:18083 */
    private readonly url: string,
    token: string | undefined,
  ) {
    this.bearer = token === undefined || token === '' ? undefined : token;
  }

  /** Signs in as an admin: the session is a bearer token for this run (ended by `close`). */
  async signIn(username: string, password: string): Promise<void> {
    const answer = await this.call<{ token: string }>('POST', '/api/auth/login', { username, password, bearer: true, ttlSeconds: 600 });
    this.bearer = answer.token;
    this.signedIn = true;
  }

  /** Ends the sign-in session, if any (errors are ignored: the session expires anyway). */
  async close(): Promise<void> {
    if (!this.signedIn) return;
    this.signedIn = false;
    await this.call('POST', '/api/auth/logout').catch(() => undefined);
  }

  /** One request; resolves to the JSON answer (undefined for 204), throws CtlError otherwise. */
  async call<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.bearer !== undefined) headers['authorization'] = `Bearer ${this.bearer}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(new URL(path, this.url), { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message ?? (error as Error).message;
      throw new CtlError(`cannot reach the broker's API at ${this.url}: ${cause} (is the broker running with its HTTP server? --url sets the address)`, 4);
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let data: unknown;
    try {
      data = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CtlError(`${method} ${path}: HTTP ${response.status}, not a JSON answer (is ${this.url} a Starling broker?)`, 4);
    }
    if (!response.ok) {
      const error = data as { error?: string; message?: string } | undefined;
      const hint = response.status === 401 ? ' (give --token, set STARLING_API_TOKEN, or sign in with --user NAME)' : '';
      throw new CtlError(`${error?.message ?? `HTTP ${response.status}`} [${response.status} ${error?.error ?? ''}]${hint}`, exitCodeOf(response.status));
    }
    return data as T;
  }
}
