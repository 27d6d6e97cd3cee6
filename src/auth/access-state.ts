/** This node's copy of the access records (users, roles, bans, admins, sessions), kept in step with the store. */
import type { AccessKind, AccessRecords, AccessSnapshot, StoredAclRule, StoredAdmin, StoredAdminSession, StoredBan, StoredRole, StoredUser } from '../persistence/types.js';
import { BanList } from './bans.js';

/** The records in memory, with what the checks derive from them (the ban index, whether any rule exists, a generation per rule change). */
export class AccessState {
  readonly users = new Map<string, StoredUser>();
  readonly roles = new Map<string, StoredRole>();
  readonly bans = new Map<string, StoredBan>();
  readonly admins = new Map<string, StoredAdmin>();
  readonly sessions = new Map<string, StoredAdminSession>();
  /** Bumped whenever a user or role changes: compiled per-client rules older than it are rebuilt at the next check. */
  generation = 0;
  /** Whether any user or role holds a rule (else the runtime rules cost nothing per message). */
  anyRules = false;
  banList = new BanList([]);

  /** Puts (value) or deletes (undefined) one record; returns the previous one. */
  set<K extends AccessKind>(kind: K, key: string, value: AccessRecords[K] | undefined): AccessRecords[K] | undefined {
    const map = this.map(kind);
    const previous = map.get(key);
    if (value === undefined) map.delete(key);
    else map.set(key, value);
    this.derive(kind);
    return previous;
  }

  /** Replaces everything (start-up, or a reload after missed changes). */
  replaceAll(snapshot: AccessSnapshot): void {
    for (const kind of Object.keys(snapshot) as AccessKind[]) {
      const map = this.map(kind);
      map.clear();
      for (const [key, value] of snapshot[kind]) map.set(key, value);
      this.derive(kind);
    }
  }

  /** The map of one kind. */
  map<K extends AccessKind>(kind: K): Map<string, AccessRecords[K]> {
    const maps: { [T in AccessKind]: Map<string, AccessRecords[T]> } = { user: this.users, role: this.roles, ban: this.bans, admin: this.admins, session: this.sessions };
    return maps[kind];
  }

  /** A user's rules: its own, then its roles' (a role that no longer exists gives none). */
  rulesOf(username: string): readonly StoredAclRule[] | undefined {
    const user = this.users.get(username);
    if (user === undefined) return undefined;
    if (user.roles.length === 0) return user.acl;
    const rules = [...user.acl];
    for (const name of user.roles) rules.push(...(this.roles.get(name)?.acl ?? []));
    return rules;
  }

  /** The users that have `role`. */
  usersWithRole(role: string): string[] {
    const names: string[] = [];
    for (const user of this.users.values()) if (user.roles.includes(role)) names.push(user.username);
    return names;
  }

  private derive(kind: AccessKind): void {
    if (kind === 'ban') this.banList = new BanList(this.bans.values());
    if (kind !== 'user' && kind !== 'role') return;
    this.generation++;
    let any = false;
    for (const role of this.roles.values()) if (role.acl.length > 0) any = true;
    if (!any) for (const user of this.users.values()) if (user.acl.length > 0) any = true;
    this.anyRules = any;
  }
}
