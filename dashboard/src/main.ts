/** Starling dashboard: a few views over the REST API and the broker's MQTT over WebSocket. */
import './style.css';
import { api, ApiError, setToken, signIn, token, type Access } from './api.js';
import { h, replace, toast } from './dom.js';
import { credentials, Live, setCredentials } from './live.js';
import type { AppContext, View } from './view.js';
import { bridgesView } from './views/bridges.js';
import { adminsView } from './views/admins.js';
import { bansView } from './views/bans.js';
import { clientsView } from './views/clients.js';
import { overviewView } from './views/overview.js';
import { publishView } from './views/publish.js';
import { retainedView } from './views/retained.js';
import { rolesView } from './views/roles.js';
import { subscriptionsView } from './views/subscriptions.js';
import { topicsView } from './views/topics.js';
import { usersView } from './views/users.js';

const ROUTES: Record<string, { title: string; view: () => View }> = {
  overview: { title: 'Overview', view: overviewView },
  clients: { title: 'Clients', view: clientsView },
  topics: { title: 'Topics', view: topicsView },
  publish: { title: 'Publish', view: publishView },
  subscriptions: { title: 'Subscriptions', view: subscriptionsView },
  retained: { title: 'Retained', view: retainedView },
  bridges: { title: 'Bridges', view: bridgesView },
  users: { title: 'Users', view: usersView },
  roles: { title: 'Roles', view: rolesView },
  bans: { title: 'Bans', view: bansView },
  admins: { title: 'Admins', view: adminsView },
};

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const who = document.getElementById('who')!;
const problem = document.getElementById('live-problem')!;
const context: AppContext = { live: new Live(), role: 'administrator', admin: undefined };
let current: View | undefined;
let started = false;

function route(): void {
  const name = location.hash.replace(/^#\/?/, '') || 'overview';
  const entry = ROUTES[name] ?? ROUTES['overview']!;
  current?.unmount?.();
  for (const link of nav.querySelectorAll('a')) link.setAttribute('aria-current', link.dataset['route'] === name ? 'page' : 'false');
  document.title = `${entry.title} · Starling`;
  current = entry.view();
  main.replaceChildren();
  current.mount(main, context);
}

/** The sign-in form: an admin's name and password, the API token, or both (as the broker offers), and MQTT credentials. */
function login(access: Access, reason: string): void {
  current?.unmount?.();
  current = undefined;
  replace(who);
  const byPassword = access.methods.includes('password');
  const byToken = access.methods.includes('token');
  const admin = h('input', { id: 'login-admin', autocomplete: 'username', required: byPassword && !byToken });
  const adminPassword = h('input', { type: 'password', id: 'login-admin-password', autocomplete: 'current-password' });
  const tokenInput = h('input', { type: 'password', id: 'login-token', autocomplete: 'current-password', required: !byPassword });
  const saved = credentials();
  const username = h('input', { id: 'login-user', autocomplete: 'off', value: saved.username ?? '' });
  const password = h('input', { type: 'password', id: 'login-password', autocomplete: 'off', value: saved.password ?? '' });
  const tokenField = h('label', {}, 'API token', tokenInput);
  replace(
    main,
    h(
      'form',
      {
        class: 'panel form login',
        id: 'login',
        onsubmit: (event) => {
          event.preventDefault();
          setCredentials(username.value, password.value);
          if (byPassword && admin.value !== '') {
            signIn(admin.value, adminPassword.value)
              .then(() => start())
              .catch((error: unknown) => login(access, error instanceof ApiError ? error.message : String(error)));
            return;
          }
          setToken(tokenInput.value);
          void start();
        },
      },
      h('h1', {}, 'Sign in'),
      h('p', { class: 'muted', id: 'login-reason' }, reason),
      byPassword && h('label', {}, 'Admin name', admin),
      byPassword && h('label', {}, 'Password', adminPassword),
      byToken && (byPassword ? h('details', {}, h('summary', {}, 'Or the API token'), tokenField) : tokenField),
      h('details', {}, h('summary', {}, 'MQTT credentials (if the broker requires them)'), h('label', {}, 'User name', username), h('label', {}, 'Password', password)),
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    ),
  );
}

function unavailable(message: string): void {
  replace(main, h('section', { class: 'panel' }, h('h1', {}, 'Not available'), h('p', {}, message)));
}

/** Signs out (ends the session, or forgets the token) and shows the sign-in form again. */
function signOut(): void {
  const done = (): void => {
    setToken(null);
    void start();
  };
  if (context.admin === undefined) done();
  else api('POST', '/auth/logout').then(done, done);
}

/** The header: who is signed in, with a sign-out button when there is something to sign out of. */
function showCaller(access: Access): void {
  const caller = access.caller;
  if (caller === undefined || caller.via === 'loopback') {
    replace(who);
    return;
  }
  const label = caller.via === 'api-token' ? 'API token' : `${caller.name.replace(/^admin:/, '')} (${caller.role})`;
  replace(who, h('span', { id: 'who-name' }, label), ' ', h('button', { class: 'small', id: 'sign-out', onclick: signOut }, 'Sign out'));
}

/** When MQTT refuses the live connection: why, and a form for MQTT credentials. */
function showLiveProblem(): void {
  const live = context.live;
  if (live.state !== 'refused' || live.problem === undefined) {
    problem.hidden = true;
    return;
  }
  if (!problem.hidden && problem.dataset['problem'] === live.problem) return;
  problem.dataset['problem'] = live.problem;
  const saved = credentials();
  const username = h('input', { id: 'mqtt-user', placeholder: 'MQTT user name', autocomplete: 'off', value: saved.username ?? '', 'aria-label': 'MQTT user name' });
  const password = h('input', { type: 'password', id: 'mqtt-password', placeholder: 'MQTT password', autocomplete: 'off', 'aria-label': 'MQTT password' });
  replace(
    problem,
    h('p', {}, h('strong', {}, 'Live view unavailable: '), `MQTT refused the dashboard's connection — ${live.problem}. The topic explorer and live counts need MQTT credentials this broker accepts.`),
    h(
      'form',
      {
        class: 'row',
        id: 'mqtt-login',
        onsubmit: (event) => {
          event.preventDefault();
          setCredentials(username.value, password.value);
          problem.hidden = true;
          live.reconnect();
        },
      },
      username,
      password,
      h('button', { type: 'submit', class: 'primary small' }, 'Connect'),
    ),
  );
  problem.hidden = false;
}

async function start(): Promise<void> {
  // Asked first, without credentials needed: a request that would fail (401) is never made.
  let access: Access;
  try {
    access = await api<Access>('GET', '/access');
  } catch (error) {
    unavailable(error instanceof ApiError ? error.message : 'The broker cannot be reached.');
    return;
  }
  if (!access.authorized) {
    if (access.access === 'sign-in' || access.access === 'token') {
      const wrong = token() !== null;
      setToken(null);
      const why = wrong
        ? 'That token is not this broker\'s API token.'
        : access.access === 'sign-in'
          ? 'Sign in as an admin of this broker.'
          : 'This broker needs its API token (http.apiToken or STARLING_API_TOKEN).';
      login(access, why);
    } else if (access.access === 'disabled') {
      unavailable('The API is disabled: the HTTP server is not on loopback, and neither an API token (http.apiToken or STARLING_API_TOKEN) nor an admin (STARLING_ADMIN_USER and STARLING_ADMIN_PASSWORD) is set.');
    } else {
      unavailable('Without an API token the API answers only to loopback names: open the dashboard as http://127.0.0.1:… or http://localhost:…, or set an API token.');
    }
    return;
  }
  context.role = access.caller?.role ?? 'administrator';
  context.admin = access.caller?.via === 'session' ? access.caller.name.replace(/^admin:/, '') : undefined;
  document.body.dataset['role'] = context.role;
  showCaller(access);
  context.live.connect();
  if (!started) {
    window.addEventListener('hashchange', route);
    context.live.onChange(showLiveProblem);
  }
  started = true;
  route();
}

replace(nav, ...Object.entries(ROUTES).map(([name, r]) => h('a', { href: `#/${name}`, 'data-route': name }, r.title)));
void start().catch((error: unknown) => toast(String(error), 'error'));
