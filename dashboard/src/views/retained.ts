import { api, query, type Page, type Retained } from '../api.js';
import { debounce, h, replace, toast } from '../dom.js';
import { bytes, clock, count, fromBase64 } from '../format.js';
import { every, type View } from '../view.js';
import { payloadViewer } from './topics.js';

const PAGE_SIZE = 50;

/**
 * Without a filter, what the list asks for while $SYS is hidden: "#", which by MQTT's rules matches
 * no topic that starts with "$" [MQTT-4.7.2-1].
 */
const WITHOUT_SYS = '#';

/** Retained messages: filter by topic filter, hide or show $SYS, view a payload, clear one. */
export function retainedView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root) {
      const state = { filter: '', showSys: false, page: 1, selected: undefined as string | undefined };
      const body = h('tbody');
      const pager = h('div', { class: 'pager' });
      const detail = h('section', { class: 'panel detail', hidden: true });
      const refresh = async (): Promise<void> => {
        const hidingSys = !state.showSys && state.filter === '';
        const filter = hidingSys ? WITHOUT_SYS : state.filter;
        const [page, sys] = await Promise.all([
          api<Page<Retained>>('GET', `/retained${query({ filter, page: state.page, limit: PAGE_SIZE })}`),
          hidingSys ? api<Page<Retained>>('GET', `/retained${query({ filter: '$SYS/#', limit: 1 })}`) : undefined,
        ]);
        replace(
          body,
          ...page.items.map((m) =>
            h(
              'tr',
              { class: m.topic === state.selected ? 'selected' : '', onclick: () => show(m) },
              h('td', {}, h('code', {}, m.topic)),
              h('td', { class: 'num' }, bytes(m.payloadSize)),
              h('td', { class: 'num wide' }, String(m.qos)),
              h('td', { class: 'wide' }, clock(new Date(m.receivedAt))),
              // The broker republishes $SYS topics itself: clearing one would not last.
              h('td', {}, !m.topic.startsWith('$SYS/') && h('button', { class: 'danger small', 'data-clear': m.topic, onclick: (e) => clear(e, m.topic) }, 'Clear')),
            ),
          ),
        );
        if (page.items.length === 0) replace(body, h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No retained messages')));
        const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
        replace(
          pager,
          h('button', { disabled: state.page <= 1, onclick: () => go(state.page - 1) }, '‹ Prev'),
          h('span', {}, `Page ${state.page} of ${pages} · ${count(page.total)} retained`, sys !== undefined && sys.total > 0 && ` · ${count(sys.total)} $SYS hidden`),
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
          h(
            'label',
            { class: 'check', title: 'Show the broker\'s $SYS topics when no filter is given (a filter starting with $SYS/ shows them anyway)' },
            h('input', { type: 'checkbox', id: 'retained-show-sys', onchange: (e) => ((state.showSys = (e.target as HTMLInputElement).checked), go(1)) }),
            'Show $SYS',
          ),
        ),
        h(
          'div',
          { class: 'split' },
          h('div', { class: 'grow' }, h('div', { class: 'scroll' }, h('table', { id: 'retained' }, h('thead', {}, h('tr', {}, h('th', {}, 'Topic'), h('th', {}, 'Size'), h('th', { class: 'wide' }, 'QoS'), h('th', { class: 'wide' }, 'Stored'), h('th', {}, ''))), body)), pager),
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
