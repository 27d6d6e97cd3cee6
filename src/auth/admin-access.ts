/**
 * Admins of the dashboard and the REST API: their accounts (hashed passwords, role administrator or
 * viewer), sign-in with a per-address back-off, and the sessions it opens (a cookie for the dashboard,
 * a bearer token for scripts). Sessions are access records too, so every node of a cluster knows them;
 * only the SHA-256 of a session's token is stored.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { StoredAdmin, StoredAdminSession, AccessWrite } from '../persistence/types.js';
import type { Actor } from './access-audit.js';
import type { AccessControl } from './access-control.js';
import { AccessError } from './access-error.js';
import { checkedUsername, type AdminInput, type AdminPatch } from './access-input.js';
import type { LoginBackoff } from './login-backoff.js';
import { DEFAULT_PBKDF2_ITERATIONS, formatPasswordHash, hashPassword, parsePasswordHash, verifyPassword, type PasswordHash } from './password-hash.js';
import { weakPassword } from './password-policy.js';

/** How long a dashboard session lasts. */
export const COOKIE_SESSION_MS = 12 * 60 * 60 * 1000;
/** Life of a bearer token from sign-in, unless asked otherwise. */
export const BEARER_DEFAULT_MS = 60 * 60 * 1000;
/** Longest life of a bearer token from sign-in. */
export const BEARER_MAX_MS = 30 * 24 * 60 * 60 * 1000;

/** An admin as the API shows it. */
export interface AdminView {
  username: string;
  role: StoredAdmin['role'];
  createdAt: string;
  updatedAt: string;
}

/** Who a signed-in request is. */
export interface AdminIdentity {
  username: string;
  role: StoredAdmin['role'];
  /** The session's id (SHA-256 of its token). */
  sessionId: string;
  kind: StoredAdminSession['kind'];
}

/** A session just opened: the token is shown once and never stored. */
export interface SignedIn {
  token: string;
  admin: AdminView;
  expiresAt: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const sessionId = (token: string): string => createHash('sha256').update(token).digest('hex');

function adminView(admin: StoredAdmin): AdminView {
  return { username: admin.username, role: admin.role, createdAt: iso(admin.createdAt), updatedAt: iso(admin.updatedAt) };
}

/** Admin accounts, sign-in and sessions, on the access records. */
export class AdminAccess {
  private readonly dummy: PasswordHash = { kind: 'pbkdf2-sha512', iterations: DEFAULT_PBKDF2_ITERATIONS, salt: Buffer.alloc(12), hash: Buffer.alloc(64) };

  constructor(
    private readonly access: AccessControl,
    private readonly backoff: LoginBackoff,
  ) {}

  /** How many admins exist (with none, the API is protected as before: token or loopback). */
  get count(): number {
    return this.access.state.admins.size;
  }

  /** Admins, by name. */
  admins(): AdminView[] {
    return [...this.access.state.admins.values()].sort((a, b) => (a.username < b.username ? -1 : 1)).map(adminView);
  }

  /** One admin, or a not-found AccessError. */
  admin(username: string): AdminView {
    return adminView(this.existing(username));
  }

  /** Creates an admin. */
  async createAdmin(actor: Actor, input: AdminInput): Promise<AdminView> {
    if (this.access.state.admins.has(input.username)) throw new AccessError('conflict', `admin "${input.username}" already exists`);
    const passwordHash = formatPasswordHash(await hashPassword(input.password));
    if (this.access.state.admins.has(input.username)) throw new AccessError('conflict', `admin "${input.username}" already exists`);
    const now = Date.now();
    const admin: StoredAdmin = { username: input.username, passwordHash, role: input.role, createdAt: now, updatedAt: now };
    await this.access.write([{ kind: 'admin', key: admin.username, value: admin }]);
    this.access.audit.record(actor, 'admin.create', admin.username, { role: admin.role });
    return adminView(admin);
  }

  /**
   * Changes an admin's password or role. A new password ends the admin's other sessions (`keep`: the
   * session making the change stays). The last administrator cannot become a viewer.
   */
  async updateAdmin(actor: Actor, username: string, patch: AdminPatch, keep?: string): Promise<AdminView> {
    const current = this.existing(username);
    if (patch.role === 'viewer' && current.role === 'administrator') this.keepOneAdministrator(username, 'become a viewer');
    const admin: StoredAdmin = { ...current, updatedAt: Date.now() };
    if (patch.password !== undefined) admin.passwordHash = formatPasswordHash(await hashPassword(patch.password));
    if (patch.role !== undefined) admin.role = patch.role;
    const writes: AccessWrite[] = [{ kind: 'admin', key: username, value: admin }];
    if (patch.password !== undefined) writes.push(...this.endSessions(username, keep));
    await this.access.write(writes);
    this.access.audit.record(actor, 'admin.update', username, { changed: Object.keys(patch), role: admin.role });
    return adminView(admin);
  }

  /** Deletes an admin and its sessions. The last administrator cannot be deleted. */
  async deleteAdmin(actor: Actor, username: string): Promise<void> {
    const current = this.existing(username);
    if (current.role === 'administrator') this.keepOneAdministrator(username, 'be deleted');
    await this.access.write([{ kind: 'admin', key: username, value: undefined }, ...this.endSessions(username)]);
    this.access.audit.record(actor, 'admin.delete', username);
  }

  /**
   * Checks an admin's password (an unknown name costs the same hash; refusals are delayed per address)
   * and opens a session: a cookie session, or a bearer token living `ttlMs`.
   */
  async signIn(username: string, password: string, remoteAddress: string | undefined, kind: StoredAdminSession['kind'], ttlMs = kind === 'cookie' ? COOKIE_SESSION_MS : BEARER_DEFAULT_MS): Promise<SignedIn> {
    const admin = this.access.state.admins.get(username);
    const hash = admin === undefined ? this.dummy : parsePasswordHash(admin.passwordHash);
    const ok = (await verifyPassword(hash, password)) && admin !== undefined;
    if (!ok) {
      this.access.audit.record({ name: `admin:${username}`, role: 'viewer' }, 'admin.sign-in-failed', username, { remote: remoteAddress });
      await this.backoff.refuse(remoteAddress, undefined);
      throw new AccessError('unauthorized', 'wrong admin name or password');
    }
    this.backoff.succeeded(remoteAddress);
    const token = randomBytes(32).toString('base64url');
    const now = Date.now();
    const session: StoredAdminSession = { id: sessionId(token), username, kind, createdAt: now, expiresAt: now + Math.min(ttlMs, BEARER_MAX_MS) };
    await this.access.write([{ kind: 'session', key: session.id, value: session }]);
    this.access.audit.record({ name: `admin:${username}`, role: admin.role }, 'admin.sign-in', username, { session: kind, remote: remoteAddress, expiresAt: iso(session.expiresAt) });
    return { token, admin: adminView(admin), expiresAt: session.expiresAt };
  }

  /** The admin a session token belongs to (its current role), or undefined for an unknown or expired token. */
  identify(token: string, now = Date.now()): AdminIdentity | undefined {
    const id = sessionId(token);
    const session = this.access.state.sessions.get(id);
    // The map lookup already matched the digest; the comparison keeps the check constant-time all the same.
    if (session === undefined || !timingSafeEqual(Buffer.from(session.id, 'hex'), Buffer.from(id, 'hex')) || session.expiresAt <= now) return undefined;
    const admin = this.access.state.admins.get(session.username);
    return admin === undefined ? undefined : { username: admin.username, role: admin.role, sessionId: id, kind: session.kind };
  }

  /** Ends the session of `token` (sign-out). */
  async signOut(identity: AdminIdentity): Promise<void> {
    await this.access.write([{ kind: 'session', key: identity.sessionId, value: undefined }]);
    this.access.audit.record({ name: `admin:${identity.username}`, role: identity.role }, 'admin.sign-out', identity.username, { session: identity.kind });
  }

  /**
   * The first administrator from the environment (STARLING_ADMIN_USER and STARLING_ADMIN_PASSWORD) when
   * no admin exists yet; returns what it did. A weak password or bad name throws (the broker does not start).
   */
  async firstAdminFromEnv(env: Readonly<Record<string, string | undefined>>): Promise<'created' | 'exists' | 'not-asked'> {
    const username = env['STARLING_ADMIN_USER'];
    const password = env['STARLING_ADMIN_PASSWORD'];
    if ((username === undefined || username === '') && (password === undefined || password === '')) return 'not-asked';
    if (username === undefined || username === '' || password === undefined) throw new Error('STARLING_ADMIN_USER and STARLING_ADMIN_PASSWORD go together: set both to create the first administrator');
    if (this.count > 0) return 'exists';
    try {
      checkedUsername(username, 'STARLING_ADMIN_USER');
    } catch (error) {
      throw new Error((error as Error).message, { cause: error });
    }
    const weak = weakPassword(password, username);
    if (weak !== undefined) throw new Error(`STARLING_ADMIN_PASSWORD refused: ${weak}`);
    await this.createAdmin({ name: 'env', role: 'administrator' }, { username, password, role: 'administrator' });
    return 'created';
  }

  private existing(username: string): StoredAdmin {
    const admin = this.access.state.admins.get(username);
    if (admin === undefined) throw new AccessError('not-found', `no admin "${username}"`);
    return admin;
  }

  private keepOneAdministrator(username: string, what: string): void {
    const others = [...this.access.state.admins.values()].filter((a) => a.role === 'administrator' && a.username !== username);
    if (others.length === 0) throw new AccessError('conflict', `"${username}" is the last administrator and cannot ${what}: add another administrator first`);
  }

  private endSessions(username: string, keep?: string): AccessWrite[] {
    const writes: AccessWrite[] = [];
    for (const session of this.access.state.sessions.values()) if (session.username === username && session.id !== keep) writes.push({ kind: 'session', key: session.id, value: undefined });
    return writes;
  }
}
