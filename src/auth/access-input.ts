/**
 * Requests to change users, roles, bans and admins as they arrive (JSON from the REST API), checked and
 * turned into typed inputs. Anything unexpected — an unknown field, a wrong type, an invalid topic
 * filter, a weak password — is refused with an AccessError naming the field and what was expected,
 * before anything is written.
 */
import { isIP } from 'node:net';
import { validateTopicFilter } from '../protocol/topic.js';
import type { StoredAclRule, StoredAdmin } from '../persistence/types.js';
import { AccessError } from './access-error.js';
import { invalidUsername } from './password-file.js';
import { weakPassword } from './password-policy.js';

/** Most ACL rules one user or role holds. */
export const MAX_RULES = 1000;
/** Most roles one user has. */
export const MAX_ROLES_PER_USER = 100;
/** Longest ban reason, in characters. */
export const MAX_REASON_LENGTH = 500;
const ROLE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const ACCESS = ['read', 'write', 'readwrite', 'deny'] as const;

/** A new MQTT user. */
export interface UserInput {
  username: string;
  password: string;
  roles: string[];
  acl: StoredAclRule[];
}

/** Changes to a user: only the fields given change. */
export interface UserPatch {
  password?: string;
  roles?: string[];
  acl?: StoredAclRule[];
}

/** A new role, or a role's new rules. */
export interface RoleInput {
  name: string;
  acl: StoredAclRule[];
}

/** A new ban: exactly one of client id, user name, address. */
export interface BanInput {
  clientId?: string;
  username?: string;
  address?: string;
  until?: number;
  reason?: string;
}

/** A new admin. */
export interface AdminInput {
  username: string;
  password: string;
  role: StoredAdmin['role'];
}

/** Changes to an admin. */
export interface AdminPatch {
  password?: string;
  role?: StoredAdmin['role'];
}

function bad(message: string): AccessError {
  return new AccessError('bad-request', message);
}

/** Refuses fields other than `allowed` (a typo must not be silently ignored). */
function onlyFields(body: Readonly<Record<string, unknown>>, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw bad(`unknown field "${key}" in ${what} (expected ${allowed.join(', ')})`);
  }
}

function text(body: Readonly<Record<string, unknown>>, field: string, required: boolean): string | undefined {
  const value = body[field];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string') throw bad(`${field} must be a string${required ? ' (required)' : ''}`);
  return value;
}

/** A user name an MQTT client can give, or an AccessError. */
export function checkedUsername(value: unknown, field = 'username'): string {
  if (typeof value !== 'string') throw bad(`${field} must be a string (required)`);
  const problem = invalidUsername(value);
  if (problem !== undefined) throw bad(`${field}: ${problem}`);
  return value;
}

function password(body: Readonly<Record<string, unknown>>, username: string, required: boolean): string | undefined {
  const value = text(body, 'password', required);
  if (value === undefined) return undefined;
  const weak = weakPassword(value, username);
  if (weak !== undefined) throw bad(`password refused: ${weak}`);
  return value;
}

/** A role name: 1-64 of A-Z a-z 0-9 . _ - */
export function checkedRoleName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string' || !ROLE_NAME.test(value)) throw bad(`${field} must be 1-64 of A-Z a-z 0-9 . _ - (got ${JSON.stringify(value)})`);
  return value;
}

function roles(value: unknown): string[] {
  if (!Array.isArray(value)) throw bad('roles must be an array of role names');
  if (value.length > MAX_ROLES_PER_USER) throw bad(`roles: at most ${MAX_ROLES_PER_USER} roles`);
  const names = value.map((name: unknown, i) => checkedRoleName(name, `roles[${i}]`));
  return [...new Set(names)];
}

/** ACL rules `[{"topic", "access"}]`; `%u` and `%c` stand for the client's user name and client id. */
export function aclRules(value: unknown): StoredAclRule[] {
  if (!Array.isArray(value)) throw bad('acl must be an array of {"topic", "access"} rules');
  if (value.length > MAX_RULES) throw bad(`acl: at most ${MAX_RULES} rules`);
  return value.map((rule: unknown, i): StoredAclRule => {
    const where = `acl[${i}]`;
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) throw bad(`${where} must be an object {"topic", "access"}`);
    const fields = rule as Record<string, unknown>;
    onlyFields(fields, ['topic', 'access'], where);
    const topic = fields['topic'];
    const access = fields['access'];
    if (typeof topic !== 'string') throw bad(`${where}.topic must be a topic filter string`);
    try {
      validateTopicFilter(topic);
    } catch (error) {
      throw bad(`${where}.topic ${JSON.stringify(topic)} is not a valid topic filter: ${(error as Error).message}`);
    }
    if (typeof access !== 'string' || !(ACCESS as readonly string[]).includes(access)) throw bad(`${where}.access must be one of ${ACCESS.join(', ')} (got ${JSON.stringify(access)})`);
    return { topic, access: access as StoredAclRule['access'] };
  });
}

/** POST /api/users. */
export function userInput(body: Readonly<Record<string, unknown>>): UserInput {
  onlyFields(body, ['username', 'password', 'roles', 'acl'], 'a user');
  const username = checkedUsername(body['username']);
  return { username, password: password(body, username, true)!, roles: body['roles'] === undefined ? [] : roles(body['roles']), acl: body['acl'] === undefined ? [] : aclRules(body['acl']) };
}

/** PUT /api/users/{username}. */
export function userPatch(body: Readonly<Record<string, unknown>>, username: string): UserPatch {
  onlyFields(body, ['password', 'roles', 'acl'], 'a user change');
  const patch: UserPatch = {};
  const given = password(body, username, false);
  if (given !== undefined) patch.password = given;
  if (body['roles'] !== undefined) patch.roles = roles(body['roles']);
  if (body['acl'] !== undefined) patch.acl = aclRules(body['acl']);
  if (Object.keys(patch).length === 0) throw bad('nothing to change: give password, roles or acl');
  return patch;
}

/** POST /api/roles. */
export function roleInput(body: Readonly<Record<string, unknown>>): RoleInput {
  onlyFields(body, ['name', 'acl'], 'a role');
  return { name: checkedRoleName(body['name']), acl: body['acl'] === undefined ? [] : aclRules(body['acl']) };
}

/** PUT /api/roles/{name}: the role's rules, replaced. */
export function rolePatch(body: Readonly<Record<string, unknown>>): StoredAclRule[] {
  onlyFields(body, ['acl'], 'a role change');
  if (body['acl'] === undefined) throw bad('nothing to change: give acl');
  return aclRules(body['acl']);
}

/** Why `address` is not an IP address or CIDR range, or undefined. */
export function invalidAddress(address: string): string | undefined {
  const slash = address.indexOf('/');
  const ip = slash < 0 ? address : address.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return `"${ip}" is not an IPv4 or IPv6 address`;
  if (slash < 0) return undefined;
  const prefix = address.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `prefix length "/${prefix}" must be 0-${max}`;
  return undefined;
}

/** POST /api/bans. `until`: an ISO 8601 time or milliseconds since the epoch, in the future. */
export function banInput(body: Readonly<Record<string, unknown>>, now: number): BanInput {
  onlyFields(body, ['clientId', 'username', 'address', 'until', 'reason'], 'a ban');
  const targets = (['clientId', 'username', 'address'] as const).filter((field) => body[field] !== undefined);
  if (targets.length !== 1) throw bad(`a ban names exactly one of clientId, username, address (got ${targets.length === 0 ? 'none' : targets.join(' and ')})`);
  const ban: BanInput = {};
  const field = targets[0]!;
  const value = body[field];
  if (typeof value !== 'string' || value === '') throw bad(`${field} must be a non-empty string`);
  if (field === 'address') {
    const problem = invalidAddress(value);
    if (problem !== undefined) throw bad(`address: ${problem} (expected an address such as 192.0.2.7 or a CIDR range such as 10.0.0.0/8)`);
  } else if (Buffer.byteLength(value) > 65_535) {
    throw bad(`${field} is longer than 65535 bytes`);
  }
  ban[field] = value;
  const until = body['until'];
  if (until !== undefined) {
    const at = typeof until === 'number' ? until : typeof until === 'string' ? Date.parse(until) : Number.NaN;
    if (!Number.isFinite(at)) throw bad('until must be an ISO 8601 time (e.g. 2030-01-01T00:00:00Z) or milliseconds since the epoch');
    if (at <= now) throw bad(`until ${new Date(at).toISOString()} is not in the future`);
    ban.until = at;
  }
  const reason = text(body, 'reason', false);
  if (reason !== undefined) {
    if (reason.length > MAX_REASON_LENGTH) throw bad(`reason is longer than ${MAX_REASON_LENGTH} characters`);
    ban.reason = reason;
  }
  return ban;
}

function adminRole(value: unknown): StoredAdmin['role'] {
  if (value !== 'administrator' && value !== 'viewer') throw bad(`role must be "administrator" or "viewer" (got ${JSON.stringify(value)})`);
  return value;
}

/** POST /api/admins. */
export function adminInput(body: Readonly<Record<string, unknown>>): AdminInput {
  onlyFields(body, ['username', 'password', 'role'], 'an admin');
  const username = checkedUsername(body['username']);
  return { username, password: password(body, username, true)!, role: body['role'] === undefined ? 'administrator' : adminRole(body['role']) };
}

/** PUT /api/admins/{username}. */
export function adminPatch(body: Readonly<Record<string, unknown>>, username: string): AdminPatch {
  onlyFields(body, ['password', 'role'], 'an admin change');
  const patch: AdminPatch = {};
  const given = password(body, username, false);
  if (given !== undefined) patch.password = given;
  if (body['role'] !== undefined) patch.role = adminRole(body['role']);
  if (Object.keys(patch).length === 0) throw bad('nothing to change: give password or role');
  return patch;
}
