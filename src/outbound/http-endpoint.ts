/**
 * An HTTP service the broker calls (an auth.http URL, a webhook): Node's fetch (undici, keep-alive
 * connections), a timeout, a bound on requests in flight, counters and a latency histogram for
 * /metrics, and one log line each time the service goes down or comes back.
 */
import type { Logger } from '../broker/logger.js';

/** Upper bounds of the latency buckets, in seconds (Prometheus `le`). */
export const LATENCY_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The largest answer body read; a longer one is a failure (a service answering megabytes is broken). */
const MAX_ANSWER_BYTES = 64 * 1024;

/** Durations of requests, counted per bucket (not cumulative; the last count is above every bound). */
export class LatencyHistogram {
  readonly bounds = LATENCY_BUCKETS;
  readonly counts: number[] = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  /** Sum of the observed durations, in seconds. */
  sum = 0;
  count = 0;

  /** Counts one duration, in seconds. */
  observe(seconds: number): void {
    let i = 0;
    while (i < this.bounds.length && seconds > (this.bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += seconds;
    this.count++;
  }
}

/** Where and how to call the service. */
export interface HttpEndpointOptions {
  /** Name in logs and metrics ("auth.authenticate", "audit"). */
  name: string;
  /** What it is, for log lines ("HTTP authentication service", "webhook"). */
  what: string;
  url: string;
  method: 'POST' | 'GET';
  headers: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** Requests in flight at once; more wait (their timeout running) for a free slot. */
  maxConcurrent: number;
  logger: Logger;
  /** What happens while the service is down, for the log line ("clients are refused"). */
  whileDown: string;
}

/** One request: a body (POST) or a query string (GET), and headers of its own. */
export interface HttpRequest {
  body?: string;
  contentType?: string;
  /** Added to the URL's query string (GET). */
  query?: URLSearchParams;
  headers?: Readonly<Record<string, string>>;
}

/** How the caller reads an answer: what it means, or why it is no usable answer (a failure). */
export type Interpretation<T> = { answer: T } | { failure: string };

/** What a call gave: the caller's reading of the answer, or a failure with its reason (and the status, if any). */
export type HttpOutcome<T> = { ok: true; answer: T } | { ok: false; status: number | undefined; reason: string };

/** Calls one URL; see the module comment. */
export class HttpEndpoint {
  /** Requests sent (each attempt counts). */
  requests = 0;
  /** Requests that gave no usable answer (network error, timeout, a status the caller does not take). */
  failures = 0;
  readonly latency = new LatencyHistogram();
  private downSince: number | undefined;
  private failedWhileDown = 0;
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** One controller per call in flight (not a signal shared by all: AbortSignal.any on a long-lived signal leaks in some Node versions). */
  private readonly calls = new Set<AbortController>();
  private closed = false;

  constructor(readonly options: HttpEndpointOptions) {}

  /** False from a failure until the next usable answer. */
  get up(): boolean {
    return this.downSince === undefined;
  }

  /**
   * Sends `request`; `interpret(status, body)` reads the answer. Never throws: a network error, a
   * timeout, an over-long answer or one `interpret` refuses is a failure.
   */
  async call<T>(request: HttpRequest, interpret: (status: number, body: string) => Interpretation<T>): Promise<HttpOutcome<T>> {
    const options = this.options;
    if (this.closed) return this.failed({ ok: false, status: undefined, reason: 'closed' });
    const controller = new AbortController();
    const signal = controller.signal;
    const timer = setTimeout(() => controller.abort(), options.timeoutMs);
    this.calls.add(controller);
    const started = performance.now();
    let outcome: HttpOutcome<T> | undefined;
    try {
      try {
        await this.acquire(signal);
      } catch {
        return this.failed({ ok: false, status: undefined, reason: this.closed ? 'closed' : `no free request slot within ${options.timeoutMs} ms` });
      }
      this.requests++;
      try {
        outcome = await this.send(request, signal, interpret);
      } finally {
        this.release();
        this.latency.observe((performance.now() - started) / 1000);
      }
    } finally {
      clearTimeout(timer);
      this.calls.delete(controller);
    }
    return outcome.ok ? this.succeeded(outcome) : this.failed(outcome);
  }

  /** Aborts every request in flight and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const controller of this.calls) controller.abort();
  }

  private async send<T>(request: HttpRequest, signal: AbortSignal, interpret: (status: number, body: string) => Interpretation<T>): Promise<HttpOutcome<T>> {
    const options = this.options;
    let url = options.url;
    if (request.query !== undefined) {
      const withQuery = new URL(url);
      for (const [key, value] of request.query) withQuery.searchParams.append(key, value);
      url = withQuery.toString();
    }
    const headers: Record<string, string> = { ...options.headers, ...request.headers };
    if (request.contentType !== undefined) headers['content-type'] = request.contentType;
    try {
      // A redirect is not followed: a POST re-sent elsewhere (with credentials in it) is not ours to decide.
      const response = await fetch(url, { method: options.method, headers, body: request.body ?? null, signal, redirect: 'manual' });
      // The body is read (up to a cap) even when unused, so the keep-alive connection can be reused.
      const body = await readCapped(response);
      if (body === undefined) return { ok: false, status: response.status, reason: `answer longer than ${MAX_ANSWER_BYTES} bytes` };
      const reading = interpret(response.status, body);
      return 'answer' in reading ? { ok: true, answer: reading.answer } : { ok: false, status: response.status, reason: reading.failure };
    } catch (error) {
      return { ok: false, status: undefined, reason: this.reasonOf(error, signal) };
    }
  }

  private reasonOf(error: unknown, signal: AbortSignal): string {
    if (this.closed) return 'closed';
    if (signal.aborted) return `no answer within ${this.options.timeoutMs} ms`;
    // undici reports "fetch failed" with the system error (ECONNREFUSED …) as its cause.
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    if (typeof cause?.code === 'string') return cause.code;
    return error instanceof Error ? error.message : String(error);
  }

  private succeeded<T>(outcome: HttpOutcome<T>): HttpOutcome<T> {
    if (this.downSince !== undefined) {
      const seconds = Math.round((Date.now() - this.downSince) / 100) / 10;
      this.options.logger.info(
        { service: this.options.name, url: redact(this.options.url), downSeconds: seconds, failedRequests: this.failedWhileDown },
        `${this.options.what} "${this.options.name}" is up again after ${seconds} s`,
      );
      this.downSince = undefined;
    }
    this.failedWhileDown = 0;
    return outcome;
  }

  private failed<T>(outcome: HttpOutcome<T> & { ok: false }): HttpOutcome<T> {
    this.failures++;
    if (outcome.reason === 'closed') return outcome;
    this.failedWhileDown++;
    if (this.downSince === undefined) {
      this.downSince = Date.now();
      this.options.logger.warn(
        { service: this.options.name, url: redact(this.options.url), reason: outcome.reason },
        `${this.options.what} "${this.options.name}" is down (${outcome.reason}): ${this.options.whileDown} until it answers`,
      );
    }
    return outcome;
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new Error('aborted'));
    if (this.active < this.options.maxConcurrent) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const take = (): void => {
        signal.removeEventListener('abort', giveUp);
        this.active++;
        resolve();
      };
      const giveUp = (): void => {
        const at = this.waiting.indexOf(take);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(new Error('aborted'));
      };
      this.waiting.push(take);
      signal.addEventListener('abort', giveUp, { once: true });
    });
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }
}

/** The body as text, or undefined when it is longer than MAX_ANSWER_BYTES. */
async function readCapped(response: Response): Promise<string | undefined> {
  const stream = response.body;
  if (stream === null) return '';
  const reader = (stream as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks).toString('utf8');
    total += value.byteLength;
    if (total > MAX_ANSWER_BYTES) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
}

/** The URL without user information or query, for logs (either may hold a secret). */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
