/** $SYS topics: broker statistics published periodically, and client connect/disconnect events. */
import type { Broker } from '../broker/broker.js';
import type { BrokerPlugin, ClientIdentity } from '../broker/hooks.js';
import type { BrokerQuery, BrokerTotals } from '../broker/query.js';
import type { BrokerStats } from '../broker/stats.js';
import type { BridgeControl } from '../model/bridge.js';

/** Load windows of Mosquitto's `load/…/{1,5,15}min` topics, in minutes. */
const LOAD_WINDOWS = [1, 5, 15] as const;

/** How `$SYS` is published. */
export interface SysPublisherOptions {
  /** Seconds between publications; 0 publishes nothing periodic (events still go out). */
  interval: number;
  /** Text of `$SYS/broker/version`. */
  version: string;
  /** Publish `$SYS/broker/clients/events/…` on every connect and disconnect. */
  events?: boolean;
  /** false: no statistics (another process of a worker group publishes them); events only. */
  statistics?: boolean;
  /** The broker's counters and totals when they are not this process's own (a worker group's, summed). */
  source?: () => Promise<SysSnapshot>;
}

/** The counters and totals `$SYS` shows. */
export interface SysSnapshot {
  stats: BrokerStats;
  totals: BrokerTotals;
  memory: { heapUsed: number; heapTotal: number };
}

/** An exponentially smoothed rate per minute, as Mosquitto computes its `load` topics. */
class Load {
  private readonly values = LOAD_WINDOWS.map(() => 0);
  private last: number | undefined;

  constructor(readonly name: string) {}

  /** Folds in the counter's current total, `seconds` after the previous sample. */
  sample(total: number, seconds: number): void {
    if (this.last !== undefined && seconds > 0) {
      const perMinute = ((total - this.last) / seconds) * 60;
      LOAD_WINDOWS.forEach((minutes, i) => {
        const decay = Math.exp(-seconds / (minutes * 60));
        this.values[i] = this.values[i]! * decay + perMinute * (1 - decay);
      });
    }
    this.last = total;
  }

  /** Topic suffix → formatted value. */
  entries(): [string, string][] {
    return LOAD_WINDOWS.map((minutes, i) => [`load/${this.name}/${minutes}min`, this.values[i]!.toFixed(2)]);
  }
}

/**
 * Publishes the broker's state under `$SYS/broker/…` in Mosquitto's layout, retained, at start and
 * every `interval` seconds (a value is republished only when it changed, except uptime), and client
 * connect / disconnect events (not retained) through a broker plugin.
 */
export class SysPublisher {
  /** The observer to pass to the broker so connect / disconnect events are published. */
  readonly plugin: BrokerPlugin;
  private broker: Broker | undefined;
  private admin: BrokerQuery | undefined;
  private bridges: BridgeControl | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastSample = 0;
  private readonly published = new Map<string, string>();
  private readonly loads = {
    messagesReceived: new Load('messages/received'),
    messagesSent: new Load('messages/sent'),
    bytesReceived: new Load('bytes/received'),
    bytesSent: new Load('bytes/sent'),
    connections: new Load('connections'),
  };

  constructor(private readonly options: SysPublisherOptions) {
    const events = options.events ?? true;
    this.plugin = {
      name: 'sys-events',
      onConnect: (client) => {
        if (events) this.event('connected', client, undefined);
      },
      onDisconnect: (client, reason) => {
        if (events) this.event('disconnected', client, reason);
      },
    };
  }

  /** Starts publishing for `broker` (its plugins must include `this.plugin` for events), and its bridges if given. */
  start(broker: Broker, bridges?: BridgeControl): void {
    this.broker = broker;
    this.bridges = bridges;
    this.admin = broker.query;
    this.lastSample = Date.now();
    if (this.options.statistics === false) return;
    this.publishAll();
    if (this.options.interval > 0) {
      this.timer = setInterval(() => this.publishAll(), this.options.interval * 1000);
      this.timer.unref();
    }
  }

  /** Stops the periodic publication. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.broker = undefined;
  }

  /** Computes and publishes every value now (also called by the timer). */
  publishAll(): void {
    const admin = this.admin;
    if (this.broker === undefined || admin === undefined) return;
    const source = this.options.source;
    if (source === undefined) {
      const memory = process.memoryUsage();
      this.publishSnapshot({ stats: admin.stats, totals: admin.totals(), memory: { heapUsed: memory.heapUsed, heapTotal: memory.heapTotal } });
      return;
    }
    source().then(
      (snapshot) => this.publishSnapshot(snapshot),
      () => undefined, // the next interval tries again
    );
  }

  private publishSnapshot({ stats, totals, memory }: SysSnapshot): void {
    if (this.broker === undefined) return;
    const now = Date.now();
    const seconds = (now - this.lastSample) / 1000;
    this.lastSample = now;
    this.loads.messagesReceived.sample(stats.messagesReceived, seconds);
    this.loads.messagesSent.sample(stats.messagesSent, seconds);
    this.loads.bytesReceived.sample(stats.bytesReceived, seconds);
    this.loads.bytesSent.sample(stats.bytesSent, seconds);
    this.loads.connections.sample(stats.connectionsAccepted, seconds);
    const values: [string, string | number][] = [
      ['version', this.options.version],
      ['timestamp', new Date(stats.startedAt).toISOString()],
      ['clients/connected', totals.clientsConnected],
      ['clients/active', totals.clientsConnected],
      ['clients/disconnected', totals.clientsDisconnected],
      ['clients/inactive', totals.clientsDisconnected],
      ['clients/total', totals.sessions],
      ['messages/received', stats.messagesReceived],
      ['messages/sent', stats.messagesSent],
      ['messages/inflight', totals.inflight],
      ['messages/stored', totals.retained + totals.queued + totals.inflight],
      ['store/messages/count', totals.retained + totals.queued + totals.inflight],
      ['publish/messages/received', stats.messagesReceived],
      ['publish/messages/sent', stats.messagesSent],
      ['publish/messages/dropped', stats.droppedBufferFull + stats.droppedQueueFull + stats.droppedExpired + stats.droppedTooLarge],
      ['bytes/received', stats.bytesReceived],
      ['bytes/sent', stats.bytesSent],
      ['subscriptions/count', totals.subscriptions],
      ['retained messages/count', totals.retained],
      ['heap/current', memory.heapUsed],
      ['heap/maximum', memory.heapTotal],
    ];
    for (const load of Object.values(this.loads)) values.push(...load.entries());
    for (const b of this.bridges?.list() ?? []) {
      const at = `bridges/${b.name}/`;
      values.push([`${at}state`, b.state], [`${at}queued`, b.queued], [`${at}messages/in`, b.messagesIn], [`${at}messages/out`, b.messagesOut], [`${at}dropped`, b.dropped], [`${at}connects`, b.connects]);
    }
    for (const [suffix, value] of values) this.retain(`$SYS/broker/${suffix}`, String(value));
    // Uptime changes every time: always sent, as Mosquitto does.
    this.retain('$SYS/broker/uptime', `${Math.floor((now - stats.startedAt) / 1000)} seconds`, true);
  }

  private retain(topic: string, payload: string, always = false): void {
    if (!always && this.published.get(topic) === payload) return;
    this.published.set(topic, payload);
    this.broker?.publish({ topic, payload, retain: true });
  }

  private event(kind: 'connected' | 'disconnected', client: ClientIdentity, reason: string | undefined): void {
    const broker = this.broker;
    if (broker === undefined) return;
    const payload: Record<string, unknown> = {
      clientId: client.clientId,
      username: client.username ?? null,
      remoteAddress: client.remoteAddress ?? null,
      listener: client.listener,
      timestamp: new Date().toISOString(),
    };
    if (reason !== undefined) payload['reason'] = reason;
    // Deferred: observers run inside the CONNECT / close handling, before CONNACK is queued.
    setImmediate(() => {
      if (this.broker === broker) broker.publish({ topic: `$SYS/broker/clients/events/${kind}`, payload: JSON.stringify(payload) });
    });
  }
}
