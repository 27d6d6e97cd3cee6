/**
 * Access control managed at runtime: users, roles with their ACL rules, and bans, kept in the broker's
 * store (shared by every node of a cluster) with a copy in memory that the checks read. Every change is
 * checked before anything is written, written atomically, audited, and enforced on every node: a
 * deleted user's clients and newly banned clients are disconnected, rules apply at the next check.
 */
import { randomBytes } from 'node:crypto';
import type { ClientIdentity } from '../broker/hooks.js';
import type { Logger } from '../broker/logger.js';
import type { AccessChange, AccessKind, AccessRecords, AccessStore, AccessWrite, StoredAclRule, StoredBan, StoredRole, StoredUser } from '../persistence/types.js';
import { AccessAudit, SYSTEM, type Actor } from './access-audit.js';
import { AccessError } from './access-error.js';
import type { BanInput, RoleInput, UserInput, UserPatch } from './access-input.js';
import { AccessState } from './access-state.js';
import { normalAddress, addressList } from './bans.js';
import { formatPasswordHash, hashPassword } from './password-hash.js';

/** How access control acts on the broker's clients (built by server.ts from BrokerQuery). */
export interface AccessEnforcer {
  /** Disconnects the client with this id if it is connected here; returns whether it was. */
  disconnectClient(clientId: string): boolean;
  /** Disconnects the clients connected here under this user name; returns their client ids. */
  disconnectUser(username: string): string[];
  /** Disconnects the clients connected here from an address `matches` accepts; returns their client ids. */
  disconnectAddress(matches: (address: string) => boolean): string[];
}

/** A user as the API shows it (never its password hash). */
export interface UserView {
  username: string;
  roles: string[];
  acl: StoredAclRule[];
  createdAt: string;
  updatedAt: string;
}

/** A role as the API shows it, with the users that have it. */
export interface RoleView {
  name: string;
  acl: StoredAclRule[];
  users: string[];
  createdAt: string;
  updatedAt: string;
}

/** A ban as the API shows it. */
export interface BanView {
  id: string;
  clientId: string | null;
  username: string | null;
  address: string | null;
  until: string | null;
  reason: string | null;
  createdAt: string;
  createdBy: string;
}

/** How often expired bans and admin sessions are removed. */
const SWEEP_MS = 60_000;

const iso = (ms: number): string => new Date(ms).toISOString();

/** Users, roles and bans at runtime: the store, this node's copy, and the operations of the API. */
export class AccessControl {
  readonly state = new AccessState();
  readonly audit: AccessAudit;
  private enforcer: AccessEnforcer | undefined;
  private stopWatching: (() => void) | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Reloads in progress are chained, so a late one never overwrites a newer state. */
  private pending: Promise<void> = Promise.resolve();
  private accessStore: AccessStore | undefined;

  constructor(
    readonly logger: Logger,
    /** Whether a name belongs to a password file (such names cannot be runtime users). */
    private readonly inPasswordFile: (username: string) => boolean = () => false,
  ) {
    this.audit = new AccessAudit(logger);
  }

  /** The store the records live in (set by `start`). */
  get store(): AccessStore {
    if (this.accessStore === undefined) throw new AccessError('unavailable', 'access control has not started yet');
    return this.accessStore;
  }

  /**
   * Loads the records from `store` and follows its changes; sweeps expired bans and sessions every
   * minute. Before it, every check sees no user, role or ban (no client connects before it anyway).
   */
  async start(store: AccessStore): Promise<void> {
    this.accessStore = store;
    this.stopWatching = store.watch((changes) => this.follow(changes));
    this.state.replaceAll(await store.load());
    this.sweepTimer = setInterval(() => void this.sweep().catch((error: unknown) => this.logger.warn({ err: (error as Error).message }, 'access: sweep of expired bans and sessions failed')), SWEEP_MS);
    this.sweepTimer.unref();
    this.logger.info({ users: this.state.users.size, roles: this.state.roles.size, bans: this.state.bans.size, admins: this.state.admins.size }, 'access records loaded');
  }

  /** Lets access control disconnect clients (once the broker exists). */
  attach(enforcer: AccessEnforcer): void {
    this.enforcer = enforcer;
  }

  /** Stops following the store. */
  close(): void {
    this.stopWatching?.();
    clearInterval(this.sweepTimer);
  }

  /** Disconnects a client whose authenticated identity turned out to be banned (after CONNECT). */
  disconnectBanned(client: ClientIdentity): void {
    // After the CONNACK that is being sent now, not in the middle of accepting the connection.
    setImmediate(() => this.enforcer?.disconnectClient(client.clientId));
  }

  // ---- writes ----

  /** Writes atomically, then applies the records here at once (the watcher re-reads them too; both are idempotent). */
  async write(writes: readonly AccessWrite[]): Promise<void> {
    try {
      await this.store.write(writes);
    } catch (error) {
      throw new AccessError('unavailable', `the access store could not be written (${(error as Error).message}); nothing was changed`);
    }
    for (const w of writes) this.apply(w.kind, w.key, w.value);
  }

  // ---- users ----

  /** Users, by name, optionally those whose name contains `search`. */
  users(search = ''): UserView[] {
    const needle = search.toLowerCase();
    return [...this.state.users.values()].filter((u) => u.username.toLowerCase().includes(needle)).sort((a, b) => (a.username < b.username ? -1 : 1)).map(userView);
  }

  /** One user, or a not-found AccessError. */
  user(username: string): UserView {
    return userView(this.existing('user', username));
  }

  /** Creates a user (its roles must exist). */
  async createUser(actor: Actor, input: UserInput): Promise<UserView> {
    if (this.state.users.has(input.username)) throw new AccessError('conflict', `user "${input.username}" already exists`);
    if (this.inPasswordFile(input.username)) throw new AccessError('conflict', `user "${input.username}" is in the password file, which stays the source of that user`);
    this.checkRoles(input.roles);
    const passwordHash = formatPasswordHash(await hashPassword(input.password));
    // Checked again: another request may have created it while the password was being hashed.
    if (this.state.users.has(input.username)) throw new AccessError('conflict', `user "${input.username}" already exists`);
    const now = Date.now();
    const user: StoredUser = { username: input.username, passwordHash, roles: input.roles, acl: input.acl, createdAt: now, updatedAt: now };
    await this.write([{ kind: 'user', key: user.username, value: user }]);
    this.audit.record(actor, 'user.create', user.username, { roles: user.roles, rules: user.acl.length });
    return userView(user);
  }

  /** Changes a user's password, roles or rules (given fields only); rules apply at the clients' next check. */
  async updateUser(actor: Actor, username: string, patch: UserPatch): Promise<UserView> {
    const current = this.existing('user', username);
    if (patch.roles !== undefined) this.checkRoles(patch.roles);
    const user: StoredUser = { ...current, updatedAt: Date.now() };
    if (patch.password !== undefined) user.passwordHash = formatPasswordHash(await hashPassword(patch.password));
    if (patch.roles !== undefined) user.roles = patch.roles;
    if (patch.acl !== undefined) user.acl = patch.acl;
    await this.write([{ kind: 'user', key: username, value: user }]);
    this.audit.record(actor, 'user.update', username, { changed: Object.keys(patch), roles: user.roles, rules: user.acl.length });
    return userView(user);
  }

  /** Deletes a user; its connected clients are disconnected (on every node). */
  async deleteUser(actor: Actor, username: string): Promise<void> {
    this.existing('user', username);
    await this.write([{ kind: 'user', key: username, value: undefined }]);
    this.audit.record(actor, 'user.delete', username);
  }

  // ---- roles ----

  /** Roles, by name. */
  roles(): RoleView[] {
    return [...this.state.roles.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((role) => this.roleView(role));
  }

  /** One role, or a not-found AccessError. */
  role(name: string): RoleView {
    return this.roleView(this.existing('role', name));
  }

  /** Creates a role. */
  async createRole(actor: Actor, input: RoleInput): Promise<RoleView> {
    if (this.state.roles.has(input.name)) throw new AccessError('conflict', `role "${input.name}" already exists`);
    const now = Date.now();
    const role: StoredRole = { name: input.name, acl: input.acl, createdAt: now, updatedAt: now };
    await this.write([{ kind: 'role', key: role.name, value: role }]);
    this.audit.record(actor, 'role.create', role.name, { rules: role.acl.length });
    return this.roleView(role);
  }

  /** Replaces a role's rules. */
  async updateRole(actor: Actor, name: string, acl: StoredAclRule[]): Promise<RoleView> {
    const role: StoredRole = { ...this.existing('role', name), acl, updatedAt: Date.now() };
    await this.write([{ kind: 'role', key: name, value: role }]);
    this.audit.record(actor, 'role.update', name, { rules: acl.length });
    return this.roleView(role);
  }

  /** Deletes a role and takes it from every user that had it, in one write. */
  async deleteRole(actor: Actor, name: string): Promise<void> {
    this.existing('role', name);
    const now = Date.now();
    const holders = this.state.usersWithRole(name);
    const writes: AccessWrite[] = holders.map((username) => {
      const user = this.state.users.get(username)!;
      return { kind: 'user', key: username, value: { ...user, roles: user.roles.filter((r) => r !== name), updatedAt: now } };
    });
    writes.push({ kind: 'role', key: name, value: undefined });
    await this.write(writes);
    this.audit.record(actor, 'role.delete', name, { takenFrom: holders });
  }

  // ---- bans ----

  /** Bans in force (expired ones are left out), newest first. */
  bans(now = Date.now()): BanView[] {
    return [...this.state.bans.values()].filter((b) => b.until === undefined || b.until > now).sort((a, b) => b.createdAt - a.createdAt).map(banView);
  }

  /** Bans a client id, user name or address; matching clients are disconnected (on every node). */
  async createBan(actor: Actor, input: BanInput): Promise<BanView> {
    const ban: StoredBan = { id: randomBytes(6).toString('hex'), ...input, createdAt: Date.now(), createdBy: actor.name };
    await this.write([{ kind: 'ban', key: ban.id, value: ban }]);
    this.audit.record(actor, 'ban.create', ban.id, { clientId: ban.clientId, username: ban.username, address: ban.address, until: ban.until === undefined ? undefined : iso(ban.until), reason: ban.reason });
    return banView(ban);
  }

  /** Lifts a ban. */
  async deleteBan(actor: Actor, id: string): Promise<void> {
    const ban = this.existing('ban', id);
    await this.write([{ kind: 'ban', key: id, value: undefined }]);
    this.audit.record(actor, 'ban.delete', id, { clientId: ban.clientId, username: ban.username, address: ban.address });
  }

  // ---- following the store ----

  /** A change heard from the store (this node's or another's): the records are read again and applied. */
  private follow(changes: readonly AccessChange[] | 'all'): void {
    this.pending = this.pending
      .then(() => (changes === 'all' ? this.reload() : this.reread(changes)))
      .catch((error: unknown) => this.logger.warn({ err: (error as Error).message }, 'access: a change could not be read from the store; it applies after the next reload'));
  }

  private async reread(changes: readonly AccessChange[]): Promise<void> {
    const values = await Promise.all(changes.map(({ kind, key }) => this.store.get(kind, key)));
    changes.forEach(({ kind, key }, i) => this.apply(kind, key, values[i]));
  }

  /** Reads everything again (after missed changes) and applies what differs. */
  private async reload(): Promise<void> {
    const snapshot = await this.store.load();
    for (const kind of Object.keys(snapshot) as AccessKind[]) {
      const fresh = snapshot[kind] as Map<string, unknown>;
      const known = this.state.map(kind) as Map<string, unknown>;
      for (const key of [...known.keys()]) if (!fresh.has(key)) this.apply(kind, key, undefined);
      for (const [key, value] of fresh) if (JSON.stringify(known.get(key)) !== JSON.stringify(value)) this.apply(kind, key, value as AccessRecords[typeof kind]);
    }
  }

  /** Puts one record into this node's copy and enforces what it means for the clients here. */
  private apply<K extends AccessKind>(kind: K, key: string, value: AccessRecords[K] | undefined): void {
    const previous = this.state.set(kind, key, value);
    const enforcer = this.enforcer;
    if (enforcer === undefined) return;
    if (kind === 'user' && value === undefined && previous !== undefined) {
      const closed = enforcer.disconnectUser(key);
      if (closed.length > 0) this.logger.info({ username: key, clients: closed }, 'clients of a deleted user disconnected');
    }
    if (kind === 'ban' && value !== undefined && previous === undefined) this.enforceBan(value as StoredBan);
  }

  /** Disconnects the clients here that a new ban names. */
  private enforceBan(ban: StoredBan): void {
    if (ban.until !== undefined && ban.until <= Date.now()) return;
    let closed: string[] = [];
    if (ban.clientId !== undefined) {
      closed = this.enforcer!.disconnectClient(ban.clientId) ? [ban.clientId] : [];
    } else if (ban.username !== undefined) {
      closed = this.enforcer!.disconnectUser(ban.username);
    } else if (ban.address !== undefined) {
      const list = addressList(ban.address);
      closed = list === undefined ? [] : this.enforcer!.disconnectAddress((address) => {
        const normal = normalAddress(address);
        return normal !== undefined && list.check(normal.address, normal.family);
      });
    }
    this.logger.info({ ban: ban.id, clientId: ban.clientId, username: ban.username, address: ban.address, reason: ban.reason, clients: closed }, 'ban in force: matching clients disconnected');
  }

  /** Removes expired bans and admin sessions from the store. */
  async sweep(now = Date.now()): Promise<void> {
    const writes: AccessWrite[] = [];
    for (const ban of this.state.bans.values()) if (ban.until !== undefined && ban.until <= now) writes.push({ kind: 'ban', key: ban.id, value: undefined });
    for (const session of this.state.sessions.values()) if (session.expiresAt <= now) writes.push({ kind: 'session', key: session.id, value: undefined });
    if (writes.length === 0) return;
    await this.write(writes);
    for (const w of writes) if (w.kind === 'ban') this.audit.record(SYSTEM, 'ban.expire', w.key);
  }

  // ---- helpers ----

  /** The record, or a not-found AccessError naming it. */
  existing<K extends 'user' | 'role' | 'ban'>(kind: K, key: string): AccessRecords[K] {
    const record = this.state.map(kind).get(key);
    if (record === undefined) throw new AccessError('not-found', `no ${kind} "${key}"`);
    return record;
  }

  private checkRoles(roles: readonly string[]): void {
    const unknown = roles.filter((name) => !this.state.roles.has(name));
    if (unknown.length > 0) throw new AccessError('bad-request', `unknown role${unknown.length > 1 ? 's' : ''} ${unknown.map((r) => `"${r}"`).join(', ')}: create ${unknown.length > 1 ? 'them' : 'it'} first (POST /api/roles)`);
  }

  private roleView(role: StoredRole): RoleView {
    return { name: role.name, acl: role.acl, users: this.state.usersWithRole(role.name).sort(), createdAt: iso(role.createdAt), updatedAt: iso(role.updatedAt) };
  }
}

function userView(user: StoredUser): UserView {
  return { username: user.username, roles: user.roles, acl: user.acl, createdAt: iso(user.createdAt), updatedAt: iso(user.updatedAt) };
}

function banView(ban: StoredBan): BanView {
  return {
    id: ban.id,
    clientId: ban.clientId ?? null,
    username: ban.username ?? null,
    address: ban.address ?? null,
    until: ban.until === undefined ? null : iso(ban.until),
    reason: ban.reason ?? null,
    createdAt: iso(ban.createdAt),
    createdBy: ban.createdBy,
  };
}
