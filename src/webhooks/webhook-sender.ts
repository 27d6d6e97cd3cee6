/**
 * One webhook's delivery: a bounded queue of events, sent in batches (at most `batch.maxEvents`, or
 * whatever waited `batch.maxWaitMs`), one request at a time so the receiver sees them in order,
 * retried with exponential back-off, signed with HMAC-SHA256 when a secret is set. Pushing an event
 * never waits: a full queue drops it and counts the drop.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from '../broker/logger.js';
import { WEBHOOK_DEFAULTS, type WebhookConfig } from '../config/schema.js';
import { HttpEndpoint } from '../outbound/http-endpoint.js';
import { eventJson, type QueuedEvent } from './webhook-events.js';

/** Why events were dropped. */
export type DropReason = 'queue_full' | 'retries_exhausted' | 'rejected' | 'shutdown';

/** Statuses worth another attempt besides 5xx: Request Timeout, Too Early, Too Many Requests. */
const RETRYABLE = new Set([408, 425, 429]);

/** Sends one webhook's events; see the module comment. */
export class WebhookSender {
  readonly endpoint: HttpEndpoint;
  /** Events accepted into the queue. */
  enqueued = 0;
  /** Events the receiver acknowledged (2xx). */
  sent = 0;
  /** Events dropped, by reason. */
  readonly dropped: Record<DropReason, number> = { queue_full: 0, retries_exhausted: 0, rejected: 0, shutdown: 0 };
  private readonly queue: QueuedEvent[] = [];
  /** Index of the oldest queued event in `queue` (the array is compacted now and then, not shifted per event). */
  private head = 0;
  private seq = 0;
  private batches = 0;
  /** The delivery loop, while it runs (sending a batch or waiting to retry it). */
  private running: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryWait: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private closing = false;
  private readonly maxQueued: number;
  private readonly maxEvents: number;
  private readonly maxWaitMs: number;
  private readonly retry: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number };
  private readonly encoding: 'utf8' | 'base64';

  constructor(
    readonly config: WebhookConfig,
    private readonly logger: Logger,
  ) {
    this.maxQueued = config.maxQueuedEvents ?? WEBHOOK_DEFAULTS.maxQueuedEvents;
    this.maxEvents = config.batch?.maxEvents ?? WEBHOOK_DEFAULTS.batch.maxEvents;
    this.maxWaitMs = config.batch?.maxWaitMs ?? WEBHOOK_DEFAULTS.batch.maxWaitMs;
    this.retry = { ...WEBHOOK_DEFAULTS.retry, ...config.retry };
    this.encoding = config.payloadEncoding ?? WEBHOOK_DEFAULTS.payloadEncoding;
    this.endpoint = new HttpEndpoint({
      name: config.name,
      what: 'webhook',
      url: config.url,
      method: 'POST',
      headers: config.headers ?? {},
      timeoutMs: config.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs,
      maxConcurrent: 1,
      logger,
      whileDown: `its events are retried ${this.retry.maxAttempts} times in all and queued (up to ${this.maxQueued}, then dropped)`,
    });
  }

  /** The webhook's name. */
  get name(): string {
    return this.config.name;
  }

  /** Events waiting (the batch being sent included). */
  get depth(): number {
    return this.queue.length - this.head;
  }

  /**
   * Queues the event `make` builds with its sequence number; when the queue is full (or the webhook
   * closing) the event is dropped and counted without being built.
   */
  offer(make: (seq: number) => QueuedEvent): void {
    const seq = ++this.seq;
    if (this.closing) {
      this.dropped.shutdown++;
      return;
    }
    if (this.depth >= this.maxQueued) {
      this.dropped.queue_full++;
      return;
    }
    this.queue.push(make(seq));
    this.enqueued++;
    this.schedule();
  }

  /** Sends what is queued once more (no retries, within the request timeout), then stops; what is left is dropped and counted. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.retryWait !== undefined) {
      clearTimeout(this.retryWait.timer);
      this.retryWait.resolve();
    }
    await this.running;
    const deadline = Date.now() + (this.config.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs);
    while (this.depth > 0 && Date.now() < deadline) {
      const batch = this.peekBatch();
      if ((await this.attempt(this.bodyOf(batch), batch.length, 1)) !== true) break;
      this.take(batch.length);
    }
    this.dropped.shutdown += this.depth;
    this.take(this.depth);
    this.endpoint.close();
  }

  /** Starts the delivery loop when a batch is full, or arms the timer of the oldest event. */
  private schedule(): void {
    if (this.running !== undefined || this.closing) return;
    const depth = this.depth;
    if (depth === 0) return;
    if (depth >= this.maxEvents || this.maxWaitMs === 0) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
      this.start();
      return;
    }
    if (this.flushTimer !== undefined) return;
    const oldest = this.queue[this.head] as QueuedEvent;
    const due = Math.max(0, oldest.timestamp + this.maxWaitMs - Date.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      if (this.running !== undefined || this.closing || this.depth === 0) return;
      this.start();
    }, due);
  }

  /** Runs the delivery loop; when it ends, the next batch is scheduled. */
  private start(): void {
    this.running = this.deliver()
      .catch((error: unknown) => this.logger.error({ webhook: this.config.name, err: error }, 'webhook delivery failed'))
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
  }

  /** Sends the oldest batch until it is acknowledged, refused for good, out of attempts, or the webhook closes. */
  private async deliver(): Promise<void> {
    const batch = this.peekBatch();
    // The same body on every attempt (same batch number), so a receiver can tell a retry from new events.
    const body = this.bodyOf(batch);
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(body, batch.length, attempt);
      if (outcome === true) {
        this.take(batch.length);
        return;
      }
      // Closing: the batch stays queued for close()'s last attempt.
      if (this.closing) return;
      const retryable = outcome.status === undefined || outcome.status >= 500 || RETRYABLE.has(outcome.status);
      if (!retryable || attempt >= this.retry.maxAttempts) {
        const reason: DropReason = retryable ? 'retries_exhausted' : 'rejected';
        this.dropped[reason] += batch.length;
        this.take(batch.length);
        this.logger.debug({ webhook: this.config.name, events: batch.length, attempts: attempt, reason: outcome.reason }, `webhook events dropped (${reason})`);
        return;
      }
      await this.pause(this.backoff(attempt));
      if (this.closing) return;
    }
  }

  /** The request body of a batch: the webhook's name, the batch's number and its events. */
  private bodyOf(batch: readonly QueuedEvent[]): string {
    return JSON.stringify({ webhook: this.config.name, batch: ++this.batches, events: batch.map((e) => eventJson(e, this.encoding)) });
  }

  /** One request with a batch of `count` events: true when acknowledged, otherwise the failure. */
  private async attempt(body: string, count: number, attempt: number): Promise<true | { status: number | undefined; reason: string }> {
    const headers: Record<string, string> = { 'x-starling-attempt': String(attempt) };
    const secret = this.config.secret;
    if (secret !== undefined) headers[(this.config.signatureHeader ?? WEBHOOK_DEFAULTS.signatureHeader).toLowerCase()] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    const outcome = await this.endpoint.call({ body, contentType: 'application/json', headers }, (status) => (status >= 200 && status < 300 ? { answer: true } : { failure: `status ${status}` }));
    if (outcome.ok) {
      this.sent += count;
      return true;
    }
    return { status: outcome.status, reason: outcome.reason };
  }

  /** Delay before attempt `attempt + 1`: doubled per attempt up to maxDelayMs, up to half of it taken off at random so nodes do not retry in step. */
  private backoff(attempt: number): number {
    const full = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (attempt - 1));
    return Math.round(full / 2 + (Math.random() * full) / 2);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.retryWait = undefined;
        resolve();
      }, ms);
      this.retryWait = { timer, resolve };
    });
  }

  /** The oldest events, up to one batch (not removed). */
  private peekBatch(): QueuedEvent[] {
    return this.queue.slice(this.head, this.head + this.maxEvents);
  }

  /** Removes the `count` oldest events. */
  private take(count: number): void {
    this.head += Math.min(count, this.depth);
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}
