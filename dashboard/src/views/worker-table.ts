/** The overview's per-worker table (starling --workers N): one row per worker, hidden on a single process. */
import type { WorkerSummary } from '../../../src/http/group-view.js';
import { h, replace } from '../dom.js';
import { bytes, count } from '../format.js';

/** A panel listing the workers of a group; hidden while the API reports none. */
export class WorkerTable {
  readonly element: HTMLElement;
  private readonly rows = h('tbody');

  constructor() {
    const head = h('tr', {}, ...['Worker', 'PID', 'Connections', 'Sessions', 'Messages in', 'Messages out', 'CPU', 'Memory (RSS)', 'Heap used'].map((label) => h('th', {}, label)));
    this.element = h(
      'section',
      { class: 'panel', id: 'workers', hidden: true },
      h('h2', {}, 'Workers'),
      h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, head), this.rows)),
    );
  }

  /** Shows `workers` (one row each), or hides the panel when there are none. */
  update(workers: readonly WorkerSummary[] | undefined): void {
    this.element.hidden = workers === undefined || workers.length === 0;
    replace(
      this.rows,
      ...(workers ?? []).map((w) =>
        h(
          'tr',
          { 'data-worker': w.worker },
          h('td', {}, w.worker),
          h('td', {}, String(w.pid)),
          h('td', {}, count(w.connections)),
          h('td', {}, count(w.sessions)),
          h('td', {}, count(w.messagesReceived)),
          h('td', {}, count(w.messagesSent)),
          h('td', {}, `${w.cpuSeconds.toFixed(1)} s`),
          h('td', {}, bytes(w.memory.rss)),
          h('td', {}, bytes(w.memory.heapUsed)),
        ),
      ),
    );
  }
}
