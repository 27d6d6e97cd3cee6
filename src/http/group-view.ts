/**
 * The whole worker group seen from the worker that answers an HTTP request: each worker reports on
 * itself (its counters, clients, subscriptions), the hub gathers the reports, and the views here merge
 * them — sums for the counters, one list for clients and subscriptions, with a per-worker breakdown.
 */
import { MAX_PAGE_SIZE, type BrokerQuery, type BrokerTotals, type ClientDetail, type ClientQuery, type ClientSummary, type Page, type PageQuery, type SubscriptionView } from '../broker/query.js';
import type { BrokerStats } from '../broker/stats.js';
import type { ClusterStats } from '../cluster/types.js';

/** What the HTTP side needs of a worker group: a report from every running worker. */
export interface GroupView {
  readonly nodeId: string;
  gather(what: string, arg: unknown): Promise<[string, unknown][]>;
}

/** One worker's report on itself. */
export interface WorkerOverview {
  pid: number;
  stats: BrokerStats;
  totals: BrokerTotals;
  memory: { rss: number; heapUsed: number; heapTotal: number };
  /** CPU time used by the process (user + system), in seconds. */
  cpuSeconds: number;
  cluster: ClusterStats | undefined;
}

/** One worker as GET /api/overview lists it (`workers`, a worker group only; the dashboard's per-worker table). */
export interface WorkerSummary {
  worker: string;
  pid: number;
  connections: number;
  sessions: number;
  messagesReceived: number;
  messagesSent: number;
  cpuSeconds: number;
  memory: { rss: number; heapUsed: number; heapTotal: number };
}

/** The summary of worker `worker` from its report. */
export function workerSummary(worker: string, o: WorkerOverview): WorkerSummary {
  return { worker, pid: o.pid, connections: o.totals.connections, sessions: o.totals.sessions, messagesReceived: o.stats.messagesReceived, messagesSent: o.stats.messagesSent, cpuSeconds: o.cpuSeconds, memory: o.memory };
}

/** A client as listed for the group: which worker it is on. */
export type GroupClientSummary = ClientSummary & { worker: string };

/** The reports a worker answers for the others (the bus's reporter). */
export function reportFor(admin: BrokerQuery): (what: string, arg: unknown) => unknown {
  return (what, arg) => {
    switch (what) {
      case 'overview': {
        const cpu = process.cpuUsage();
        const memory = process.memoryUsage();
        const overview: WorkerOverview = {
          pid: process.pid,
          stats: { ...admin.stats },
          totals: admin.totals(),
          memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal },
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          cluster: admin.cluster()?.stats,
        };
        return overview;
      }
      case 'clients':
        return admin.clients(arg as ClientQuery);
      case 'client':
        return admin.client(arg as string);
      case 'disconnect': {
        const { clientId, discard } = arg as { clientId: string; discard: boolean };
        return admin.disconnect(clientId, discard);
      }
      case 'subscriptions':
        return admin.subscriptions(arg as PageQuery & { clientId?: string; search?: string });
      default:
        return undefined;
    }
  };
}

/** The group's views, merged from every worker's reports. */
export class GroupQuery {
  constructor(private readonly group: GroupView) {}

  /** Every running worker's overview, by worker, in worker order. */
  async overviews(): Promise<[string, WorkerOverview][]> {
    const values = await this.group.gather('overview', undefined);
    return (values.filter(([, v]) => v !== undefined) as [string, WorkerOverview][]).sort(([a], [b]) => byWorker(a, b));
  }

  /** Clients of every worker, filtered, sorted and paged as one list. */
  async clients(query: ClientQuery): Promise<Page<GroupClientSummary>> {
    const { page, limit } = paging(query);
    // Each worker sends its first page × limit in the asked order: enough for the merged page.
    const values = await this.group.gather('clients', { ...query, page: 1, limit: Math.min(page * limit, MAX_PAGE_SIZE) });
    let total = 0;
    const all: GroupClientSummary[] = [];
    for (const [worker, value] of values) {
      const part = value as Page<ClientSummary> | undefined;
      if (part === undefined) continue;
      total += part.total;
      for (const item of part.items) all.push({ ...item, worker });
    }
    const key = query.sort ?? 'clientId';
    const direction = query.order === 'desc' ? -1 : 1;
    all.sort((a, b) => direction * compare(a[key], b[key]) || compare(a.clientId, b.clientId));
    return { items: all.slice((page - 1) * limit, page * limit), total, page, limit };
  }

  /** One client in detail (from the worker that holds it). */
  async client(clientId: string): Promise<(ClientDetail & { worker: string }) | undefined> {
    for (const [worker, value] of await this.group.gather('client', clientId)) if (value !== undefined) return { ...(value as ClientDetail), worker };
    return undefined;
  }

  /** Disconnects a client wherever it is; false when no worker had it. */
  async disconnect(clientId: string, discard: boolean): Promise<boolean> {
    return (await this.group.gather('disconnect', { clientId, discard })).some(([, done]) => done === true);
  }

  /** Subscriptions of every worker, as one paged list. */
  async subscriptions(query: PageQuery & { clientId?: string; search?: string }): Promise<Page<SubscriptionView>> {
    const { page, limit } = paging(query);
    const values = await this.group.gather('subscriptions', { ...query, page: 1, limit: Math.min(page * limit, MAX_PAGE_SIZE) });
    let total = 0;
    const all: SubscriptionView[] = [];
    for (const [, value] of values) {
      const part = value as Page<SubscriptionView> | undefined;
      if (part === undefined) continue;
      total += part.total;
      all.push(...part.items);
    }
    all.sort((a, b) => compare(a.topicFilter, b.topicFilter) || compare(a.clientId, b.clientId));
    return { items: all.slice((page - 1) * limit, page * limit), total, page, limit };
  }
}

/** The counters and totals of several workers added up. */
export function sumOverviews(overviews: readonly WorkerOverview[]): { stats: BrokerStats; totals: BrokerTotals; cluster: ClusterStats } {
  const stats = { messagesReceivedByQos: [0, 0, 0], messagesSentByQos: [0, 0, 0] } as unknown as Record<string, number | number[]>;
  const totals: BrokerTotals = { connections: 0, clientsConnected: 0, sessions: 0, clientsDisconnected: 0, subscriptions: 0, retained: 0, inflight: 0, queued: 0, byListener: {} };
  const cluster: ClusterStats = { sent: 0, received: 0, droppedQos0: 0 };
  let startedAt = Number.POSITIVE_INFINITY;
  for (const o of overviews) {
    for (const [key, value] of Object.entries(o.stats)) {
      if (typeof value === 'number') stats[key] = ((stats[key] as number | undefined) ?? 0) + value;
      else if (Array.isArray(value)) (value as number[]).forEach((n, i) => ((stats[key] as number[])[i]! += n));
    }
    startedAt = Math.min(startedAt, o.stats.startedAt);
    for (const key of ['connections', 'clientsConnected', 'sessions', 'clientsDisconnected', 'subscriptions', 'inflight', 'queued'] as const) totals[key] += o.totals[key];
    // Every worker holds every retained message.
    totals.retained = Math.max(totals.retained, o.totals.retained);
    for (const [listener, n] of Object.entries(o.totals.byListener)) totals.byListener[listener] = (totals.byListener[listener] ?? 0) + n;
    if (o.cluster !== undefined) for (const key of ['sent', 'received', 'droppedQos0'] as const) cluster[key] += o.cluster[key];
  }
  stats['startedAt'] = Number.isFinite(startedAt) ? startedAt : Date.now();
  return { stats: stats as unknown as BrokerStats, totals, cluster };
}

/** As the broker's own views page (a worker answers at most MAX_PAGE_SIZE items of its own). */
function paging(query: PageQuery): { page: number; limit: number } {
  return { page: Math.max(1, Math.floor(query.page ?? 1)), limit: Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(query.limit ?? 50))) };
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  return (a as number | string) < (b as number | string) ? -1 : 1;
}

/** w2 before w10. */
function byWorker(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
