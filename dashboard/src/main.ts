/** Starling dashboard: a few views over the REST API and the broker's MQTT over WebSocket. */
import './style.css';
import { api, ApiError, setToken, token, type Access } from './api.js';
import { h, replace } from './dom.js';
import { credentials, Live, setCredentials } from './live.js';
import type { AppContext, View } from './view.js';
import { bridgesView } from './views/bridges.js';
import { clientsView } from './views/clients.js';
import { overviewView } from './views/overview.js';
import { publishView } from './views/publish.js';
import { retainedView } from './views/retained.js';
import { subscriptionsView } from './views/subscriptions.js';
import { topicsView } from './views/topics.js';

const ROUTES: Record<string, { title: string; view: () => View }> = {
  overview: { title: 'Overview', view: overviewView },
  clients: { title: 'Clients', view: clientsView },
  topics: { title: 'Topics', view: topicsView },
  publish: { title: 'Publish', view: publishView },
  subscriptions: { title: 'Subscriptions', view: subscriptionsView },
  retained: { title: 'Retained', view: retainedView },
  bridges: { title: 'Bridges', view: bridgesView },
};

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const context: AppContext = { live: new Live() };
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

function login(reason: string): void {
  current?.unmount?.();
  current = undefined;
  const token = h('input', { type: 'password', id: 'login-token', autocomplete: 'current-password', required: true });
  const saved = credentials();
  const username = h('input', { id: 'login-user', autocomplete: 'username', value: saved.username ?? '' });
  const password = h('input', { type: 'password', id: 'login-password', autocomplete: 'off', value: saved.password ?? '' });
  replace(
    main,
    h(
      'form',
      {
        class: 'panel form login',
        id: 'login',
        onsubmit: (event) => {
          event.preventDefault();
          setToken(token.value);
          setCredentials(username.value, password.value);
          void start();
        },
      },
      h('h1', {}, 'Sign in'),
      h('p', { class: 'muted' }, reason),
      h('label', {}, 'API token', token),
      h('details', {}, h('summary', {}, 'MQTT credentials (if the broker requires them)'), h('label', {}, 'User name', username), h('label', {}, 'Password', password)),
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    ),
  );
}

function unavailable(message: string): void {
  replace(main, h('section', { class: 'panel' }, h('h1', {}, 'Not available'), h('p', {}, message)));
}

async function start(): Promise<void> {
  // Asked first, without a token needed: a request that would fail (401) is never made.
  let access: Access;
  try {
    access = await api<Access>('GET', '/access');
  } catch (error) {
    unavailable(error instanceof ApiError ? error.message : 'The broker cannot be reached.');
    return;
  }
  if (!access.authorized) {
    if (access.access === 'token') {
      const wrong = token() !== null;
      setToken(null);
      login(wrong ? 'That token is not this broker\'s API token.' : 'This broker needs its API token (http.apiToken or STARLING_API_TOKEN).');
    } else if (access.access === 'disabled') {
      unavailable('The API is disabled: the HTTP server is not on loopback and no API token is set (http.apiToken or STARLING_API_TOKEN).');
    } else {
      unavailable('Without an API token the API answers only to loopback names: open the dashboard as http://127.0.0.1:… or http://localhost:…, or set an API token.');
    }
    return;
  }
  context.live.connect();
  if (!started) window.addEventListener('hashchange', route);
  started = true;
  route();
}

replace(nav, ...Object.entries(ROUTES).map(([name, r]) => h('a', { href: `#/${name}`, 'data-route': name }, r.title)));
void start();
