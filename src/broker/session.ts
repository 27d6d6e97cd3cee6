import type { Message } from '../model/message.js';
import type { Subscription } from '../model/subscription.js';
import type { QoS, Will } from '../protocol/types.js';

/** A QoS 1/2 message sent to the client and not yet fully acknowledged. */
export interface OutgoingFlight {
  packetId: number;
  message: Message;
  qos: 1 | 2;
  retain: boolean;
  /** 'publish': waiting for PUBACK / PUBREC; 'pubrel': PUBREL sent, waiting for PUBCOMP. */
  state: 'publish' | 'pubrel';
}

/** A message waiting for a place in the inflight window (or for the client to come back). */
export interface QueuedDelivery {
  message: Message;
  qos: QoS;
  retain: boolean;
}

/** What the session needs from an online connection to send packets. */
export interface SessionLink {
  /** Sends a PUBLISH now (subject to the connection's buffer limit for QoS 0); returns false if dropped. */
  sendPublish(message: Message, qos: QoS, retain: boolean, packetId: number, dup: boolean): boolean;
  /** Sends a PUBREL for a QoS 2 flight. */
  sendPubrel(packetId: number): void;
}

// Shared empty collections: a session allocates its own only when it first needs one, which keeps
// the memory of an idle connection small. They are never written to (see the `own*` methods).
const EMPTY_SUBSCRIPTIONS: Map<string, Subscription> = new Map();
const EMPTY_OUTFLIGHT: Map<number, OutgoingFlight> = new Map();
const EMPTY_IDS: Set<number> = new Set();
const EMPTY_QUEUE: QueuedDelivery[] = [];

/**
 * The server side of an MQTT session: subscriptions, packet ids, inflight messages in both
 * directions and the queue of messages waiting to be sent. It outlives a connection when the
 * client asked for a persistent session (CleanSession=0).
 */
export class Session {
  readonly clientId: string;
  /** CleanSession=0: kept after the connection closes. */
  persistent = false;
  /** Subscriptions by topic filter (allocated on first use: most connections are small). */
  subscriptions: Map<string, Subscription> = EMPTY_SUBSCRIPTIONS;
  /** QoS 1/2 messages sent and not yet acknowledged, in send order. */
  outflight: Map<number, OutgoingFlight> = EMPTY_OUTFLIGHT;
  /** Packet ids of QoS 2 messages received and awaiting PUBREL [MQTT-4.3.3-2]. */
  incomingQos2: Set<number> = EMPTY_IDS;
  /** The will of the current connection, published if it closes without DISCONNECT. */
  will: Will | undefined;
  /** Set while a connection is online. */
  link: SessionLink | undefined;
  /** Messages dropped because the queue was full. */
  droppedQueueFull = 0;

  private queue: QueuedDelivery[] = EMPTY_QUEUE;
  private queueHead = 0;
  private nextPacketId = 1;

  constructor(
    clientId: string,
    private readonly maxInflight: number,
    private readonly maxQueued: number,
  ) {
    this.clientId = clientId;
  }

  /** Adds or replaces a subscription in this session's own map. */
  setSubscription(subscription: Subscription): void {
    if (this.subscriptions === EMPTY_SUBSCRIPTIONS) this.subscriptions = new Map();
    this.subscriptions.set(subscription.topicFilter, subscription);
  }

  /** Removes a subscription; returns true when it existed. */
  deleteSubscription(topicFilter: string): boolean {
    return this.subscriptions !== EMPTY_SUBSCRIPTIONS && this.subscriptions.delete(topicFilter);
  }

  /** Records an incoming QoS 2 packet id; returns false when it was already awaiting PUBREL (a duplicate). */
  beginIncomingQos2(packetId: number): boolean {
    if (this.incomingQos2 === EMPTY_IDS) this.incomingQos2 = new Set();
    else if (this.incomingQos2.has(packetId)) return false;
    this.incomingQos2.add(packetId);
    return true;
  }

  /** Releases an incoming QoS 2 packet id on PUBREL. */
  releaseIncomingQos2(packetId: number): void {
    if (this.incomingQos2 !== EMPTY_IDS) this.incomingQos2.delete(packetId);
  }

  /** Number of messages waiting in the queue. */
  get queuedCount(): number {
    return this.queue.length - this.queueHead;
  }

  /**
   * Delivers a message at an already-resolved QoS: sends it if online and the inflight window
   * allows, queues QoS 1/2 otherwise (bounded), drops QoS 0 for an offline client.
   * Returns false when the message was dropped.
   */
  deliver(message: Message, qos: QoS, retain: boolean): boolean {
    const link = this.link;
    if (qos === 0) {
      if (link === undefined) return false;
      return link.sendPublish(message, 0, retain, 0, false);
    }
    if (link !== undefined && this.queueHead === this.queue.length && this.outflight.size < this.maxInflight) {
      this.sendFlight(link, message, qos, retain);
      return true;
    }
    if (this.queuedCount >= this.maxQueued) {
      this.droppedQueueFull++;
      return false;
    }
    if (this.queue === EMPTY_QUEUE) this.queue = [];
    this.queue.push({ message, qos, retain });
    return true;
  }

  /** Handles PUBACK (QoS 1) for `packetId`; returns false for an unknown id. */
  acknowledge(packetId: number): boolean {
    const flight = this.outflight.get(packetId);
    if (flight === undefined || flight.qos !== 1) return false;
    this.outflight.delete(packetId);
    this.drain();
    return true;
  }

  /** Handles PUBREC for `packetId`: moves the flight to the PUBREL stage and sends PUBREL. */
  received(packetId: number): boolean {
    const flight = this.outflight.get(packetId);
    if (flight === undefined || flight.qos !== 2) return false;
    flight.state = 'pubrel';
    this.link?.sendPubrel(packetId);
    return true;
  }

  /** Handles PUBCOMP for `packetId`: the QoS 2 flow is complete. */
  completed(packetId: number): boolean {
    const flight = this.outflight.get(packetId);
    if (flight === undefined || flight.state !== 'pubrel') return false;
    this.outflight.delete(packetId);
    this.drain();
    return true;
  }

  /**
   * Called when a connection takes the session: resends unacknowledged flights in order
   * (PUBLISH with DUP=1, or PUBREL) [MQTT-4.4.0-1], then drains the queue.
   */
  resume(link: SessionLink): void {
    this.link = link;
    for (const flight of this.outflight.values()) {
      if (flight.state === 'pubrel') link.sendPubrel(flight.packetId);
      else link.sendPublish(flight.message, flight.qos, flight.retain, flight.packetId, true);
    }
    this.drain();
  }

  /** Sends queued messages while the inflight window has room. */
  drain(): void {
    const link = this.link;
    if (link === undefined) return;
    while (this.queueHead < this.queue.length && this.outflight.size < this.maxInflight) {
      const next = this.queue[this.queueHead] as QueuedDelivery;
      this.queue[this.queueHead] = undefined as unknown as QueuedDelivery;
      this.queueHead++;
      if (next.qos === 0) link.sendPublish(next.message, 0, next.retain, 0, false);
      else this.sendFlight(link, next.message, next.qos, next.retain);
    }
    if (this.queueHead === this.queue.length) {
      this.queue = EMPTY_QUEUE;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Forgets everything (CleanSession=1 on connect, or the session ending). */
  clear(): void {
    this.subscriptions = EMPTY_SUBSCRIPTIONS;
    this.outflight = EMPTY_OUTFLIGHT;
    this.incomingQos2 = EMPTY_IDS;
    this.queue = EMPTY_QUEUE;
    this.queueHead = 0;
    this.will = undefined;
  }

  private sendFlight(link: SessionLink, message: Message, qos: 1 | 2, retain: boolean): void {
    const packetId = this.allocatePacketId();
    if (this.outflight === EMPTY_OUTFLIGHT) this.outflight = new Map();
    this.outflight.set(packetId, { packetId, message, qos, retain, state: 'publish' });
    link.sendPublish(message, qos, retain, packetId, false);
  }

  /** Next free non-zero packet id [MQTT-2.3.1-1]; the inflight window is far below 65535. */
  private allocatePacketId(): number {
    let id = this.nextPacketId;
    while (this.outflight.has(id)) id = id === 0xffff ? 1 : id + 1;
    this.nextPacketId = id === 0xffff ? 1 : id + 1;
    return id;
  }
}
