/** The server side of one MQTT session: subscriptions, packet ids, inflight messages both ways, the bounded queue, the will. */
import type { Message } from '../model/message.js';
import type { Subscription } from '../model/subscription.js';
import type { StoredDelivery } from '../persistence/types.js';
import type { QoS, Will } from '../protocol/types.js';
import { effectiveQos, liveRetain, plainRoute, SendResult, type OutgoingFlight, type QueuedDelivery, type Route, type SessionLink } from './delivery.js';

export { SendResult, type OutgoingFlight, type QueuedDelivery, type SessionLink } from './delivery.js';
import type { ClientIdentity } from './hooks.js';
import type { Journal } from './journal.js';

/** What to do when a session's queue is full: refuse the new message, or drop the oldest queued one. */
export type QueueFullPolicy = 'drop-new' | 'drop-oldest';

// Shared empty collections: a session allocates its own only when it first needs one, which keeps
// the memory of an idle connection small. They are never written to (see the methods below).
const EMPTY_SUBSCRIPTIONS: Map<string, Subscription> = new Map();
const EMPTY_OUTFLIGHT: Map<number, OutgoingFlight> = new Map();
const EMPTY_IDS: Set<number> = new Set();
const EMPTY_QUEUE: QueuedDelivery[] = [];

/** Session Expiry Interval meaning "never expires". */
export const NEVER_EXPIRES = 0xffff_ffff;

/**
 * The server side of an MQTT session. It outlives a connection when the session expiry interval is
 * not 0 (CleanSession=0 in 3.1.1). Changes that matter after a restart go to its `journal`.
 */
export class Session {
  readonly clientId: string;
  /** Seconds the session outlives its connection: 0 ends it with the connection. */
  expiryInterval = 0;
  /** When an offline session expires (ms since the epoch); Infinity while online or never. */
  expiresAt = Infinity;
  /** Subscriptions by topic filter (allocated on first use: most connections are small). */
  subscriptions: Map<string, Subscription> = EMPTY_SUBSCRIPTIONS;
  /** QoS 1/2 messages sent and not yet acknowledged, in send order. */
  outflight: Map<number, OutgoingFlight> = EMPTY_OUTFLIGHT;
  /** Packet ids of QoS 2 messages received and awaiting PUBREL [MQTT-4.3.3-2]. */
  incomingQos2: Set<number> = EMPTY_IDS;
  /** The will of the current connection, published if it closes without a normal DISCONNECT. */
  will: Will | undefined;
  /** Set while a connection is online. */
  link: SessionLink | undefined;
  /** Who the client of the last connection was (for delivery authorization while offline too). */
  identity: ClientIdentity | undefined;
  /** Unacknowledged QoS 1/2 messages we may send at once: ours, capped by the client's Receive Maximum. */
  inflightLimit: number;
  /** Messages dropped because the queue was full. */
  droppedQueueFull = 0;
  /** Where changes go to be persisted; set while the session is persistent and a store is configured. */
  journal: Journal | undefined;
  /**
   * In a cluster: the node this session moved to. Set on a stub left behind for a few seconds, which
   * forwards what is still routed here during the move.
   */
  movedTo: string | undefined;
  /** In a cluster, for a few seconds after the session arrived from another node: ids of the messages delivered to it (forwarded copies of them are dropped). */
  recentIds: Set<string> | undefined;

  private queue: QueuedDelivery[] = EMPTY_QUEUE;
  private queueHead = 0;
  private nextPacketId = 1;
  private nextSeq = 1;

  constructor(
    clientId: string,
    maxInflight: number,
    private readonly maxQueued: number,
    private readonly queueFullPolicy: QueueFullPolicy = 'drop-new',
  ) {
    this.clientId = clientId;
    this.inflightLimit = maxInflight;
  }

  /** True when the session survives its connection. */
  get persistent(): boolean {
    return this.expiryInterval !== 0;
  }

  /** Adds or replaces a subscription in this session's own map. */
  setSubscription(subscription: Subscription): void {
    if (this.subscriptions === EMPTY_SUBSCRIPTIONS) this.subscriptions = new Map();
    this.subscriptions.set(subscription.topicFilter, subscription);
  }

  /** Removes a subscription; returns it when it existed. */
  deleteSubscription(topicFilter: string): Subscription | undefined {
    const existing = this.subscriptions.get(topicFilter);
    if (existing !== undefined) this.subscriptions.delete(topicFilter);
    return existing;
  }

  /** Records an incoming QoS 2 packet id; returns false when it was already awaiting PUBREL (a duplicate). */
  beginIncomingQos2(packetId: number): boolean {
    if (this.incomingQos2 === EMPTY_IDS) this.incomingQos2 = new Set();
    else if (this.incomingQos2.has(packetId)) return false;
    this.incomingQos2.add(packetId);
    this.journal?.push({ op: 'putIncomingQos2', clientId: this.clientId, packetId });
    return true;
  }

  /** Releases an incoming QoS 2 packet id on PUBREL; returns false when it was unknown. */
  releaseIncomingQos2(packetId: number): boolean {
    if (this.incomingQos2 === EMPTY_IDS || !this.incomingQos2.delete(packetId)) return false;
    this.journal?.push({ op: 'deleteIncomingQos2', clientId: this.clientId, packetId });
    return true;
  }

  /** Number of messages waiting in the queue. */
  get queuedCount(): number {
    return this.queue.length - this.queueHead;
  }

  /**
   * Delivers a message through `route` at the effective QoS [MQTT-3.3.5-1]: sends it if online and
   * the inflight window allows, queues QoS 1/2 otherwise (bounded), drops QoS 0 for an offline
   * client. `retain` defaults to the live rule (Retain As Published). Returns false when dropped.
   */
  deliver(message: Message, route: Route, retain = liveRetain(message, route)): boolean {
    const link = this.link;
    const qos = effectiveQos(message, route);
    if (qos === 0) return link !== undefined && link.sendAtMostOnce(message, retain, route) === SendResult.sent;
    const journal = this.journal;
    if (link !== undefined && this.queueHead === this.queue.length && this.outflight.size < this.inflightLimit) {
      this.sendNew(link, message, qos, retain, route, journal === undefined ? undefined : this.record(journal, message));
      return true;
    }
    if (this.queuedCount >= this.maxQueued) {
      this.droppedQueueFull++;
      if (this.queueFullPolicy === 'drop-new' || this.queuedCount === 0) return false;
      // drop-oldest: the head of the queue makes room for the new message.
      const oldest = this.queue[this.queueHead] as QueuedDelivery;
      this.queue[this.queueHead] = undefined as unknown as QueuedDelivery;
      this.queueHead++;
      this.forget(oldest.seq, oldest.message);
    }
    if (this.queue === EMPTY_QUEUE) this.queue = [];
    const queued: QueuedDelivery = { message, qos, retain, route };
    if (journal !== undefined) {
      queued.seq = this.record(journal, message);
      journal.push({ op: 'putDelivery', delivery: storedDelivery(this.clientId, queued.seq, journal.refMessage(message), qos, retain, route, 'queued', undefined) });
      journal.unrefMessage(message); // record() already counted this holder
    }
    this.queue.push(queued);
    return true;
  }

  /** Reserves a stored position for a delivery of `message` (counting it as a holder of the body). */
  private record(journal: Journal, message: Message): number {
    journal.refMessage(message);
    return this.nextSeq++;
  }

  /** A stored delivery is over: delete it and let go of the message body. */
  private forget(seq: number | undefined, message: Message): void {
    const journal = this.journal;
    if (seq === undefined || journal === undefined) return;
    journal.push({ op: 'deleteDelivery', clientId: this.clientId, seq });
    journal.unrefMessage(message);
  }

  /** Ends a flight (acknowledged, refused, or never sendable) and lets the queue move. */
  private finish(flight: OutgoingFlight): void {
    this.outflight.delete(flight.packetId);
    this.forget(flight.seq, flight.message);
  }

  /** Handles PUBACK (QoS 1) for `packetId`; returns false for an unknown id. */
  acknowledge(packetId: number): boolean {
    const flight = this.outflight.get(packetId);
    if (flight === undefined || flight.qos !== 1) return false;
    this.finish(flight);
    this.drain();
    return true;
  }

  /**
   * Handles PUBREC for `packetId`: moves the flight to the PUBREL stage and sends PUBREL, or, with a
   * failure reason code (MQTT 5, >= 0x80), ends the flow [MQTT-4.3.3-4].
   */
  received(packetId: number, reasonCode = 0): boolean {
    const flight = this.outflight.get(packetId);
    if (flight === undefined || flight.qos !== 2 || flight.state !== 'publish') return false;
    if (reasonCode >= 0x80) {
      this.finish(flight);
      this.drain();
      return true;
    }
    flight.state = 'pubrel';
    this.persistFlight(flight);
    this.link?.sendPubrel(packetId, this.journal !== undefined && flight.seq !== undefined);
    return true;
  }

  /** Handles PUBCOMP for `packetId`: the QoS 2 flow is complete. */
  completed(packetId: number): boolean {
    const flight = this.outflight.get(packetId);
    if (flight === undefined || flight.state !== 'pubrel') return false;
    this.finish(flight);
    this.drain();
    return true;
  }

  /**
   * Called when a connection takes the session: resends unacknowledged flights in order
   * (PUBLISH with DUP=1, or PUBREL) [MQTT-4.4.0-1], then drains the queue.
   */
  resume(link: SessionLink): void {
    this.link = link;
    this.expiresAt = Infinity;
    for (const flight of this.outflight.values()) {
      if (flight.state === 'pubrel') link.sendPubrel(flight.packetId, false);
      // Discarded as if delivered [MQTT-3.1.2-25]: it must not hold an inflight slot.
      else if (link.sendFlight(flight, true, false) === SendResult.tooLarge) this.finish(flight);
    }
    this.drain();
  }

  /** Sends queued messages while the inflight window has room. */
  drain(): void {
    const link = this.link;
    if (link === undefined) return;
    while (this.queueHead < this.queue.length && this.outflight.size < this.inflightLimit) {
      const next = this.queue[this.queueHead] as QueuedDelivery;
      this.queue[this.queueHead] = undefined as unknown as QueuedDelivery;
      this.queueHead++;
      if (next.qos === 0) link.sendAtMostOnce(next.message, next.retain, next.route);
      else this.sendNew(link, next.message, next.qos, next.retain, next.route, next.seq);
    }
    if (this.queueHead === this.queue.length) {
      this.queue = EMPTY_QUEUE;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  /**
   * Removes and returns the unacknowledged and queued deliveries that came from shared subscriptions,
   * so they can go to another member of the group (this member went away).
   */
  takeSharedDeliveries(): QueuedDelivery[] {
    const out: QueuedDelivery[] = [];
    for (const flight of this.outflight.values()) {
      // [MQTT-4.8.2-4] [MQTT-4.8.2-5] a QoS 2 message is completed with the member it was sent to, never another.
      if (flight.route.shareKey === undefined || flight.qos === 2) continue;
      out.push({ message: flight.message, qos: flight.qos, retain: flight.retain, route: flight.route });
      this.finish(flight);
    }
    if (this.queuedCount > 0) {
      const kept: QueuedDelivery[] = [];
      for (let i = this.queueHead; i < this.queue.length; i++) {
        const queued = this.queue[i] as QueuedDelivery;
        if (queued.route.shareKey === undefined) kept.push(queued);
        else {
          this.forget(queued.seq, queued.message);
          out.push({ message: queued.message, qos: queued.qos, retain: queued.retain, route: queued.route });
        }
      }
      this.queue = kept.length === 0 ? EMPTY_QUEUE : kept;
      this.queueHead = 0;
    }
    return out;
  }

  /**
   * Lets go of the session in this process without touching its stored state (another cluster node
   * holds it now): message bodies are released, no stored delivery is deleted.
   */
  detach(): void {
    const journal = this.journal;
    if (journal !== undefined) {
      for (const flight of this.outflight.values()) if (flight.seq !== undefined) journal.unrefMessage(flight.message);
      for (let i = this.queueHead; i < this.queue.length; i++) {
        const queued = this.queue[i] as QueuedDelivery;
        if (queued.seq !== undefined) journal.unrefMessage(queued.message);
      }
    }
    this.journal = undefined;
    this.clear();
  }

  /** Forgets everything (Clean Start, or the session ending); stored records go with the session's own deletion. */
  clear(): void {
    if (this.journal !== undefined) {
      // Each stored delivery is deleted explicitly, in order after the writes that made it (the
      // session's own deletion cannot see writes of the same commit in every backend).
      for (const flight of this.outflight.values()) this.forget(flight.seq, flight.message);
      for (let i = this.queueHead; i < this.queue.length; i++) {
        const queued = this.queue[i] as QueuedDelivery;
        this.forget(queued.seq, queued.message);
      }
      for (const packetId of this.incomingQos2) this.journal.push({ op: 'deleteIncomingQos2', clientId: this.clientId, packetId });
    }
    this.subscriptions = EMPTY_SUBSCRIPTIONS;
    this.outflight = EMPTY_OUTFLIGHT;
    this.incomingQos2 = EMPTY_IDS;
    this.queue = EMPTY_QUEUE;
    this.queueHead = 0;
    this.will = undefined;
  }

  /** Sends a delivery for the first time, as a new flight with a fresh packet id. */
  private sendNew(link: SessionLink, message: Message, qos: 1 | 2, retain: boolean, route: Route, seq: number | undefined): void {
    if (this.outflight === EMPTY_OUTFLIGHT) this.outflight = new Map();
    const flight: OutgoingFlight = { packetId: this.allocatePacketId(), message, qos, retain, route, state: 'publish', seq };
    this.outflight.set(flight.packetId, flight);
    const result = link.sendFlight(flight, false, seq !== undefined);
    // Too large for the client, or expired: it will never be sent, so the flow is over.
    if (result === SendResult.tooLarge || result === SendResult.expired) this.finish(flight);
    else this.persistFlight(flight);
  }

  /** Stores a flight's state (packet id and stage), so a restart resends it the same way. */
  private persistFlight(flight: OutgoingFlight): void {
    const journal = this.journal;
    if (journal === undefined || flight.seq === undefined) return;
    const messageId = journal.refMessage(flight.message);
    journal.unrefMessage(flight.message);
    journal.push({ op: 'putDelivery', delivery: storedDelivery(this.clientId, flight.seq, messageId, flight.qos, flight.retain, flight.route, flight.state, flight.packetId) });
  }

  /** At start-up (or when the session arrives from another node): puts back a stored delivery, in stored order. */
  restoreDelivery(stored: StoredDelivery, message: Message): void {
    if (stored.seq >= this.nextSeq) this.nextSeq = stored.seq + 1;
    const route = plainRoute(stored.qos, stored.subscriptionIds, stored.shareKey);
    if (stored.state === 'queued' || stored.packetId === undefined || stored.qos === 0) {
      if (this.queue === EMPTY_QUEUE) this.queue = [];
      this.queue.push({ message, qos: stored.qos, retain: stored.retain, route, seq: stored.seq });
      return;
    }
    if (this.outflight === EMPTY_OUTFLIGHT) this.outflight = new Map();
    const state = stored.state === 'pubrel' ? 'pubrel' : 'publish';
    this.outflight.set(stored.packetId, { packetId: stored.packetId, message, qos: stored.qos, retain: stored.retain, route, state, seq: stored.seq });
    if (stored.packetId >= this.nextPacketId) this.nextPacketId = stored.packetId === 0xffff ? 1 : stored.packetId + 1;
  }

  /** Next free non-zero packet id [MQTT-2.3.1-1]; the inflight window is far below 65535. */
  private allocatePacketId(): number {
    let id = this.nextPacketId;
    while (this.outflight.has(id)) id = id === 0xffff ? 1 : id + 1;
    this.nextPacketId = id === 0xffff ? 1 : id + 1;
    return id;
  }
}

function storedDelivery(clientId: string, seq: number, messageId: number, qos: QoS, retain: boolean, route: Route, state: StoredDelivery['state'], packetId: number | undefined): StoredDelivery {
  const delivery: StoredDelivery = { clientId, seq, messageId, qos, retain, state };
  if (route.subscriptionIds !== undefined) delivery.subscriptionIds = [...route.subscriptionIds];
  if (route.shareKey !== undefined) delivery.shareKey = route.shareKey;
  if (packetId !== undefined) delivery.packetId = packetId;
  return delivery;
}
