/** Bans page: ban a client id, user name or address, and lift bans. */
import { api, type Ban, type Page } from '../api.js';
import { h, replace, toast } from '../dom.js';
import { clock } from '../format.js';
import { every, type View } from '../view.js';

const DURATIONS: [string, number | undefined][] = [
  ['1 hour', 3_600_000],
  ['1 day', 86_400_000],
  ['7 days', 7 * 86_400_000],
  ['30 days', 30 * 86_400_000],
  ['until lifted', undefined],
];

/** What a ban names, in words. */
export function bannedText(ban: Ban): string {
  if (ban.clientId !== null) return `client id ${ban.clientId}`;
  if (ban.username !== null) return `user ${ban.username}`;
  return `address ${ban.address ?? ''}`;
}

/** Bans by client id, user name or address: list, add, lift. */
export function bansView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root, context) {
      const canWrite = context.role === 'administrator';
      const body = h('tbody');
      const refresh = async (): Promise<void> => {
        const page = await api<Page<Ban>>('GET', '/bans?limit=1000');
        replace(
          body,
          ...page.items.map((b) =>
            h(
              'tr',
              { 'data-ban': b.id },
              h('td', {}, bannedText(b)),
              h('td', { class: 'wide' }, b.until === null ? 'until lifted' : new Date(b.until).toLocaleString()),
              h('td', {}, b.reason ?? ''),
              h('td', { class: 'wide' }, `${b.createdBy}, ${clock(new Date(b.createdAt))}`),
              h('td', {}, canWrite && h('button', { class: 'small', 'data-lift': b.id, onclick: () => lift(b) }, 'Lift')),
            ),
          ),
        );
        if (page.items.length === 0) replace(body, h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No bans')));
      };
      const reload = (): void => void refresh().catch((e: unknown) => toast(String(e), 'error'));
      const lift = (ban: Ban): void => {
        api('DELETE', `/bans/${encodeURIComponent(ban.id)}`)
          .then(() => {
            toast(`Lifted the ban on ${bannedText(ban)}`);
            reload();
          })
          .catch((e: unknown) => toast(String(e), 'error'));
      };
      const kind = h('select', { id: 'ban-kind', 'aria-label': 'What to ban' }, h('option', { value: 'clientId' }, 'Client id'), h('option', { value: 'username' }, 'User name'), h('option', { value: 'address' }, 'Address or CIDR range'));
      const value = h('input', { id: 'ban-value', required: true, autocomplete: 'off', placeholder: 'e.g. sensor-17, mallory, 203.0.113.0/24', 'aria-label': 'Client id, user name or address' });
      const duration = h('select', { id: 'ban-for', 'aria-label': 'For how long' }, ...DURATIONS.map(([label], i) => h('option', { value: String(i) }, label)));
      const reason = h('input', { id: 'ban-reason', autocomplete: 'off', placeholder: 'Reason (optional)', 'aria-label': 'Reason' });
      const result = h('p', { class: 'muted', id: 'ban-result' });
      const form = h(
        'form',
        {
          class: 'panel form',
          id: 'ban-form',
          onsubmit: (event) => {
            event.preventDefault();
            const ms = DURATIONS[Number(duration.value)]?.[1];
            const ban: Record<string, unknown> = { [kind.value]: value.value };
            if (ms !== undefined) ban['until'] = new Date(Date.now() + ms).toISOString();
            if (reason.value !== '') ban['reason'] = reason.value;
            api<Ban>('POST', '/bans', ban)
              .then((saved) => {
                result.textContent = `Banned ${bannedText(saved)}: connected clients it names were disconnected.`;
                toast(`Banned ${bannedText(saved)}`);
                value.value = '';
                reason.value = '';
                reload();
              })
              .catch((e: unknown) => {
                result.textContent = e instanceof Error ? e.message : String(e);
              });
          },
        },
        h('h2', {}, 'Ban'),
        h('div', { class: 'toolbar' }, kind, value),
        h('div', { class: 'toolbar' }, duration, reason),
        h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', id: 'ban-add' }, 'Ban')),
        result,
      );
      replace(
        root,
        h('h1', {}, 'Bans'),
        h('p', { class: 'muted' }, 'A banned client gets CONNACK 0x8A (MQTT 5) or 5 (3.1.1); one already connected is disconnected (MQTT 5: DISCONNECT 0x98).'),
        canWrite && form,
        h('div', { class: 'scroll' }, h('table', { id: 'bans' }, h('thead', {}, h('tr', {}, h('th', {}, 'Banned'), h('th', { class: 'wide' }, 'Until'), h('th', {}, 'Reason'), h('th', { class: 'wide' }, 'By'), h('th', {}, ''))), body)),
      );
      stop = every(5000, refresh);
    },
    unmount() {
      stop?.();
    },
  };
}
