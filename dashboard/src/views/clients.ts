import { api, query, type Client, type ClientDetail, type Page } from '../api.js';
import { debounce, h, replace, toast } from '../dom.js';
import { bytes, clock, count, expiry } from '../format.js';
import { every, type View } from '../view.js';

type SortKey = 'clientId' | 'username' | 'remoteAddress' | 'connectedAt' | 'subscriptions' | 'inflight' | 'queued';

/** The table's columns; `wide` ones are left out on a phone (the detail panel has them all). */
const COLUMNS: { key: SortKey; label: string; wide?: true }[] = [
  { key: 'clientId', label: 'Client id' },
  { key: 'username', label: 'User', wide: true },
  { key: 'remoteAddress', label: 'Address', wide: true },
  { key: 'connectedAt', label: 'Connected', wide: true },
  { key: 'subscriptions', label: 'Subs' },
  { key: 'inflight', label: 'Inflight', wide: true },
  { key: 'queued', label: 'Queued', wide: true },
];
const PAGE_SIZE = 25;

/** Clients: search, sort, page, detail and kick. */
export function clientsView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root) {
      const state = { search: '', connected: '', sort: 'clientId' as SortKey, order: 'asc' as 'asc' | 'desc', page: 1, selected: undefined as string | undefined };
      const body = h('tbody');
      const head = h('tr');
      const pager = h('div', { class: 'pager' });
      const detail = h('section', { class: 'panel detail', id: 'client-detail', hidden: true });
      const refresh = async (): Promise<void> => {
        const page = await api<Page<Client>>(
          'GET',
          `/clients${query({ search: state.search, connected: state.connected, sort: state.sort, order: state.order, page: state.page, limit: PAGE_SIZE })}`,
        );
        replace(body, ...page.items.map(row));
        if (page.items.length === 0) replace(body, h('tr', {}, h('td', { colspan: COLUMNS.length + 1, class: 'empty' }, 'No clients')));
        const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
        replace(
          pager,
          h('button', { disabled: state.page <= 1, onclick: () => go(state.page - 1) }, '‹ Prev'),
          h('span', {}, `Page ${state.page} of ${pages} · ${count(page.total)} clients`),
          h('button', { disabled: state.page >= pages, onclick: () => go(state.page + 1) }, 'Next ›'),
        );
        if (state.selected !== undefined) await showDetail(state.selected);
      };
      const reload = (): void => void refresh().catch((e: unknown) => toast(String(e), 'error'));
      const go = (page: number): void => {
        state.page = page;
        reload();
      };
      const row = (c: Client): HTMLTableRowElement =>
        h(
          'tr',
          { class: c.clientId === state.selected ? 'selected' : '', 'data-client': c.clientId, onclick: () => select(c.clientId) },
          h('td', {}, h('span', { class: `dot ${c.connected ? 'on' : 'off'}`, title: c.connected ? 'connected' : 'offline session' }), c.clientId),
          h('td', { class: 'wide' }, c.username ?? ''),
          h('td', { class: 'wide' }, c.remoteAddress ?? ''),
          h('td', { class: 'wide' }, c.connectedAt === null ? '' : clock(new Date(c.connectedAt))),
          h('td', { class: 'num' }, String(c.subscriptions)),
          h('td', { class: 'num wide' }, String(c.inflight)),
          h('td', { class: 'num wide' }, String(c.queued)),
          h('td', {}, h('button', { class: 'danger small', 'data-kick': c.clientId, onclick: (e) => kick(e, c.clientId, false) }, 'Kick')),
        );
      const select = (clientId: string): void => {
        state.selected = clientId;
        for (const tr of body.querySelectorAll('tr')) tr.classList.toggle('selected', tr.dataset['client'] === clientId);
        void showDetail(clientId).catch((e: unknown) => toast(String(e), 'error'));
      };
      const kick = (event: Event, clientId: string, discardSession: boolean): void => {
        event.stopPropagation();
        if (discardSession && state.selected === clientId) {
          // The session is about to go: do not ask for its detail again (that would be a 404).
          state.selected = undefined;
          detail.hidden = true;
        }
        api('POST', `/clients/${encodeURIComponent(clientId)}/disconnect`, { discardSession })
          .then(() => {
            toast(`Disconnected ${clientId}`);
            reload();
          })
          .catch((e: unknown) => toast(String(e), 'error'));
      };
      const ban = (event: Event, clientId: string): void => {
        event.stopPropagation();
        api('POST', '/bans', { clientId, reason: 'banned from the dashboard' })
          .then(() => {
            toast(`Banned ${clientId}`);
            reload();
          })
          .catch((e: unknown) => toast(String(e), 'error'));
      };
      const showDetail = async (clientId: string): Promise<void> => {
        let d: ClientDetail;
        try {
          d = await api<ClientDetail>('GET', `/clients/${encodeURIComponent(clientId)}`);
        } catch {
          state.selected = undefined;
          detail.hidden = true;
          return;
        }
        detail.hidden = false;
        const field = (label: string, value: string): HTMLElement[] => [h('dt', {}, label), h('dd', {}, value)];
        replace(
          detail,
          h('div', { class: 'row' }, h('h2', {}, d.clientId), h('button', { class: 'small', onclick: () => ((state.selected = undefined), (detail.hidden = true)) }, 'Close')),
          h(
            'dl',
            {},
            ...field('State', d.connected ? 'connected' : 'offline session'),
            ...field('User', d.username ?? '–'),
            ...field('Address', d.remoteAddress ?? '–'),
            ...field('Listener', d.listener ?? '–'),
            ...field('MQTT', d.protocolVersion === null ? '–' : d.protocolVersion === 5 ? '5.0' : d.protocolVersion === 4 ? '3.1.1' : '3.1'),
            ...field('Keep-alive', d.keepalive === null ? '–' : `${d.keepalive} s`),
            ...field('Session expiry', expiry(d.sessionExpiryInterval)),
            ...field('Buffered', bytes(d.bufferedBytes)),
            ...field('Inflight / queued', `${d.inflight} / ${d.queued}`),
            ...field('Dropped (queue full)', String(d.droppedQueueFull)),
          ),
          h('h3', {}, `Subscriptions (${d.subscriptionList.length})`),
          h('ul', { class: 'plain' }, ...d.subscriptionList.map((s) => h('li', {}, h('code', {}, s.topicFilter), ` QoS ${s.qos}`))),
          d.inflightMessages.length > 0 && h('h3', {}, 'Inflight'),
          d.inflightMessages.length > 0 && h('ul', { class: 'plain' }, ...d.inflightMessages.map((m) => h('li', {}, `#${m.packetId} `, h('code', {}, m.topic), ` QoS ${m.qos} ${m.state}`))),
          h(
            'div',
            { class: 'row' },
            d.connected && h('button', { class: 'danger', id: 'detail-kick', onclick: (e) => kick(e, d.clientId, false) }, 'Disconnect'),
            h('button', { class: 'danger', onclick: (e) => kick(e, d.clientId, true) }, 'Disconnect and end session'),
            h('button', { class: 'danger', id: 'detail-ban', onclick: (e) => ban(e, d.clientId) }, 'Ban client id'),
          ),
        );
      };
      for (const column of COLUMNS) {
        head.appendChild(
          h(
            'th',
            {
              class: column.wide === true ? 'sortable wide' : 'sortable',
              'data-sort': column.key,
              'aria-sort': state.sort === column.key ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none',
              onclick: () => {
                state.order = state.sort === column.key && state.order === 'asc' ? 'desc' : 'asc';
                state.sort = column.key;
                for (const th of head.querySelectorAll('th[data-sort]')) {
                  th.setAttribute('aria-sort', th.getAttribute('data-sort') === state.sort ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none');
                }
                go(1);
              },
            },
            column.label,
          ),
        );
      }
      head.appendChild(h('th', {}, ''));
      const search = debounce((value: string) => {
        state.search = value;
        go(1);
      }, 250);
      replace(
        root,
        h('h1', {}, 'Clients'),
        h(
          'div',
          { class: 'toolbar' },
          h('input', { type: 'search', id: 'client-search', placeholder: 'Search id, user or address', 'aria-label': 'Search clients', oninput: (e) => search((e.target as HTMLInputElement).value) }),
          h(
            'select',
            {
              'aria-label': 'Connection state',
              onchange: (e) => {
                state.connected = (e.target as HTMLSelectElement).value;
                go(1);
              },
            },
            h('option', { value: '' }, 'All'),
            h('option', { value: 'true' }, 'Connected'),
            h('option', { value: 'false' }, 'Offline sessions'),
          ),
        ),
        h('div', { class: 'split' }, h('div', { class: 'grow' }, h('div', { class: 'scroll' }, h('table', { id: 'clients' }, h('thead', {}, head), body)), pager), detail),
      );
      stop = every(3000, refresh);
    },
    unmount() {
      stop?.();
    },
  };
}
