// Configuration Management → History Versions: list, detail, compare with the current
// version, rollback.

import { route, go, namespace, namespaceBar, namespaceName } from '../app.js';
import { api } from '../api.js';
import { h, field, input, button, messageBox, table, pager, confirm, formatTime } from '../dom.js';
import { diffView } from '../editor.js';

const OPS = { I: 'Insert', U: 'Update', D: 'Delete' };

async function currentContent(dataId, group) {
  const all = await api('GET', '/v1/cs/configs', { query: { show: 'all', dataId, group, tenant: namespace() } }).catch(() => null);
  return all && typeof all === 'object' ? all.content || '' : '';
}

route('/history', async ({ query }) => {
  const q = Object.fromEntries(query.entries());
  const pageNo = Number(q.pageNo || 1);
  const msg = messageBox();
  const dataId = input({ value: q.dataId || '', required: true });
  const group = input({ value: q.group || '', required: true });
  const root = h('section', { class: 'page' }, h('h1', {}, 'History Versions'),
    h('p', { class: 'sub' }, `Namespace: ${namespaceName(namespace())}`),
    namespaceBar(() => go('/history', {})),
    h('form', { class: 'search', role: 'search', onSubmit: (e) => {
      e.preventDefault();
      go('/history', { dataId: dataId.value.trim(), group: group.value.trim(), pageNo: 1 });
    } }, field('Data ID', dataId), field('Group', group), h('button', { type: 'submit', class: 'primary' }, 'Query')),
    msg.el);
  if (q.rolledBack) msg.ok('Rolled back.');
  if (!q.dataId || !q.group) {
    root.append(h('p', {}, 'Enter a Data ID and a Group to see their history.'));
    return root;
  }
  let page;
  try {
    page = await api('GET', '/v1/cs/history', { query: { search: 'accurate', dataId: q.dataId, group: q.group, tenant: namespace(), pageNo, pageSize: 10 } });
  } catch (e) { msg.error(e.message); return root; }
  const rows = page.pageItems || [];
  const entry = (r) => api('GET', '/v1/cs/history', { query: { nid: r.id, dataId: r.dataId, group: r.group, tenant: namespace() } });
  const rollback = async (r) => {
    try {
      const version = await entry(r);
      const now = await currentContent(r.dataId, r.group);
      const deleting = version.opType && version.opType.trim() === 'I';
      const body = deleting
        ? h('p', {}, `This version created ${r.dataId}; rolling back deletes it.`)
        : diffView(now, version.content, 'Current', `Version ${r.id}`);
      const ok = await confirm('Rollback', body, 'Rollback');
      if (!ok) return;
      if (deleting) {
        await api('DELETE', '/v1/cs/configs', { query: { dataId: r.dataId, group: r.group, tenant: namespace() } });
      } else {
        await api('POST', '/v1/cs/configs', { form: { dataId: r.dataId, group: r.group, tenant: namespace(), content: version.content, appName: version.appName || undefined } });
      }
      go('/history', { ...q, rolledBack: Date.now() });
    } catch (e) { msg.error(e.message); }
  };
  const compare = async (r) => {
    try {
      const version = await entry(r);
      const now = await currentContent(r.dataId, r.group);
      await confirm(`Compare version ${r.id} with the current version`, diffView(version.content, now, `Version ${r.id}`, 'Current'), 'Close');
    } catch (e) { msg.error(e.message); }
  };
  root.append(table([
    { title: 'Data ID', render: (r) => r.dataId },
    { title: 'Group', render: (r) => r.group },
    { title: 'Operation type', render: (r) => OPS[(r.opType || '').trim()] || r.opType },
    { title: 'Operator', render: (r) => r.srcUser || '' },
    { title: 'Source IP', render: (r) => r.srcIp || '' },
    { title: 'Last Modified', render: (r) => formatTime(r.lastModifiedTime) },
    { title: 'Operation', render: (r) => h('span', { class: 'ops' },
      button('Details', () => go('/history/detail', { nid: r.id, dataId: r.dataId, group: r.group }), { 'aria-label': `Details of version ${r.id}` }),
      button('Compare', () => compare(r), { 'aria-label': `Compare version ${r.id}` }),
      button('Rollback', () => rollback(r), { 'aria-label': `Rollback to version ${r.id}` })) },
  ], rows, { 'aria-label': 'History versions' }));
  root.append(pager(pageNo, 10, page.totalCount || 0, (p) => go('/history', { ...q, pageNo: p })));
  return root;
});

route('/history/detail', async ({ query }) => {
  const v = await api('GET', '/v1/cs/history', { query: { nid: query.get('nid'), dataId: query.get('dataId'), group: query.get('group'), tenant: namespace() } });
  const content = h('textarea', { readonly: true, rows: 14, class: 'code-input plain' });
  content.value = v.content || '';
  const dl = h('dl', { class: 'props' });
  for (const [k, val] of [['Data ID', v.dataId], ['Group', v.group], ['Namespace', namespaceName(v.tenant || '')],
    ['Operation type', OPS[(v.opType || '').trim()] || v.opType], ['Operator', v.srcUser], ['Source IP', v.srcIp],
    ['MD5', v.md5], ['Last Modified', formatTime(v.lastModifiedTime)]]) {
    dl.append(h('dt', {}, k), h('dd', {}, val || ''));
  }
  return h('section', { class: 'page' }, h('h1', {}, `History Version ${v.id}`), dl,
    field('Configuration Content', content),
    h('div', { class: 'actions' }, button('Back', () => go('/history', { dataId: v.dataId, group: v.group }))));
});
