/** The store operations of one event-loop turn (group commit), with message bodies reference-counted by their deliveries. */
import type { Message } from '../model/message.js';
import type { StoreOp, StoredMessage, StoredSession } from '../persistence/types.js';
import type { Session } from './session.js';

/**
 * Collects the changes to persist during one event-loop turn, as store operations. The broker
 * hands them to the store once per turn (group commit). Message bodies are stored once and
 * reference-counted by the deliveries that hold them.
 */
export class Journal {
  private ops: StoreOp[] = [];
  /** Marks of work outside the store (the cluster's writes) that the next commit carries. */
  private external = 0;
  private readonly stored = new Map<Message, { id: number; refs: number }>();
  private nextMessageId = 1;
  /** Order in which retained topics were set (kept across restarts, for a drop-oldest limit). */
  retainedSeq = 0;

  /** `onOps` is called when the first operation of a turn arrives (so the owner schedules a commit). */
  constructor(private readonly onOps: () => void) {}

  /** Operations waiting for the next commit. */
  get size(): number {
    return this.ops.length + this.external;
  }

  /** Takes the waiting operations (the caller commits them). */
  take(): StoreOp[] {
    const ops = this.ops;
    this.ops = [];
    this.external = 0;
    return ops;
  }

  /**
   * Records that the next commit carries work outside the store operations (cluster writes that
   * join the store's transaction): `size` grows, so an acknowledgement that depends on it waits.
   */
  markExternal(): void {
    if (this.size === 0) this.onOps();
    this.external++;
  }

  /** Records that a delivery now holds `message`; stores the body with the first holder. */
  refMessage(message: Message): number {
    let entry = this.stored.get(message);
    if (entry === undefined) {
      entry = { id: this.nextMessageId++, refs: 0 };
      this.stored.set(message, entry);
      this.add({ op: 'putMessage', message: toStoredMessage(message, entry.id) });
    }
    entry.refs++;
    return entry.id;
  }

  /** A delivery let go of `message`; the body is deleted with its last holder. */
  unrefMessage(message: Message): void {
    const entry = this.stored.get(message);
    if (entry === undefined) return;
    if (--entry.refs === 0) {
      this.stored.delete(message);
      this.add({ op: 'deleteMessage', id: entry.id });
    }
  }

  /** At start-up: a stored message re-read from the store, with its id (refs are added by restored deliveries). */
  adoptMessage(message: Message, id: number): void {
    this.stored.set(message, { id, refs: 0 });
    if (id >= this.nextMessageId) this.nextMessageId = id + 1;
  }

  /** At start-up: the id a restored message was stored with, counting one more holder. */
  adoptRef(message: Message): number | undefined {
    const entry = this.stored.get(message);
    if (entry === undefined) return undefined;
    entry.refs++;
    return entry.id;
  }

  /** After a restore: forgets restored `messages` that no delivery holds, deleting them from the store. */
  collectUnreferenced(messages: readonly Message[]): void {
    for (const message of messages) {
      const entry = this.stored.get(message);
      if (entry !== undefined && entry.refs === 0) {
        this.stored.delete(message);
        this.add({ op: 'deleteMessage', id: entry.id });
      }
    }
  }

  /** Appends a raw operation. */
  push(op: StoreOp): void {
    this.add(op);
  }

  private add(op: StoreOp): void {
    if (this.size === 0) this.onOps();
    this.ops.push(op);
  }

  /** Stores a session's own state (subscriptions, expiry, disconnect time, pending will). */
  putSession(session: Session, disconnectedAt?: number, pendingWill?: StoredSession['pendingWill']): void {
    const record: StoredSession = { clientId: session.clientId, expiryInterval: session.expiryInterval, subscriptions: [...session.subscriptions.values()] };
    if (disconnectedAt !== undefined) record.disconnectedAt = disconnectedAt;
    if (pendingWill !== undefined) record.pendingWill = pendingWill;
    if (session.identity !== undefined) record.identity = session.identity;
    this.add({ op: 'putSession', session: record });
  }

  /** Deletes a session with its deliveries and QoS 2 ids. */
  deleteSession(clientId: string): void {
    this.add({ op: 'deleteSession', clientId });
  }

  /** Stores a retained message, or deletes the topic's. */
  retained(message: Message): void {
    if (message.payload.length === 0) this.add({ op: 'deleteRetained', topic: message.topic });
    else {
      const { id: _id, ...record } = toStoredMessage(message, 0);
      this.add({ op: 'putRetained', message: { ...record, seq: ++this.retainedSeq } });
    }
  }
}

/** The stored form of a message. */
export function toStoredMessage(message: Message, id: number): StoredMessage {
  const stored: StoredMessage = {
    id,
    topic: message.topic,
    payload: message.payload,
    qos: message.qos,
    retain: message.retain,
    origin: message.origin,
    receivedAt: message.receivedAt,
  };
  if (message.properties !== undefined) stored.properties = message.properties;
  if (message.expiresAt !== undefined) stored.expiresAt = message.expiresAt;
  if (message.clusterId !== undefined) stored.clusterId = message.clusterId;
  return stored;
}

/** A message from its stored form. */
export function fromStoredMessage(stored: Omit<StoredMessage, 'id'>): Message {
  const message: Message = {
    topic: stored.topic,
    payload: stored.payload,
    qos: stored.qos,
    retain: stored.retain,
    origin: stored.origin,
    receivedAt: stored.receivedAt,
    clusterId: stored.clusterId,
  };
  if (stored.properties !== undefined) message.properties = stored.properties;
  if (stored.expiresAt !== undefined) message.expiresAt = stored.expiresAt;
  return message;
}
