/** Prometheus metrics of the broker, computed at scrape time from its counters and query view. */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { AccessControl } from '../auth/access-control.js';
import type { AdminAccess } from '../auth/admin-access.js';
import type { BrokerQuery, BrokerTotals, ClusterView } from '../broker/query.js';
import type { BrokerStats } from '../broker/stats.js';
import { registerOutboundMetrics, type OutboundServices } from './outbound-metrics.js';
import type { BridgeControl, BridgeState, BridgeStatus } from '../model/bridge.js';
import { sumOverviews, type GroupQuery, type WorkerOverview } from './group-view.js';

const QOS_LABELS = ['0', '1', '2'] as const;
const BRIDGE_STATES: readonly BridgeState[] = ['connecting', 'up', 'down', 'stopped'];

/**
 * The broker's Prometheus metrics. Values are read from the broker's counters when scraped, so
 * the hot path pays nothing for them; process metrics (memory, event-loop lag, CPU, GC) come from
 * prom-client's default collectors.
 */
export class BrokerMetrics {
  readonly registry = new Registry();
  /** Totals computed once per scrape, shared by the gauges that read them. */
  private totals: BrokerTotals | undefined;
  /** Bridge statuses computed once per scrape. */
  private bridgeStatus: BridgeStatus[] | undefined;
  /** In a worker group: every worker's report, gathered once per scrape. */
  private workers: [string, WorkerOverview][] = [];
  private group: ReturnType<typeof sumOverviews> | undefined;
  private readonly groupQuery: GroupQuery | undefined;

  /**
   * The optional parts measured when present: HTTP services the broker calls (auth.http, webhooks),
   * bridges, runtime access control; `group`: the metrics are the whole worker group's, summed, with
   * a per-worker breakdown.
   */
  constructor(admin: BrokerQuery, parts: { outbound?: OutboundServices; bridges?: BridgeControl; access?: AccessControl; admins?: AdminAccess; group?: GroupQuery } = {}) {
    const { outbound, bridges, access, admins, group: groupQuery } = parts;
    this.groupQuery = groupQuery;
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
    if (bridges !== undefined) this.bridgeMetrics(() => (this.bridgeStatus ??= bridges.list()));
    if (access !== undefined) accessMetrics(registry, access, admins);
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
    if (outbound !== undefined) registerOutboundMetrics(registry, outbound);
  }

  /** Per bridge: its state (one series per state, 1 for the current one), queue, messages, drops, connects. */
  private bridgeMetrics(list: () => BridgeStatus[]): void {
    const registers = [this.registry];
    new Gauge({
      name: 'starling_bridge_state',
      help: 'State of each bridge: 1 on the series of its current state (connecting, up, down, stopped).',
      labelNames: ['bridge', 'state'],
      registers,
      collect() {
        this.reset();
        for (const b of list()) for (const state of BRIDGE_STATES) this.set({ bridge: b.name, state }, b.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'starling_bridge_queued_messages',
      help: 'Messages held for the remote of each bridge (its session here: queued plus in flight).',
      labelNames: ['bridge'],
      registers,
      collect() {
        this.reset();
        for (const b of list()) this.set({ bridge: b.name }, b.queued);
      },
    });
    new Counter({
      name: 'starling_bridge_messages_total',
      help: 'Messages through each bridge: in (from the remote, published here) and out (forwarded to the remote).',
      labelNames: ['bridge', 'direction'],
      registers,
      collect() {
        this.reset();
        for (const b of list()) {
          this.inc({ bridge: b.name, direction: 'in' }, b.messagesIn);
          this.inc({ bridge: b.name, direction: 'out' }, b.messagesOut);
        }
      },
    });
    for (const [name, help, read] of [
      ['starling_bridge_dropped_total', 'Messages for the remote of each bridge not forwarded (queue full, QoS 0 while down, refused by the remote).', (b: BridgeStatus) => b.dropped],
      ['starling_bridge_connects_total', 'Successful connections of each bridge to its remote.', (b: BridgeStatus) => b.connects],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames: ['bridge'],
        registers,
        collect() {
          this.reset();
          for (const b of list()) this.inc({ bridge: b.name }, read(b));
        },
      });
    }
  }

  /** The metrics in Prometheus text format. */
  async text(): Promise<string> {
    this.totals = undefined;
    this.bridgeStatus = undefined;
    if (this.groupQuery !== undefined) {
      this.workers = await this.groupQuery.overviews();
      this.group = sumOverviews(this.workers.map(([, overview]) => overview));
    }
    try {
      return await this.registry.metrics();
    } finally {
      this.totals = undefined;
      this.bridgeStatus = undefined;
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

/** Counts of runtime access control: changes by action (audited), ban refusals, and the records in force. */
function accessMetrics(registry: Registry, access: AccessControl, admins: AdminAccess | undefined): void {
  const stats = access.audit.stats;
  labelledCounter(registry, 'starling_access_changes_total', 'Access changes made on this node (users, roles, bans, admins, sign-ins), by action; each is an audit log line.', 'action', () => [...stats.changes]);
  counter(registry, 'starling_access_banned_total', 'Connections refused (CONNACK 0x8A / 5) or closed because of a ban.', () => stats.banned);
  gauge(registry, 'starling_access_users', 'MQTT users managed at runtime.', () => access.state.users.size);
  gauge(registry, 'starling_access_roles', 'Roles managed at runtime.', () => access.state.roles.size);
  gauge(registry, 'starling_access_bans', 'Bans in force.', () => access.bans().length);
  if (admins !== undefined) gauge(registry, 'starling_access_admins', 'Admins of the dashboard and API.', () => admins.count);
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
