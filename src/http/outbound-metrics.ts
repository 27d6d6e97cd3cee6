/** Prometheus metrics of the HTTP services the broker calls (auth.http URLs, webhooks), read from their counters at scrape time. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Request durations of one service: counts per bucket (not cumulative; the last is above every bound), in seconds. */
export interface LatencyView {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/** What the metrics read of one called URL. */
export interface EndpointView {
  readonly requests: number;
  readonly failures: number;
  readonly up: boolean;
  readonly latency: LatencyView;
}

/** One URL of auth.http. */
export interface HttpAuthView {
  readonly action: string;
  readonly endpoint: EndpointView;
  readonly cacheHits: number;
  readonly answers: Readonly<Record<'allow' | 'deny' | 'ignore', number>>;
}

/** One webhook. */
export interface WebhookView {
  readonly name: string;
  readonly endpoint: EndpointView;
  readonly enqueued: number;
  readonly sent: number;
  readonly depth: number;
  readonly dropped: Readonly<Record<string, number>>;
}

/** The called services, read at each scrape. */
export interface OutboundServices {
  httpAuth(): readonly HttpAuthView[];
  webhooks(): readonly WebhookView[];
}

/**
 * Registers the metrics of auth.http (label `endpoint`: authenticate, publish, subscribe) and of
 * webhooks (label `webhook`), each family only when there is such a service (they are fixed at start).
 */
export function registerOutboundMetrics(registry: Registry, services: OutboundServices): void {
  if (services.httpAuth().length > 0) registerHttpAuth(registry, services);
  if (services.webhooks().length > 0) registerWebhooks(registry, services);
}

function registerHttpAuth(registry: Registry, services: OutboundServices): void {
  const auth = (): Array<[string, HttpAuthView]> => services.httpAuth().map((v) => [v.action, v]);

  labelled(registry, Counter, 'starling_http_auth_requests_total', 'Requests sent to the HTTP authentication service.', 'endpoint', () => auth().map(([k, v]) => [{ endpoint: k }, v.endpoint.requests]));
  labelled(registry, Counter, 'starling_http_auth_failures_total', 'Checks the HTTP authentication service gave no usable answer to (onFailure decided).', 'endpoint', () =>
    auth().map(([k, v]) => [{ endpoint: k }, v.endpoint.failures]),
  );
  labelled(registry, Counter, 'starling_http_auth_cache_hits_total', 'Checks answered from the cache (or by a request already on its way).', 'endpoint', () => auth().map(([k, v]) => [{ endpoint: k }, v.cacheHits]));
  labelled(registry, Counter, 'starling_http_auth_answers_total', 'Answers of the HTTP authentication service, cached ones included, by result.', ['endpoint', 'result'], () =>
    auth().flatMap(([k, v]) => (['allow', 'deny', 'ignore'] as const).map((result): [Record<string, string>, number] => [{ endpoint: k, result }, v.answers[result]])),
  );
  labelled(registry, Gauge, 'starling_http_auth_up', '1 while the HTTP authentication service answers, 0 from a failure until its next answer.', 'endpoint', () =>
    auth().map(([k, v]) => [{ endpoint: k }, v.endpoint.up ? 1 : 0]),
  );
  new MirroredHistogram(registry, 'starling_http_auth_request_duration_seconds', 'Duration of requests to the HTTP authentication service.', 'endpoint', () => auth().map(([k, v]) => [k, v.endpoint.latency]));
}

function registerWebhooks(registry: Registry, services: OutboundServices): void {
  const hooks = (): Array<[string, WebhookView]> => services.webhooks().map((v) => [v.name, v]);
  labelled(registry, Counter, 'starling_webhook_events_total', 'Events queued for a webhook.', 'webhook', () => hooks().map(([k, v]) => [{ webhook: k }, v.enqueued]));
  labelled(registry, Counter, 'starling_webhook_events_sent_total', 'Events a webhook acknowledged (2xx).', 'webhook', () => hooks().map(([k, v]) => [{ webhook: k }, v.sent]));
  labelled(registry, Counter, 'starling_webhook_events_dropped_total', 'Events dropped, by reason: queue_full, retries_exhausted, rejected (4xx), shutdown.', ['webhook', 'reason'], () =>
    hooks().flatMap(([k, v]) => Object.entries(v.dropped).map(([reason, n]): [Record<string, string>, number] => [{ webhook: k, reason }, n])),
  );
  labelled(registry, Counter, 'starling_webhook_requests_total', 'Requests sent to a webhook (each attempt counts).', 'webhook', () => hooks().map(([k, v]) => [{ webhook: k }, v.endpoint.requests]));
  labelled(registry, Counter, 'starling_webhook_failures_total', 'Requests to a webhook that failed (network error, timeout, a status other than 2xx).', 'webhook', () =>
    hooks().map(([k, v]) => [{ webhook: k }, v.endpoint.failures]),
  );
  labelled(registry, Gauge, 'starling_webhook_queue_depth', 'Events waiting to be sent to a webhook.', 'webhook', () => hooks().map(([k, v]) => [{ webhook: k }, v.depth]));
  labelled(registry, Gauge, 'starling_webhook_up', '1 while a webhook answers 2xx, 0 from a failure until its next success.', 'webhook', () => hooks().map(([k, v]) => [{ webhook: k }, v.endpoint.up ? 1 : 0]));
  new MirroredHistogram(registry, 'starling_webhook_request_duration_seconds', 'Duration of requests to a webhook.', 'webhook', () => hooks().map(([k, v]) => [k, v.endpoint.latency]));
}

/** A counter or gauge with labels whose values are read at scrape time. */
function labelled(
  registry: Registry,
  kind: typeof Counter | typeof Gauge,
  name: string,
  help: string,
  labels: string | string[],
  read: () => Array<[Record<string, string>, number]>,
): void {
  const labelNames = typeof labels === 'string' ? [labels] : labels;
  if (kind === Counter) {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        // The service keeps the running total; the counter mirrors it.
        this.reset();
        for (const [values, count] of read()) this.inc(values, count);
      },
    });
    return;
  }
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [values, value] of read()) this.set(values, value);
    },
  });
}

type HistogramData = Awaited<ReturnType<Histogram<string>['get']>>;

/**
 * A histogram whose buckets are counted by the service itself (exact from the first request, with
 * or without an HTTP server), written in Prometheus's histogram form at each scrape.
 */
class MirroredHistogram extends Histogram<string> {
  constructor(
    registry: Registry,
    private readonly metricName: string,
    private readonly helpText: string,
    private readonly label: string,
    private readonly read: () => Array<[string, LatencyView]>,
  ) {
    super({ name: metricName, help: helpText, labelNames: [label], registers: [registry] });
  }

  override get(): Promise<HistogramData> {
    const values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> = [];
    for (const [key, latency] of this.read()) {
      let cumulative = 0;
      latency.bounds.forEach((bound, i) => {
        cumulative += latency.counts[i] ?? 0;
        values.push({ metricName: `${this.metricName}_bucket`, labels: { le: bound, [this.label]: key }, value: cumulative });
      });
      values.push({ metricName: `${this.metricName}_bucket`, labels: { le: '+Inf', [this.label]: key }, value: latency.count });
      values.push({ metricName: `${this.metricName}_sum`, labels: { [this.label]: key }, value: latency.sum });
      values.push({ metricName: `${this.metricName}_count`, labels: { [this.label]: key }, value: latency.count });
    }
    // prom-client types `type` as an enum its own code writes as the string 'histogram'.
    return Promise.resolve({ name: this.metricName, help: this.helpText, type: 'histogram', aggregator: 'sum', values } as unknown as HistogramData);
  }

  /** prom-client's text output reads this when a metric has it (a histogram does), instead of get(). */
  getForPromString(): Promise<HistogramData> {
    return this.get();
  }
}
