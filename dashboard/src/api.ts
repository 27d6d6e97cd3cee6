/** The broker's REST API (docs/http-api.md): the API token kept for this browser tab, or an admin's session cookie (HttpOnly, set by the broker). */
import type { WorkerSummary } from '../../src/http/group-view.js';
import type { StoredAclRule as Rule } from '../../src/persistence/types.js';

const TOKEN_KEY = 'starling.token';

/** An API answer that was not 2xx. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The token in use, if any. */
export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Remembers (or forgets, with null) the token for this tab. */
export function setToken(value: string | null): void {
  if (value === null || value === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, value);
}

/** Calls the API and parses the JSON answer; throws ApiError on failure. */
export async function api<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  const bearer = token();
  if (bearer !== null) headers['authorization'] = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`./api${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  if (response.status === 204) return undefined as T;
  const data = (await response.json().catch(() => ({}))) as { error?: string; message?: string };
  if (!response.ok) throw new ApiError(response.status, data.error ?? 'error', data.message ?? response.statusText);
  return data as T;
}

/** Query string from an object, skipping empty values. */
export function query(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** GET /api/access: asked before anything else, it never answers 401. */
export interface Access {
  access: 'sign-in' | 'token' | 'open-loopback' | 'disabled';
  authorized: boolean;
  reason?: string;
  /** What the sign-in form offers: admin name and password, the API token. */
  methods: ('password' | 'token')[];
  caller?: { name: string; role: 'administrator' | 'viewer'; via: 'api-token' | 'loopback' | 'session' | 'bearer' };
}

/** Signs an admin in: the broker sets the session cookie (HttpOnly, so this page never sees it). */
export function signIn(username: string, password: string): Promise<{ username: string; role: string; expiresAt: string }> {
  return api('POST', '/auth/login', { username, password });
}

// The shapes of users, roles, bans and admins are the server's own views (types only: nothing of the
// server is bundled), as for bridges below.
export type { StoredAclRule as Rule } from '../../src/persistence/types.js';
export type { UserView as User, RoleView as Role, BanView as Ban } from '../../src/auth/access-control.js';
export type { AdminView as Admin } from '../../src/auth/admin-access.js';
/** Rules as the dashboard edits them: one "ACCESS FILTER" per line, as in an ACL file. */
export function rulesToText(rules: readonly Rule[]): string {
  return rules.map((r) => `${r.access} ${r.topic}`).join('\n');
}

/** Parses "ACCESS FILTER" lines (blank lines skipped); throws naming the line at fault. */
export function textToRules(text: string): Rule[] {
  const rules: Rule[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const match = /^(read|write|readwrite|deny)\s+(\S+)$/.exec(line);
    if (match === null) throw new Error(`rule line ${i + 1}: "${line}" is not "ACCESS FILTER" (ACCESS: read, write, readwrite or deny)`);
    rules.push({ access: match[1] as Rule['access'], topic: match[2]! });
  });
  return rules;
}

/** A page of results. */
export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  limit: number;
}

/** GET /api/overview. */
export interface Overview {
  version: string;
  node: string;
  startedAt: string;
  uptimeSeconds: number;
  memory: { rss: number; heapUsed: number; heapTotal: number };
  totals: { connections: number; clientsConnected: number; sessions: number; clientsDisconnected: number; subscriptions: number; retained: number; inflight: number; queued: number; byListener: Record<string, number> };
  counters: { connectionsAccepted: number; connectionsRefused: number; authFailures: number; messagesReceived: number; messagesSent: number; bytesReceived: number; bytesSent: number; dropped: number };
  listeners: { name: string; protocol: string; address: string; port: number }[];
  /** A worker group only (starling --workers N): each worker; totals and counters are the group's. */
  workers?: WorkerSummary[];
}

/** One client in the list. */
export interface Client {
  clientId: string;
  connected: boolean;
  username: string | null;
  listener: string | null;
  remoteAddress: string | null;
  protocolVersion: number | null;
  keepalive: number | null;
  connectedAt: string | null;
  subscriptions: number;
  inflight: number;
  queued: number;
  bufferedBytes: number;
  sessionExpiryInterval: number;
}

/** One subscription. */
export interface Subscription {
  clientId: string;
  topicFilter: string;
  qos: number;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: number;
  shareGroup: string | null;
}

/** One client in detail. */
export interface ClientDetail extends Client {
  subscriptionList: Subscription[];
  inflightMessages: { packetId: number; topic: string; qos: number; state: string }[];
  droppedQueueFull: number;
}

/** One retained message. */
export interface Retained {
  topic: string;
  qos: number;
  payloadBase64: string;
  payloadSize: number;
  receivedAt: string;
}

/** One bridge to another broker (GET /api/bridges): the broker's own type, as the API sends it. */
export type { BridgeStatus as Bridge } from '../../src/model/bridge.js';
