import { api, query, type Page, type Subscription } from '../api.js';
import { debounce, h, replace, toast } from '../dom.js';
import { count } from '../format.js';
import { every, type View } from '../view.js';

const PAGE_SIZE = 50;

/** Every subscription, searchable by filter or client. */
export function subscriptionsView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root) {
      const state = { search: '', clientId: '', page: 1 };
      const body = h('tbody');
      const pager = h('div', { class: 'pager' });
      const refresh = async (): Promise<void> => {
        const page = await api<Page<Subscription>>('GET', `/subscriptions${query({ search: state.search, clientId: state.clientId, page: state.page, limit: PAGE_SIZE })}`);
        replace(
          body,
          ...page.items.map((s) =>
            h('tr', {}, h('td', {}, h('code', {}, s.topicFilter)), h('td', {}, s.clientId), h('td', { class: 'num' }, String(s.qos)), h('td', {}, flags(s))),
          ),
        );
        if (page.items.length === 0) replace(body, h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'No subscriptions')));
        const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
        replace(
          pager,
          h('button', { disabled: state.page <= 1, onclick: () => go(state.page - 1) }, '‹ Prev'),
          h('span', {}, `Page ${state.page} of ${pages} · ${count(page.total)} subscriptions`),
          h('button', { disabled: state.page >= pages, onclick: () => go(state.page + 1) }, 'Next ›'),
        );
      };
      const go = (page: number): void => {
        state.page = page;
        refresh().catch((e: unknown) => toast(String(e), 'error'));
      };
      const onSearch = debounce(() => go(1), 250);
      replace(
        root,
        h('h1', {}, 'Subscriptions'),
        h(
          'div',
          { class: 'toolbar' },
          h('input', { type: 'search', placeholder: 'Filter contains…', 'aria-label': 'Topic filter contains', oninput: (e) => ((state.search = (e.target as HTMLInputElement).value), onSearch()) }),
          h('input', { type: 'search', placeholder: 'Client id', 'aria-label': 'Client id', oninput: (e) => ((state.clientId = (e.target as HTMLInputElement).value), onSearch()) }),
        ),
        h('div', { class: 'scroll' }, h('table', { id: 'subscriptions' }, h('thead', {}, h('tr', {}, h('th', {}, 'Topic filter'), h('th', {}, 'Client'), h('th', {}, 'QoS'), h('th', {}, 'Options'))), body)),
        pager,
      );
      stop = every(5000, refresh);
    },
    unmount() {
      stop?.();
    },
  };
}

function flags(s: Subscription): string {
  const out: string[] = [];
  if (s.shareGroup !== null) out.push(`shared: ${s.shareGroup}`);
  if (s.noLocal) out.push('no local');
  if (s.retainAsPublished) out.push('retain as published');
  if (s.retainHandling !== 0) out.push(`retain handling ${s.retainHandling}`);
  return out.join(', ');
}
