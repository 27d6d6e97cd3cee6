/**
 * One bridge to a remote broker: two clients of our client library. The local one is a client of
 * this broker over an in-memory stream, with a persistent MQTT 5 session subscribed (No Local) to the
 * out/both filters; it acknowledges a message only once the remote has acknowledged its copy, so
 * whatever the remote has not taken stays in that session (bounded, stored, in order). The remote
 * one connects to the remote URL, reconnects with back-off, and brings in/both messages here, being
 * acknowledged only once this broker has them. docs/bridges.md and docs/decisions/0017.
 */
import { hostname } from 'node:os';
import { duplexPair, type Duplex } from 'node:stream';
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../broker/logger.js';
import { ConnectionRefusedError, MqttClient, RequestRejectedError, resolveOptions, type ConnackInfo, type Message, type ReconnectOptions } from '../client/index.js';
import type { BridgeConfig } from '../config/schema.js';
import type { BridgeState, BridgeStatus } from '../model/bridge.js';
import { encodePacket } from '../protocol/encoder.js';
import type { Properties, PublishPacket, QoS } from '../protocol/types.js';
import { EchoFilter } from './echo-filter.js';
import { defaultRemoteClientId, describeRemote, remoteOptions } from './remote-options.js';
import { TopicMap, type BridgeSubscription, type Destination } from './topic-map.js';

/** Name of the internal listener the local side of every bridge comes in on. */
export const BRIDGE_LISTENER = 'bridge';

/** Client ids of bridges' local sessions begin with this; no network client may use it. */
export const BRIDGE_CLIENT_PREFIX = '$bridge/';

/** What a bridge needs of the server. */
export interface BridgeInit {
  config: BridgeConfig;
  broker: Broker;
  logger: Logger;
  /** Back-off towards the remote (default REMOTE_RECONNECT). */
  reconnect?: ReconnectOptions;
}

/** Per-hop MQTT 5 properties, not forwarded (the next hop makes its own). */
const PER_HOP: ReadonlySet<string> = new Set(['topicAlias', 'subscriptionIdentifiers']);

/** A bridge: started, stopped, and asked for its status. */
export class Bridge {
  readonly name: string;
  readonly localClientId: string;
  readonly remoteClientId: string;
  private readonly url: string;
  private readonly map: TopicMap;
  private state: BridgeState = 'stopped';
  private since = Date.now();
  private local: MqttClient | undefined;
  private remote: MqttClient | undefined;
  /** What went out on topics that also come in, while the remote can hand it back (plain 3.1.1). */
  private readonly echoes = new EchoFilter();
  private messagesIn = 0;
  private messagesOut = 0;
  /** Dropped here (QoS 0 while down, refused by the remote), besides the session's queue-full drops. */
  private droppedHere = 0;
  private connects = 0;
  private lastError: string | null = null;
  /** The failure last logged, so a remote that keeps failing the same way is logged once. */
  private lastLogged: string | undefined;

  constructor(private readonly init: BridgeInit) {
    const { config } = init;
    this.name = config.name;
    this.localClientId = BRIDGE_CLIENT_PREFIX + config.name;
    this.remoteClientId = config.clientId ?? defaultRemoteClientId(hostname(), config.name);
    this.url = describeRemote(config.url);
    this.map = new TopicMap(config.topics);
  }

  /** True unless stopped. */
  get running(): boolean {
    return this.state !== 'stopped';
  }

  /** Starts both sides in the background; failures to reach the remote are retried, logged once per change. */
  start(): void {
    if (this.running) return;
    const { config } = this.init;
    this.setState('connecting');
    this.lastLogged = undefined;
    const local = new MqttClient(
      resolveOptions({
        protocolVersion: 5,
        clientId: this.localClientId,
        clean: false,
        keepalive: 0,
        properties: { sessionExpiryInterval: 0xffff_ffff },
        manualAck: true,
        stream: () => this.openLocal(),
        host: 'local',
        reconnect: { initialDelay: 100, maxDelay: 2000, retryRefused: true },
      }),
    );
    const remote = new MqttClient(resolveOptions(remoteOptions(config, this.remoteClientId, this.init.reconnect)));
    this.local = local;
    this.remote = remote;
    local.on('message', (m) => this.toRemote(local, remote, m));
    local.on('error', (error) => {
      // A refusal by this broker (a limit, a plugin) is worth an operator's eye; an interruption is not.
      if (error instanceof ConnectionRefusedError) this.init.logger.error({ bridge: this.name, err: error.message }, `bridge "${this.name}": this broker refused the bridge's session: ${error.message}`);
      else this.init.logger.debug({ bridge: this.name, err: error.message }, `bridge "${this.name}": local session interrupted`);
    });
    remote.on('message', (m) => this.toLocal(local, remote, m));
    remote.on('connect', (connack) => this.up(connack));
    remote.on('offline', (error) => this.down(error));
    remote.on('error', (error) => this.failed(error));
    remote.on('close', (error) => {
      if (this.remote === remote && error !== undefined) this.failed(error);
    });
    local.startInBackground();
    remote.startInBackground();
    void this.subscribeLocal(local);
    void this.subscribeRemote(remote, config.protocolVersion);
  }

  /** Stops both sides; the local session stays and keeps collecting messages for the remote. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const { local, remote } = this;
    this.local = undefined;
    this.remote = undefined;
    this.setState('stopped');
    await Promise.all([remote?.end(), local?.end()]);
    this.init.logger.info({ bridge: this.name, remote: this.url }, `bridge "${this.name}" stopped`);
  }

  /** State and counters. */
  status(): BridgeStatus {
    const session = this.init.broker.query.client(this.localClientId);
    const { config } = this.init;
    return {
      name: this.name,
      url: this.url,
      state: this.state,
      protocolVersion: config.protocolVersion,
      remoteClientId: this.remoteClientId,
      localClientId: this.localClientId,
      since: new Date(this.since).toISOString(),
      queued: session === undefined ? 0 : session.queued + session.inflight,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      dropped: this.droppedHere + (session?.droppedQueueFull ?? 0),
      connects: this.connects,
      lastError: this.lastError,
      topics: config.topics.map((t) => ({ ...t })),
    };
  }

  /** A new in-memory connection to this broker, on the internal `bridge` listener. */
  private openLocal(): Duplex {
    const [ours, theirs] = duplexPair();
    this.init.broker.accept(theirs, { listener: BRIDGE_LISTENER });
    return ours;
  }

  /** A message published here, for the remote: acknowledged here once the remote acknowledged it. */
  private toRemote(local: MqttClient, remote: MqttClient, m: Message): void {
    const destinations = this.map.toRemote(m.topic);
    if (destinations.length === 0) {
      local.acknowledge(m);
      return;
    }
    const properties = forwarded(m.properties, remote.version);
    if (tooLarge(remote, destinations, m.payload, properties)) {
      // Sent anyway, the remote would close the connection and the message would come round again forever.
      this.droppedHere++;
      this.init.logger.warn({ bridge: this.name, remote: this.url, topic: m.topic, bytes: m.payload.length }, `bridge "${this.name}": a message on "${m.topic}" is larger than ${this.url} accepts (Maximum Packet Size): dropped`);
      local.acknowledge(m);
      return;
    }
    if (m.qos === 0) {
      // Like Mosquitto (queue_qos0_messages false): QoS 0 is not kept for a remote that is away.
      if (remote.state !== 'connected') {
        this.droppedHere++;
        return;
      }
      for (const d of destinations) {
        this.expectEcho(remote, d.topic, m.payload);
        remote.publish(d.topic, m.payload, publishOptions(0, m.retain, properties)).catch(() => undefined);
      }
      this.messagesOut++;
      return;
    }
    const payload = Buffer.from(m.payload);
    for (const d of destinations) this.expectEcho(remote, d.topic, payload);
    Promise.all(destinations.map((d) => remote.publish(d.topic, payload, publishOptions(lower(m.qos, d), m.retain, properties)))).then(
      () => {
        this.messagesOut++;
        local.acknowledge(m);
      },
      (error: unknown) => {
        // Closed (stop, shutdown): not acknowledged, so the session here sends it again later.
        if (!(error instanceof RequestRejectedError)) return;
        this.droppedHere++;
        this.init.logger.warn({ bridge: this.name, remote: this.url, topic: m.topic, err: error.message }, `bridge "${this.name}": ${this.url} refused a message on "${m.topic}": dropped`);
        local.acknowledge(m);
      },
    );
  }

  /** A message from the remote, published here through the local client (authorized, retained and routed like any). */
  private toLocal(local: MqttClient, remote: MqttClient, m: Message): void {
    const destinations = this.map.toLocal(m.topic);
    if (destinations.length === 0 || (echoing(remote) && this.echoes.isEcho(m.topic, m.payload))) {
      remote.acknowledge(m);
      return;
    }
    const properties = forwarded(m.properties, 5);
    const payload = m.qos === 0 ? m.payload : Buffer.from(m.payload);
    const sent = Promise.all(destinations.map((d) => local.publish(d.topic, payload, publishOptions(lower(m.qos, d), m.retain, properties))));
    if (m.qos === 0) {
      this.messagesIn++;
      sent.catch(() => undefined);
      return;
    }
    sent.then(
      () => {
        this.messagesIn++;
        remote.acknowledge(m);
      },
      (error: unknown) => {
        if (!(error instanceof RequestRejectedError)) return;
        this.init.logger.warn({ bridge: this.name, topic: m.topic, err: error.message }, `bridge "${this.name}": this broker refused a message from ${this.url} on "${m.topic}": dropped`);
        remote.acknowledge(m);
      },
    );
  }

  /** Remembers a copy that a plain 3.1.1 remote will hand back, when this bridge also takes its topic in. */
  private expectEcho(remote: MqttClient, topic: string, payload: Buffer): void {
    if (echoing(remote) && this.map.toLocal(topic).length > 0) this.echoes.sent(topic, Buffer.from(payload));
  }

  /** Subscribes the local session to the out/both filters and drops subscriptions no longer configured. */
  private async subscribeLocal(local: MqttClient): Promise<void> {
    const wanted = this.map.localSubscriptions;
    try {
      if (wanted.length > 0) {
        // No Local: what the bridge publishes here (from the remote) never goes back out [MQTT-3.8.3-3].
        // Retain As Published: the remote gets the RETAIN flag as published. Retain Handling 1: retained
        // messages are forwarded when the subscription is new, not again on every restart.
        const subscription = await local.subscribe(wanted.map((s) => ({ topicFilter: s.filter, qos: s.qos, noLocal: true, retainAsPublished: true, retainHandling: 1 })));
        subscription.close();
        this.refusals(subscription.reasonCodes, wanted, 'this broker');
      }
      const current = this.init.broker.query.subscriptions({ clientId: this.localClientId, limit: 1000 }).items.map((s) => s.topicFilter);
      const stale = current.filter((f) => !wanted.some((w) => w.filter === f));
      if (stale.length > 0) await local.unsubscribe(stale);
    } catch (error) {
      if (this.local === local) this.init.logger.error({ bridge: this.name, err: (error as Error).message }, `bridge "${this.name}": cannot subscribe here`);
    }
  }

  /** Subscribes on the remote to the in/both filters (resubscribed by the client when the remote lost the session). */
  private async subscribeRemote(remote: MqttClient, version: 4 | 5): Promise<void> {
    const wanted = this.map.remoteSubscriptions;
    if (wanted.length === 0) return;
    // MQTT 5: No Local keeps what the bridge sends from coming back; with 3.1.1 Mosquitto does the same for a bridge (try_private).
    const requests = wanted.map((s) => (version === 5 ? { topicFilter: s.filter, qos: s.qos, noLocal: true, retainAsPublished: true } : { topicFilter: s.filter, qos: s.qos }));
    try {
      const subscription = await remote.subscribe(requests);
      subscription.close();
      this.refusals(subscription.reasonCodes, wanted, this.url);
    } catch (error) {
      if (this.remote === remote) this.init.logger.error({ bridge: this.name, remote: this.url, err: (error as Error).message }, `bridge "${this.name}": cannot subscribe on ${this.url}`);
    }
  }

  private refusals(codes: readonly number[], wanted: readonly BridgeSubscription[], where: string): void {
    codes.forEach((code, i) => {
      if (code < 0x80) return;
      const filter = wanted[i]?.filter ?? '?';
      this.init.logger.error({ bridge: this.name, filter, reasonCode: code }, `bridge "${this.name}": ${where} refused the subscription to "${filter}" (reason 0x${code.toString(16)})`);
    });
  }

  private up(connack: ConnackInfo): void {
    if (!this.running) return;
    this.connects++;
    this.lastLogged = undefined;
    this.setState('up');
    this.init.logger.info(
      { bridge: this.name, remote: this.url, clientId: this.remoteClientId, sessionPresent: connack.sessionPresent },
      `bridge "${this.name}" up: connected to ${this.url} as "${this.remoteClientId}"`,
    );
  }

  private down(error: Error | undefined): void {
    if (!this.running) return;
    const reason = error?.message ?? 'connection closed';
    this.lastError = reason;
    this.lastLogged = reason;
    this.setState('down');
    this.init.logger.warn({ bridge: this.name, remote: this.url, err: reason }, `bridge "${this.name}" down: lost ${this.url}: ${reason}; reconnecting with back-off`);
  }

  /** A failed attempt to connect: logged when the reason is new, so a long outage is one line. */
  private failed(error: Error): void {
    if (!this.running) return;
    const remote = this.remote;
    if (remote?.options.bridge === true && error instanceof ConnectionRefusedError && error.reasonCode === 1) {
      // Only Mosquitto knows its bridge flag: other brokers refuse the protocol level 0x84. Go on without it.
      remote.options.bridge = false;
      this.init.logger.warn(
        { bridge: this.name, remote: this.url },
        `bridge "${this.name}": ${this.url} does not take Mosquitto's bridge flag (tryPrivate): connecting as a plain MQTT 3.1.1 client, so a "both" mapping may echo messages back once (use protocolVersion 5 for No Local)`,
      );
    }
    this.lastError = error.message;
    if (error.message === this.lastLogged) {
      this.init.logger.debug({ bridge: this.name, remote: this.url, err: error.message }, `bridge "${this.name}": attempt failed again: ${error.message}`);
      return;
    }
    this.lastLogged = error.message;
    if (this.state === 'connecting') this.setState('down');
    this.init.logger.warn({ bridge: this.name, remote: this.url, err: error.message }, `bridge "${this.name}" cannot connect to ${this.url}: ${error.message}; retrying with back-off`);
  }

  private setState(state: BridgeState): void {
    if (this.state === state) return;
    this.state = state;
    this.since = Date.now();
  }
}

/** True when a copy would exceed the Maximum Packet Size the remote announced (MQTT 5) [MQTT-3.1.2-24]. */
function tooLarge(remote: MqttClient, destinations: readonly Destination[], payload: Buffer, properties: Properties | undefined): boolean {
  const max = remote.connack.properties?.maximumPacketSize;
  if (max === undefined) return false;
  let longest = '';
  for (const d of destinations) if (d.topic.length > longest.length) longest = d.topic;
  // Cheap test first: nearly every message is far below the limit.
  if (properties === undefined && payload.length + 3 * longest.length + 16 < max) return false;
  const packet: PublishPacket = { type: 'publish', topic: longest, payload, qos: 1, retain: false, dup: false, packetId: 1 };
  if (properties !== undefined) packet.properties = properties;
  return encodePacket(packet, remote.version).length > max;
}

/** True when the remote sends a subscriber its own messages: MQTT 3.1.1 without Mosquitto's bridge flag (no No Local). */
function echoing(remote: MqttClient): boolean {
  return remote.version !== 5 && !remote.options.bridge;
}

/** The QoS of one copy: the message's, at most the mapping's. */
function lower(qos: QoS, destination: Destination): QoS {
  return Math.min(qos, destination.qos) as QoS;
}

function publishOptions(qos: QoS, retain: boolean, properties: Properties | undefined): { qos: QoS; retain: boolean; properties?: Properties } {
  return properties === undefined ? { qos, retain } : { qos, retain, properties };
}

/** The MQTT 5 properties that travel on (user properties, content type, expiry …), none towards 3.1.1. */
function forwarded(properties: Properties | undefined, version: number): Properties | undefined {
  if (properties === undefined || version !== 5) return undefined;
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [key, value] of Object.entries(properties)) {
    if (PER_HOP.has(key) || value === undefined) continue;
    out[key] = value;
    any = true;
  }
  return any ? (out) : undefined;
}
