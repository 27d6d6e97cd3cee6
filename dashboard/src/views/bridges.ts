/** The bridges to other brokers: state, queue, counters and topics, with Stop / Start (docs/bridges.md). */
import { api, type Bridge } from '../api.js';
import { h, replace, toast } from '../dom.js';
import { count, duration } from '../format.js';
import { every, type View } from '../view.js';

const ARROWS: Record<Bridge['topics'][number]['direction'], string> = { out: '→', in: '←', both: '↔' };

/** Every configured bridge, refreshed every 2 s. */
export function bridgesView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root) {
      const body = h('tbody');
      const refresh = async (): Promise<void> => {
        const { items } = await api<{ items: Bridge[]; total: number }>('GET', '/bridges');
        replace(body, ...items.map((b) => row(b, refresh)));
        if (items.length === 0) replace(body, h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No bridges configured (see "bridges" in docs/bridges.md)')));
      };
      replace(
        root,
        h('h1', {}, 'Bridges'),
        h(
          'div',
          { class: 'scroll' },
          h(
            'table',
            { id: 'bridges' },
            h(
              'thead',
              {},
              h('tr', {}, h('th', {}, 'Bridge'), h('th', {}, 'Remote'), h('th', {}, 'State'), h('th', { class: 'num' }, 'Queued'), h('th', { class: 'num' }, 'In'), h('th', { class: 'num' }, 'Out'), h('th', { class: 'num' }, 'Dropped'), h('th', {}, '')),
            ),
            body,
          ),
        ),
      );
      stop = every(2000, refresh);
    },
    unmount() {
      stop?.();
    },
  };
}

function row(b: Bridge, refresh: () => Promise<void>): HTMLTableRowElement {
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(b.since)) / 1000));
  const action = b.state === 'stopped' ? 'start' : 'stop';
  const topics = b.topics.map((t) => `${t.localPrefix}${t.pattern} ${ARROWS[t.direction]} ${t.remotePrefix}${t.pattern} (QoS ${t.qos})`).join('\n');
  return h(
    'tr',
    { 'data-bridge': b.name },
    h('td', { title: topics }, h('span', { class: `dot ${b.state === 'up' ? 'on' : 'off'}` }), b.name),
    h('td', {}, h('code', {}, b.url), h('div', { class: 'muted' }, `as ${b.remoteClientId}, MQTT ${b.protocolVersion === 5 ? '5' : '3.1.1'}`)),
    h('td', { class: 'bridge-state', title: b.lastError ?? '' }, `${b.state} for ${duration(seconds)}`, b.state !== 'up' && b.lastError !== null ? h('div', { class: 'muted' }, b.lastError) : null),
    h('td', { class: 'num' }, count(b.queued)),
    h('td', { class: 'num' }, count(b.messagesIn)),
    h('td', { class: 'num' }, count(b.messagesOut)),
    h('td', { class: 'num' }, count(b.dropped)),
    h(
      'td',
      {},
      h(
        'button',
        {
          onclick: () => {
            api<Bridge>('POST', `/bridges/${encodeURIComponent(b.name)}/${action}`)
              .then(() => toast(`Bridge "${b.name}" ${action === 'stop' ? 'stopped' : 'started'}`))
              .then(refresh)
              .catch((e: unknown) => toast(String(e), 'error'));
          },
        },
        action === 'stop' ? 'Stop' : 'Start',
      ),
    ),
  );
}
