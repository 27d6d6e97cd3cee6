/**
 * The hub's copy of the stored state of a worker group: every persistent session with its deliveries,
 * message bodies and QoS 2 ids, the retained messages, and the hub's own records (client-id owners,
 * wills of connected clients, the per-worker inboxes). Each worker numbers message bodies its own way;
 * here they get one id space, and a body is kept while a worker holds it or a delivery refers to it.
 */
import { deserialize, serialize } from 'node:v8';
import type { StoreOp, StoredDelivery, StoredMessage, StoredRecord, StoredRetained, StoredSession, StoredState } from '../../persistence/types.js';
import type { Will } from '../../protocol/types.js';

/** Record spaces of the hub in the store. */
const OWNER = 'owner';
const WILL = 'will';
const INBOX = 'inbox';

/** A message body as the hub keeps it: who holds it and how many stored deliveries refer to it. */
interface Body {
  message: StoredMessage;
  /** Ids workers know the body by (each worker's journal holds it under its own ids). */
  holds: number;
  deliveries: number;
}

/** An inbox entry: an envelope (or a batch) for one worker, kept until its commit acknowledges it. */
export interface InboxEntry {
  seq: number;
  data: Buffer;
}

/** Stored state of the whole group, mirrored in memory, and the translation of each worker's message ids. */
export class HubState {
  private readonly sessions = new Map<string, StoredSession>();
  private readonly deliveries = new Map<string, Map<number, StoredDelivery>>();
  private readonly bodies = new Map<number, Body>();
  private readonly qos2 = new Map<string, Set<number>>();
  private readonly retainedByTopic = new Map<string, StoredRetained>();
  /** Client id → the worker holding its persistent session. */
  readonly owners = new Map<string, string>();
  /** Client id → the worker it is connected to and its will (published if that worker dies). */
  private readonly wills = new Map<string, { node: string; will: Will }>();
  private readonly inboxes = new Map<string, Map<number, Buffer>>();
  /** Per worker: its id of a body → the hub's. */
  private readonly idMaps = new Map<string, Map<number, number>>();
  private nextId = 1;
  private nextLoaded = new Map<string, number>();
  private nextSeq = 1;

  /** Rebuilds the mirror from what the store loaded; returns the operations that drop bodies no delivery refers to. */
  static fromStored(state: StoredState): { hub: HubState; cleanup: StoreOp[] } {
    const hub = new HubState();
    for (const message of state.messages) {
      hub.bodies.set(message.id, { message, holds: 0, deliveries: 0 });
      if (message.id >= hub.nextId) hub.nextId = message.id + 1;
    }
    for (const session of state.sessions) hub.sessions.set(session.clientId, session);
    const cleanup: StoreOp[] = [];
    for (const delivery of state.deliveries) {
      const body = hub.bodies.get(delivery.messageId);
      if (body === undefined || !hub.sessions.has(delivery.clientId)) {
        cleanup.push({ op: 'deleteDelivery', clientId: delivery.clientId, seq: delivery.seq });
        continue;
      }
      body.deliveries++;
      hub.deliveriesOf(delivery.clientId).set(delivery.seq, delivery);
    }
    for (const { clientId, packetId } of state.incomingQos2) hub.qos2Of(clientId).add(packetId);
    for (const retained of state.retained) hub.retainedByTopic.set(retained.topic, retained);
    for (const record of state.records ?? []) hub.loadRecord(record);
    for (const [id, body] of hub.bodies) {
      if (body.deliveries > 0) continue;
      hub.bodies.delete(id);
      cleanup.push({ op: 'deleteMessage', id });
    }
    return { hub, cleanup };
  }

  private loadRecord(record: StoredRecord): void {
    if (record.space === OWNER) this.owners.set(record.key, record.value.toString());
    else if (record.space === WILL) this.wills.set(record.key, deserialize(record.value) as { node: string; will: Will });
    else if (record.space === INBOX) {
      const slash = record.key.lastIndexOf('/');
      const seq = Number(record.key.slice(slash + 1));
      this.inboxOf(record.key.slice(0, slash)).set(seq, record.value);
      if (seq >= this.nextSeq) this.nextSeq = seq + 1;
    }
  }

  /** Persistent sessions held by no worker of `nodes` (a new group, or fewer workers than before). */
  unowned(nodes: ReadonlySet<string>): string[] {
    const out: string[] = [];
    for (const clientId of this.sessions.keys()) {
      const owner = this.owners.get(clientId);
      if (owner === undefined || !nodes.has(owner)) out.push(clientId);
    }
    return out;
  }

  /** The retained messages. */
  retained(): StoredRetained[] {
    return [...this.retainedByTopic.values()];
  }

  /** Client ids whose persistent session `node` holds. */
  ownedBy(node: string): string[] {
    const out: string[] = [];
    for (const [clientId, owner] of this.owners) if (owner === node && this.sessions.has(clientId)) out.push(clientId);
    return out;
  }

  /** True if a persistent session is stored for `clientId`. */
  hasSession(clientId: string): boolean {
    return this.sessions.has(clientId);
  }

  /** Stored sessions, for the per-worker counts. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  // ---- a worker's commit ----

  /**
   * Applies `node`'s operations to the mirror and returns them in the hub's id space (with the owner
   * records a put or deleted session implies), ready for the store.
   */
  applyOps(node: string, ops: readonly StoreOp[], out: StoreOp[]): void {
    const ids = this.idsOf(node);
    for (const op of ops) {
      switch (op.op) {
        case 'putMessage': {
          if (ids.has(op.message.id)) break;
          const id = this.nextId++;
          ids.set(op.message.id, id);
          const message = { ...op.message, id };
          this.bodies.set(id, { message, holds: 1, deliveries: 0 });
          out.push({ op: 'putMessage', message });
          break;
        }
        case 'deleteMessage': {
          const id = ids.get(op.id);
          if (id === undefined) break;
          ids.delete(op.id);
          this.unhold(id, out);
          break;
        }
        case 'putDelivery': {
          const id = ids.get(op.delivery.messageId);
          if (id === undefined) break;
          const delivery = { ...op.delivery, messageId: id };
          const previous = this.deliveriesOf(delivery.clientId).get(delivery.seq);
          this.deliveriesOf(delivery.clientId).set(delivery.seq, delivery);
          const body = this.bodies.get(id);
          if (body !== undefined) body.deliveries++;
          if (previous !== undefined) this.unrefDelivery(previous, out);
          out.push({ op: 'putDelivery', delivery });
          break;
        }
        case 'deleteDelivery': {
          const previous = this.deliveries.get(op.clientId)?.get(op.seq);
          out.push(op);
          if (previous === undefined) break;
          this.deliveries.get(op.clientId)!.delete(op.seq);
          this.unrefDelivery(previous, out);
          break;
        }
        case 'putSession':
          this.sessions.set(op.session.clientId, op.session);
          out.push(op);
          if (this.owners.get(op.session.clientId) !== node) this.setOwner(op.session.clientId, node, out);
          break;
        case 'deleteSession':
          this.deleteSession(node, op.clientId, out);
          break;
        case 'putIncomingQos2':
          this.qos2Of(op.clientId).add(op.packetId);
          out.push(op);
          break;
        case 'deleteIncomingQos2':
          this.qos2.get(op.clientId)?.delete(op.packetId);
          out.push(op);
          break;
        case 'putRetained':
          this.retainedByTopic.set(op.message.topic, op.message);
          out.push(op);
          break;
        case 'deleteRetained':
          this.retainedByTopic.delete(op.topic);
          out.push(op);
          break;
        case 'putRecord':
        case 'deleteRecord':
          // Records are the hub's own; a worker does not write them.
          break;
      }
    }
  }

  private deleteSession(node: string, clientId: string, out: StoreOp[]): void {
    out.push({ op: 'deleteSession', clientId });
    this.sessions.delete(clientId);
    this.qos2.delete(clientId);
    const deliveries = this.deliveries.get(clientId);
    this.deliveries.delete(clientId);
    for (const delivery of deliveries?.values() ?? []) this.unrefDelivery(delivery, out);
    if (this.owners.get(clientId) === node) {
      this.owners.delete(clientId);
      out.push({ op: 'deleteRecord', space: OWNER, key: clientId });
    }
  }

  private unrefDelivery(delivery: StoredDelivery, out: StoreOp[]): void {
    const body = this.bodies.get(delivery.messageId);
    if (body === undefined) return;
    body.deliveries--;
    this.collect(delivery.messageId, out);
  }

  /** Deletes a body nobody holds and no delivery refers to. */
  private collect(id: number, out: StoreOp[]): void {
    const body = this.bodies.get(id);
    if (body === undefined || body.holds > 0 || body.deliveries > 0) return;
    this.bodies.delete(id);
    out.push({ op: 'deleteMessage', id });
  }

  // ---- sessions handed to a worker ----

  /**
   * The stored sessions of `clientIds` for `node` (a start-up load or a claim), its bodies numbered
   * in `node`'s own way (negative ids, which a worker's journal never makes) and held by it.
   */
  stateFor(node: string, clientIds: Iterable<string>): StoredState {
    const state: StoredState = { sessions: [], deliveries: [], messages: [], incomingQos2: [], retained: [] };
    const ids = this.idsOf(node);
    const local = new Map<number, number>();
    let next = this.nextLoaded.get(node) ?? -1;
    for (const clientId of clientIds) {
      const session = this.sessions.get(clientId);
      if (session === undefined) continue;
      state.sessions.push(session);
      const deliveries = [...(this.deliveries.get(clientId)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
      for (const delivery of deliveries) {
        const body = this.bodies.get(delivery.messageId);
        if (body === undefined) continue;
        let id = local.get(delivery.messageId);
        if (id === undefined) {
          id = next--;
          local.set(delivery.messageId, id);
          ids.set(id, delivery.messageId);
          body.holds++;
          state.messages.push({ ...body.message, id });
        }
        state.deliveries.push({ ...delivery, messageId: id });
      }
      for (const packetId of this.qos2.get(clientId) ?? []) state.incomingQos2.push({ clientId, packetId });
    }
    this.nextLoaded.set(node, next);
    return state;
  }

  /**
   * A worker started again (a new process): what its previous process held (`resetIds`) is let go,
   * deleting bodies nobody holds any more. Called after handing it its sessions again.
   */
  forgetHolds(previous: Map<number, number>, out: StoreOp[]): void {
    for (const id of previous.values()) this.unhold(id, out);
  }

  private unhold(id: number, out: StoreOp[]): void {
    const body = this.bodies.get(id);
    if (body === undefined) return;
    body.holds--;
    this.collect(id, out);
  }

  /** Takes `node`'s id translation away (its process ended), leaving an empty one. */
  resetIds(node: string): Map<number, number> {
    const previous = this.idMaps.get(node) ?? new Map<number, number>();
    this.idMaps.set(node, new Map());
    this.nextLoaded.set(node, -1);
    return previous;
  }

  // ---- records: owners, wills, inboxes ----

  /** Records `node` as the holder of `clientId`'s session. */
  setOwner(clientId: string, node: string, out: StoreOp[]): void {
    this.owners.set(clientId, node);
    out.push({ op: 'putRecord', record: { space: OWNER, key: clientId, value: Buffer.from(node) } });
  }

  /** A client connected to `node` with a will (stored), or one whose will no longer applies (undefined). */
  setWill(node: string, clientId: string, will: Will | undefined, out: StoreOp[]): void {
    if (will === undefined) {
      const held = this.wills.get(clientId);
      if (held === undefined || held.node !== node) return;
      this.wills.delete(clientId);
      out.push({ op: 'deleteRecord', space: WILL, key: clientId });
      return;
    }
    this.wills.set(clientId, { node, will });
    out.push({ op: 'putRecord', record: { space: WILL, key: clientId, value: serialize({ node, will }) } });
  }

  /** Takes the wills of `node`'s clients (it died, or stopped without closing them). */
  takeWills(node: string, out: StoreOp[]): [string, Will][] {
    const taken: [string, Will][] = [];
    for (const [clientId, held] of this.wills) {
      if (held.node !== node) continue;
      taken.push([clientId, held.will]);
      this.wills.delete(clientId);
      out.push({ op: 'deleteRecord', space: WILL, key: clientId });
    }
    return taken;
  }

  /** Lets go of `clientId` if `node` holds it (its clean session ended). */
  release(node: string, clientId: string, out: StoreOp[]): void {
    if (this.owners.get(clientId) !== node) return;
    this.owners.delete(clientId);
    out.push({ op: 'deleteRecord', space: OWNER, key: clientId });
  }

  /** Adds `data` to `node`'s inbox; returns its entry. */
  addInbox(node: string, data: Buffer, out: StoreOp[]): InboxEntry {
    const seq = this.nextSeq++;
    this.inboxOf(node).set(seq, data);
    out.push({ op: 'putRecord', record: { space: INBOX, key: inboxKey(node, seq), value: data } });
    return { seq, data };
  }

  /** `node` acknowledged inbox entries (their deliveries are in the same commit). */
  ackInbox(node: string, seqs: readonly number[], out: StoreOp[]): void {
    const inbox = this.inboxes.get(node);
    for (const seq of seqs) {
      if (inbox?.delete(seq) !== true) continue;
      out.push({ op: 'deleteRecord', space: INBOX, key: inboxKey(node, seq) });
    }
  }

  /** Drops the inboxes of workers not in `nodes` (the group shrank); returns how many entries went. */
  dropInboxes(nodes: ReadonlySet<string>, out: StoreOp[]): number {
    let dropped = 0;
    for (const [node, inbox] of this.inboxes) {
      if (nodes.has(node)) continue;
      for (const seq of inbox.keys()) out.push({ op: 'deleteRecord', space: INBOX, key: inboxKey(node, seq) });
      dropped += inbox.size;
      this.inboxes.delete(node);
    }
    return dropped;
  }

  /** `node`'s unacknowledged inbox entries, oldest first. */
  inbox(node: string): InboxEntry[] {
    return [...(this.inboxes.get(node) ?? new Map<number, Buffer>())].sort(([a], [b]) => a - b).map(([seq, data]) => ({ seq, data }));
  }

  private idsOf(node: string): Map<number, number> {
    let ids = this.idMaps.get(node);
    if (ids === undefined) this.idMaps.set(node, (ids = new Map<number, number>()));
    return ids;
  }

  private deliveriesOf(clientId: string): Map<number, StoredDelivery> {
    let map = this.deliveries.get(clientId);
    if (map === undefined) this.deliveries.set(clientId, (map = new Map<number, StoredDelivery>()));
    return map;
  }

  private qos2Of(clientId: string): Set<number> {
    let set = this.qos2.get(clientId);
    if (set === undefined) this.qos2.set(clientId, (set = new Set()));
    return set;
  }

  private inboxOf(node: string): Map<number, Buffer> {
    let map = this.inboxes.get(node);
    if (map === undefined) this.inboxes.set(node, (map = new Map<number, Buffer>()));
    return map;
  }
}

/** Key of an inbox entry: the worker and a zero-padded sequence number (the store keeps them in order). */
function inboxKey(node: string, seq: number): string {
  return `${node}/${seq.toString().padStart(15, '0')}`;
}
