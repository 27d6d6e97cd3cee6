/**
 * MqttClient: the promise-based API over a Connection (bytes, keep-alive) and a Session (packet ids,
 * inflight flows, subscriptions). It reconnects with exponential backoff, restores subscriptions when
 * the server lost the session, and resends unacknowledged QoS 1/2 messages with DUP set.
 */
import { EventEmitter } from 'node:events';
import {
  type AckPacket,
  type MqttError,
  validateTopicFilter,
  validateTopicName,
  type ConnackPacket,
  type Packet,
  type Properties,
  type ProtocolVersion,
  type PublishPacket,
  type QoS,
  type SubscribePacket,
  type SubscriptionRequest,
  type UnsubscribePacket,
} from '../protocol/index.js';
import { PendingAcks } from './acknowledgements.js';
import { Connection } from './connection.js';
import {
  ClientClosedError,
  ConnectionRefusedError,
  InvalidArgumentError,
  ProtocolError,
  RequestRejectedError,
  ServerDisconnectError,
  TimeoutError,
} from './errors.js';
import { MessageQueue } from './message-queue.js';
import { resolveOptions, type ConnectOptions, type ResolvedOptions } from './options.js';
import { Session, type OutgoingFlow, type PublishResult, type Settle } from './session.js';
import { Subscription, filterMatches, type Message } from './subscription.js';
import { openTransport } from './transport.js';

/** Options of one publish. */
export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** MQTT 5 PUBLISH properties. */
  properties?: Properties;
}

/** Options applied to every filter of one subscribe call (a SubscriptionRequest may override per filter). */
export interface SubscribeOptions {
  qos?: QoS;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
  /** MQTT 5 SUBSCRIBE properties (subscription identifier, user properties). */
  properties?: Properties;
}

/** The server's CONNACK: whether it kept a session, and (MQTT 5) its limits and assigned id. */
export interface ConnackInfo {
  sessionPresent: boolean;
  reasonCode: number;
  properties?: Properties;
}

/** Ack of an UNSUBSCRIBE (reason codes only in MQTT 5). */
export interface UnsubscribeResult {
  reasonCodes: number[];
  properties?: Properties;
}

/** Lifecycle of a client. */
export type ClientState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** Events a client emits. `error` is emitted only when someone listens for it. */
export interface ClientEvents {
  /** Every received application message. */
  message: [message: Message];
  /** After every successful CONNACK, the first one included. */
  connect: [connack: ConnackInfo];
  /** The connection was lost; the client reconnects unless reconnect is off. */
  offline: [error: Error | undefined];
  /** A reconnect attempt is scheduled. */
  reconnecting: [attempt: number, delayMs: number];
  /** A non-fatal problem: server DISCONNECT, keep-alive timeout, failed reconnect attempt. */
  error: [error: Error];
  /** The client is closed for good. */
  close: [error: Error | undefined];
}

/** CONNACK codes not worth retrying: identity or permission problems. */
/** Messages kept for a consumer that has not subscribed yet; older ones beyond this are dropped. */
const MAX_UNCLAIMED = 10_000;

const FATAL_CONNACK = new Set([0x01, 0x02, 0x04, 0x05, 0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c]);

/** Connects and resolves with a ready client; rejects with ConnectionRefusedError, ConnectionError or TimeoutError. */
export async function connect(target: string | ConnectOptions, options?: ConnectOptions): Promise<MqttClient> {
  const client = new MqttClient(resolveOptions(target, options));
  await client.start();
  return client;
}

interface QueueEntry {
  queue: MessageQueue<Message>;
  filters: readonly string[] | undefined;
}

/** A connected MQTT client; make one with `connect()`. */
export class MqttClient extends EventEmitter<ClientEvents> {
  readonly options: ResolvedOptions;
  private currentState: ClientState = 'connecting';
  private conn: Connection | undefined;
  private readonly session = new Session();
  private readonly queues = new Set<QueueEntry>();
  /** Messages received while nothing was listening (see dispatch). */
  private unclaimed: Message[] = [];
  private readonly waiting: OutgoingFlow[] = [];
  private offlineQos0: Array<{ packet: PublishPacket; settle: Settle<PublishResult> }> = [];
  private receiveMaximum = 65_535;
  private readonly aliases = new Map<number, string>();
  private lastConnack: ConnackInfo = { sessionPresent: false, reasonCode: 0 };
  private pendingConnack: Settle<ConnackPacket> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  private readonly pendingAcks = new PendingAcks();

  constructor(options: ResolvedOptions) {
    super();
    this.options = options;
  }

  get state(): ClientState {
    return this.currentState;
  }

  get version(): ProtocolVersion {
    return this.options.protocolVersion;
  }

  /** The client id in use (the server-assigned one, if the server assigned one). */
  get clientId(): string {
    return this.options.clientId;
  }

  /** The latest CONNACK. */
  get connack(): ConnackInfo {
    return this.lastConnack;
  }

  /** Opens the first connection (called by `connect()`). */
  async start(): Promise<void> {
    await this.connectOnce();
    this.emit('connect', this.lastConnack);
  }

  /**
   * Connects in the background instead: a failed first attempt is retried like a lost connection
   * (`reconnect` must not be false). Listen for 'connect', 'error' and 'close'.
   */
  startInBackground(): void {
    if (this.currentState !== 'connecting' || this.options.reconnect === false) throw new InvalidArgumentError('startInBackground needs a new client with reconnect on');
    this.scheduleReconnect(0);
  }

  /** Opens a transport, sends CONNECT and settles on CONNACK. */
  private async connectOnce(): Promise<void> {
    const o = this.options;
    let timer: NodeJS.Timeout | undefined;
    let conn: Connection | undefined;
    try {
      const connack = await new Promise<ConnackPacket>((resolve, reject) => {
        timer = setTimeout(() => {
          reject(new TimeoutError(`no CONNACK from ${o.host}:${o.port} within ${o.connectTimeout} ms`));
          conn?.destroy();
        }, o.connectTimeout);
        this.pendingConnack = { resolve, reject };
        const open = o.stream === undefined ? openTransport(o) : Promise.resolve().then(o.stream);
        open.then((stream) => {
          if (this.pendingConnack === undefined) {
            stream.destroy();
            return;
          }
          conn = new Connection(stream, o.protocolVersion, {
            onPacket: (p) => this.onPacket(conn!, p),
            onClose: (error) => this.onConnectionClosed(conn!, error),
          });
          conn.send(this.connectPacket());
        }, reject);
      });
      if (connack.reasonCode !== 0) throw new ConnectionRefusedError(connack.reasonCode, o.protocolVersion, connack.properties);
      if (this.currentState === 'closed') throw new ClientClosedError();
      // A DISCONNECT or a close right behind the CONNACK, in the same chunk.
      if (!conn!.open) throw conn!.closeError ?? new ClientClosedError('connection closed right after CONNACK');
      this.onConnected(conn!, connack);
    } catch (error) {
      conn?.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
      this.pendingConnack = undefined;
    }
  }

  private connectPacket(): Packet {
    const o = this.options;
    const packet: Packet = {
      type: 'connect',
      protocolName: o.protocolVersion === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: o.protocolVersion,
      clean: o.clean,
      keepalive: o.keepalive,
      clientId: o.clientId,
    };
    if (o.bridge) packet.bridge = true;
    if (o.username !== undefined) packet.username = o.username;
    if (o.password !== undefined) packet.password = o.password;
    if (o.properties !== undefined) packet.properties = o.properties;
    if (o.will !== undefined) {
      const w = o.will;
      packet.will = { topic: w.topic, payload: Buffer.from(w.payload ?? ''), qos: w.qos ?? 0, retain: w.retain ?? false };
      if (w.properties !== undefined) packet.will.properties = w.properties;
    }
    return packet;
  }

  private onConnected(conn: Connection, connack: ConnackPacket): void {
    this.conn = conn;
    this.currentState = 'connected';
    this.attempts = 0;
    this.lastConnack = { sessionPresent: connack.sessionPresent, reasonCode: connack.reasonCode };
    const props = connack.properties;
    if (props !== undefined) this.lastConnack.properties = props;
    this.receiveMaximum = props?.receiveMaximum ?? 65_535;
    if (props?.assignedClientIdentifier !== undefined) this.options.clientId = props.assignedClientIdentifier;
    this.aliases.clear();
    conn.startKeepAlive(props?.serverKeepAlive ?? this.options.keepalive);
    if (!connack.sessionPresent) {
      this.session.resetForNewSession();
      this.pendingAcks.newSession();
      for (const group of this.session.subscriptionGroups()) {
        const id = this.session.allocateId();
        if (id === undefined) break;
        const packet: SubscribePacket = { type: 'subscribe', packetId: id, subscriptions: group.requests };
        if (group.properties !== undefined) packet.properties = group.properties;
        this.session.requests.set(id, { packet, settle: { resolve: () => undefined, reject: () => undefined } });
      }
    }
    for (const request of this.session.requests.values()) conn.send(request.packet);
    this.session.sentCount = 0;
    this.waiting.length = 0;
    for (const flow of this.session.outgoing.values()) {
      flow.sent = false;
      this.waiting.push(flow);
    }
    this.pump();
    const offline = this.offlineQos0;
    this.offlineQos0 = [];
    for (const { packet, settle } of offline) {
      conn.send(packet);
      settle.resolve({ reasonCode: 0 });
    }
  }

  /** Sends waiting QoS 1/2 flows while the server's Receive Maximum allows. */
  private pump(): void {
    const conn = this.conn;
    if (conn === undefined || this.currentState !== 'connected') return;
    while (this.waiting.length > 0 && this.session.sentCount < this.receiveMaximum) {
      const flow = this.waiting.shift()!;
      if (this.session.outgoing.get(flow.packet.packetId!) !== flow) continue;
      flow.sent = true;
      this.session.sentCount++;
      if (flow.stage === 'pubcomp') {
        conn.send({ type: 'pubrel', packetId: flow.packet.packetId! });
      } else {
        conn.send(flow.packet);
        flow.packet.dup = true; // any later send of this flow is a resend [MQTT-3.3.1-1]
      }
    }
  }

  private onConnectionClosed(conn: Connection, error: Error | undefined): void {
    if (this.pendingConnack !== undefined && this.conn !== conn) {
      this.pendingConnack.reject(error ?? new ClientClosedError('connection closed before CONNACK'));
      return;
    }
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (this.currentState === 'closed') return;
    for (const flow of this.session.outgoing.values()) flow.sent = false;
    this.session.sentCount = 0;
    this.emit('offline', error);
    if (error !== undefined && this.listenerCount('error') > 0) this.emit('error', error);
    if (this.options.reconnect === false) {
      this.shutdown(error ?? new ClientClosedError('connection closed'));
      return;
    }
    this.currentState = 'reconnecting';
    this.scheduleReconnect();
  }

  /** Waits (exponential backoff with jitter, or `firstDelay`) and tries to connect again. */
  private scheduleReconnect(firstDelay?: number): void {
    const r = this.options.reconnect;
    const retrying = (): boolean => this.currentState === 'reconnecting' || this.currentState === 'connecting';
    if (r === false || !retrying()) return;
    const base = Math.min(r.maxDelay, r.initialDelay * 2 ** Math.min(this.attempts, 30));
    const delay = firstDelay ?? Math.round(base / 2 + (Math.random() * base) / 2);
    this.attempts++;
    this.emit('reconnecting', this.attempts, delay);
    this.reconnectTimer = setTimeout(() => {
      this.connectOnce().then(
        () => this.emit('connect', this.lastConnack),
        (error: Error) => {
          if (!retrying()) return;
          if (this.listenerCount('error') > 0) this.emit('error', error);
          const fatal = error instanceof ConnectionRefusedError && FATAL_CONNACK.has(error.reasonCode) && !r.retryRefused;
          if (fatal || this.attempts >= r.maxAttempts) this.shutdown(error);
          else this.scheduleReconnect();
        },
      );
    }, delay);
  }

  private onPacket(conn: Connection, p: Packet): void {
    switch (p.type) {
      case 'connack':
        if (this.pendingConnack === undefined) conn.destroy(new ProtocolError('unexpected CONNACK'));
        else this.pendingConnack.resolve(p);
        return;
      case 'publish':
        this.onPublish(conn, p);
        return;
      case 'puback':
      case 'pubrec':
      case 'pubcomp':
        this.onAck(conn, p.type, p.packetId, p.reasonCode ?? 0, p.properties);
        return;
      case 'pubrel': {
        const known = this.session.incomingQos2.delete(p.packetId);
        conn.send({ type: 'pubcomp', packetId: p.packetId, reasonCode: known || this.version !== 5 ? 0 : 0x92 });
        return;
      }
      case 'suback':
      case 'unsuback': {
        const request = this.session.requests.get(p.packetId);
        if (request === undefined || request.packet.type !== (p.type === 'suback' ? 'subscribe' : 'unsubscribe')) return;
        this.session.requests.delete(p.packetId);
        const result: UnsubscribeResult = { reasonCodes: p.reasonCodes ?? [] };
        if (p.properties !== undefined) result.properties = p.properties;
        request.settle.resolve(result);
        return;
      }
      case 'disconnect':
        conn.destroy(new ServerDisconnectError(p.reasonCode ?? 0, p.properties));
        return;
      case 'auth':
      case 'connect':
      case 'subscribe':
      case 'unsubscribe':
      case 'pingreq':
      case 'pingresp':
        conn.destroy(new ProtocolError(`unexpected ${p.type.toUpperCase()} from the server`));
        return;
    }
  }

  private onPublish(conn: Connection, p: PublishPacket): void {
    let topic = p.topic;
    const alias = p.properties?.topicAlias;
    if (alias !== undefined) {
      if (topic.length > 0) this.aliases.set(alias, topic);
      else topic = this.aliases.get(alias) ?? '';
      if (topic.length === 0) {
        conn.destroy(new ProtocolError(`unknown topic alias ${alias}`));
        return;
      }
    }
    const message: Message = { topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup };
    if (p.properties !== undefined) message.properties = p.properties;
    const manual = this.options.manualAck;
    if (p.qos === 2) {
      const id = p.packetId!;
      if (!this.session.incomingQos2.has(id)) {
        this.session.incomingQos2.add(id);
        if (manual) this.pendingAcks.hold(message, id, 2);
        this.dispatch(message);
      }
      // A duplicate of a message the application still holds is acknowledged when it is.
      if (!this.pendingAcks.waiting(id)) conn.send({ type: 'pubrec', packetId: id });
      return;
    }
    if (p.qos === 1 && manual) this.pendingAcks.hold(message, p.packetId!, 1);
    this.dispatch(message);
    if (p.qos === 1 && !manual) conn.send({ type: 'puback', packetId: p.packetId! });
  }

  /**
   * With `manualAck`: acknowledges a received QoS 1/2 message (PUBACK, or PUBREC then PUBCOMP on
   * PUBREL), with an MQTT 5 reason code if given. Returns false when there was nothing to send: QoS 0,
   * already acknowledged, or the connection is down (the server then sends the message again).
   */
  acknowledge(message: Message, reasonCode = 0): boolean {
    const pending = this.pendingAcks.take(message);
    if (pending === undefined) return false;
    const code = this.version === 5 ? reasonCode : 0;
    if (pending.qos === 2 && code >= 0x80) this.session.incomingQos2.delete(pending.packetId);
    const conn = this.conn;
    if (conn === undefined || this.currentState !== 'connected') return false;
    const packet: AckPacket<'puback' | 'pubrec'> = { type: pending.qos === 1 ? 'puback' : 'pubrec', packetId: pending.packetId };
    if (code !== 0) packet.reasonCode = code;
    conn.send(packet);
    return true;
  }

  private onAck(conn: Connection, type: 'puback' | 'pubrec' | 'pubcomp', id: number, code: number, properties: Properties | undefined): void {
    const flow = this.session.outgoing.get(id);
    const expected = flow === undefined ? undefined : flow.stage === 'pubcomp' ? 'pubcomp' : flow.packet.qos === 1 ? 'puback' : 'pubrec';
    if (flow === undefined || expected !== type) {
      if (type === 'pubrec') conn.send({ type: 'pubrel', packetId: id, reasonCode: this.version === 5 ? 0x92 : 0 });
      return;
    }
    if (type === 'pubrec' && code < 0x80) {
      flow.stage = 'pubcomp';
      conn.send({ type: 'pubrel', packetId: id });
      return;
    }
    this.session.outgoing.delete(id);
    if (flow.sent) this.session.sentCount--;
    const result: PublishResult = { reasonCode: code };
    if (properties !== undefined) result.properties = properties;
    if (code >= 0x80) flow.settle.reject(new RequestRejectedError(`PUBLISH to "${flow.packet.topic}"`, code, properties));
    else flow.settle.resolve(result);
    this.pump();
  }

  private dispatch(message: Message): void {
    this.emit('message', message);
    let claimed = this.listenerCount('message') > 0;
    for (const entry of this.queues) {
      if (entry.filters === undefined || entry.filters.some((f) => filterMatches(f, message.topic))) {
        entry.queue.push(message);
        claimed = true;
      }
    }
    if (!claimed) {
      // A resumed session delivers its queued messages right after CONNACK, before the application
      // had a chance to subscribe() or call messages(): keep them (bounded) for the first taker.
      if (this.unclaimed.length >= MAX_UNCLAIMED) this.unclaimed.shift();
      this.unclaimed.push(message);
    }
  }

  /** Hands messages nobody had taken yet to a new queue (those matching its filters, in order). */
  private claim(entry: QueueEntry): void {
    if (this.unclaimed.length === 0) return;
    const kept: Message[] = [];
    for (const message of this.unclaimed) {
      if (entry.filters === undefined || entry.filters.some((f) => filterMatches(f, message.topic))) entry.queue.push(message);
      else kept.push(message);
    }
    this.unclaimed = kept;
  }

  /**
   * Publishes and resolves when the QoS flow completes: QoS 0 once written (and the socket has room),
   * QoS 1 on PUBACK, QoS 2 on PUBCOMP. Rejects with RequestRejectedError on a failure reason code.
   */
  publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<PublishResult> {
    if (this.currentState === 'closed') return Promise.reject(new ClientClosedError());
    const qos = options.qos ?? 0;
    if (qos !== 0 && qos !== 1 && qos !== 2) return Promise.reject(new InvalidArgumentError(`QoS must be 0, 1 or 2, got ${String(qos)}`));
    try {
      validateTopicName(topic);
    } catch (error) {
      return Promise.reject(new InvalidArgumentError((error as MqttError).message));
    }
    const packet: PublishPacket = {
      type: 'publish',
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
      qos,
      retain: options.retain ?? false,
      dup: false,
    };
    if (options.properties !== undefined) packet.properties = options.properties;
    if (qos === 0) {
      const conn = this.conn;
      if (conn === undefined || this.currentState !== 'connected') {
        return new Promise((resolve, reject) => this.offlineQos0.push({ packet, settle: { resolve, reject } }));
      }
      return conn.send(packet) ? Promise.resolve({ reasonCode: 0 }) : conn.drained().then(() => ({ reasonCode: 0 }));
    }
    const id = this.session.allocateId();
    if (id === undefined) return Promise.reject(new InvalidArgumentError('all 65535 packet identifiers are in use'));
    packet.packetId = id;
    return new Promise((resolve, reject) => {
      const flow: OutgoingFlow = { packet, stage: 'ack', sent: false, settle: { resolve, reject } };
      this.session.outgoing.set(id, flow);
      this.waiting.push(flow);
      this.pump();
    });
  }

  /** Resolves when the socket has room for more writes (for senders that pace themselves). */
  drained(): Promise<void> {
    return this.conn?.drained() ?? Promise.resolve();
  }

  /** Subscribes; resolves with the SUBACK codes and an async iterator of the matching messages. */
  async subscribe(target: string | Array<string | SubscriptionRequest>, options: SubscribeOptions = {}): Promise<Subscription> {
    const list = Array.isArray(target) ? target : [target];
    if (list.length === 0) throw new InvalidArgumentError('subscribe needs at least one topic filter');
    const requests: SubscriptionRequest[] = list.map((item) => {
      const r: SubscriptionRequest = typeof item === 'string' ? { topicFilter: item, qos: options.qos ?? 0 } : { ...item };
      if (typeof item === 'string') {
        if (options.noLocal !== undefined) r.noLocal = options.noLocal;
        if (options.retainAsPublished !== undefined) r.retainAsPublished = options.retainAsPublished;
        if (options.retainHandling !== undefined) r.retainHandling = options.retainHandling;
      }
      try {
        validateTopicFilter(r.topicFilter);
      } catch (error) {
        throw new InvalidArgumentError((error as MqttError).message);
      }
      return r;
    });
    const filters = requests.map((r) => r.topicFilter);
    const entry: QueueEntry = { queue: new MessageQueue<Message>(undefined, () => this.queues.delete(entry)), filters };
    this.queues.add(entry);
    this.claim(entry);
    try {
      const packet: SubscribePacket = { type: 'subscribe', packetId: 0, subscriptions: requests };
      if (options.properties !== undefined) packet.properties = options.properties;
      const result = await this.request(packet);
      result.reasonCodes.forEach((code, i) => {
        const request = requests[i];
        if (code < 0x80 && request !== undefined) this.session.subscriptions.set(request.topicFilter, { request, properties: options.properties });
      });
      return new Subscription(filters, result.reasonCodes, result.properties, entry.queue, (f) => this.unsubscribe(f));
    } catch (error) {
      entry.queue.end();
      throw error;
    }
  }

  /** Unsubscribes; resolves with the UNSUBACK (reason codes in MQTT 5, none before). */
  async unsubscribe(filters: string | string[], properties?: Properties): Promise<UnsubscribeResult> {
    const topicFilters = Array.isArray(filters) ? filters : [filters];
    for (const f of topicFilters) this.session.subscriptions.delete(f);
    for (const entry of this.queues) {
      if (entry.filters !== undefined && entry.filters.every((f) => !this.session.subscriptions.has(f))) entry.queue.end();
    }
    const packet: UnsubscribePacket = { type: 'unsubscribe', packetId: 0, topicFilters };
    if (properties !== undefined) packet.properties = properties;
    return this.request(packet);
  }

  private request(packet: SubscribePacket | UnsubscribePacket): Promise<UnsubscribeResult> {
    if (this.currentState === 'closed') return Promise.reject(new ClientClosedError());
    const id = this.session.allocateId();
    if (id === undefined) return Promise.reject(new InvalidArgumentError('all 65535 packet identifiers are in use'));
    packet.packetId = id;
    return new Promise((resolve, reject) => {
      this.session.requests.set(id, { packet, settle: { resolve, reject } });
      if (this.currentState === 'connected') this.conn?.send(packet);
    });
  }

  /** Every message the client receives, whatever the subscription, from now on. */
  messages(): AsyncIterableIterator<Message> {
    const entry: QueueEntry = { queue: new MessageQueue<Message>(undefined, () => this.queues.delete(entry)), filters: undefined };
    this.queues.add(entry);
    this.claim(entry);
    return entry.queue;
  }

  /**
   * Sends DISCONNECT (with `reasonCode` / properties in MQTT 5) and closes. Pending publishes and
   * requests reject with ClientClosedError; await them before `end()` to be sure they completed.
   * `reasonCode` 0x04 asks the server to publish the will anyway.
   */
  async end(options: { reasonCode?: number; properties?: Properties } = {}): Promise<void> {
    if (this.currentState === 'closed') return;
    const conn = this.conn;
    this.shutdown(undefined);
    if (conn !== undefined) {
      const packet: Packet = { type: 'disconnect' };
      if (options.reasonCode !== undefined) packet.reasonCode = options.reasonCode;
      if (options.properties !== undefined) packet.properties = options.properties;
      await conn.end(packet);
    }
  }

  /** Drops the connection without DISCONNECT (the server publishes the will). */
  destroy(): void {
    const conn = this.conn;
    this.shutdown(undefined);
    conn?.destroy();
  }

  private shutdown(error: Error | undefined): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    clearTimeout(this.reconnectTimer);
    this.conn = undefined;
    const closed = error ?? new ClientClosedError();
    this.session.failAll(closed);
    for (const { settle } of this.offlineQos0) settle.reject(closed);
    this.offlineQos0 = [];
    for (const entry of [...this.queues]) entry.queue.end(error);
    this.emit('close', error);
  }
}
