/** Roles page: named rule sets that users are given. */
import { api, rulesToText, textToRules, type Page, type Role } from '../api.js';
import { h, replace, toast } from '../dom.js';
import { every, type View } from '../view.js';

/** Roles: named sets of ACL rules that users are given. */
export function rolesView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root, context) {
      const canWrite = context.role === 'administrator';
      const body = h('tbody');
      const panel = h('section', { class: 'panel detail', id: 'role-panel' });
      let selected: string | undefined;
      const refresh = async (): Promise<void> => {
        const page = await api<Page<Role>>('GET', '/roles?limit=1000');
        replace(
          body,
          ...page.items.map((r) =>
            h(
              'tr',
              { class: r.name === selected ? 'selected' : '', 'data-role': r.name, onclick: () => form(r) },
              h('td', {}, r.name),
              h('td', { class: 'num' }, String(r.acl.length)),
              h('td', {}, r.users.join(', ')),
              h('td', {}, canWrite && h('button', { class: 'danger small', 'data-delete': r.name, onclick: (e) => remove(e, r.name) }, 'Delete')),
            ),
          ),
        );
        if (page.items.length === 0) replace(body, h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'No roles yet')));
      };
      const reload = (): void => void refresh().catch((e: unknown) => toast(String(e), 'error'));
      const remove = (event: Event, name: string): void => {
        event.stopPropagation();
        if (!confirm(`Delete role ${name}? Users that have it lose it.`)) return;
        api('DELETE', `/roles/${encodeURIComponent(name)}`)
          .then(() => {
            toast(`Deleted role ${name}`);
            if (selected === name) form(undefined);
            reload();
          })
          .catch((e: unknown) => toast(String(e), 'error'));
      };
      const form = (role: Role | undefined): void => {
        selected = role?.name;
        for (const tr of body.querySelectorAll('tr')) tr.classList.toggle('selected', tr.dataset['role'] === selected);
        const name = h('input', { id: 'role-name', required: true, autocomplete: 'off', placeholder: 'e.g. devices' });
        const rules = h('textarea', { id: 'role-rules', rows: 6, placeholder: 'readwrite devices/%u/#\ndeny devices/+/secret/#', disabled: !canWrite });
        rules.value = rulesToText(role?.acl ?? []);
        const result = h('p', { class: 'muted', id: 'role-result' });
        const submit = (event: Event): void => {
          event.preventDefault();
          let acl;
          try {
            acl = textToRules(rules.value);
          } catch (error) {
            result.textContent = (error as Error).message;
            return;
          }
          const request = role === undefined ? api<Role>('POST', '/roles', { name: name.value, acl }) : api<Role>('PUT', `/roles/${encodeURIComponent(role.name)}`, { acl });
          request
            .then((saved) => {
              toast(role === undefined ? `Added role ${saved.name}` : `Saved role ${saved.name}`);
              form(saved);
              reload();
            })
            .catch((e: unknown) => {
              result.textContent = e instanceof Error ? e.message : String(e);
            });
        };
        replace(
          panel,
          h('div', { class: 'row' }, h('h2', {}, role === undefined ? 'Add a role' : `Role ${role.name}`), role !== undefined && h('button', { class: 'small', onclick: () => form(undefined) }, 'New role')),
          h(
            'form',
            { class: 'form', id: 'role-form', onsubmit: submit },
            role === undefined && h('label', {}, 'Name', name),
            h('label', {}, 'Rules (one "ACCESS FILTER" a line; ACCESS: read, write, readwrite or deny; %u user name, %c client id)', rules),
            role !== undefined && h('p', { class: 'muted' }, `Users: ${role.users.join(', ') || 'none'}`),
            canWrite && h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', id: 'role-save' }, role === undefined ? 'Add role' : 'Save')),
            result,
          ),
        );
      };
      replace(
        root,
        h('h1', {}, 'Roles'),
        h('p', { class: 'muted' }, 'A deny anywhere wins; otherwise any grant of a user\'s own rules, its roles or the ACL file allows.'),
        h('div', { class: 'split' }, h('div', { class: 'grow' }, h('div', { class: 'scroll' }, h('table', { id: 'roles' }, h('thead', {}, h('tr', {}, h('th', {}, 'Role'), h('th', {}, 'Rules'), h('th', {}, 'Users'), h('th', {}, ''))), body))), panel),
      );
      form(undefined);
      stop = every(5000, refresh);
    },
    unmount() {
      stop?.();
    },
  };
}
