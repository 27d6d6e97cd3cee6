/** The in-memory store: the Persistence port with nothing surviving the process (tests, --store memory semantics). */
import { MemoryAccessStore } from './memory-access.js';
import type { Persistence, StoreOp, StoredDelivery, StoredMessage, StoredRecord, StoredRetained, StoredSession, StoredState } from './types.js';

/**
 * In-memory backend: everything is kept in maps and lost with the process. For tests, for users
 * who ask for it, and for simulating a restart inside one process (a new broker loading the same
 * instance).
 */
export class MemoryPersistence implements Persistence {
  readonly name = 'memory';
  /** Users, roles, bans and admins: kept with the rest, so a broker reloading this instance finds them. */
  readonly access = new MemoryAccessStore();
  private readonly sessions = new Map<string, StoredSession>();
  private readonly deliveries = new Map<string, StoredDelivery>();
  private readonly messages = new Map<number, StoredMessage>();
  private readonly incomingQos2 = new Set<string>();
  private readonly retained = new Map<string, StoredRetained>();
  private readonly records = new Map<string, StoredRecord>();

  load(): Promise<StoredState> {
    const deliveries = [...this.deliveries.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : a.seq - b.seq));
    return Promise.resolve(
      structuredClone({
        sessions: [...this.sessions.values()],
        deliveries,
        messages: [...this.messages.values()],
        incomingQos2: [...this.incomingQos2].map((key) => {
          const at = key.lastIndexOf('\u0000');
          return { clientId: key.slice(0, at), packetId: Number(key.slice(at + 1)) };
        }),
        retained: [...this.retained.values()],
        ...(this.records.size === 0 ? {} : { records: [...this.records.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, record]) => record) }),
      }),
    ).then(reviveBuffers);
  }

  apply(ops: readonly StoreOp[]): Promise<void> {
    for (const op of ops) {
      switch (op.op) {
        case 'putSession':
          this.sessions.set(op.session.clientId, op.session);
          break;
        case 'deleteSession': {
          this.sessions.delete(op.clientId);
          const prefix = `${op.clientId}\u0000`;
          for (const key of this.deliveries.keys()) if (key.startsWith(prefix)) this.deliveries.delete(key);
          for (const key of this.incomingQos2) if (key.startsWith(prefix)) this.incomingQos2.delete(key);
          break;
        }
        case 'putMessage':
          this.messages.set(op.message.id, op.message);
          break;
        case 'deleteMessage':
          this.messages.delete(op.id);
          break;
        case 'putDelivery':
          this.deliveries.set(`${op.delivery.clientId}\u0000${op.delivery.seq}`, op.delivery);
          break;
        case 'deleteDelivery':
          this.deliveries.delete(`${op.clientId}\u0000${op.seq}`);
          break;
        case 'putIncomingQos2':
          this.incomingQos2.add(`${op.clientId}\u0000${op.packetId}`);
          break;
        case 'deleteIncomingQos2':
          this.incomingQos2.delete(`${op.clientId}\u0000${op.packetId}`);
          break;
        case 'putRetained':
          this.retained.set(op.message.topic, op.message);
          break;
        case 'deleteRetained':
          this.retained.delete(op.topic);
          break;
        case 'putRecord':
          this.records.set(`${op.record.space}\u0000${op.record.key}`, { ...op.record, value: Buffer.from(op.record.value) });
          break;
        case 'deleteRecord':
          this.records.delete(`${op.space}\u0000${op.key}`);
          break;
      }
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** structuredClone turns Buffers into Uint8Arrays: make them Buffers again. */
function reviveBuffers(state: StoredState): StoredState {
  const fix = <T extends { payload: Uint8Array }>(m: T): T => {
    m.payload = Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
    if ('properties' in m) {
      const props = (m as { properties?: { correlationData?: Uint8Array } }).properties;
      if (props?.correlationData !== undefined) props.correlationData = Buffer.from(props.correlationData);
    }
    return m;
  };
  state.messages.forEach(fix);
  state.retained.forEach(fix);
  for (const record of state.records ?? []) record.value = Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
  for (const session of state.sessions) {
    const will = session.pendingWill?.will;
    if (will !== undefined) fix(will);
  }
  return state;
}
