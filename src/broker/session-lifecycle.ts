/** Wills and session expiry: what happens to a session and its will when its connection ends, when it is resumed, when it expires. */
import type { ClusterBus } from '../cluster/types.js';
import type { StoredSession } from '../persistence/types.js';
import type { Will } from '../protocol/types.js';
import type { ClientIdentity, Hooks } from './hooks.js';
import type { Logger } from './logger.js';
import { createMessage } from './messages.js';
import { keepsWill, type CloseReason } from './outcomes.js';
import type { Router } from './router.js';
import { NEVER_EXPIRES, type Session } from './session.js';
import type { SessionRegistry } from './sessions.js';

/** A will waiting for its MQTT 5 Will Delay Interval. */
interface PendingWill {
  will: Will;
  clientId: string;
  /** When it is due (ms since the epoch). */
  at: number;
}

/** The clock of sessions and wills: delayed wills, offline sessions that expire. */
export class SessionLifecycle {
  private readonly expiring = new Set<Session>();
  private readonly pendingWills = new Map<Session, PendingWill>();

  constructor(
    private readonly sessions: SessionRegistry,
    private readonly router: Router,
    private readonly hooks: Hooks,
    private readonly logger: Logger,
    private readonly debugEnabled: boolean,
    private readonly bus: ClusterBus | undefined,
    private readonly pluginFailed: (plugin: string, error: unknown) => void,
  ) {}

  /** The connection of `session`'s client ended (`identity`: who it was): its will, and the session's fate. */
  disconnected(session: Session, identity: ClientIdentity | undefined, reason: CloseReason): void {
    const clientId = session.clientId;
    session.link = undefined;
    // Taken over, the client id stays claimed: it now belongs to the connection that took it [MQTT-3.1.4-2].
    this.bus?.clientOffline(clientId, session.persistent || reason === 'session-taken-over');
    if (identity !== undefined) this.hooks.disconnected(identity, reason, this.pluginFailed);
    const will = session.will;
    session.will = undefined;
    const now = Date.now();
    // [MQTT-3.1.2-8] the will is published when the connection closes without a normal DISCONNECT.
    // A server shutdown is no normal DISCONNECT either: the will goes out (to persistent sessions, which
    // keep it across the restart).
    if (will !== undefined && !keepsWill(reason)) {
      const delay = will.properties?.willDelayInterval ?? 0;
      if (delay === 0 || !session.persistent) this.publishWill(will, clientId);
      // MQTT 5 Will Delay Interval: sent at the earlier of the delay and the session's end [MQTT-3.1.3-9].
      else this.pendingWills.set(session, { will, clientId, at: now + Math.min(delay, session.expiryInterval) * 1000 });
    }
    // Messages this member of a shared group had not completed go to another member.
    this.router.handOn(session, false);
    if (!session.persistent) {
      // [MQTT-3.1.2-6] a clean session (Session Expiry 0) ends with its connection.
      this.sessions.discard(session);
      return;
    }
    session.journal?.putSession(session, now, this.storedWill(session));
    if (session.expiryInterval !== NEVER_EXPIRES) {
      session.expiresAt = now + session.expiryInterval * 1000;
      this.expiring.add(session);
    }
  }

  /** Ends a session now (Clean Start over it, expiry, an administrator): its pending will is published first. */
  ended(session: Session): void {
    const pending = this.pendingWills.get(session);
    if (pending !== undefined) {
      this.pendingWills.delete(session);
      this.publishWill(pending.will, pending.clientId);
    }
    this.expiring.delete(session);
    this.router.handOn(session, true);
    this.sessions.discard(session);
  }

  /** The session resumed: it no longer expires, and its delayed will is not sent [MQTT-3.1.3-9]. */
  resumed(session: Session): void {
    this.pendingWills.delete(session);
    this.expiring.delete(session);
  }

  /** The session leaves this process without ending (another cluster node holds it now). */
  forget(session: Session): void {
    this.pendingWills.delete(session);
    this.expiring.delete(session);
  }

  /** A stored session was loaded (start-up, or it arrived from another node): it expires, and its will waits, as stored. */
  restored(session: Session, record: StoredSession, now: number): void {
    // After a crash there is no disconnect time: count the session's absence from now.
    const since = record.disconnectedAt ?? now;
    if (record.expiryInterval !== NEVER_EXPIRES) {
      session.expiresAt = since + record.expiryInterval * 1000;
      this.expiring.add(session);
    }
    if (record.pendingWill !== undefined) this.pendingWills.set(session, { will: record.pendingWill.will, clientId: record.clientId, at: record.pendingWill.at });
  }

  /** The will waiting for `session`'s delay, as stored with the session. */
  storedWill(session: Session): StoredSession['pendingWill'] {
    const pending = this.pendingWills.get(session);
    return pending === undefined ? undefined : { will: pending.will, at: pending.at };
  }

  /**
   * The will of a client whose node died (or of this node's previous life). A client whose persistent
   * session is held here gets its Will Delay Interval, counted from now: the will waits, and is not
   * sent if the client resumes in time [MQTT-3.1.3-9].
   */
  orphanWill(clientId: string, will: Will): void {
    const delay = will.properties?.willDelayInterval ?? 0;
    const session = this.sessions.get(clientId);
    if (delay > 0 && session !== undefined && session.persistent && session.link === undefined) {
      const now = Date.now();
      const pending = { will, clientId, at: now + Math.min(delay, session.expiryInterval) * 1000 };
      this.pendingWills.set(session, pending);
      session.journal?.putSession(session, now, { will, at: pending.at });
      return;
    }
    this.publishWill(will, clientId);
  }

  /** Publishes the wills that are due and ends the sessions that expired. */
  sweep(now: number): void {
    for (const [session, pending] of this.pendingWills) {
      if (now < pending.at) continue;
      this.pendingWills.delete(session);
      this.publishWill(pending.will, pending.clientId);
    }
    for (const session of this.expiring) {
      if (session.link !== undefined) {
        this.expiring.delete(session);
        continue;
      }
      if (now < session.expiresAt) continue;
      if (this.debugEnabled) this.logger.debug({ clientId: session.clientId }, 'session expired');
      this.ended(session);
    }
  }

  private publishWill(will: Will, clientId: string): void {
    this.router.route(createMessage(will.topic, will.payload, will.qos, will.retain, will.properties, clientId, Date.now()));
  }
}
