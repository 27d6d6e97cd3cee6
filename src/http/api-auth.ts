/**
 * Who an API request is, and what it may do: the shared API token (scripts), an admin's session cookie
 * (the dashboard) or bearer token (`starling ctl`, scripts), or nobody — which is enough only on a
 * loopback-bound server with neither a token nor admins, as before admins existed. Viewers may read;
 * changes need an administrator. Cookie requests that change something must come from the page's own
 * origin (with SameSite=Strict and JSON-only bodies, a cross-site request cannot ride on the cookie).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Actor } from '../auth/access-audit.js';
import type { AdminAccess, AdminIdentity } from '../auth/admin-access.js';
import { ApiError } from './api.js';

/** The cookie of a dashboard session. */
export const SESSION_COOKIE = 'starling_session';

/** How the API is protected: admins sign in (the token works too, if set), a token, open on loopback, or off. */
export type ApiAccessMode = 'sign-in' | 'token' | 'open-loopback' | 'disabled';

/** Who made a request that may use the API. */
export interface Caller {
  actor: Actor;
  via: 'api-token' | 'loopback' | 'session' | 'bearer';
  /** The signed-in admin (session or bearer token). */
  admin?: AdminIdentity;
}

/** GET /api/access: how the API is protected and whether this request may use it (never 401). */
export interface ApiAccess {
  access: ApiAccessMode;
  authorized: boolean;
  /** Why not, when not authorized: the error code the API would answer. */
  reason?: string;
  /** What a sign-in form should offer: admin name and password, the API token, or both. */
  methods: ('password' | 'token')[];
  /** Who this request is, when authorized. */
  caller?: { name: string; role: Actor['role']; via: Caller['via'] };
}

/** Requests that only read. */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** True for an address or name that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function isLoopbackHostHeader(header: string | undefined): boolean {
  if (header === undefined) return false;
  const host = header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.replace(/:\d+$/, '');
  return isLoopback(host);
}

/** A cookie's value from the Cookie header. */
export function cookie(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Decides who API requests are and whether they may do what they ask. */
export class ApiGuard {
  private readonly tokenDigest: Buffer | undefined;

  constructor(
    apiToken: string | undefined,
    /** Whether the HTTP server is bound to a loopback address. */
    private readonly loopbackBind: boolean,
    private readonly admins: AdminAccess | undefined,
  ) {
    this.tokenDigest = apiToken === undefined || apiToken === '' ? undefined : digest(apiToken);
  }

  /** The protection in force now (it becomes sign-in once the first admin exists). */
  get mode(): ApiAccessMode {
    if ((this.admins?.count ?? 0) > 0) return 'sign-in';
    if (this.tokenDigest !== undefined) return 'token';
    return this.loopbackBind ? 'open-loopback' : 'disabled';
  }

  /** The answer of GET /api/access for this request. */
  access(request: IncomingMessage): ApiAccess {
    const mode = this.mode;
    const methods: ApiAccess['methods'] = [];
    if (mode === 'sign-in') methods.push('password');
    if (this.tokenDigest !== undefined) methods.push('token');
    const answer: ApiAccess = { access: mode, authorized: false, methods };
    try {
      const caller = this.identify(request);
      answer.authorized = true;
      answer.caller = { name: caller.actor.name, role: caller.actor.role, via: caller.via };
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      answer.reason = error.code;
    }
    return answer;
  }

  /** Who the request is; throws 401 / 403 when it may not use the API at all. */
  identify(request: IncomingMessage): Caller {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (match === null) throw new ApiError(401, 'unauthorized', 'send "Authorization: Bearer <token>" (the API token, or a token from POST /api/auth/login)');
      const token = match[1]!;
      if (this.tokenDigest !== undefined && timingSafeEqual(digest(token), this.tokenDigest)) return { actor: { name: 'api-token', role: 'administrator' }, via: 'api-token' };
      const admin = this.admins?.identify(token);
      if (admin !== undefined && admin.kind === 'bearer') return { actor: { name: `admin:${admin.username}`, role: admin.role }, via: 'bearer', admin };
      throw new ApiError(401, 'unauthorized', 'the bearer token is not the API token nor a valid admin token (it may have expired: sign in again)');
    }
    const session = cookie(request, SESSION_COOKIE);
    if (session !== undefined && session !== '') {
      const admin = this.admins?.identify(session);
      if (admin !== undefined && admin.kind === 'cookie') {
        this.checkOrigin(request);
        return { actor: { name: `admin:${admin.username}`, role: admin.role }, via: 'session', admin };
      }
    }
    const mode = this.mode;
    if (mode === 'disabled') throw new ApiError(403, 'api-disabled', 'the API needs a token or an admin when the HTTP server is not on loopback: set http.apiToken or STARLING_API_TOKEN, or create an admin (STARLING_ADMIN_USER and STARLING_ADMIN_PASSWORD)');
    if (mode === 'open-loopback') {
      // No token, no admin, on loopback: still refuse other Host names, so a web page cannot reach us by DNS rebinding.
      if (!isLoopbackHostHeader(request.headers.host)) throw new ApiError(403, 'bad-host', 'without an API token or admins, only loopback Host names are accepted');
      this.checkOrigin(request);
      return { actor: { name: 'loopback', role: 'administrator' }, via: 'loopback' };
    }
    if (mode === 'sign-in') throw new ApiError(401, 'unauthorized', session === undefined ? 'sign in (POST /api/auth/login) or send a bearer token' : 'the session has ended: sign in again');
    throw new ApiError(401, 'unauthorized', 'send the API token as "Authorization: Bearer <token>"');
  }

  /** Throws 403 unless `caller` may make this request: viewers only read (and sign out, and change their own password). */
  permit(caller: Caller, method: string, path: string): void {
    if (caller.actor.role === 'administrator' || SAFE.has(method)) return;
    if (method === 'POST' && path === '/api/auth/logout') return;
    if (method === 'PUT' && caller.admin !== undefined && path === `/api/admins/${encodeURIComponent(caller.admin.username)}`) return;
    throw new ApiError(403, 'forbidden', `${caller.actor.name} is a viewer: viewers can read but not change anything (${method} ${path} needs an administrator)`);
  }

  /** A request that rides on ambient credentials (cookie, loopback) and changes something must come from this origin. */
  private checkOrigin(request: IncomingMessage): void {
    if (SAFE.has(request.method ?? 'GET')) return;
    const origin = request.headers.origin;
    const site = request.headers['sec-fetch-site'];
    const host = request.headers.host;
    const sameOrigin = origin === undefined || (host !== undefined && (origin === `http://${host}` || origin === `https://${host}`));
    if (!sameOrigin || (site !== undefined && site !== 'same-origin' && site !== 'none')) {
      throw new ApiError(403, 'bad-origin', `a change with a session cookie must come from the dashboard's own origin (Origin ${origin ?? 'none'}, Host ${host ?? 'none'})`);
    }
  }
}
