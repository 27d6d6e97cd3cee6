import { api } from '../api.js';
import { h, replace, toast } from '../dom.js';
import type { View } from '../view.js';

/** Publish form: topic, payload, QoS, retain; sent through the REST API. */
export function publishView(): View {
  return {
    mount(root) {
      const topic = h('input', { id: 'pub-topic', required: true, placeholder: 'e.g. home/kitchen/light', autocomplete: 'off' });
      const payload = h('textarea', { id: 'pub-payload', rows: 6, placeholder: 'Payload (text or JSON)' });
      const qos = h('select', { id: 'pub-qos' }, h('option', { value: '0' }, 'QoS 0'), h('option', { value: '1' }, 'QoS 1'), h('option', { value: '2' }, 'QoS 2'));
      const retain = h('input', { type: 'checkbox', id: 'pub-retain' });
      const base64 = h('input', { type: 'checkbox', id: 'pub-base64' });
      const result = h('p', { class: 'muted', id: 'pub-result' });
      const form = h(
        'form',
        {
          class: 'panel form',
          id: 'publish-form',
          onsubmit: (event) => {
            event.preventDefault();
            const body = { topic: topic.value, payload: payload.value, encoding: base64.checked ? 'base64' : 'utf8', qos: Number(qos.value), retain: retain.checked };
            api<{ published: string; bytes: number }>('POST', '/publish', body)
              .then((r) => {
                result.textContent = `Published ${r.bytes} bytes to ${r.published} at ${new Date().toLocaleTimeString()}`;
                toast(`Published to ${r.published}`);
              })
              .catch((e: unknown) => {
                result.textContent = String(e);
                toast(String(e), 'error');
              });
          },
        },
        h('label', {}, 'Topic', topic),
        h('label', {}, 'Payload', payload),
        h('div', { class: 'row' }, h('label', {}, 'QoS', qos), h('label', { class: 'check' }, retain, 'Retain'), h('label', { class: 'check' }, base64, 'Payload is base64')),
        h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', id: 'pub-send' }, 'Publish')),
        result,
      );
      replace(root, h('h1', {}, 'Publish'), form);
    },
  };
}
