/** The broker seen from outside the core (HTTP API, metrics, $SYS, dashboard): read-only views over sessions, subscriptions and retained messages, and the administrative actions. */
import type { ClusterStats } from '../cluster/types.js';
import type { Message, PublishInput } from '../model/message.js';
import { topicMatches, validateTopicName } from '../protocol/topic.js';
import type { QoS } from '../protocol/types.js';
import type { Connection } from './connection.js';
import type { Core } from './context.js';
import { createMessage } from './messages.js';
import type { Session } from './session.js';
import type { BrokerStats } from './stats.js';

/** One client (a session, online or not) as the admin views list it. */
export interface ClientSummary {
  clientId: string;
  connected: boolean;
  username: string | null;
  listener: string | null;
  remoteAddress: string | null;
  protocolVersion: 3 | 4 | 5 | null;
  keepalive: number | null;
  /** ISO time of the current connection, if online. */
  connectedAt: string | null;
  subscriptions: number;
  inflight: number;
  queued: number;
  /** Bytes waiting to be sent to the client. */
  bufferedBytes: number;
  /** Seconds an offline session is kept (0: ends with the connection). */
  sessionExpiryInterval: number;
}

/** One client in detail: its subscriptions and the messages in flight. */
export interface ClientDetail extends ClientSummary {
  subscriptionList: SubscriptionView[];
  inflightMessages: { packetId: number; topic: string; qos: 1 | 2; state: 'publish' | 'pubrel' }[];
  droppedQueueFull: number;
}

/** One subscription of one client. */
export interface SubscriptionView {
  clientId: string;
  topicFilter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  shareGroup: string | null;
}

/** One retained message, payload in base64 (it may be binary). */
export interface RetainedView {
  topic: string;
  qos: QoS;
  payloadBase64: string;
  payloadSize: number;
  receivedAt: string;
}

/** A page of results and how many there are in all. */
export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  limit: number;
}

/** Paging and sorting asked for by a caller. */
export interface PageQuery {
  page?: number;
  limit?: number;
}

/** Sortable client fields. */
export const CLIENT_SORT_KEYS = ['clientId', 'connectedAt', 'subscriptions', 'inflight', 'queued', 'username', 'remoteAddress'] as const;
/** One sortable client field. */
export type ClientSortKey = (typeof CLIENT_SORT_KEYS)[number];

/** What the clients list accepts. */
export interface ClientQuery extends PageQuery {
  /** Substring of the client id, user name or address (case-insensitive). */
  search?: string;
  connected?: boolean;
  sort?: ClientSortKey;
  order?: 'asc' | 'desc';
}

/** Totals for the overview and $SYS. */
export interface BrokerTotals {
  connections: number;
  clientsConnected: number;
  sessions: number;
  clientsDisconnected: number;
  subscriptions: number;
  retained: number;
  inflight: number;
  queued: number;
  /** Connected clients per listener name. */
  byListener: Record<string, number>;
}

export const MAX_PAGE_SIZE = 1000;

/** A cluster node's state, for metrics and readiness. */
export interface ClusterView {
  nodeId: string;
  ready: boolean;
  stats: ClusterStats;
}

/**
 * Views and administrative actions for the HTTP API, metrics, $SYS and the dashboard. Views walk the
 * sessions, so they cost O(sessions): fine per request, not per message.
 */
export class BrokerQuery {
  constructor(private readonly core: Core) {}

  /** The broker's counters. */
  get stats(): BrokerStats {
    return this.core.stats;
  }

  /** Publishes a message from the broker itself (in-process API, REST API, $SYS); retained if asked. */
  publish(input: PublishInput): void {
    validateTopicName(input.topic);
    const payload = input.payload === undefined ? Buffer.alloc(0) : typeof input.payload === 'string' ? Buffer.from(input.payload) : input.payload;
    this.core.router.route(createMessage(input.topic, payload, input.qos ?? 0, input.retain ?? false, input.properties, '', Date.now()));
  }

  /** True while a client with this id is connected. */
  isConnected(clientId: string): boolean {
    return this.core.clients.get(clientId) !== undefined;
  }

  /** This node's cluster state, when it is a node of a cluster. */
  cluster(): ClusterView | undefined {
    const bus = this.core.cluster?.bus;
    return bus === undefined ? undefined : { nodeId: bus.nodeId, ready: bus.ready, stats: bus.stats };
  }

  /** Counts that need a walk over sessions (inflight, queued) and the cheap ones. */
  totals(): BrokerTotals {
    const { sessions, clients, index, retained } = this.core;
    let inflight = 0;
    let queued = 0;
    let offline = 0;
    for (const session of sessions.values()) {
      inflight += session.outflight.size;
      queued += session.queuedCount;
      if (session.link === undefined) offline++;
    }
    const byListener: Record<string, number> = {};
    for (const connection of clients.connected()) byListener[connection.info.listener] = (byListener[connection.info.listener] ?? 0) + 1;
    return {
      connections: clients.connectionCount,
      clientsConnected: clients.onlineCount,
      sessions: sessions.size,
      clientsDisconnected: offline,
      subscriptions: index.subscriptionCount,
      retained: retained.size,
      inflight,
      queued,
      byListener,
    };
  }

  /** Clients (sessions, online first by default), filtered, sorted and paged. */
  clients(query: ClientQuery = {}): Page<ClientSummary> {
    const search = query.search?.toLowerCase();
    let list: ClientSummary[] = [];
    for (const session of this.core.sessions.values()) {
      const summary = this.summary(session);
      if (query.connected !== undefined && summary.connected !== query.connected) continue;
      if (search !== undefined && search !== '' && !matchesSearch(summary, search)) continue;
      list.push(summary);
    }
    const key = query.sort ?? 'clientId';
    const direction = query.order === 'desc' ? -1 : 1;
    list.sort((a, b) => direction * compare(a[key], b[key]) || compare(a.clientId, b.clientId));
    const { page, limit } = paging(query);
    const total = list.length;
    list = list.slice((page - 1) * limit, page * limit);
    return { items: list, total, page, limit };
  }

  /** One client in detail, or undefined when it has no session. */
  client(clientId: string): ClientDetail | undefined {
    const session = this.core.sessions.get(clientId);
    if (session === undefined) return undefined;
    const inflightMessages = [...session.outflight.values()].map((f) => ({ packetId: f.packetId, topic: f.message.topic, qos: f.qos, state: f.state }));
    return {
      ...this.summary(session),
      subscriptionList: subscriptionsOf(session),
      inflightMessages,
      droppedQueueFull: session.droppedQueueFull,
    };
  }

  /**
   * Disconnects a client as an administrative action (MQTT 5: DISCONNECT 0x98); its will is
   * published. With `discardSession`, its session (and subscriptions) end too. Returns false when
   * there was no such client.
   */
  disconnect(clientId: string, discardSession = false): boolean {
    const { clients, sessions, lifecycle } = this.core;
    const connection = clients.get(clientId);
    if (connection === undefined && sessions.get(clientId) === undefined) return false;
    connection?.close('administrative');
    const left = sessions.get(clientId);
    if (discardSession && left !== undefined) lifecycle.ended(left);
    return true;
  }

  /**
   * Disconnects every client connected here under `username` (administrative action: MQTT 5
   * DISCONNECT 0x98; wills are published). Returns their client ids.
   */
  disconnectUser(username: string): string[] {
    return this.disconnectWhere((connection) => connection.username === username);
  }

  /** Disconnects every client connected here whose remote address `matches` accepts (as disconnectUser). Returns their client ids. */
  disconnectAddress(matches: (address: string) => boolean): string[] {
    return this.disconnectWhere((connection) => connection.info.remoteAddress !== undefined && matches(connection.info.remoteAddress));
  }

  private disconnectWhere(picked: (connection: Connection) => boolean): string[] {
    const closing = [...this.core.clients.connected()].filter(picked);
    for (const connection of closing) connection.close('administrative');
    return closing.map((connection) => connection.clientId);
  }

  /** Every subscription, optionally of one client or matching a filter substring, paged. */
  subscriptions(query: PageQuery & { clientId?: string; search?: string } = {}): Page<SubscriptionView> {
    const all: SubscriptionView[] = [];
    const search = query.search?.toLowerCase();
    for (const session of this.core.sessions.values()) {
      if (query.clientId !== undefined && session.clientId !== query.clientId) continue;
      for (const view of subscriptionsOf(session)) {
        if (search !== undefined && search !== '' && !view.topicFilter.toLowerCase().includes(search)) continue;
        all.push(view);
      }
    }
    all.sort((a, b) => compare(a.topicFilter, b.topicFilter) || compare(a.clientId, b.clientId));
    return pageOf(all, query);
  }

  /** Retained messages, optionally those matching a topic filter, by topic, paged. */
  retained(query: PageQuery & { filter?: string } = {}): Page<RetainedView> {
    const filter = query.filter;
    const all = this.core.retained.all();
    const messages = filter === undefined || filter === '' ? all : all.filter((m) => topicMatches(filter, m.topic));
    messages.sort((a, b) => compare(a.topic, b.topic));
    const page = pageOf(messages, query);
    return { ...page, items: page.items.map(retainedView) };
  }

  /** The retained message of one topic. */
  retainedMessage(topic: string): RetainedView | undefined {
    const message = this.core.retained.get(topic);
    return message === undefined ? undefined : retainedView(message);
  }

  /** Clears the retained message of one topic, in the store too (it stays cleared after a restart); false when there was none. */
  deleteRetained(topic: string): boolean {
    return this.core.router.clearRetained(topic);
  }

  private summary(session: Session): ClientSummary {
    const connection: Connection | undefined = this.core.clients.get(session.clientId);
    const online = connection !== undefined && session.link === connection;
    return {
      clientId: session.clientId,
      connected: online,
      username: online ? (connection.username ?? null) : (session.identity?.username ?? null),
      listener: online ? connection.info.listener : (session.identity?.listener ?? null),
      remoteAddress: online ? (connection.info.remoteAddress ?? null) : (session.identity?.remoteAddress ?? null),
      protocolVersion: online ? connection.version : null,
      keepalive: online ? connection.keepalive : null,
      connectedAt: online ? new Date(connection.connectedAt).toISOString() : null,
      subscriptions: session.subscriptions.size,
      inflight: session.outflight.size,
      queued: session.queuedCount,
      bufferedBytes: online ? connection.bufferedBytes : 0,
      sessionExpiryInterval: session.expiryInterval,
    };
  }
}

function subscriptionsOf(session: Session): SubscriptionView[] {
  const out: SubscriptionView[] = [];
  for (const s of session.subscriptions.values()) {
    out.push({
      clientId: session.clientId,
      topicFilter: s.topicFilter,
      qos: s.qos,
      noLocal: s.noLocal,
      retainAsPublished: s.retainAsPublished,
      retainHandling: s.retainHandling,
      shareGroup: s.shareGroup ?? null,
    });
  }
  return out;
}

function retainedView(message: Message): RetainedView {
  return {
    topic: message.topic,
    qos: message.qos,
    payloadBase64: message.payload.toString('base64'),
    payloadSize: message.payload.length,
    receivedAt: new Date(message.receivedAt).toISOString(),
  };
}

function matchesSearch(client: ClientSummary, search: string): boolean {
  return (
    client.clientId.toLowerCase().includes(search) ||
    (client.username?.toLowerCase().includes(search) ?? false) ||
    (client.remoteAddress?.toLowerCase().includes(search) ?? false)
  );
}

function compare(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

function paging(query: PageQuery): { page: number; limit: number } {
  const page = Math.max(1, Math.floor(query.page ?? 1));
  const limit = Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(query.limit ?? 50)));
  return { page, limit };
}

function pageOf<T>(all: T[], query: PageQuery): Page<T> {
  const { page, limit } = paging(query);
  return { items: all.slice((page - 1) * limit, page * limit), total: all.length, page, limit };
}
