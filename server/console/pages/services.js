// Service Management → Service List (with create / edit / delete), the service detail
// (clusters with their health-check settings, instances with weight / enabled / metadata and
// take offline) and Subscribers.

import { route, go, namespace, namespaceBar, namespaceName } from '../app.js';
import { api } from '../api.js';
import {
  h, field, input, select, checkbox, button, messageBox, table, pager, dialog, confirm,
} from '../dom.js';

const PAGE_SIZE = 10;

function metadataText(map) {
  const entries = Object.entries(map || {});
  return entries.length ? JSON.stringify(map, null, 2) : '';
}

function metadataCell(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return '';
  return h('ul', { class: 'meta' }, entries.map(([k, v]) => h('li', {}, `${k}=${v}`)));
}

function parseMetadataInput(text) {
  const t = text.trim();
  if (!t) return '';
  if (t.startsWith('{')) {
    try { JSON.parse(t); } catch (e) { throw new Error(`Metadata is not valid JSON: ${e.message}`); }
    return t;
  }
  return t;
}

function serviceDialog(existing) {
  const title = existing ? 'Update Service' : 'Create Service';
  return dialog(title, (close) => {
    const msg = messageBox();
    const name = input({ value: existing ? existing.name : '', required: true, readonly: Boolean(existing) });
    const group = input({ value: existing ? existing.groupName : 'DEFAULT_GROUP', required: true, readonly: Boolean(existing) });
    const threshold = input({ type: 'number', min: 0, max: 1, step: 0.01, value: existing ? existing.protectThreshold : 0 });
    const metadata = h('textarea', { rows: 4 });
    metadata.value = existing ? metadataText(existing.metadata) : '';
    const selectorType = select([['none', 'none'], ['label', 'label']], existing && existing.selector ? existing.selector.type : 'none');
    const expression = input({ value: existing && existing.selector ? existing.selector.expression || '' : '' });
    return h('form', { onSubmit: async (e) => {
      e.preventDefault();
      try {
        const selector = selectorType.value === 'label'
          ? { type: 'label', expression: expression.value.trim() } : { type: 'none' };
        const form = {
          serviceName: name.value.trim(), groupName: group.value.trim(), namespaceId: namespace(),
          protectThreshold: threshold.value || '0', metadata: parseMetadataInput(metadata.value),
          selector: JSON.stringify(selector),
        };
        await api(existing ? 'PUT' : 'POST', '/v1/ns/service', { form });
        close(true);
      } catch (err) { msg.error(err.message); }
    } },
    field('Service Name', name), field('Group Name', group),
    field('Protect Threshold', threshold, 'Between 0 and 1'),
    field('Metadata', metadata, 'JSON ({"k":"v"}) or k1=v1,k2=v2'),
    field('Selector type', selectorType), field('Selector expression', expression),
    msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'OK'), button('Cancel', () => close(null))));
  });
}

route('/services', async ({ query }) => {
  const q = Object.fromEntries(query.entries());
  const pageNo = Number(q.pageNo || 1);
  const msg = messageBox();
  const name = input({ value: q.name || '' });
  const group = input({ value: q.group || '' });
  const hide = checkbox('Hide empty service', q.hideEmpty === 'true');
  const root = h('section', { class: 'page' }, h('h1', {}, 'Service List'),
    h('p', { class: 'sub' }, `Namespace: ${namespaceName(namespace())}`),
    namespaceBar(() => go('/services', {})),
    h('form', { class: 'search', role: 'search', onSubmit: (e) => {
      e.preventDefault();
      go('/services', { name: name.value.trim(), group: group.value.trim(), hideEmpty: String(hide.box.checked), pageNo: 1 });
    } }, field('Service Name', name), field('Group Name', group), hide.el,
    h('button', { type: 'submit', class: 'primary' }, 'Query'),
    button('Create Service', async () => { if (await serviceDialog(null)) go('/services', { ...q, t: Date.now() }); })),
    msg.el);
  let res;
  try {
    res = await api('GET', '/v1/ns/catalog/services', { query: {
      pageNo, pageSize: PAGE_SIZE, namespaceId: namespace(), serviceNameParam: q.name || '',
      groupNameParam: q.group || '', hasIpCount: q.hideEmpty === 'true' ? 'true' : 'false', withInstances: 'false',
    } });
  } catch (e) { msg.error(e.message); return root; }
  const remove = async (s) => {
    if (!await confirm('Delete service', h('p', {}, `Delete service ${s.name} (group ${s.groupName})?`), 'Delete')) return;
    try {
      await api('DELETE', '/v1/ns/service', { query: { serviceName: s.name, groupName: s.groupName, namespaceId: namespace() } });
      go('/services', { ...q, t: Date.now() });
    } catch (e) { msg.error(e.message); }
  };
  root.append(table([
    { title: 'Service Name', render: (s) => s.name },
    { title: 'Group Name', render: (s) => s.groupName },
    { title: 'Cluster Count', render: (s) => s.clusterCount },
    { title: 'Instance Count', render: (s) => s.ipCount },
    { title: 'Healthy Instance Count', render: (s) => s.healthyInstanceCount },
    { title: 'Trigger Protection Threshold', render: (s) => s.triggerFlag },
    { title: 'Operation', render: (s) => h('span', { class: 'ops' },
      button('Details', () => go('/services/detail', { name: s.name, group: s.groupName }), { 'aria-label': `Details of ${s.name}` }),
      button('Subscribers', () => go('/subscribers', { name: s.name, group: s.groupName }), { 'aria-label': `Subscribers of ${s.name}` }),
      button('Delete', () => remove(s), { class: 'danger', 'aria-label': `Delete ${s.name}` })) },
  ], res.serviceList || [], { 'aria-label': 'Services' }));
  root.append(pager(pageNo, PAGE_SIZE, res.count || 0, (p) => go('/services', { ...q, pageNo: p })));
  return root;
});

// ---------------------------------------------------------------------------------------------
// Detail

function clusterDialog(serviceName, groupName, cluster) {
  return dialog(`Edit Cluster ${cluster.name}`, (close) => {
    const msg = messageBox();
    const checker = cluster.healthChecker || { type: 'TCP' };
    const type = select(['TCP', 'HTTP', 'MYSQL', 'NONE'], checker.type || 'TCP');
    const checkPort = input({ type: 'number', min: 0, max: 65535, value: cluster.defaultCheckPort || 80 });
    const useIpPort = checkbox('Use the instance port for health checks', cluster.useIPPort4Check !== false);
    const path = input({ value: checker.path || '' });
    const headers = input({ value: checker.headers || '' });
    const httpFields = h('div', {}, field('Check path', path), field('Check headers', headers));
    const toggle = () => { httpFields.hidden = type.value !== 'HTTP'; };
    type.addEventListener('change', toggle);
    toggle();
    const metadata = h('textarea', { rows: 3 });
    metadata.value = metadataText(cluster.metadata);
    return h('form', { onSubmit: async (e) => {
      e.preventDefault();
      const healthChecker = { type: type.value };
      if (type.value === 'HTTP') { healthChecker.path = path.value; healthChecker.headers = headers.value; }
      try {
        await api('PUT', '/v1/ns/cluster', { form: {
          serviceName: serviceName, groupName, namespaceId: namespace(), clusterName: cluster.name,
          checkPort: checkPort.value || '0', useInstancePort4Check: String(useIpPort.box.checked),
          healthChecker: JSON.stringify(healthChecker), metadata: parseMetadataInput(metadata.value),
        } });
        close(true);
      } catch (err) { msg.error(err.message); }
    } },
    field('Health check type', type), field('Check port', checkPort), useIpPort.el, httpFields,
    field('Metadata', metadata), msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'OK'), button('Cancel', () => close(null))));
  });
}

function instanceForm(service, inst, overrides = {}) {
  return {
    serviceName: service.name, groupName: service.groupName, namespaceId: namespace(),
    clusterName: inst.clusterName, ip: inst.ip, port: inst.port, ephemeral: String(inst.ephemeral),
    weight: inst.weight, enabled: String(inst.enabled), healthy: String(inst.healthy),
    metadata: JSON.stringify(inst.metadata || {}), ...overrides,
  };
}

function instanceDialog(service, inst) {
  return dialog(`Edit instance ${inst.ip}:${inst.port}`, (close) => {
    const msg = messageBox();
    const weight = input({ type: 'number', min: 0, max: 10000, step: 0.1, value: inst.weight });
    const enabled = checkbox('Enabled (online)', inst.enabled);
    const metadata = h('textarea', { rows: 4 });
    metadata.value = metadataText(inst.metadata);
    return h('form', { onSubmit: async (e) => {
      e.preventDefault();
      try {
        await api('PUT', '/v1/ns/instance', { form: instanceForm(service, inst, {
          weight: weight.value, enabled: String(enabled.box.checked), metadata: parseMetadataInput(metadata.value),
        }) });
        close(true);
      } catch (err) { msg.error(err.message); }
    } },
    field('Weight', weight), enabled.el, field('Metadata', metadata), msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'OK'), button('Cancel', () => close(null))));
  });
}

route('/services/detail', async ({ query }) => {
  const name = query.get('name');
  const group = query.get('group') || 'DEFAULT_GROUP';
  const msg = messageBox();
  const res = await api('GET', '/v1/ns/catalog/service', { query: { serviceName: name, groupName: group, namespaceId: namespace() } });
  const service = res.service;
  const reload = () => go('/services/detail', { name, group, t: Date.now() });
  const dl = h('dl', { class: 'props' });
  const selector = service.selector || { type: 'none' };
  for (const [k, v] of [['Service Name', service.name], ['Group Name', service.groupName],
    ['Namespace', namespaceName(namespace())], ['Protect Threshold', service.protectThreshold],
    ['Selector', selector.type === 'label' ? `label: ${selector.expression || ''}` : 'none']]) {
    dl.append(h('dt', {}, k), h('dd', {}, String(v)));
  }
  dl.append(h('dt', {}, 'Metadata'), h('dd', {}, metadataCell(service.metadata) || 'none'));
  const root = h('section', { class: 'page' }, h('h1', {}, 'Service Details'), dl,
    h('div', { class: 'actions' },
      button('Edit Service', async () => { if (await serviceDialog(service)) reload(); }),
      button('Back', () => go('/services', {}))),
    msg.el);
  for (const cluster of res.clusters || []) {
    const list = await api('GET', '/v1/ns/catalog/instances', { query: {
      serviceName: name, groupName: group, namespaceId: namespace(), clusterName: cluster.name, pageNo: 1, pageSize: 100,
    } }).catch((e) => { msg.error(e.message); return { list: [], count: 0 }; });
    const checker = cluster.healthChecker || {};
    const section = h('section', { class: 'cluster', 'aria-label': `Cluster ${cluster.name}` },
      h('h2', {}, `Cluster ${cluster.name}`),
      h('p', { class: 'sub' }, `Health check: ${checker.type || 'TCP'}, check port ${cluster.defaultCheckPort}${cluster.useIPPort4Check ? ' (instance port used)' : ''}`),
      button('Cluster configuration', async () => { if (await clusterDialog(name, group, cluster)) reload(); }, { 'aria-label': `Edit cluster ${cluster.name}` }));
    const toggle = async (inst) => {
      try {
        await api('PUT', '/v1/ns/instance', { form: instanceForm(service, inst, { enabled: String(!inst.enabled) }) });
        reload();
      } catch (e) { msg.error(e.message); }
    };
    section.append(table([
      { title: 'IP', render: (i) => i.ip },
      { title: 'Port', render: (i) => i.port },
      { title: 'Ephemeral', render: (i) => String(i.ephemeral) },
      { title: 'Weight', render: (i) => i.weight },
      { title: 'Healthy', render: (i) => String(i.healthy) },
      { title: 'Enabled', render: (i) => (i.enabled ? 'online' : 'offline') },
      { title: 'Metadata', render: (i) => metadataCell(i.metadata) },
      { title: 'Operation', render: (i) => h('span', { class: 'ops' },
        button('Edit', async () => { if (await instanceDialog(service, i)) reload(); }, { 'aria-label': `Edit ${i.ip}:${i.port}` }),
        button(i.enabled ? 'Offline' : 'Online', () => toggle(i), { 'aria-label': `${i.enabled ? 'Take offline' : 'Bring online'} ${i.ip}:${i.port}` })) },
    ], list.list || [], { 'aria-label': `Instances of cluster ${cluster.name}` }));
    root.append(section);
  }
  if (!(res.clusters || []).length) root.append(h('p', {}, 'This service has no instances.'));
  return root;
});

// ---------------------------------------------------------------------------------------------
// Subscribers

route('/subscribers', async ({ query }) => {
  const q = Object.fromEntries(query.entries());
  const pageNo = Number(q.pageNo || 1);
  const msg = messageBox();
  const name = input({ value: q.name || '', required: true });
  const group = input({ value: q.group || 'DEFAULT_GROUP' });
  const root = h('section', { class: 'page' }, h('h1', {}, 'Subscribers'),
    h('p', { class: 'sub' }, `Namespace: ${namespaceName(namespace())}`),
    namespaceBar(() => go('/subscribers', {})),
    h('form', { class: 'search', role: 'search', onSubmit: (e) => {
      e.preventDefault();
      go('/subscribers', { name: name.value.trim(), group: group.value.trim(), pageNo: 1 });
    } }, field('Service Name', name), field('Group Name', group), h('button', { type: 'submit', class: 'primary' }, 'Query')),
    msg.el);
  if (!q.name) return root;
  try {
    const res = await api('GET', '/v1/ns/service/subscribers', { query: {
      serviceName: q.name, groupName: q.group || 'DEFAULT_GROUP', namespaceId: namespace(), pageNo, pageSize: PAGE_SIZE,
    } });
    root.append(table([
      { title: 'Address', render: (s) => s.addrStr },
      { title: 'Client Version', render: (s) => s.agent },
      { title: 'Application Name', render: (s) => s.app },
    ], res.subscribers || [], { 'aria-label': 'Subscribers' }));
    root.append(pager(pageNo, PAGE_SIZE, res.count || 0, (p) => go('/subscribers', { ...q, pageNo: p })));
  } catch (e) { msg.error(e.message); }
  return root;
});
