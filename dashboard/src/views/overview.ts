import { api, type Overview } from '../api.js';
import { LineChart } from '../chart.js';
import { h, replace } from '../dom.js';
import { bytes, count, duration, rate } from '../format.js';
import { every, type View } from '../view.js';
import { WorkerTable } from './worker-table.js';

const POLL_MS = 1000;
const POINTS = 60;

/** Connections, message rates in and out as live charts, memory, uptime, the workers of a group, listeners. */
export function overviewView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root) {
      const stat = (id: string, label: string, sub?: HTMLElement): HTMLElement => {
        const value = h('div', { class: 'value', id: `stat-${id}` }, '–');
        root.querySelector('.cards')?.appendChild(h('div', { class: 'card' }, h('div', { class: 'label' }, label), value, sub));
        return value;
      };
      const heap = h('div', { class: 'sub' });
      const rates = new LineChart(
        [
          { label: 'in', className: 'in', values: [] },
          { label: 'out', className: 'out', values: [] },
        ],
        POINTS,
        (n) => `${rate(n)}/s`,
      );
      const connections = new LineChart([{ label: 'connected', className: 'conn', values: [] }], POINTS, count);
      const listeners = h('tbody');
      const workers = new WorkerTable();
      replace(
        root,
        h('h1', {}, 'Overview'),
        h('div', { class: 'cards' }),
        h(
          'div',
          { class: 'charts' },
          h('section', { class: 'panel' }, h('h2', {}, 'Messages per second ', h('span', { class: 'key in' }, 'in'), ' ', h('span', { class: 'key out' }, 'out')), rates.element, rates.caption),
          h('section', { class: 'panel' }, h('h2', {}, 'Connected clients'), connections.element, connections.caption),
        ),
        workers.element,
        h('section', { class: 'panel' }, h('h2', {}, 'Listeners'), h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Protocol'), h('th', {}, 'Address'), h('th', {}, 'Port'), h('th', {}, 'Clients'))), listeners))),
      );
      const connected = stat('connections', 'Connected clients');
      const inRate = stat('rate-in', 'Messages in / s');
      const outRate = stat('rate-out', 'Messages out / s');
      const sessions = stat('sessions', 'Sessions');
      const subscriptions = stat('subscriptions', 'Subscriptions');
      const retained = stat('retained', 'Retained');
      const memory = stat('memory', 'Memory (RSS)', heap);
      const uptime = stat('uptime', 'Uptime');
      const version = stat('version', 'Version');
      let previous: { at: number; received: number; sent: number } | undefined;
      stop = every(POLL_MS, async () => {
        const o = await api<Overview>('GET', '/overview');
        const now = performance.now();
        let rin = 0;
        let rout = 0;
        if (previous !== undefined) {
          const seconds = (now - previous.at) / 1000;
          rin = Math.max(0, (o.counters.messagesReceived - previous.received) / seconds);
          rout = Math.max(0, (o.counters.messagesSent - previous.sent) / seconds);
          rates.push(rin, rout);
        }
        previous = { at: now, received: o.counters.messagesReceived, sent: o.counters.messagesSent };
        connections.push(o.totals.clientsConnected);
        connected.textContent = count(o.totals.clientsConnected);
        inRate.textContent = rate(rin);
        outRate.textContent = rate(rout);
        sessions.textContent = count(o.totals.sessions);
        subscriptions.textContent = count(o.totals.subscriptions);
        retained.textContent = count(o.totals.retained);
        memory.textContent = bytes(o.memory.rss);
        heap.textContent = `heap ${bytes(o.memory.heapUsed)} of ${bytes(o.memory.heapTotal)}`;
        uptime.textContent = duration(o.uptimeSeconds);
        version.textContent = o.version;
        workers.update(o.workers);
        replace(
          listeners,
          ...o.listeners.map((l) =>
            h('tr', {}, h('td', {}, l.name), h('td', {}, l.protocol), h('td', {}, l.address), h('td', {}, String(l.port)), h('td', {}, count(o.totals.byListener[l.name] ?? 0))),
          ),
        );
      });
    },
    unmount() {
      stop?.();
    },
  };
}
