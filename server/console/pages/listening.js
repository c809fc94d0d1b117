// Configuration Management → Listening Query: who listens to a config, or what a client IP
// listens to (on every node of a cluster).

import { route, go, namespace, namespaceBar, namespaceName } from '../app.js';
import { api } from '../api.js';
import { h, field, input, select, messageBox, table } from '../dom.js';

route('/listening', async ({ query }) => {
  const q = Object.fromEntries(query.entries());
  const by = q.by === 'ip' ? 'ip' : 'config';
  const msg = messageBox();
  const mode = select([['config', 'Configuration'], ['ip', 'IP']], by);
  const dataId = input({ value: q.dataId || '' });
  const group = input({ value: q.group || '' });
  const ip = input({ value: q.ip || '' });
  const configFields = h('div', { class: 'inline' }, field('Data ID', dataId), field('Group', group));
  const ipFields = h('div', { class: 'inline' }, field('IP', ip));
  const toggle = () => { configFields.hidden = mode.value !== 'config'; ipFields.hidden = mode.value !== 'ip'; };
  mode.addEventListener('change', toggle);
  toggle();
  const root = h('section', { class: 'page' }, h('h1', {}, 'Listening Query'),
    h('p', { class: 'sub' }, `Namespace: ${namespaceName(namespace())}`),
    namespaceBar(() => go('/listening', { by })),
    h('form', { class: 'search', role: 'search', onSubmit: (e) => {
      e.preventDefault();
      go('/listening', mode.value === 'ip'
        ? { by: 'ip', ip: ip.value.trim() }
        : { by: 'config', dataId: dataId.value.trim(), group: group.value.trim() });
    } }, field('Query dimension', mode), configFields, ipFields, h('button', { type: 'submit', class: 'primary' }, 'Query')),
    msg.el);
  const ready = by === 'ip' ? q.ip : q.dataId && q.group;
  if (!ready) return root;
  try {
    const res = by === 'ip'
      ? await api('GET', '/v1/cs/listener', { query: { ip: q.ip, tenant: namespace() } })
      : await api('GET', '/v1/cs/configs/listener', { query: { dataId: q.dataId, group: q.group, tenant: namespace() } });
    const rows = res.listeners || [];
    if (res.unreachableNodes && res.unreachableNodes.length) msg.error(`Nodes that did not answer: ${res.unreachableNodes.join(', ')}`);
    const columns = by === 'ip'
      ? [{ title: 'Data ID', render: (r) => r.dataId }, { title: 'Group', render: (r) => r.group }]
      : [{ title: 'IP', render: (r) => r.address }];
    columns.push({ title: 'MD5', render: (r) => r.md5 }, { title: 'Protocol', render: (r) => (r.transport === 'grpc' ? 'gRPC' : 'HTTP long polling') },
      { title: 'Node', render: (r) => r.node || 'this node' });
    root.append(h('p', {}, `${rows.length} listeners`), table(columns, rows, { 'aria-label': 'Listeners' }));
  } catch (e) { msg.error(e.message); }
  return root;
});
