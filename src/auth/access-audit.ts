/** Audit of access changes: one log line per change (who, what, when) and the counts /metrics shows. */
import type { Logger } from '../broker/logger.js';

/** Who asks for a change, and what they may do. */
export interface Actor {
  /** Shown in the audit line: "admin:alice", "api-token", "loopback", "env", "system". */
  name: string;
  role: 'administrator' | 'viewer';
}

/** The actor of changes the broker makes by itself (expired bans and sessions). */
export const SYSTEM: Actor = { name: 'system', role: 'administrator' };

/** What happened: `user.create`, `ban.delete`, `admin.sign-in`… */
export type AuditAction = `${'user' | 'role' | 'ban' | 'admin'}.${'create' | 'update' | 'delete' | 'expire'}` | 'admin.sign-in' | 'admin.sign-in-failed' | 'admin.sign-out';

/** Counts since start, for /metrics. */
export class AccessStats {
  /** Changes by action. */
  readonly changes = new Map<AuditAction, number>();
  /** CONNECTs refused (or connections closed) because of a ban. */
  banned = 0;
}

/** Writes the audit log and counts. */
export class AccessAudit {
  readonly stats = new AccessStats();

  constructor(private readonly logger: Logger) {}

  /** One change: logged at info with `audit: true`, the actor, the action, the target and what changed (never a password). */
  record(actor: Actor, action: AuditAction, target: string, details: Record<string, unknown> = {}): void {
    this.stats.changes.set(action, (this.stats.changes.get(action) ?? 0) + 1);
    this.logger.info({ audit: true, actor: actor.name, action, target, at: new Date().toISOString(), ...details }, `audit: ${action} ${target} by ${actor.name}`);
  }
}
