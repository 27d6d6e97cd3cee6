/** `starling ctl`: manages users, roles, bans and admins of a running broker through its REST API (docs/cli.md). */
import { parseArgs } from 'node:util';
import type { AdminView } from '../auth/admin-access.js';
import type { BanView, RoleView, UserView } from '../auth/access-control.js';
import { CtlApi, CtlError } from './ctl-api.js';
import { readPassword } from './passwd.js';

const USAGE = `Usage: starling ctl [--url URL] [--token TOKEN | --user NAME] [--json] COMMAND …

Manages a running broker through its REST API: MQTT users, roles with ACL rules, bans, admins.

Connection:
  --url URL          the broker's HTTP address (default http://127.0.0.1:18083)
  --token TOKEN      the API token (default: STARLING_API_TOKEN)
  --user NAME        sign in as this admin: the password is asked for (or read from the first line
                     of standard input when it is not a terminal); the session ends with the command
  --json             print the API's JSON answers

Commands:
  users list [--search TEXT]
  users show NAME
  users add NAME [--password PW] [--role ROLE]… [--acl ACCESS:FILTER]…
  users set NAME [--password PW | --ask-password] [--role ROLE]… [--no-roles] [--acl ACCESS:FILTER]… [--no-acl]
  users delete NAME
  roles list | roles show NAME | roles delete NAME
  roles add NAME [--acl ACCESS:FILTER]…
  roles set NAME (--acl ACCESS:FILTER… | --no-acl)
  bans list
  bans add (--client-id ID | --username NAME | --address IP[/PREFIX]) [--for DURATION | --until TIME] [--reason TEXT]
  bans delete ID
  admins list | admins show NAME | admins delete NAME
  admins add NAME [--role administrator|viewer] [--password PW]
  admins set NAME [--role administrator|viewer] [--password PW | --ask-password]

ACCESS is read, write, readwrite or deny; FILTER a topic filter where %u is the user name and %c the
client id (readwrite:devices/%u/#). Without --password a new password is asked for twice (or read
from standard input). DURATION: 30s, 15m, 2h, 7d. TIME: ISO 8601 (2030-01-01T00:00:00Z).

Exit codes: 0 done, 1 usage, 2 refused by the broker (the message says why), 3 not signed in or not
allowed, 4 broker unreachable or failing.
`;

class CtlUsageError extends Error {}

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  user: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  search: { type: 'string' },
  password: { type: 'string' },
  'ask-password': { type: 'boolean' },
  role: { type: 'string', multiple: true },
  'no-roles': { type: 'boolean' },
  acl: { type: 'string', multiple: true },
  'no-acl': { type: 'boolean' },
  'client-id': { type: 'string' },
  username: { type: 'string' },
  address: { type: 'string' },
  for: { type: 'string' },
  until: { type: 'string' },
  reason: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** Runs `starling ctl …`; returns the exit code. */
export async function runCtl(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`starling ctl: ${(error as Error).message}\n\n${USAGE}`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (values.help === true || positionals.length === 0) {
    (values.help === true ? process.stdout : process.stderr).write(USAGE);
    return values.help === true ? 0 : 1;
  }
  const api = new CtlApi(values.url ?? 'http://127.0.0.1:18083', values.token ?? process.env['STARLING_API_TOKEN']);
  try {
    if (values.user !== undefined) await api.signIn(values.user, await readPassword(`Password of admin ${values.user}: `, false));
    const answer = await run(api, positionals, values);
    if (values.json === true) process.stdout.write(`${JSON.stringify(answer.data ?? null, null, 2)}\n`);
    else if (answer.text !== '') process.stdout.write(`${answer.text}\n`);
    return 0;
  } catch (error) {
    if (error instanceof CtlUsageError) {
      process.stderr.write(`starling ctl: ${error.message} (see starling ctl --help)\n`);
      return 1;
    }
    process.stderr.write(`starling ctl: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof CtlError ? error.exitCode : 1;
  } finally {
    await api.close();
  }
}

/** What a command printed: the JSON answer (--json) or lines for people. */
interface Answer {
  data: unknown;
  text: string;
}

function name(positionals: string[], what: string): string {
  const value = positionals[2];
  if (value === undefined) throw new CtlUsageError(`${positionals[0]} ${positionals[1]} needs ${what}`);
  if (positionals.length > 3) throw new CtlUsageError(`unexpected ${positionals.slice(3).join(' ')}`);
  return value;
}

/** `ACCESS:FILTER` → a rule. */
export function parseRule(text: string): { topic: string; access: string } {
  const colon = text.indexOf(':');
  const access = colon < 0 ? '' : text.slice(0, colon);
  if (!['read', 'write', 'readwrite', 'deny'].includes(access)) throw new CtlUsageError(`--acl ${JSON.stringify(text)}: expected ACCESS:FILTER with ACCESS read, write, readwrite or deny`);
  return { access, topic: text.slice(colon + 1) };
}

/** `30s`, `15m`, `2h`, `7d` → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text);
  if (match === null) throw new CtlUsageError(`--for ${JSON.stringify(text)}: expected a number and s, m, h or d (e.g. 2h)`);
  return Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
}

async function newPassword(values: Values, required: boolean): Promise<string | undefined> {
  if (values.password !== undefined) return values.password;
  if (!required && values['ask-password'] !== true) return undefined;
  return readPassword('New password: ', true);
}

const path = (kind: string, key?: string): string => (key === undefined ? `/api/${kind}` : `/api/${kind}/${encodeURIComponent(key)}`);

async function run(api: CtlApi, positionals: string[], values: Values): Promise<Answer> {
  const [noun, verb] = positionals;
  const key = `${noun ?? ''} ${verb ?? ''}`;
  switch (key) {
    case 'users list': {
      const page = await api.call<{ items: UserView[]; total: number }>('GET', `/api/users?limit=1000${values.search === undefined ? '' : `&search=${encodeURIComponent(values.search)}`}`);
      return { data: page, text: table(['USER', 'ROLES', 'RULES'], page.items.map((u) => [u.username, u.roles.join(',') || '-', String(u.acl.length)])) };
    }
    case 'users show': {
      const user = await api.call<UserView>('GET', path('users', name(positionals, 'a user name')));
      return { data: user, text: [`user ${user.username}`, `roles: ${user.roles.join(', ') || '-'}`, ...rules(user.acl)].join('\n') };
    }
    case 'users add': {
      const username = name(positionals, 'a user name');
      const body: Record<string, unknown> = { username, password: await newPassword(values, true) };
      if (values.role !== undefined) body['roles'] = values.role;
      if (values.acl !== undefined) body['acl'] = values.acl.map(parseRule);
      return { data: await api.call('POST', '/api/users', body), text: `user ${username} added` };
    }
    case 'users set': {
      const username = name(positionals, 'a user name');
      const body: Record<string, unknown> = {};
      const password = await newPassword(values, false);
      if (password !== undefined) body['password'] = password;
      if (values.role !== undefined || values['no-roles'] === true) body['roles'] = values.role ?? [];
      if (values.acl !== undefined || values['no-acl'] === true) body['acl'] = (values.acl ?? []).map(parseRule);
      return { data: await api.call('PUT', path('users', username), body), text: `user ${username} changed` };
    }
    case 'users delete': {
      const username = name(positionals, 'a user name');
      await api.call('DELETE', path('users', username));
      return { data: { deleted: username }, text: `user ${username} deleted (its clients were disconnected)` };
    }
    case 'roles list': {
      const page = await api.call<{ items: RoleView[] }>('GET', '/api/roles?limit=1000');
      return { data: page, text: table(['ROLE', 'RULES', 'USERS'], page.items.map((r) => [r.name, String(r.acl.length), r.users.join(',') || '-'])) };
    }
    case 'roles show': {
      const role = await api.call<RoleView>('GET', path('roles', name(positionals, 'a role name')));
      return { data: role, text: [`role ${role.name}`, `users: ${role.users.join(', ') || '-'}`, ...rules(role.acl)].join('\n') };
    }
    case 'roles add': {
      const role = name(positionals, 'a role name');
      return { data: await api.call('POST', '/api/roles', { name: role, acl: (values.acl ?? []).map(parseRule) }), text: `role ${role} added` };
    }
    case 'roles set': {
      const role = name(positionals, 'a role name');
      if (values.acl === undefined && values['no-acl'] !== true) throw new CtlUsageError('roles set needs --acl ACCESS:FILTER (or --no-acl)');
      return { data: await api.call('PUT', path('roles', role), { acl: (values.acl ?? []).map(parseRule) }), text: `role ${role} changed` };
    }
    case 'roles delete': {
      const role = name(positionals, 'a role name');
      await api.call('DELETE', path('roles', role));
      return { data: { deleted: role }, text: `role ${role} deleted` };
    }
    case 'bans list': {
      const page = await api.call<{ items: BanView[] }>('GET', '/api/bans?limit=1000');
      return { data: page, text: table(['ID', 'BANNED', 'UNTIL', 'REASON'], page.items.map((b) => [b.id, banned(b), b.until ?? 'deleted', b.reason ?? ''])) };
    }
    case 'bans add': {
      if (positionals.length > 2) throw new CtlUsageError(`unexpected ${positionals.slice(2).join(' ')}`);
      const body: Record<string, unknown> = {};
      if (values['client-id'] !== undefined) body['clientId'] = values['client-id'];
      if (values.username !== undefined) body['username'] = values.username;
      if (values.address !== undefined) body['address'] = values.address;
      if (values.for !== undefined && values.until !== undefined) throw new CtlUsageError('give --for or --until, not both');
      if (values.for !== undefined) body['until'] = new Date(Date.now() + parseDuration(values.for)).toISOString();
      if (values.until !== undefined) body['until'] = values.until;
      if (values.reason !== undefined) body['reason'] = values.reason;
      const ban = await api.call<BanView>('POST', '/api/bans', body);
      return { data: ban, text: `ban ${ban.id} on ${banned(ban)}${ban.until === null ? '' : ` until ${ban.until}`}` };
    }
    case 'bans delete': {
      const id = name(positionals, 'a ban id (see bans list)');
      await api.call('DELETE', path('bans', id));
      return { data: { deleted: id }, text: `ban ${id} lifted` };
    }
    case 'admins list': {
      const page = await api.call<{ items: AdminView[] }>('GET', '/api/admins?limit=1000');
      return { data: page, text: table(['ADMIN', 'ROLE'], page.items.map((a) => [a.username, a.role])) };
    }
    case 'admins show': {
      const admin = await api.call<AdminView>('GET', path('admins', name(positionals, 'an admin name')));
      return { data: admin, text: `admin ${admin.username}: ${admin.role}` };
    }
    case 'admins add': {
      const username = name(positionals, 'an admin name');
      const body = { username, password: await newPassword(values, true), role: values.role?.[0] ?? 'administrator' };
      const admin = await api.call<AdminView>('POST', '/api/admins', body);
      return { data: admin, text: `admin ${username} added (${admin.role})` };
    }
    case 'admins set': {
      const username = name(positionals, 'an admin name');
      const body: Record<string, unknown> = {};
      const password = await newPassword(values, false);
      if (password !== undefined) body['password'] = password;
      if (values.role !== undefined) body['role'] = values.role[0];
      return { data: await api.call('PUT', path('admins', username), body), text: `admin ${username} changed` };
    }
    case 'admins delete': {
      const username = name(positionals, 'an admin name');
      await api.call('DELETE', path('admins', username));
      return { data: { deleted: username }, text: `admin ${username} deleted` };
    }
    default:
      throw new CtlUsageError(`unknown command "${positionals.slice(0, 2).join(' ')}"`);
  }
}

function banned(ban: BanView): string {
  if (ban.clientId !== null) return `client id ${ban.clientId}`;
  if (ban.username !== null) return `user ${ban.username}`;
  return `address ${ban.address ?? '?'}`;
}

function rules(acl: readonly { topic: string; access: string }[]): string[] {
  return acl.length === 0 ? ['rules: none'] : ['rules:', ...acl.map((r) => `  ${r.access.padEnd(9)} ${r.topic}`)];
}

/** Columns padded to their widest cell. */
function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)';
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}
