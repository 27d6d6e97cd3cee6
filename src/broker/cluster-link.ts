/** The broker's side of the cluster: what the bus delivers here (messages, retained changes, session claims, adoptions, wills) and the claim a CONNECT makes. */
import type { ClusterBus, ClusterHandler } from '../cluster/types.js';
import type { Message } from '../model/message.js';
import type { StoredRetained, StoredState } from '../persistence/types.js';
import { topicMatches } from '../protocol/topic.js';
import type { QoS, Will } from '../protocol/types.js';
import type { ClientRegistry } from './clients.js';
import { plainRoute } from './delivery.js';
import { fromStoredMessage } from './journal.js';
import type { Logger } from './logger.js';
import { mergeState, restoreRetained, type RestoreTarget } from './restore.js';
import type { RetainedMessages } from './retained.js';
import type { Router } from './router.js';
import type { Session } from './session.js';
import { SessionMoves } from './session-moves.js';
import type { SessionRegistry } from './sessions.js';
import type { BrokerStats } from './stats.js';
import type { Turn } from './turn.js';

/** The parts of the broker the cluster link works with. */
export interface ClusterLinkParts extends RestoreTarget {
  readonly bus: ClusterBus;
  readonly clients: ClientRegistry;
  readonly sessions: SessionRegistry;
  readonly router: Router;
  readonly retained: RetainedMessages;
  readonly turn: Turn;
  readonly stats: BrokerStats;
  readonly logger: Logger;
}

/** Implements what the bus calls (ClusterHandler), and claims client ids for connections here. */
export class ClusterLink implements ClusterHandler {
  readonly bus: ClusterBus;
  private readonly moves: SessionMoves;

  constructor(private readonly parts: ClusterLinkParts) {
    this.bus = parts.bus;
    this.moves = new SessionMoves(parts.sessions, parts.index, parts.bus, parts.stats);
    parts.router.moves = this.moves;
    parts.index.onInterest = (key, added) => {
      if (added) parts.bus.addInterest(key);
      else parts.bus.removeInterest(key);
    };
  }

  /** Ends stubs and duplicate checks whose time is over (the broker's sweep). */
  sweep(now: number): void {
    this.moves.sweep(now);
  }

  /**
   * Before a connection takes `clientId` over: the node that holds the client lets go first, and its
   * stored session is loaded here. `clean`: the connection starts a session that ends with it (it
   * may be served while Redis is away).
   */
  async claimSession(clientId: string, clean: boolean): Promise<void> {
    const { bus, sessions, logger } = this.parts;
    if (clean && !bus.ready) {
      // Redis is away: a clean session has nothing stored, so it is served here, locally (its
      // ownership is not recorded: a connection with the same id on another node does not take it over).
      logger.warn({ clientId }, 'cluster: Redis unavailable; clean session accepted on this node only');
      return;
    }
    // Until the session has arrived, deliveries for it (routed here, or forwarded by the node it
    // leaves) are held, not lost.
    const held = this.moves.beginClaim(clientId);
    try {
      const state = await bus.claimSession(clientId, sessions.get(clientId) === undefined, clean);
      let arrived: Session | undefined;
      if (state !== undefined && state.sessions.length > 0 && sessions.get(clientId) === undefined) {
        mergeState(state, Date.now(), this.parts);
        arrived = sessions.get(clientId);
      }
      // A stub left here when the session last moved away is no longer needed.
      this.moves.removeStub(clientId);
      if (arrived !== undefined) {
        // Copies of messages routed both to the node it left and here are recognised by their ids.
        const seen = new Set<string>();
        for (const message of state!.messages) if (message.clusterId !== undefined) seen.add(message.clusterId);
        this.moves.arrived(arrived, seen);
      }
      const session = sessions.get(clientId);
      // Taken out of the list: another claim of the same id still running must not deliver them again.
      const deliveries = session === undefined ? [] : held.splice(0);
      for (const d of deliveries) this.parts.router.deliverTo(session!, d.message, d.route, d.retain);
      // Its subscriptions are announced to the other nodes before CONNACK, so messages published
      // elsewhere after CONNACK reach the session.
      if (arrived !== undefined || deliveries.length > 0) await this.parts.turn.settle();
    } finally {
      this.moves.endClaim(clientId);
    }
  }

  /** ClusterHandler: a message published on another node, for subscribers here. */
  deliverFromCluster(message: Message, groups: readonly string[], only?: ReadonlySet<string>, except?: Pick<ReadonlySet<string>, 'has'>): void {
    this.parts.router.fromCluster(message, groups, only, except);
  }

  /** ClusterHandler: a delivery forwarded by the node `clientId`'s session just left. */
  deliverTargeted(clientId: string, message: Message, qos: QoS, retain: boolean, subscriptionIds: number[] | undefined): void {
    const route = plainRoute(qos, subscriptionIds);
    const session = this.parts.sessions.get(clientId);
    if (session === undefined) {
      // Forwarded before the session finished arriving: held for it.
      this.moves.held(clientId)?.push({ message, route, retain });
      return;
    }
    // Routed by the subscriptions the session had where it came from: a session that started clean
    // there since (Clean Start / CleanSession=1 on its new node), or that unsubscribed, no longer wants it.
    if (!subscribedTo(session, message.topic)) return;
    if (!this.parts.router.mayReceive(session, message.topic)) return;
    this.moves.deliver(session, message, route, retain);
  }

  /** ClusterHandler: another node claims `clientId`: close it here, keep its stored state for that node. */
  async releaseSession(clientId: string, toNode: string): Promise<void> {
    const { clients, sessions, lifecycle, logger } = this.parts;
    const connection = clients.get(clientId);
    // [MQTT-3.1.4-2] the existing connection of a client id connecting elsewhere is closed (0x8E).
    if (connection !== undefined) {
      logger.info({ clientId, remote: connection.info.remoteAddress }, 'session taken over by a connection on another node');
      connection.close('session-taken-over');
    }
    const session = sessions.get(clientId);
    if (session !== undefined) {
      // Messages routed here until every node knows the session moved follow it (the stub takes the
      // subscriptions over first, so this node's routes never lapse meanwhile).
      const subscriptions = [...session.subscriptions.values()];
      if (subscriptions.length > 0) this.moves.leaveStub(clientId, toNode, subscriptions, session.identity);
      lifecycle.forget(session);
      this.moves.left(session);
      sessions.detach(session);
    }
    await this.parts.turn.settle();
  }

  /**
   * ClusterHandler: a dead node's sessions, now held here. Until every node has dropped the dead
   * node's routes, a message can reach an adopted session twice (routed here directly, and replayed
   * from the dead node's stream): copies are recognised by their cluster ids, as after a move.
   */
  adoptSessions(state: StoredState): void {
    mergeState(state, Date.now(), this.parts);
    const seen = new Set<string>();
    for (const message of state.messages) if (message.clusterId !== undefined) seen.add(message.clusterId);
    for (const record of state.sessions) {
      const session = this.parts.sessions.get(record.clientId);
      if (session !== undefined) this.moves.arrived(session, new Set(seen));
    }
  }

  /** ClusterHandler: the will of a client whose node died (or of this node's previous life). */
  publishOrphanWill(clientId: string, will: Will): void {
    this.parts.lifecycle.orphanWill(clientId, will);
  }

  /** ClusterHandler: a retained message set or cleared on another node (already in the shared store). */
  retainedFromCluster(message: StoredRetained | { topic: string; cleared: true }): void {
    if ('cleared' in message) this.parts.retained.delete(message.topic);
    else this.parts.retained.set(fromStoredMessage(message));
  }

  /** ClusterHandler: the cluster's retained messages replace this node's copy ($SYS, this node's own, stays). */
  replaceRetained(messages: readonly StoredRetained[]): void {
    const retained = this.parts.retained;
    for (const message of retained.all()) if (!message.topic.startsWith('$SYS/')) retained.delete(message.topic);
    restoreRetained(messages, Date.now(), undefined, retained);
  }

  /** ClusterHandler: the cluster's writes join the next commit. */
  requestCommit(): void {
    this.parts.journal.markExternal();
  }

  /** ClusterHandler: resolves once everything changed so far is committed. */
  settle(): Promise<void> {
    return this.parts.turn.settle();
  }

  /** ClusterHandler: declared dead while cut off; every client and session here is someone else's now. */
  fenced(): void {
    const { sessions, lifecycle, clients, journal } = this.parts;
    this.moves.clear();
    for (const session of [...sessions.values()]) {
      lifecycle.forget(session);
      sessions.detach(session);
    }
    journal.take();
    for (const connection of clients.all()) connection.close('server-shutdown');
  }
}

/** `session` has a subscription (plain, or shared by its inner filter) that matches `topic`. */
function subscribedTo(session: Session, topic: string): boolean {
  for (const subscription of session.subscriptions.values()) if (topicMatches(subscription.matchFilter, topic)) return true;
  return false;
}
