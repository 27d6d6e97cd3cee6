import type { Duplex } from 'node:stream';
import type { Message, PublishInput } from '../model/message.js';
import { validateTopicName } from '../protocol/topic.js';
import { Connection, type CloseReason, type ConnectionInfo } from './connection.js';
import type { BrokerContext } from './context.js';
import { silentLogger, type Logger } from './logger.js';
import { DEFAULT_BROKER_OPTIONS, type BrokerOptions } from './options.js';
import { RetainedMessages } from './retained.js';
import { Router } from './router.js';
import { SessionRegistry } from './sessions.js';
import { BrokerStats } from './stats.js';
import { WireCache } from './wire-cache.js';

/** How often connect timeouts and keep-alives are checked: the precision of both. */
const SWEEP_INTERVAL_MS = 250;

/** Options for `new Broker()`: any BrokerOptions field, plus a logger. */
export type BrokerInit = Partial<BrokerOptions> & { logger?: Logger };

/**
 * The MQTT broker core: accepts any Duplex stream as a client connection and implements
 * MQTT semantics. It knows nothing of sockets, files or Redis.
 */
export class Broker implements BrokerContext {
  readonly options: BrokerOptions;
  readonly logger: Logger;
  readonly debugEnabled: boolean;
  readonly stats = new BrokerStats();
  readonly router = new Router();
  readonly sessions: SessionRegistry;
  readonly retained = new RetainedMessages();
  readonly wire = new WireCache();
  readonly online = new Map<string, Connection>();

  private readonly connections = new Set<Connection>();
  private flushList: Connection[] = [];
  private flushScheduled = false;
  private closed = false;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(init: BrokerInit = {}) {
    const { logger, ...options } = init;
    this.options = { ...DEFAULT_BROKER_OPTIONS, ...stripUndefined(options) };
    this.logger = logger ?? silentLogger;
    this.debugEnabled = this.logger.isLevelEnabled?.('debug') ?? this.logger !== silentLogger;
    this.sessions = new SessionRegistry(this.router, this.options.maxInflight, this.options.maxQueuedMessages);
    // One timer for every connection's connect timeout and keep-alive, instead of one timer each.
    this.sweepTimer = setInterval(this.sweep, SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  private readonly sweep = (): void => {
    const now = Date.now();
    for (const connection of this.connections) connection.checkTimers(now);
  };

  /** Takes a new client stream (TCP socket, TLS socket, WebSocket stream, in-memory pair). */
  accept(stream: Duplex, info: ConnectionInfo): Connection {
    const connection = new Connection(this, stream, info);
    if (this.closed) {
      connection.close('server-shutdown');
      return connection;
    }
    this.connections.add(connection);
    return connection;
  }

  /** Publishes a message from the broker itself (in-process API); retained if asked. */
  publish(input: PublishInput): void {
    validateTopicName(input.topic);
    const payload = input.payload === undefined ? Buffer.alloc(0) : typeof input.payload === 'string' ? Buffer.from(input.payload) : input.payload;
    const message: Message = {
      topic: input.topic,
      payload,
      qos: input.qos ?? 0,
      retain: input.retain ?? false,
      origin: '',
      receivedAt: Date.now(),
    };
    if (input.properties !== undefined) message.properties = input.properties;
    this.dispatch(message);
  }

  /** Number of open connections (including ones not yet past CONNECT). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** BrokerContext: stores retained messages and routes to every matching session. */
  dispatch(message: Message): void {
    // [MQTT-3.3.1-5] a retained message is stored (or cleared by an empty payload) for future subscribers.
    if (message.retain) this.retained.set(message);
    const targets = this.router.targets(message.topic);
    const messageQos = message.qos;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      // [MQTT-3.3.5-1] delivered at the lower of the message QoS and the subscription QoS;
      // [MQTT-3.3.1-9] RETAIN=0 on live delivery.
      const qos = messageQos < target.qos ? messageQos : target.qos;
      if (!target.session.deliver(message, qos, false) && qos > 0) this.stats.droppedQueueFull++;
    }
  }

  /** BrokerContext: flushes `connection` at the end of this event-loop turn, with all others. */
  scheduleFlush(connection: Connection): void {
    this.flushList.push(connection);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAll);
    }
  }

  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const list = this.flushList;
    this.flushList = [];
    for (let i = 0; i < list.length; i++) list[i]!.flush();
    this.wire.reset();
  };

  /** BrokerContext: session and will handling when a connection ends. */
  connectionClosed(connection: Connection, reason: CloseReason, wasConnected: boolean): void {
    this.connections.delete(connection);
    if (!wasConnected) return;
    const clientId = connection.clientId;
    if (this.online.get(clientId) === connection) this.online.delete(clientId);
    const session = connection.session;
    if (session === undefined) return;
    if (session.link === connection) session.link = undefined;
    if (this.debugEnabled) this.logger.debug({ clientId, reason }, 'client disconnected');
    const will = session.will;
    session.will = undefined;
    // [MQTT-3.1.2-8] the will is published when the connection closes without DISCONNECT.
    if (will !== undefined && reason !== 'client-disconnect' && reason !== 'server-shutdown') {
      this.dispatch({
        topic: will.topic,
        payload: will.payload,
        qos: will.qos,
        retain: will.retain,
        origin: clientId,
        receivedAt: Date.now(),
      });
    }
    // [MQTT-3.1.2-6] a clean session ends with its connection.
    if (!session.persistent) this.sessions.discard(session);
  }

  /** Closes every connection; the broker accepts nothing afterwards. */
  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const connection of [...this.connections]) connection.close('server-shutdown');
    return Promise.resolve();
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] !== undefined) out[key] = value[key];
  }
  return out;
}
