/**
 * Client session state that outlives a connection: packet identifiers, outbound QoS 1/2 flows
 * (inflight and waiting for send quota), inbound QoS 2 ids awaiting PUBREL, pending SUBSCRIBE /
 * UNSUBSCRIBE, and the subscriptions to restore when the server has lost the session.
 */
import type { Properties, PublishPacket, SubscribePacket, SubscriptionRequest, UnsubscribePacket } from '../protocol/index.js';

/** A promise's two settle functions. */
export interface Settle<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/** What a completed publish reports: the final ack's reason code (0 before MQTT 5) and properties. */
export interface PublishResult {
  reasonCode: number;
  properties?: Properties;
}

/** An outbound QoS 1/2 message: which ack it waits for next. */
export interface OutgoingFlow {
  packet: PublishPacket;
  /** 'ack': awaiting PUBACK (QoS 1) or PUBREC (QoS 2); 'pubcomp': PUBREL sent, awaiting PUBCOMP. */
  stage: 'ack' | 'pubcomp';
  /** Whether it was written on the current connection (else it waits for quota or a connection). */
  sent: boolean;
  settle: Settle<PublishResult>;
}

/** A SUBSCRIBE or UNSUBSCRIBE awaiting its ack. */
export interface PendingRequest {
  packet: SubscribePacket | UnsubscribePacket;
  settle: Settle<{ reasonCodes: number[]; properties?: Properties }>;
}

/** One subscription to restore after a reconnect that found no session. */
export interface StoredSubscription {
  request: SubscriptionRequest;
  properties: Properties | undefined;
}

/** The session state of one client id. */
export class Session {
  /** Outbound QoS 1/2 flows by packet id, in publish order. */
  readonly outgoing = new Map<number, OutgoingFlow>();
  /** Inbound QoS 2 packet ids delivered and awaiting PUBREL (duplicates are not delivered twice). */
  readonly incomingQos2 = new Set<number>();
  readonly requests = new Map<number, PendingRequest>();
  readonly subscriptions = new Map<string, StoredSubscription>();
  private nextId = 1;

  /** A free packet identifier (1..65535); undefined when all are taken. */
  allocateId(): number | undefined {
    for (let i = 0; i < 65_535; i++) {
      const id = this.nextId;
      this.nextId = id === 65_535 ? 1 : id + 1;
      if (!this.outgoing.has(id) && !this.requests.has(id)) return id;
    }
    return undefined;
  }

  /** Count of flows written on this connection and not complete: what the server's Receive Maximum limits. */
  sentCount = 0;

  /**
   * Forgets what the server forgot (Session Present 0): inbound QoS 2 ids; outbound flows are resent
   * fresh; every stored subscription becomes a pending SUBSCRIBE again (one per group of shared
   * properties), to be sent on the new connection.
   */
  resetForNewSession(): void {
    this.incomingQos2.clear();
    for (const group of this.subscriptionGroups()) {
      const id = this.allocateId();
      if (id === undefined) break;
      const packet: SubscribePacket = { type: 'subscribe', packetId: id, subscriptions: group.requests };
      if (group.properties !== undefined) packet.properties = group.properties;
      this.requests.set(id, { packet, settle: { resolve: () => undefined, reject: () => undefined } });
    }
  }

  /** Rejects every pending operation with `error` and clears the state. */
  failAll(error: Error): void {
    for (const flow of this.outgoing.values()) flow.settle.reject(error);
    for (const request of this.requests.values()) request.settle.reject(error);
    this.outgoing.clear();
    this.requests.clear();
    this.incomingQos2.clear();
    this.sentCount = 0;
  }

  /** Groups stored subscriptions that share properties, for one SUBSCRIBE each. */
  subscriptionGroups(): Array<{ requests: SubscriptionRequest[]; properties: Properties | undefined }> {
    const groups = new Map<Properties | undefined, SubscriptionRequest[]>();
    for (const s of this.subscriptions.values()) {
      const list = groups.get(s.properties);
      if (list === undefined) groups.set(s.properties, [s.request]);
      else list.push(s.request);
    }
    return [...groups].map(([properties, requests]) => ({ requests, properties }));
  }
}
