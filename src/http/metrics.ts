/** Prometheus metrics of the broker, computed at scrape time from its counters and query view. */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { BrokerQuery, BrokerTotals, ClusterView } from '../broker/query.js';
import type { BrokerStats } from '../broker/stats.js';
import { sumOverviews, type GroupQuery, type WorkerOverview } from './group-view.js';

const QOS_LABELS = ['0', '1', '2'] as const;

/**
 * The broker's Prometheus metrics. Values are read from the broker's counters when scraped, so
 * the hot path pays nothing for them; process metrics (memory, event-loop lag, CPU, GC) come from
 * prom-client's default collectors.
 */
export class BrokerMetrics {
  readonly registry = new Registry();
  /** Totals computed once per scrape, shared by the gauges that read them. */
  private totals: BrokerTotals | undefined;
  /** In a worker group: every worker's report, gathered once per scrape. */
  private workers: [string, WorkerOverview][] = [];
  private group: ReturnType<typeof sumOverviews> | undefined;

  /** `group`: the metrics are the whole worker group's, summed, with a per-worker breakdown. */
  constructor(
    admin: BrokerQuery,
    private readonly groupQuery?: GroupQuery,
  ) {
    const registry = this.registry;
    const stats = (): BrokerStats => this.group?.stats ?? admin.stats;
    const totals = (): BrokerTotals => (this.totals ??= this.group?.totals ?? admin.totals());
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
    if (groupQuery !== undefined) this.perWorker();

    counter(registry, 'starling_connections_accepted_total', 'Client connections accepted (CONNACK 0).', () => stats().connectionsAccepted);
    counter(registry, 'starling_connections_refused_total', 'CONNECTs refused (bad protocol, credentials, limits).', () => stats().connectionsRefused);
    counter(registry, 'starling_auth_failures_total', 'CONNECTs refused by an authentication plugin.', () => stats().authFailures);
    counter(registry, 'starling_protocol_errors_total', 'Connections closed for a protocol error.', () => stats().protocolErrors);
    counter(registry, 'starling_publish_denied_total', 'PUBLISH packets refused by authorization.', () => stats().publishDenied);
    counter(registry, 'starling_subscribe_denied_total', 'Subscriptions refused by authorization.', () => stats().subscribeDenied);
    counter(registry, 'starling_bytes_received_total', 'Bytes received from clients.', () => stats().bytesReceived);
    counter(registry, 'starling_bytes_sent_total', 'Bytes sent to clients.', () => stats().bytesSent);
    labelledCounter(registry, 'starling_messages_received_total', 'PUBLISH packets received from clients, by QoS.', 'qos', () =>
      QOS_LABELS.map((qos, i) => [qos, stats().messagesReceivedByQos[i]!]),
    );
    labelledCounter(registry, 'starling_messages_sent_total', 'PUBLISH packets sent to clients, by QoS.', 'qos', () =>
      QOS_LABELS.map((qos, i) => [qos, stats().messagesSentByQos[i]!]),
    );
    labelledCounter(registry, 'starling_messages_dropped_total', 'Messages not delivered, by reason.', 'reason', () => [
      ['buffer_full', stats().droppedBufferFull],
      ['queue_full', stats().droppedQueueFull],
      ['expired', stats().droppedExpired],
      ['too_large', stats().droppedTooLarge],
      ['retained_full', stats().droppedRetainedFull],
    ]);
    counter(registry, 'starling_limit_refusals_total', 'Requests refused by a limit (subscriptions per client, topic levels or length).', () => stats().limitRefusals);
    counter(registry, 'starling_rate_limited_total', 'Times a client was slowed down for exceeding its publish rate.', () => stats().rateLimited);
    counter(registry, 'starling_store_failures_total', 'Store commits that failed (their acknowledgements were never sent).', () => stats().storeFailures);

    const cluster = (): ClusterView | undefined => {
      const own = admin.cluster();
      return own === undefined || this.group === undefined ? own : { ...own, stats: this.group.cluster };
    };
    counter(registry, 'starling_cluster_messages_sent_total', 'Messages sent to other cluster nodes (one per target node).', () => cluster()?.stats.sent ?? 0);
    counter(registry, 'starling_cluster_messages_received_total', 'Messages received from other cluster nodes.', () => cluster()?.stats.received ?? 0);
    counter(registry, 'starling_cluster_qos0_dropped_total', 'QoS 0 messages for other nodes dropped while Redis was unavailable.', () => cluster()?.stats.droppedQos0 ?? 0);
    gauge(registry, 'starling_cluster_ready', '1 when this node reaches the cluster state (Redis) or runs alone, 0 while it does not.', () => (cluster()?.ready ?? true ? 1 : 0));
    gauge(registry, 'starling_connections', 'Open network connections (including those not yet past CONNECT).', () => totals().connections);
    gauge(registry, 'starling_sessions', 'Sessions, connected or not.', () => totals().sessions);
    gauge(registry, 'starling_subscriptions', 'Subscriptions (filter, session), shared members included.', () => totals().subscriptions);
    gauge(registry, 'starling_retained_messages', 'Retained messages stored.', () => totals().retained);
    gauge(registry, 'starling_inflight_messages', 'QoS 1/2 messages sent and not yet acknowledged.', () => totals().inflight);
    gauge(registry, 'starling_queued_messages', 'Messages queued in sessions (offline or waiting for the inflight window).', () => totals().queued);
    gauge(registry, 'starling_uptime_seconds', 'Seconds since the broker started.', () => (Date.now() - stats().startedAt) / 1000);
    new Gauge({
      name: 'starling_clients_connected',
      help: 'Connected clients, by listener.',
      labelNames: ['listener'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [listener, count] of Object.entries(totals().byListener)) this.set({ listener }, count);
      },
    });
  }

  /** The metrics in Prometheus text format. */
  async text(): Promise<string> {
    this.totals = undefined;
    if (this.groupQuery !== undefined) {
      this.workers = await this.groupQuery.overviews();
      this.group = sumOverviews(this.workers.map(([, overview]) => overview));
    }
    try {
      return await this.registry.metrics();
    } finally {
      this.totals = undefined;
    }
  }

  /** Gauges of each worker of a group, labelled `worker`. */
  private perWorker(): void {
    const each = (name: string, help: string, read: (o: WorkerOverview) => number): void => {
      const workers = (): [string, WorkerOverview][] => this.workers;
      new Gauge({
        name,
        help,
        labelNames: ['worker'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [worker, overview] of workers()) this.set({ worker }, read(overview));
        },
      });
    };
    each('starling_worker_up', '1 for each worker that answered this scrape.', () => 1);
    each('starling_worker_connections', 'Open network connections of each worker.', (o) => o.totals.connections);
    each('starling_worker_sessions', 'Sessions held by each worker.', (o) => o.totals.sessions);
    each('starling_worker_cpu_seconds', 'CPU time (user + system) used by each worker process, in seconds.', (o) => o.cpuSeconds);
    each('starling_worker_resident_memory_bytes', 'Resident memory of each worker process, in bytes.', (o) => o.memory.rss);
    each('starling_worker_heap_used_bytes', 'JavaScript heap in use in each worker process, in bytes.', (o) => o.memory.heapUsed);
  }

  /** Content type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

function counter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      // The broker keeps the running total; the counter mirrors it.
      this.reset();
      this.inc(read());
    },
  });
}

function labelledCounter(registry: Registry, name: string, help: string, label: string, read: () => [string, number][]): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, count] of read()) this.inc({ [label]: value }, count);
    },
  });
}

function gauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}
