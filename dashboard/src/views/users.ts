/** Users page: MQTT users managed at runtime (list, add, roles, rules, password, delete). */
import { api, query, rulesToText, textToRules, type Page, type Role, type User } from '../api.js';
import { debounce, h, replace, toast } from '../dom.js';
import { count } from '../format.js';
import { every, type View } from '../view.js';

/** MQTT users managed at runtime: list, search, add, change roles, rules and password, delete. */
export function usersView(): View {
  let stop: (() => void) | undefined;
  return {
    mount(root, context) {
      const canWrite = context.role === 'administrator';
      const state = { search: '', selected: undefined as string | undefined, roles: [] as string[] };
      const body = h('tbody');
      const total = h('div', { class: 'pager' });
      const panel = h('section', { class: 'panel detail', id: 'user-panel' });
      const refresh = async (): Promise<void> => {
        const [page, roles] = await Promise.all([api<Page<User>>('GET', `/users${query({ search: state.search, limit: 1000 })}`), api<Page<Role>>('GET', '/roles?limit=1000')]);
        state.roles = roles.items.map((r) => r.name);
        replace(body, ...page.items.map(row));
        if (page.items.length === 0) replace(body, h('tr', {}, h('td', { colspan: 4, class: 'empty' }, state.search === '' ? 'No users yet' : 'No user matches')));
        replace(total, h('span', {}, `${count(page.total)} users`));
      };
      const reload = (): void => void refresh().catch((e: unknown) => toast(String(e), 'error'));
      const row = (u: User): HTMLTableRowElement =>
        h(
          'tr',
          { class: u.username === state.selected ? 'selected' : '', 'data-user': u.username, onclick: () => edit(u) },
          h('td', {}, u.username),
          h('td', {}, u.roles.join(', ')),
          h('td', { class: 'num' }, String(u.acl.length)),
          h('td', {}, canWrite && h('button', { class: 'danger small', 'data-delete': u.username, onclick: (e) => remove(e, u.username) }, 'Delete')),
        );
      const remove = (event: Event, username: string): void => {
        event.stopPropagation();
        if (!confirm(`Delete user ${username}? Its connected clients are disconnected.`)) return;
        api('DELETE', `/users/${encodeURIComponent(username)}`)
          .then(() => {
            toast(`Deleted ${username}`);
            if (state.selected === username) form(undefined);
            reload();
          })
          .catch((e: unknown) => toast(String(e), 'error'));
      };
      const roleBoxes = (chosen: readonly string[]): HTMLElement =>
        h(
          'fieldset',
          { class: 'roles', id: 'user-roles' },
          h('legend', {}, 'Roles'),
          state.roles.length === 0 ? h('span', { class: 'muted' }, 'No roles yet (see Roles)') : null,
          ...state.roles.map((name) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: name, checked: chosen.includes(name), disabled: !canWrite }), name)),
        );
      /** The add form (no user) or the edit form of one user. */
      const form = (user: User | undefined): void => {
        state.selected = user?.username;
        for (const tr of body.querySelectorAll('tr')) tr.classList.toggle('selected', tr.dataset['user'] === state.selected);
        const name = h('input', { id: 'user-name', required: true, autocomplete: 'off', value: user?.username ?? '', disabled: user !== undefined });
        const password = h('input', { type: 'password', id: 'user-password', autocomplete: 'new-password', required: user === undefined, placeholder: user === undefined ? 'at least 8 characters' : 'unchanged' });
        const boxes = roleBoxes(user?.roles ?? []);
        const rules = h('textarea', { id: 'user-rules', rows: 5, placeholder: 'readwrite devices/%u/#\nread commands/%u/+', disabled: !canWrite });
        rules.value = rulesToText(user?.acl ?? []);
        const result = h('p', { class: 'muted', id: 'user-result' });
        const submit = (event: Event): void => {
          event.preventDefault();
          let acl;
          try {
            acl = textToRules(rules.value);
          } catch (error) {
            result.textContent = (error as Error).message;
            return;
          }
          const roles = [...boxes.querySelectorAll<HTMLInputElement>('input:checked')].map((box) => box.value);
          const body: Record<string, unknown> = { roles, acl };
          if (password.value !== '') body['password'] = password.value;
          const request = user === undefined ? api<User>('POST', '/users', { username: name.value, ...body }) : api<User>('PUT', `/users/${encodeURIComponent(user.username)}`, body);
          request
            .then((saved) => {
              toast(user === undefined ? `Added user ${saved.username}` : `Saved ${saved.username}`);
              form(saved);
              reload();
            })
            .catch((e: unknown) => {
              result.textContent = e instanceof Error ? e.message : String(e);
            });
        };
        replace(
          panel,
          h('div', { class: 'row' }, h('h2', {}, user === undefined ? 'Add a user' : user.username), user !== undefined && h('button', { class: 'small', onclick: () => form(undefined) }, 'New user')),
          h(
            'form',
            { class: 'form', id: 'user-form', onsubmit: submit },
            user === undefined && h('label', {}, 'User name', name),
            canWrite && h('label', {}, user === undefined ? 'Password' : 'New password', password),
            boxes,
            h('label', {}, 'Own rules (one "ACCESS FILTER" a line; %u user name, %c client id)', rules),
            canWrite && h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', id: 'user-save' }, user === undefined ? 'Add user' : 'Save')),
            result,
          ),
        );
      };
      const edit = (user: User): void => form(user);
      const search = debounce((value: string) => {
        state.search = value;
        reload();
      }, 250);
      replace(
        root,
        h('h1', {}, 'Users'),
        h('p', { class: 'muted' }, 'MQTT users kept by the broker (beside the password file). Rules and roles apply to connected clients at their next publish or subscribe.'),
        h('div', { class: 'toolbar' }, h('input', { type: 'search', id: 'user-search', placeholder: 'Search user names', 'aria-label': 'Search users', oninput: (e) => search((e.target as HTMLInputElement).value) })),
        h('div', { class: 'split' }, h('div', { class: 'grow' }, h('div', { class: 'scroll' }, h('table', { id: 'users' }, h('thead', {}, h('tr', {}, h('th', {}, 'User'), h('th', {}, 'Roles'), h('th', {}, 'Rules'), h('th', {}, ''))), body)), total), panel),
      );
      let stopped = false;
      // The add form lists the roles: it is built once the first answer is in, then the list refreshes.
      void refresh()
        .then(() => {
          form(undefined);
          if (!stopped) stop = every(5000, refresh);
        })
        .catch((e: unknown) => toast(String(e), 'error'));
      stop = () => {
        stopped = true;
      };
    },
    unmount() {
      stop?.();
    },
  };
}
