import { h, replace } from '../dom.js';
import { bytes, clock, count, guessView, showPayload, type PayloadView } from '../format.js';
import type { TopicMessage, TopicNode } from '../live.js';
import type { View } from '../view.js';

/** Shows one message's payload with Text / JSON / Hex tabs. */
export function payloadViewer(payload: Uint8Array, initial: PayloadView = guessView(payload)): HTMLElement {
  const pre = h('pre', { class: 'payload', 'data-testid': 'payload' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const show = (view: PayloadView): void => {
    pre.textContent = showPayload(payload, view);
    for (const tab of tabs.children) tab.setAttribute('aria-selected', String(tab.getAttribute('data-view') === view));
  };
  for (const view of ['text', 'json', 'hex'] as const) {
    tabs.appendChild(h('button', { role: 'tab', 'data-view': view, class: 'small', onclick: () => show(view) }, view === 'json' ? 'JSON' : view[0]!.toUpperCase() + view.slice(1)));
  }
  show(initial);
  return h('div', {}, tabs, pre);
}

/** Topic explorer: a live tree of topics, the last message of each. */
export function topicsView(): View {
  let unsubscribe: (() => void) | undefined;
  return {
    mount(root, { live }) {
      const expanded = new Set<string>(['']);
      let selected: string | undefined;
      let filter = '';
      const tree = h('ul', { class: 'tree', id: 'topic-tree' });
      const detail = h('section', { class: 'panel detail', id: 'topic-detail' }, h('p', { class: 'muted' }, 'Select a topic to see its last message.'));
      const status = h('span', { class: 'muted' });
      let shownFor: TopicMessage | undefined;

      const matches = (node: TopicNode): boolean => filter === '' || node.topic.toLowerCase().includes(filter) || [...node.children.values()].some(matches);
      const renderNode = (node: TopicNode): HTMLLIElement | undefined => {
        if (!matches(node)) return undefined;
        const open = expanded.has(node.topic) || filter !== '';
        const hasChildren = node.children.size > 0;
        const li = h(
          'li',
          {},
          h(
            'div',
            { class: `node${node.topic === selected ? ' selected' : ''}`, 'data-topic': node.topic },
            h(
              'button',
              {
                class: 'twisty',
                'aria-label': open ? 'Collapse' : 'Expand',
                disabled: !hasChildren,
                onclick: () => {
                  if (expanded.has(node.topic)) expanded.delete(node.topic);
                  else expanded.add(node.topic);
                  render();
                },
              },
              hasChildren ? (open ? '▾' : '▸') : '·',
            ),
            h(
              'button',
              {
                class: 'name',
                onclick: () => {
                  selected = node.topic;
                  expanded.add(node.topic);
                  render();
                },
              },
              node.name === '' ? '(empty)' : node.name,
            ),
            node.count > 0 && h('span', { class: 'count' }, count(node.count)),
            node.last !== undefined && h('span', { class: 'preview' }, preview(node.last.payload)),
          ),
        );
        if (hasChildren && open) {
          const children = [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name)).map(renderNode);
          li.appendChild(h('ul', {}, ...children));
        }
        return li;
      };
      const renderDetail = (): void => {
        if (selected === undefined) return;
        const node = live.find(selected);
        const last = node?.last;
        if (last === shownFor && detail.dataset['topic'] === selected) return;
        shownFor = last;
        detail.dataset['topic'] = selected;
        if (last === undefined) {
          replace(detail, h('h2', {}, selected), h('p', { class: 'muted' }, 'No message on this exact topic yet.'));
          return;
        }
        replace(
          detail,
          h('h2', { class: 'topic-name' }, selected),
          h('p', { class: 'muted' }, `${clock(last.at)} · QoS ${last.qos}${last.retain ? ' · retained' : ''} · ${bytes(last.payload.length)} · ${count(node?.count ?? 0)} messages`),
          payloadViewer(last.payload),
        );
      };
      const render = (): void => {
        const children = [...live.root.children.values()].sort((a, b) => a.name.localeCompare(b.name)).map(renderNode);
        replace(tree, ...children);
        if (live.root.children.size === 0) replace(tree, h('li', { class: 'muted' }, live.isWatching ? 'Waiting for messages…' : 'Paused.'));
        status.textContent = `${count(live.messages)} messages · ${live.state}`;
        renderDetail();
      };

      replace(
        root,
        h('h1', {}, 'Topics'),
        h(
          'div',
          { class: 'toolbar' },
          h('input', {
            type: 'search',
            id: 'topic-filter',
            placeholder: 'Filter topics',
            'aria-label': 'Filter topics',
            oninput: (e) => {
              filter = (e.target as HTMLInputElement).value.toLowerCase();
              render();
            },
          }),
          h(
            'label',
            { class: 'check' },
            h('input', { type: 'checkbox', id: 'topic-live', checked: true, onchange: (e) => live.watch((e.target as HTMLInputElement).checked) }),
            'Live',
          ),
          status,
        ),
        h('div', { class: 'split' }, h('div', { class: 'panel grow scroll' }, tree), detail),
      );
      live.watch(true);
      unsubscribe = live.onChange(render);
      render();
    },
    unmount() {
      unsubscribe?.();
    },
  };
}

function preview(payload: Uint8Array): string {
  const head = payload.subarray(0, 60);
  // Control bytes other than whitespace, or invalid UTF-8: show the size instead of garbage.
  const binary = head.some((b) => b < 0x09 || (b > 0x0d && b < 0x20)) || new TextDecoder().decode(head, { stream: true }).includes('\ufffd');
  return binary ? `${payload.length} bytes` : new TextDecoder().decode(head, { stream: true }).replace(/\s+/g, ' ');
}
