import { api, query, type Page, type Retained } from '../api.js';
import { debounce, h, replace, toast } from '../dom.js';
import { bytes, clock, count, fromBase64 } from '../format.js';
import { every, type View } from '../view.js';
import { payloadViewer } from './topics.js';

const PAGE_SIZE = 50;

/** Retained messages: filter by topic filter, view a payload, clear one. */
export function retainedView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root) {
      const state = { filter: '', page: 1, selected: undefined as string | undefined };
      const body = h('tbody');
      const pager = h('div', { class: 'pager' });
      const detail = h('section', { class: 'panel detail', hidden: true });
      const refresh = async (): Promise<void> => {
        const page = await api<Page<Retained>>('GET', `/retained${query({ filter: state.filter, page: state.page, limit: PAGE_SIZE })}`);
        replace(
          body,
          ...page.items.map((m) =>
            h(
              'tr',
              { class: m.topic === state.selected ? 'selected' : '', onclick: () => show(m) },
              h('td', {}, h('code', {}, m.topic)),
              h('td', { class: 'num' }, bytes(m.payloadSize)),
              h('td', { class: 'num' }, String(m.qos)),
              h('td', {}, clock(new Date(m.receivedAt))),
              h('td', {}, h('button', { class: 'danger small', onclick: (e) => clear(e, m.topic) }, 'Clear')),
            ),
          ),
        );
        if (page.items.length === 0) replace(body, h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No retained messages')));
        const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
        replace(
          pager,
          h('button', { disabled: state.page <= 1, onclick: () => go(state.page - 1) }, '‹ Prev'),
          h('span', {}, `Page ${state.page} of ${pages} · ${count(page.total)} retained`),
          h('button', { disabled: state.page >= pages, onclick: () => go(state.page + 1) }, 'Next ›'),
        );
      };
      const go = (page: number): void => {
        state.page = page;
        refresh().catch((e: unknown) => toast(String(e), 'error'));
      };
      const show = (m: Retained): void => {
        state.selected = m.topic;
        detail.hidden = false;
        replace(detail, h('h2', { class: 'topic-name' }, m.topic), h('p', { class: 'muted' }, `QoS ${m.qos} · ${bytes(m.payloadSize)} · ${new Date(m.receivedAt).toLocaleString()}`), payloadViewer(fromBase64(m.payloadBase64)));
      };
      const clear = (event: Event, topic: string): void => {
        event.stopPropagation();
        api('DELETE', `/retained/${encodeURIComponent(topic)}`)
          .then(() => {
            toast(`Cleared ${topic}`);
            if (state.selected === topic) detail.hidden = true;
            go(state.page);
          })
          .catch((e: unknown) => toast(String(e), 'error'));
      };
      const onFilter = debounce(() => go(1), 300);
      replace(
        root,
        h('h1', {}, 'Retained messages'),
        h(
          'div',
          { class: 'toolbar' },
          h('input', { type: 'search', placeholder: 'Topic filter, e.g. sensors/+/temp or #', 'aria-label': 'Topic filter', oninput: (e) => ((state.filter = (e.target as HTMLInputElement).value), onFilter()) }),
        ),
        h(
          'div',
          { class: 'split' },
          h('div', { class: 'grow' }, h('div', { class: 'scroll' }, h('table', { id: 'retained' }, h('thead', {}, h('tr', {}, h('th', {}, 'Topic'), h('th', {}, 'Size'), h('th', {}, 'QoS'), h('th', {}, 'Stored'), h('th', {}, ''))), body)), pager),
          detail,
        ),
      );
      stop = every(5000, refresh);
    },
    unmount() {
      stop?.();
    },
  };
}
