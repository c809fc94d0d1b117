// Namespace: list with config counts and quota, create (custom ID), edit, delete.

import { route, go, loadNamespaces, setNamespace, namespace } from '../app.js';
import { api } from '../api.js';
import { h, field, input, button, messageBox, table, dialog, confirm } from '../dom.js';

function namespaceDialog(existing) {
  return dialog(existing ? 'Edit Namespace' : 'Create Namespace', (close) => {
    const msg = messageBox();
    const id = input({ value: existing ? existing.namespace : '', readonly: Boolean(existing), placeholder: 'Generated when left blank' });
    const name = input({ value: existing ? existing.namespaceShowName : '', required: true });
    const desc = h('textarea', { rows: 3 });
    desc.value = existing ? existing.namespaceDesc || '' : '';
    return h('form', { onSubmit: async (e) => {
      e.preventDefault();
      if (!name.value.trim()) { msg.error('The namespace name is required.'); name.focus(); return; }
      try {
        if (existing) {
          await api('PUT', '/v1/console/namespaces', { form: { namespace: existing.namespace, namespaceShowName: name.value.trim(), namespaceDesc: desc.value } });
        } else {
          await api('POST', '/v1/console/namespaces', { form: { customNamespaceId: id.value.trim(), namespaceName: name.value.trim(), namespaceDesc: desc.value } });
        }
        close(true);
      } catch (err) { msg.error(err.message); }
    } },
    field('Namespace ID', id, existing ? null : 'Letters, digits, "_" and "-"'),
    field('Namespace Name', name), field('Description', desc), msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'OK'), button('Cancel', () => close(null))));
  });
}

route('/namespaces', async ({ query }) => {
  const msg = messageBox();
  const list = await loadNamespaces();
  const reload = () => go('/namespaces', { t: Date.now() });
  const remove = async (ns) => {
    if (!await confirm('Delete Namespace', h('p', {}, `Delete namespace ${ns.namespaceShowName} (${ns.namespace})? Its configurations stay stored but are no longer listed under a namespace.`), 'Delete')) return;
    try {
      await api('DELETE', '/v1/console/namespaces', { query: { namespaceId: ns.namespace } });
      if (namespace() === ns.namespace) setNamespace('');
      reload();
    } catch (e) { msg.error(e.message); }
  };
  if (query.get('created')) msg.ok('Created.');
  return h('section', { class: 'page' }, h('h1', {}, 'Namespace'),
    h('div', { class: 'actions' }, button('Create Namespace', async () => { if (await namespaceDialog(null)) go('/namespaces', { created: Date.now() }); }, { class: 'primary' })),
    msg.el,
    table([
      { title: 'Namespace Name', render: (n) => n.namespaceShowName },
      { title: 'Namespace ID', render: (n) => n.namespace || '' },
      { title: 'Description', render: (n) => n.namespaceDesc || '' },
      { title: 'Configuration Count', render: (n) => n.configCount },
      { title: 'Quota', render: (n) => n.quota },
      { title: 'Operation', render: (n) => (n.type === 0 || !n.namespace ? h('span', { class: 'muted' }, 'Reserved') : h('span', { class: 'ops' },
        button('Details', () => go('/configs', {}) || setNamespace(n.namespace), { 'aria-label': `Configurations of ${n.namespaceShowName}` }),
        button('Edit', async () => { if (await namespaceDialog(n)) reload(); }, { 'aria-label': `Edit ${n.namespaceShowName}` }),
        button('Delete', () => remove(n), { class: 'danger', 'aria-label': `Delete ${n.namespaceShowName}` }))) },
    ], list, { 'aria-label': 'Namespaces' }));
});
