/**
 * MqttClient: the promise-based API over a Connection (bytes, keep-alive), a Session (packet ids,
 * inflight flows, subscriptions), an Outbox (what it sends) and an Inbox (what it receives). It
 * reconnects with exponential backoff, restores subscriptions when the server lost the session, and
 * resends unacknowledged QoS 1/2 messages with DUP set.
 */
import { EventEmitter } from 'node:events';
import {
  type ConnackPacket,
  type Packet,
  type Properties,
  type ProtocolVersion,
  type PublishPacket,
  type SubscribePacket,
  type SubscriptionRequest,
  type UnsubscribePacket,
} from '../protocol/index.js';
import type { ClientEvents, ClientState, ConnackInfo, PublishOptions, SubscribeOptions, UnsubscribeResult } from './client-types.js';
import { Connection } from './connection.js';
import {
  ClientClosedError,
  ConnectionRefusedError,
  InvalidArgumentError,
  ProtocolError,
  ServerDisconnectError,
  TimeoutError,
} from './errors.js';
import { Inbox } from './inbox.js';
import { Outbox } from './outbox.js';
import { resolveOptions, type ConnectOptions, type ResolvedOptions } from './options.js';
import { Session, type PublishResult, type Settle } from './session.js';
import { Subscription, type Message } from './subscription.js';
import { connectPacket, publishPacket, subscriptionRequests } from './packets.js';
import { openTransport } from './transport.js';

export type { ClientEvents, ClientState, ConnackInfo, PublishOptions, SubscribeOptions, UnsubscribeResult } from './client-types.js';

/** CONNACK codes not worth retrying: identity or permission problems. */
const FATAL_CONNACK = new Set([0x01, 0x02, 0x04, 0x05, 0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c]);

/** Connects and resolves with a ready client; rejects with ConnectionRefusedError, ConnectionError or TimeoutError. */
export async function connect(target: string | ConnectOptions, options?: ConnectOptions): Promise<MqttClient> {
  const client = new MqttClient(resolveOptions(target, options));
  await client.start();
  return client;
}

/** A connected MQTT client; make one with `connect()`. */
export class MqttClient extends EventEmitter<ClientEvents> {
  readonly options: ResolvedOptions;
  private currentState: ClientState = 'connecting';
  private conn: Connection | undefined;
  private readonly session = new Session();
  private readonly inbox: Inbox;
  private readonly outbox = new Outbox(this.session);
  private lastConnack: ConnackInfo = { sessionPresent: false, reasonCode: 0 };
  private pendingConnack: Settle<ConnackPacket> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempts = 0;

  constructor(options: ResolvedOptions) {
    super();
    this.options = options;
    this.inbox = new Inbox({
      version: () => this.version,
      manualAck: options.manualAck,
      incomingQos2: this.session.incomingQos2,
      emitMessage: (message) => {
        this.emit('message', message);
        return this.listenerCount('message') > 0;
      },
    });
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
          conn.send(connectPacket(this.options));
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

  private onConnected(conn: Connection, connack: ConnackPacket): void {
    this.conn = conn;
    this.currentState = 'connected';
    this.attempts = 0;
    this.lastConnack = { sessionPresent: connack.sessionPresent, reasonCode: connack.reasonCode };
    const props = connack.properties;
    if (props !== undefined) this.lastConnack.properties = props;
    if (props?.assignedClientIdentifier !== undefined) this.options.clientId = props.assignedClientIdentifier;
    this.inbox.connected();
    conn.startKeepAlive(props?.serverKeepAlive ?? this.options.keepalive);
    if (!connack.sessionPresent) {
      this.session.resetForNewSession();
      this.inbox.newSession();
    }
    for (const request of this.session.requests.values()) conn.send(request.packet);
    this.outbox.connected(conn, props?.receiveMaximum ?? 65_535);
  }

  /** The connection while connected (undefined while connecting, reconnecting or closed). */
  private live(): Connection | undefined {
    return this.currentState === 'connected' ? this.conn : undefined;
  }

  private onConnectionClosed(conn: Connection, error: Error | undefined): void {
    if (this.pendingConnack !== undefined && this.conn !== conn) {
      this.pendingConnack.reject(error ?? new ClientClosedError('connection closed before CONNACK'));
      return;
    }
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (this.currentState === 'closed') return;
    this.outbox.disconnected();
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
        this.inbox.receive(conn, p);
        return;
      case 'puback':
      case 'pubrec':
      case 'pubcomp':
        this.outbox.acked(conn, this.version, p.type, p.packetId, p.reasonCode ?? 0, p.properties);
        this.outbox.pump(this.live());
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

  /**
   * With `manualAck`: acknowledges a received QoS 1/2 message (PUBACK, or PUBREC then PUBCOMP on
   * PUBREL), with an MQTT 5 reason code if given. Returns false when there was nothing to send: QoS 0,
   * already acknowledged, or the connection is down (the server then sends the message again).
   */
  acknowledge(message: Message, reasonCode = 0): boolean {
    return this.inbox.acknowledge(message, reasonCode, this.live());
  }

  /**
   * Publishes and resolves when the QoS flow completes: QoS 0 once written (and the socket has room),
   * QoS 1 on PUBACK, QoS 2 on PUBCOMP. Rejects with RequestRejectedError on a failure reason code.
   */
  publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<PublishResult> {
    if (this.currentState === 'closed') return Promise.reject(new ClientClosedError());
    let packet: PublishPacket;
    try {
      packet = publishPacket(topic, payload, options);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new InvalidArgumentError(String(error)));
    }
    const qos = packet.qos;
    if (qos === 0) {
      const conn = this.live();
      if (conn === undefined) return this.outbox.holdQos0(packet);
      return conn.send(packet) ? Promise.resolve({ reasonCode: 0 }) : conn.drained().then(() => ({ reasonCode: 0 }));
    }
    const id = this.session.allocateId();
    if (id === undefined) return Promise.reject(new InvalidArgumentError('all 65535 packet identifiers are in use'));
    packet.packetId = id;
    return this.outbox.add(packet, this.live());
  }

  /** Resolves when the socket has room for more writes (for senders that pace themselves). */
  drained(): Promise<void> {
    return this.conn?.drained() ?? Promise.resolve();
  }

  /** Subscribes; resolves with the SUBACK codes and an async iterator of the matching messages. */
  async subscribe(target: string | Array<string | SubscriptionRequest>, options: SubscribeOptions = {}): Promise<Subscription> {
    const requests = subscriptionRequests(target, options);
    const filters = requests.map((r) => r.topicFilter);
    const entry = this.inbox.open(filters);
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
    this.inbox.endUnsubscribed((f) => this.session.subscriptions.has(f));
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
    return this.inbox.open(undefined).queue;
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
    this.outbox.fail(closed);
    this.inbox.close(error);
    this.emit('close', error);
  }
}
