/** Rebuilding state from the store: at start-up, when a session arrives from another cluster node, when a dead node's sessions are adopted. */
import type { Message } from '../model/message.js';
import type { StoredRetained, StoredState } from '../persistence/types.js';
import { fromStoredMessage, type Journal } from './journal.js';
import type { RetainedMessages } from './retained.js';
import type { SessionLifecycle } from './session-lifecycle.js';
import type { SessionRegistry } from './sessions.js';
import type { SubscriptionIndex } from './subscription-index.js';

/** The parts a restore writes into. */
export interface RestoreTarget {
  readonly journal: Journal;
  readonly sessions: SessionRegistry;
  readonly index: SubscriptionIndex;
  readonly lifecycle: SessionLifecycle;
}

/**
 * Rebuilds stored sessions in memory: subscriptions, queued and inflight messages, QoS 2 ids,
 * pending wills, expiry. Message bodies are shared by the deliveries that hold them; bodies no
 * delivery holds, and expired queued deliveries, are deleted from the store. Returns the number of
 * messages restored.
 */
export function mergeState(state: StoredState, now: number, target: RestoreTarget): number {
  const { journal, sessions, index, lifecycle } = target;
  const byId = new Map<number, Message>();
  const adopted: Message[] = [];
  for (const stored of state.messages) {
    const message = fromStoredMessage(stored);
    byId.set(stored.id, message);
    journal.adoptMessage(message, stored.id);
    adopted.push(message);
  }
  for (const record of state.sessions) {
    const session = sessions.create(record.clientId);
    session.expiryInterval = record.expiryInterval;
    session.journal = journal;
    if (record.identity !== undefined) session.identity = { ...record.identity, username: record.identity.username, remoteAddress: record.identity.remoteAddress };
    for (const subscription of record.subscriptions) {
      session.setSubscription(subscription);
      index.subscribe(session, subscription);
    }
    lifecycle.restored(session, record, now);
    // Stored while connected (a crash, or a node that died): the absence counts from now.
    if (record.disconnectedAt === undefined) journal.putSession(session, now, record.pendingWill);
  }
  let messages = 0;
  for (const delivery of state.deliveries) {
    const session = sessions.get(delivery.clientId);
    const message = byId.get(delivery.messageId);
    const expired = delivery.state === 'queued' && message?.expiresAt !== undefined && now >= message.expiresAt;
    if (session === undefined || message === undefined || expired) {
      journal.push({ op: 'deleteDelivery', clientId: delivery.clientId, seq: delivery.seq });
      continue;
    }
    journal.adoptRef(message);
    session.restoreDelivery(delivery, message);
    messages++;
  }
  for (const { clientId, packetId } of state.incomingQos2) sessions.get(clientId)?.beginIncomingQos2(packetId);
  journal.collectUnreferenced(adopted);
  return messages;
}

/** Puts stored retained messages back, oldest first (so a drop-oldest limit keeps its order); expired ones are deleted. */
export function restoreRetained(stored: readonly StoredRetained[], now: number, journal: Journal | undefined, retained: RetainedMessages): void {
  for (const message of [...stored].sort(bySetOrder)) {
    if (journal !== undefined && message.seq !== undefined && message.seq > journal.retainedSeq) journal.retainedSeq = message.seq;
    if (message.expiresAt !== undefined && now >= message.expiresAt) journal?.push({ op: 'deleteRetained', topic: message.topic });
    else retained.set(fromStoredMessage(message));
  }
}

/** Retained messages oldest first. */
function bySetOrder(a: StoredRetained, b: StoredRetained): number {
  return (a.seq ?? a.receivedAt) - (b.seq ?? b.receivedAt);
}
