/** The broker façade: takes client streams, publishes from the process itself, restores and closes; wires the parts of the core together. */
import type { Duplex } from 'node:stream';
import type { PublishInput } from '../model/message.js';
import { ClientRegistry } from './clients.js';
import { ClusterLink } from './cluster-link.js';
import { Connection, type ConnectionInfo } from './connection.js';
import type { Core } from './context.js';
import { Hooks, type BrokerPlugin } from './hooks.js';
import { silentLogger, type Logger } from './logger.js';
import { DEFAULT_BROKER_OPTIONS, type BrokerOptions } from './options.js';
import { BrokerQuery } from './query.js';
import { mergeState, restoreRetained } from './restore.js';
import { RetainedMessages } from './retained.js';
import { Router } from './router.js';
import { SessionLifecycle } from './session-lifecycle.js';
import { SessionRegistry } from './sessions.js';
import { BrokerStats } from './stats.js';
import { SubscriptionIndex } from './subscription-index.js';
import { Turn } from './turn.js';
import { WireCache } from './wire-cache.js';

/** How often connect timeouts, keep-alives, will delays and session expiry are checked: their precision. */
const SWEEP_INTERVAL_MS = 250;

/** Options for `new Broker()`: any BrokerOptions field, plus a logger. */
export type BrokerInit = Partial<BrokerOptions> & { logger?: Logger };

/**
 * The MQTT broker core: accepts any Duplex stream as a client connection and implements MQTT
 * semantics. It knows nothing of sockets, files or Redis; the store and the cluster bus plug in
 * through their ports (`options.store`, `options.cluster`).
 */
export class Broker {
  readonly options: BrokerOptions;
  readonly logger: Logger;
  /** Views and administrative actions for the HTTP API, metrics, $SYS and the dashboard. */
  readonly query: BrokerQuery;
  /** In a cluster: what the bus calls (pass it to `ClusterBus.start`). */
  readonly cluster: ClusterLink | undefined;
  private readonly core: Core;
  private closed = false;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(init: BrokerInit = {}) {
    const { logger, ...options } = init;
    this.options = { ...DEFAULT_BROKER_OPTIONS, ...stripUndefined(options) };
    this.logger = logger ?? silentLogger;
    const opts = this.options;
    const bus = opts.cluster;
    if (bus !== undefined && opts.store !== bus.store) throw new Error("a cluster node uses the cluster's store");
    const plugins: BrokerPlugin[] = [];
    const authenticate = opts.authenticate;
    if (authenticate !== undefined) plugins.push({ name: 'authenticate-option', authenticate: (request) => authenticate(request) });
    if (opts.plugins !== undefined) plugins.push(...opts.plugins);
    const stats = new BrokerStats();
    const pluginFailed = (plugin: string, error: unknown): void => this.logger.error({ plugin, err: error }, 'plugin hook failed');
    const hooks = new Hooks(plugins, opts.allowAnonymous, pluginFailed);
    const index = new SubscriptionIndex(opts.sharedSubscriptionStrategy);
    const retained = new RetainedMessages();
    const wire = new WireCache();
    const turn = new Turn(opts.store, this.logger, stats, () => wire.reset());
    const sessions = new SessionRegistry(index, opts.maxInflight, opts.maxQueuedMessages, opts.queueFullPolicy);
    const router = new Router(index, retained, turn.journal, opts, stats, hooks, this.logger, bus);
    const debugEnabled = this.logger.isLevelEnabled?.('debug') ?? this.logger !== silentLogger;
    const lifecycle = new SessionLifecycle(sessions, router, hooks, this.logger, debugEnabled, bus, pluginFailed);
    const clients = new ClientRegistry();
    const journal = turn.journal;
    this.cluster =
      bus === undefined || journal === undefined
        ? undefined
        : new ClusterLink({ bus, clients, sessions, router, retained, turn, stats, logger: this.logger, journal, index, lifecycle });
    this.core = { options: opts, logger: this.logger, debugEnabled, stats, hooks, sessions, index, retained, router, turn, wire, clients, lifecycle, cluster: this.cluster, pluginFailed };
    this.query = new BrokerQuery(this.core);
    // One timer for every connection's connect timeout and keep-alive, session expiry and will delay.
    this.sweepTimer = setInterval(this.sweep, SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** The broker's counters. */
  get stats(): BrokerStats {
    return this.core.stats;
  }

  /** Number of open connections (including ones not yet past CONNECT). */
  get connectionCount(): number {
    return this.core.clients.connectionCount;
  }

  /** Takes a new client stream (TCP socket, TLS socket, WebSocket stream, in-memory pair). */
  accept(stream: Duplex, info: ConnectionInfo): Connection {
    const connection = new Connection(this.core, stream, info);
    if (this.closed) connection.close('server-shutdown');
    else this.core.clients.opened(connection);
    return connection;
  }

  /** Publishes a message from the broker itself (in-process API); retained if asked. */
  publish(input: PublishInput): void {
    this.query.publish(input);
  }

  /**
   * Reads the store and rebuilds sessions (subscriptions, queued and inflight messages, QoS 2 ids,
   * pending wills, expiry) and retained messages. Call once, before accepting clients.
   */
  async restore(): Promise<{ sessions: number; messages: number; retained: number }> {
    const { turn, sessions, index, lifecycle, retained } = this.core;
    const store = this.options.store;
    const journal = turn.journal;
    if (store === undefined || journal === undefined) return { sessions: 0, messages: 0, retained: 0 };
    const state = await store.load();
    const now = Date.now();
    const messages = mergeState(state, now, { journal, sessions, index, lifecycle });
    restoreRetained(state.retained, now, journal, retained);
    await turn.settle();
    return { sessions: state.sessions.length, messages, retained: retained.size };
  }

  /** Resolves once everything changed so far is durable. */
  settle(): Promise<void> {
    return this.core.turn.settle();
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    this.cluster?.sweep(now);
    for (const connection of this.core.clients.each()) connection.checkTimers(now);
    this.core.lifecycle.sweep(now);
  };

  /** Closes every connection and waits for the store to hold everything; the broker accepts nothing afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const connection of this.core.clients.all()) connection.close('server-shutdown');
    await this.core.turn.settle();
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] !== undefined) out[key] = value[key];
  }
  return out;
}
