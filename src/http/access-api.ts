/** REST routes of runtime access control: users, roles, bans, admins, and admin sign-in (docs/http-api.md). */
import type { Actor } from '../auth/access-audit.js';
import type { AccessControl } from '../auth/access-control.js';
import { adminInput, adminPatch, banInput, rolePatch, roleInput, userInput, userPatch } from '../auth/access-input.js';
import { BEARER_MAX_MS, COOKIE_SESSION_MS, type AdminAccess } from '../auth/admin-access.js';
import { ApiError, pageQuery, readJson } from './api.js';
import { SESSION_COOKIE, type Caller } from './api-auth.js';
import type { JsonReply, RouteContext, Router } from './router.js';

/** Largest body of an access request: a user or role with its rules. */
export const MAX_ACCESS_BODY_BYTES = 256 * 1024;

const created = (body: unknown): JsonReply => ({ status: 201, body });
const ok = (body: unknown): JsonReply => ({ status: 200, body });
const gone: JsonReply = { status: 204, body: undefined };

/** The caller of a route that needs one (every route here but sign-in). */
function actor(context: RouteContext): Actor {
  if (context.caller === undefined) throw new ApiError(401, 'unauthorized', 'sign in first');
  return context.caller.actor;
}

function body(context: RouteContext): Promise<Record<string, unknown>> {
  return readJson(context.request, MAX_ACCESS_BODY_BYTES);
}

/** A list as the other list routes answer it: one page, with the total. */
function paged<T>(items: T[], query: URLSearchParams): { items: T[]; total: number; page: number; limit: number } {
  const { page = 1, limit = 50 } = pageQuery(query);
  const size = Math.min(limit, 1000);
  return { items: items.slice((page - 1) * size, page * size), total: items.length, page, limit: size };
}

/** Registers /api/users, /api/roles, /api/bans, /api/admins and /api/auth on `router`. */
export function registerAccessRoutes(router: Router, access: AccessControl, admins: AdminAccess): void {
  router.on('GET', '/api/users', ({ query }) => ok(paged(access.users(query.get('search') ?? ''), query)));
  router.on('POST', '/api/users', async (c) => created(await access.createUser(actor(c), userInput(await body(c)))));
  router.on('GET', '/api/users/:username', ({ params }) => ok(access.user(params['username']!)));
  router.on('PUT', '/api/users/:username', async (c) => {
    const username = c.params['username']!;
    access.existing('user', username);
    return ok(await access.updateUser(actor(c), username, userPatch(await body(c), username)));
  });
  router.on('DELETE', '/api/users/:username', async (c) => {
    await access.deleteUser(actor(c), c.params['username']!);
    return gone;
  });

  router.on('GET', '/api/roles', ({ query }) => ok(paged(access.roles(), query)));
  router.on('POST', '/api/roles', async (c) => created(await access.createRole(actor(c), roleInput(await body(c)))));
  router.on('GET', '/api/roles/:name', ({ params }) => ok(access.role(params['name']!)));
  router.on('PUT', '/api/roles/:name', async (c) => {
    const name = c.params['name']!;
    access.existing('role', name);
    return ok(await access.updateRole(actor(c), name, rolePatch(await body(c))));
  });
  router.on('DELETE', '/api/roles/:name', async (c) => {
    await access.deleteRole(actor(c), c.params['name']!);
    return gone;
  });

  router.on('GET', '/api/bans', ({ query }) => ok(paged(access.bans(), query)));
  router.on('POST', '/api/bans', async (c) => created(await access.createBan(actor(c), banInput(await body(c), Date.now()))));
  router.on('GET', '/api/bans/:id', ({ params }) => {
    const ban = access.bans().find((b) => b.id === params['id']);
    if (ban === undefined) throw new ApiError(404, 'not-found', `no ban "${params['id']}" in force`);
    return ok(ban);
  });
  router.on('DELETE', '/api/bans/:id', async (c) => {
    await access.deleteBan(actor(c), c.params['id']!);
    return gone;
  });

  router.on('GET', '/api/admins', ({ query }) => ok(paged(admins.admins(), query)));
  router.on('POST', '/api/admins', async (c) => created(await admins.createAdmin(actor(c), adminInput(await body(c)))));
  router.on('GET', '/api/admins/:username', ({ params }) => ok(admins.admin(params['username']!)));
  router.on('PUT', '/api/admins/:username', async (c) => {
    const username = c.params['username']!;
    admins.admin(username);
    const patch = adminPatch(await body(c), username);
    const caller = c.caller!;
    // A viewer reaches this route only for itself (ApiGuard.permit), and only to change its password.
    if (caller.actor.role === 'viewer' && patch.role !== undefined) throw new ApiError(403, 'forbidden', 'a viewer cannot change its own role');
    return ok(await admins.updateAdmin(caller.actor, username, patch, caller.admin?.sessionId));
  });
  router.on('DELETE', '/api/admins/:username', async (c) => {
    await admins.deleteAdmin(actor(c), c.params['username']!);
    return gone;
  });

  router.on('POST', '/api/auth/login', async ({ request, response }) => signIn(admins, await readJson(request, MAX_ACCESS_BODY_BYTES), request.socket.remoteAddress, response));
  router.on('POST', '/api/auth/logout', async ({ caller, response }) => {
    const admin = (caller as Caller).admin;
    if (admin === undefined) throw new ApiError(400, 'bad-request', `${(caller as Caller).actor.name} is not signed in: there is no session to end`);
    await admins.signOut(admin);
    if (admin.kind === 'cookie') response.setHeader('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
    return gone;
  });
}

/**
 * POST /api/auth/login `{"username", "password", "bearer"?, "ttlSeconds"?}`: a session cookie for the
 * dashboard (HttpOnly, SameSite=Strict), or with `"bearer": true` a token in the answer for scripts.
 */
async function signIn(admins: AdminAccess, fields: Record<string, unknown>, remote: string | undefined, response: RouteContext['response']): Promise<JsonReply> {
  for (const key of Object.keys(fields)) {
    if (!['username', 'password', 'bearer', 'ttlSeconds'].includes(key)) throw new ApiError(400, 'bad-request', `unknown field "${key}" in a sign-in (expected username, password, bearer, ttlSeconds)`);
  }
  const { username, password, bearer = false, ttlSeconds } = fields;
  if (typeof username !== 'string' || typeof password !== 'string') throw new ApiError(400, 'bad-request', 'username and password must be strings');
  if (typeof bearer !== 'boolean') throw new ApiError(400, 'bad-request', 'bearer must be true or false');
  if (ttlSeconds !== undefined && (!bearer || typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 60 || ttlSeconds * 1000 > BEARER_MAX_MS)) {
    throw new ApiError(400, 'bad-request', `ttlSeconds goes with "bearer": true and must be an integer from 60 to ${BEARER_MAX_MS / 1000}`);
  }
  if (admins.count === 0) throw new ApiError(409, 'conflict', 'no admin exists yet: create the first one with `starling ctl admins add NAME` (on this machine) or STARLING_ADMIN_USER and STARLING_ADMIN_PASSWORD');
  const signed = await admins.signIn(username, password, remote, bearer ? 'bearer' : 'cookie', ttlSeconds === undefined ? undefined : ttlSeconds * 1000);
  const answer = { username: signed.admin.username, role: signed.admin.role, expiresAt: new Date(signed.expiresAt).toISOString() };
  if (bearer) return ok({ ...answer, token: signed.token });
  response.setHeader('set-cookie', `${SESSION_COOKIE}=${signed.token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${COOKIE_SESSION_MS / 1000}`);
  return ok(answer);
}
