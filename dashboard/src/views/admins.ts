/** Admins page: administrators and viewers of the dashboard and API, and your own password. */
import { api, type Admin, type Page } from '../api.js';
import { h, replace, toast } from '../dom.js';
import { every, type View } from '../view.js';

/** Admins of the dashboard and API: administrators change things, viewers only look. */
export function adminsView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root, context) {
      const canWrite = context.role === 'administrator';
      const body = h('tbody');
      const refresh = async (): Promise<void> => {
        const page = await api<Page<Admin>>('GET', '/admins?limit=1000');
        replace(
          body,
          ...page.items.map((a) =>
            h(
              'tr',
              { 'data-admin': a.username },
              h('td', {}, a.username, a.username === context.admin ? ' (you)' : ''),
              h('td', {}, a.role),
              h('td', {}, canWrite && h('button', { class: 'danger small', 'data-delete': a.username, onclick: () => remove(a.username) }, 'Delete')),
            ),
          ),
        );
        if (page.items.length === 0) replace(body, h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No admins: the API is protected by its token or by loopback only')));
      };
      const reload = (): void => void refresh().catch((e: unknown) => toast(String(e), 'error'));
      const remove = (username: string): void => {
        if (!confirm(`Delete admin ${username}? Its sessions end.`)) return;
        api('DELETE', `/admins/${encodeURIComponent(username)}`)
          .then(() => {
            toast(`Deleted admin ${username}`);
            reload();
          })
          .catch((e: unknown) => toast(String(e), 'error'));
      };
      const name = h('input', { id: 'admin-name', required: true, autocomplete: 'off' });
      const password = h('input', { type: 'password', id: 'admin-password', required: true, autocomplete: 'new-password', placeholder: 'at least 8 characters' });
      const role = h('select', { id: 'admin-role' }, h('option', { value: 'administrator' }, 'administrator'), h('option', { value: 'viewer' }, 'viewer'));
      const result = h('p', { class: 'muted', id: 'admin-result' });
      const add = h(
        'form',
        {
          class: 'panel form',
          id: 'admin-form',
          onsubmit: (event) => {
            event.preventDefault();
            api<Admin>('POST', '/admins', { username: name.value, password: password.value, role: role.value })
              .then((saved) => {
                toast(`Added admin ${saved.username} (${saved.role})`);
                name.value = '';
                password.value = '';
                result.textContent = '';
                reload();
              })
              .catch((e: unknown) => {
                result.textContent = e instanceof Error ? e.message : String(e);
              });
          },
        },
        h('h2', {}, 'Add an admin'),
        h('label', {}, 'Name', name),
        h('label', {}, 'Password', password),
        h('label', {}, 'Role', role),
        h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', id: 'admin-add' }, 'Add admin')),
        result,
      );
      const own = h('input', { type: 'password', id: 'own-password', required: true, autocomplete: 'new-password' });
      const ownResult = h('p', { class: 'muted' });
      const change =
        context.admin !== undefined &&
        h(
          'form',
          {
            class: 'panel form',
            id: 'own-password-form',
            onsubmit: (event) => {
              event.preventDefault();
              api('PUT', `/admins/${encodeURIComponent(context.admin!)}`, { password: own.value })
                .then(() => {
                  own.value = '';
                  ownResult.textContent = 'Password changed; your other sessions have ended.';
                })
                .catch((e: unknown) => {
                  ownResult.textContent = e instanceof Error ? e.message : String(e);
                });
            },
          },
          h('h2', {}, 'Your password'),
          h('label', {}, 'New password', own),
          h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Change')),
          ownResult,
        );
      replace(
        root,
        h('h1', {}, 'Admins'),
        h('div', { class: 'scroll' }, h('table', { id: 'admins' }, h('thead', {}, h('tr', {}, h('th', {}, 'Admin'), h('th', {}, 'Role'), h('th', {}, ''))), body)),
        canWrite && add,
        change,
      );
      stop = every(5000, refresh);
    },
    unmount() {
      stop?.();
    },
  };
}
