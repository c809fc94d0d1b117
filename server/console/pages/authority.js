// Authority Control: User List (create, reset password, delete), Role Management (bind,
// unbind) and Privilege Management (namespace + read / write / read-write).

import { route, go, loadNamespaces } from '../app.js';
import { api } from '../api.js';
import { h, field, input, select, button, messageBox, table, pager, dialog, confirm } from '../dom.js';

const PAGE_SIZE = 10;

function formDialog(title, fields, submit) {
  return dialog(title, (close) => {
    const msg = messageBox();
    return h('form', { onSubmit: async (e) => {
      e.preventDefault();
      try { await submit(); close(true); } catch (err) { msg.error(err.message); }
    } }, fields, msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'OK'), button('Cancel', () => close(null))));
  });
}

function searchForm(path, label, value) {
  const box = input({ value: value || '' });
  return h('form', { class: 'search', role: 'search', onSubmit: (e) => { e.preventDefault(); go(path, { q: box.value.trim(), pageNo: 1 }); } },
    field(label, box), h('button', { type: 'submit', class: 'primary' }, 'Search'));
}

function passwordPair() {
  const password = input({ type: 'password', autocomplete: 'new-password', required: true });
  const again = input({ type: 'password', autocomplete: 'new-password', required: true });
  const check = () => {
    if (password.value !== again.value) throw new Error('The passwords do not match.');
    return password.value;
  };
  return { fields: [field('Password', password), field('Confirm password', again)], check };
}

route('/users', async ({ query }) => {
  const pageNo = Number(query.get('pageNo') || 1);
  const q = query.get('q') || '';
  const msg = messageBox();
  const reload = () => go('/users', { q, pageNo, t: Date.now() });
  const res = await api('GET', '/v1/auth/users', { query: { search: 'blur', username: q, pageNo, pageSize: PAGE_SIZE } });
  const create = async () => {
    const username = input({ required: true, autocomplete: 'off' });
    const pw = passwordPair();
    if (await formDialog('Create user', [field('Username', username), ...pw.fields],
      () => api('POST', '/v1/auth/users', { form: { username: username.value.trim(), password: pw.check() } }))) reload();
  };
  const reset = async (u) => {
    const pw = passwordPair();
    if (await formDialog(`Reset password of ${u.username}`, pw.fields,
      () => api('PUT', '/v1/auth/users', { form: { username: u.username, newPassword: pw.check() } }))) msg.ok(`Password of ${u.username} changed.`);
  };
  const remove = async (u) => {
    if (!await confirm('Delete user', h('p', {}, `Delete user ${u.username}?`), 'Delete')) return;
    try { await api('DELETE', '/v1/auth/users', { query: { username: u.username } }); reload(); } catch (e) { msg.error(e.message); }
  };
  return h('section', { class: 'page' }, h('h1', {}, 'User List'), searchForm('/users', 'Username', q),
    h('div', { class: 'actions' }, button('Create user', create, { class: 'primary' })), msg.el,
    table([
      { title: 'Username', render: (u) => u.username },
      { title: 'Operation', render: (u) => h('span', { class: 'ops' },
        button('Reset password', () => reset(u), { 'aria-label': `Reset password of ${u.username}` }),
        button('Delete', () => remove(u), { class: 'danger', 'aria-label': `Delete user ${u.username}` })) },
    ], res.pageItems || [], { 'aria-label': 'Users' }),
    pager(pageNo, PAGE_SIZE, res.totalCount || 0, (p) => go('/users', { q, pageNo: p })));
});

route('/roles', async ({ query }) => {
  const pageNo = Number(query.get('pageNo') || 1);
  const q = query.get('q') || '';
  const msg = messageBox();
  const reload = () => go('/roles', { q, pageNo, t: Date.now() });
  const res = await api('GET', '/v1/auth/roles', { query: { search: 'blur', username: q, role: '', pageNo, pageSize: PAGE_SIZE } });
  const bind = async () => {
    const role = input({ required: true });
    const username = input({ required: true });
    if (await formDialog('Bind role', [field('Role name', role), field('Username', username)],
      () => api('POST', '/v1/auth/roles', { form: { role: role.value.trim(), username: username.value.trim() } }))) reload();
  };
  const unbind = async (r) => {
    if (!await confirm('Delete role binding', h('p', {}, `Remove role ${r.role} from ${r.username}?`), 'Delete')) return;
    try { await api('DELETE', '/v1/auth/roles', { query: { role: r.role, username: r.username } }); reload(); } catch (e) { msg.error(e.message); }
  };
  return h('section', { class: 'page' }, h('h1', {}, 'Role Management'), searchForm('/roles', 'Username', q),
    h('div', { class: 'actions' }, button('Bind role', bind, { class: 'primary' })), msg.el,
    table([
      { title: 'Role name', render: (r) => r.role },
      { title: 'Username', render: (r) => r.username },
      { title: 'Operation', render: (r) => (r.role === 'ROLE_ADMIN' ? h('span', { class: 'muted' }, 'Global admin')
        : button('Delete', () => unbind(r), { class: 'danger', 'aria-label': `Remove role ${r.role} from ${r.username}` })) },
    ], res.pageItems || [], { 'aria-label': 'Roles' }),
    pager(pageNo, PAGE_SIZE, res.totalCount || 0, (p) => go('/roles', { q, pageNo: p })));
});

const ACTIONS = [['r', 'Read only'], ['w', 'Write only'], ['rw', 'Read & Write']];

route('/permissions', async ({ query }) => {
  const pageNo = Number(query.get('pageNo') || 1);
  const q = query.get('q') || '';
  const msg = messageBox();
  const reload = () => go('/permissions', { q, pageNo, t: Date.now() });
  const res = await api('GET', '/v1/auth/permissions', { query: { search: 'blur', role: q, pageNo, pageSize: PAGE_SIZE } });
  const namespaces = await loadNamespaces();
  const add = async () => {
    const role = input({ required: true });
    const ns = select(namespaces.map((n) => [n.namespace, `${n.namespaceShowName} (${n.namespace || 'public'})`]), '');
    const action = select(ACTIONS, 'r');
    if (await formDialog('Add permission', [field('Role name', role), field('Resource', ns), field('Action', action)],
      () => api('POST', '/v1/auth/permissions', { form: { role: role.value.trim(), resource: `${ns.value}:*:*`, action: action.value } }))) reload();
  };
  const remove = async (p) => {
    if (!await confirm('Delete permission', h('p', {}, `Remove ${p.action} on ${p.resource} from role ${p.role}?`), 'Delete')) return;
    try { await api('DELETE', '/v1/auth/permissions', { query: { role: p.role, resource: p.resource, action: p.action } }); reload(); } catch (e) { msg.error(e.message); }
  };
  const actionName = (a) => (ACTIONS.find(([v]) => v === a) || [a, a])[1];
  return h('section', { class: 'page' }, h('h1', {}, 'Privilege Management'), searchForm('/permissions', 'Role name', q),
    h('div', { class: 'actions' }, button('Add permission', add, { class: 'primary' })), msg.el,
    table([
      { title: 'Role name', render: (p) => p.role },
      { title: 'Resource', render: (p) => p.resource },
      { title: 'Action', render: (p) => actionName(p.action) },
      { title: 'Operation', render: (p) => button('Delete', () => remove(p), { class: 'danger', 'aria-label': `Delete ${p.action} on ${p.resource} for ${p.role}` }) },
    ], res.pageItems || [], { 'aria-label': 'Permissions' }),
    pager(pageNo, PAGE_SIZE, res.totalCount || 0, (p) => go('/permissions', { q, pageNo: p })));
});
