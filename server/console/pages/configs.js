// Configuration Management → Configurations: the list (search, paging, batch actions, clone,
// export, import) and the create / edit page (format check, diff before publishing, beta).

import { route, go, namespace, namespaceBar, namespaces, namespaceName, current } from '../app.js';
import { api } from '../api.js';
import {
  h, clear, field, input, select, checkbox, button, messageBox, table, pager, dialog, confirm, uid,
} from '../dom.js';
import { editor, FORMATS, checkFormat, diffView } from '../editor.js';

const PAGE_SIZE = 10;

function configQuery(q, pageNo) {
  const blur = q.blur !== 'false';
  const wrap = (v) => (blur && v && !v.includes('*') ? `*${v}*` : v);
  return {
    search: blur ? 'blur' : 'accurate',
    dataId: wrap(q.dataId || ''),
    group: wrap(q.group || ''),
    appName: q.appName || '',
    config_tags: q.tags || '',
    config_detail: q.content || undefined,
    tenant: namespace(),
    pageNo,
    pageSize: PAGE_SIZE,
  };
}

async function download(path, query, fallbackName) {
  const resp = await api('GET', path, { query, raw: true });
  const blob = await resp.blob();
  const disposition = resp.headers.get('content-disposition') || '';
  const name = (disposition.match(/filename=([^;]+)/) || [])[1] || fallbackName;
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function reportText(data) {
  if (!data) return 'Done.';
  const parts = [`${data.succCount || 0} succeeded`];
  if (data.skipCount) parts.push(`${data.skipCount} skipped`);
  if (data.failData && data.failData.length) parts.push(`failed: ${data.failData.map((k) => `${k.group}/${k.dataId}`).join(', ')}`);
  if (data.unrecognizedCount) parts.push(`${data.unrecognizedCount} unrecognized`);
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------
// List

route('/configs', async ({ query }) => {
  const q = Object.fromEntries(query.entries());
  const pageNo = Number(q.pageNo || 1);
  const msg = messageBox();
  const root = h('section', { class: 'page', 'aria-labelledby': 'configs-title' });
  root.append(h('h1', { id: 'configs-title' }, 'Configurations'),
    h('p', { class: 'sub' }, `Namespace: ${namespaceName(namespace())}`));
  root.append(namespaceBar(() => go('/configs', {})));

  const dataId = input({ name: 'dataId', value: q.dataId || '', placeholder: 'Data ID' });
  const group = input({ name: 'group', value: q.group || '', placeholder: 'Group' });
  const tags = input({ name: 'tags', value: q.tags || '', placeholder: 'tag1,tag2' });
  const appName = input({ name: 'appName', value: q.appName || '' });
  const content = input({ name: 'content', value: q.content || '' });
  const blur = checkbox('Fuzzy match', q.blur !== 'false');
  const search = h('form', { class: 'search', role: 'search', onSubmit: (e) => {
    e.preventDefault();
    go('/configs', {
      dataId: dataId.value.trim(), group: group.value.trim(), tags: tags.value.trim(),
      appName: appName.value.trim(), content: content.value, blur: String(blur.box.checked), pageNo: 1,
    });
  } },
  field('Data ID', dataId), field('Group', group), field('Tags', tags),
  field('Application', appName), field('Content', content, 'Configs whose content contains this text'),
  blur.el,
  h('button', { type: 'submit', class: 'primary' }, 'Query'),
  button('Create Configuration', () => go('/configs/edit', { mode: 'new' })),
  button('Import', () => importDialog().then((r) => r && go('/configs', { ...q, t: Date.now() }))));
  root.append(search, msg.el);

  let page;
  try {
    page = await api('GET', '/v1/cs/configs', { query: configQuery(q, pageNo) });
  } catch (e) {
    msg.error(e.message);
    return root;
  }
  const rows = page.pageItems || [];
  const selected = new Set();
  const selectAll = h('input', { type: 'checkbox', 'aria-label': 'Select all configurations on this page', onChange: (e) => {
    for (const box of root.querySelectorAll('input.row-select')) {
      box.checked = e.target.checked;
      box.dispatchEvent(new Event('change'));
    }
  } });
  const columns = [
    { title: selectAll, render: (r) => h('input', { type: 'checkbox', class: 'row-select', 'aria-label': `Select ${r.dataId}`, onChange: (e) => (e.target.checked ? selected.add(r) : selected.delete(r)) }) },
    { title: 'Data ID', render: (r) => r.dataId },
    { title: 'Group', render: (r) => r.group },
    { title: 'Format', render: (r) => (r.type || 'text').toUpperCase() },
    { title: 'Application', render: (r) => r.appName || '' },
    { title: 'Operation', render: (r) => h('span', { class: 'ops' },
      button('Edit', () => go('/configs/edit', { dataId: r.dataId, group: r.group }), { 'aria-label': `Edit ${r.dataId}` }),
      button('History', () => go('/history', { dataId: r.dataId, group: r.group }), { 'aria-label': `History of ${r.dataId}` }),
      button('Listeners', () => go('/listening', { by: 'config', dataId: r.dataId, group: r.group }), { 'aria-label': `Listeners of ${r.dataId}` }),
      button('Delete', () => removeOne(r), { class: 'danger', 'aria-label': `Delete ${r.dataId}` })) },
  ];
  const removeOne = async (r) => {
    const ok = await confirm('Delete configuration', h('p', {}, `Delete ${r.dataId} (group ${r.group})?`), 'Delete');
    if (!ok) return;
    try {
      await api('DELETE', '/v1/cs/configs', { query: { dataId: r.dataId, group: r.group, tenant: namespace() } });
      go('/configs', { ...q, t: Date.now() });
    } catch (e) { msg.error(e.message); }
  };
  root.append(table(columns, rows, { 'aria-label': 'Configurations' }));
  const needSelection = () => {
    if (!selected.size) { msg.error('Select at least one configuration first.'); return false; }
    return true;
  };
  root.append(h('div', { class: 'actions' },
    button('Delete selected', async () => {
      if (!needSelection()) return;
      const ok = await confirm('Delete configurations', h('p', {}, `Delete ${selected.size} configurations?`), 'Delete');
      if (!ok) return;
      try {
        await api('DELETE', '/v1/cs/configs', { query: { delType: 'ids', ids: [...selected].map((r) => r.id).join(','), tenant: namespace() } });
        go('/configs', { ...q, t: Date.now() });
      } catch (e) { msg.error(e.message); }
    }, { class: 'danger' }),
    button('Export selected', async () => {
      if (!needSelection()) return;
      try { await download('/v1/cs/configs', { exportV2: 'true', tenant: namespace(), ids: [...selected].map((r) => r.id).join(',') }, 'nacos_config_export.zip'); } catch (e) { msg.error(e.message); }
    }),
    button('Export all', async () => {
      try { await download('/v1/cs/configs', { exportV2: 'true', tenant: namespace(), ids: '' }, 'nacos_config_export.zip'); } catch (e) { msg.error(e.message); }
    }),
    button('Clone', async () => {
      if (!needSelection()) return;
      const result = await cloneDialog([...selected]);
      if (result) msg.ok(`Clone: ${reportText(result)}`);
    })));
  root.append(pager(pageNo, PAGE_SIZE, page.totalCount || 0, (p) => go('/configs', { ...q, pageNo: p })));
  return root;
});

function policySelect() {
  return select([['ABORT', 'Abort on conflict'], ['SKIP', 'Skip existing'], ['OVERWRITE', 'Overwrite existing']], 'ABORT');
}

function importDialog() {
  return dialog('Import configurations', (close) => {
    const msg = messageBox();
    const file = h('input', { type: 'file', accept: '.zip,application/zip' });
    const policy = policySelect();
    return h('form', { onSubmit: async (e) => {
      e.preventDefault();
      if (!file.files.length) { msg.error('Choose a zip file exported by Nacos.'); return; }
      const body = new FormData();
      body.append('file', file.files[0]);
      try {
        const res = await api('POST', '/v1/cs/configs', { query: { import: 'true', namespace: namespace(), policy: policy.value }, body });
        msg.ok(`Import: ${reportText(res.data)}`);
        setTimeout(() => close(true), 1200);
      } catch (err) { msg.error(err.message); }
    } },
    h('p', {}, `Into namespace ${namespaceName(namespace())}`),
    field('File', file), field('Conflict policy', policy), msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Import'), button('Cancel', () => close(null))));
  });
}

function cloneDialog(items) {
  return dialog('Clone configurations', (close) => {
    const msg = messageBox();
    const target = select(namespaces().map((n) => [n.namespace, `${n.namespaceShowName} (${n.namespace || 'public'})`]), namespace());
    const policy = policySelect();
    const edits = items.map((r) => ({ r, dataId: input({ value: r.dataId }), group: input({ value: r.group }) }));
    return h('form', { onSubmit: async (e) => {
      e.preventDefault();
      try {
        const res = await api('POST', '/v1/cs/configs', {
          query: { clone: 'true', tenant: target.value, policy: policy.value },
          json: edits.map((x) => ({ cfgId: x.r.id, dataId: x.dataId.value.trim(), group: x.group.value.trim() })),
        });
        close(res.data);
      } catch (err) { msg.error(err.message); }
    } },
    field('Target namespace', target), field('Conflict policy', policy),
    edits.map((x) => h('fieldset', {}, h('legend', {}, `Clone of ${x.r.group}/${x.r.dataId}`), field('Data ID', x.dataId), field('Group', x.group))),
    msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start Clone'), button('Cancel', () => close(null))));
  });
}

// ---------------------------------------------------------------------------------------------
// Create / edit

route('/configs/edit', async ({ query }) => {
  const isNew = query.get('mode') === 'new';
  const key = { dataId: query.get('dataId') || '', group: query.get('group') || 'DEFAULT_GROUP' };
  const ns = namespace();
  const msg = messageBox();
  let published = null;
  let beta = null;
  if (!isNew) {
    const all = await api('GET', '/v1/cs/configs', { query: { show: 'all', dataId: key.dataId, group: key.group, tenant: ns } });
    published = all && typeof all === 'object' ? all : null;
    if (!published) throw new Error(`Configuration ${key.dataId} (group ${key.group}) does not exist in namespace ${namespaceName(ns)}.`);
    const b = await api('GET', '/v1/cs/configs', { query: { beta: 'true', dataId: key.dataId, group: key.group, tenant: ns } }).catch(() => null);
    beta = b && b.data ? b.data : null;
  }
  const dataId = input({ value: key.dataId, required: true, readonly: !isNew, name: 'dataId' });
  const group = input({ value: key.group, required: true, readonly: !isNew, name: 'group' });
  const desc = h('textarea', { rows: 2, name: 'desc' });
  desc.value = published ? published.desc || '' : '';
  const tags = input({ value: published ? published.configTags || '' : '', name: 'config_tags' });
  const appName = input({ value: published ? published.appName || '' : '', name: 'appName' });
  const initialType = (published && published.type) || 'text';
  const ed = editor(published ? published.content : '', initialType);
  const formatName = uid('format');
  const formats = h('fieldset', { class: 'formats' }, h('legend', {}, 'Format'),
    FORMATS.map(([v, text]) => {
      const radio = h('input', { type: 'radio', name: formatName, value: v, checked: v === initialType, onChange: () => ed.setFormat(v) });
      radio.id = uid('fmt');
      return h('span', { class: 'check' }, radio, h('label', { for: radio.id }, text));
    }));
  const format = () => formats.querySelector('input:checked').value;
  const betaOn = checkbox('Beta release', Boolean(beta));
  const betaIps = input({ value: beta ? beta.betaIps || '' : '', name: 'betaIps', placeholder: '10.0.0.1,10.0.0.2' });
  const betaField = field('Beta IPs', betaIps, 'Comma-separated client IPs that get the beta version');
  betaField.hidden = !beta;
  betaOn.box.addEventListener('change', () => { betaField.hidden = !betaOn.box.checked; });
  const formatMsg = messageBox();

  const publish = async () => {
    msg.clear();
    formatMsg.clear();
    const content = ed.value();
    if (!dataId.value.trim() || !group.value.trim()) { msg.error('Data ID and Group are required.'); return; }
    if (!content.trim()) { formatMsg.error('The content cannot be empty.'); ed.textarea.focus(); return; }
    const problem = checkFormat(content, format());
    if (problem) { formatMsg.error(problem); ed.textarea.focus(); return; }
    const asBeta = betaOn.box.checked;
    if (asBeta && !betaIps.value.trim()) { msg.error('Beta IPs are required for a beta release.'); betaIps.focus(); return; }
    // Compare with what is published now (it may have changed since this page opened).
    let current = '';
    try {
      const now = await api('GET', '/v1/cs/configs', { query: { show: 'all', dataId: dataId.value.trim(), group: group.value.trim(), tenant: ns } });
      current = now && typeof now === 'object' ? now.content || '' : '';
    } catch (e) { /* a new config: nothing published */ }
    const ok = await confirm(asBeta ? 'Publish beta' : 'Publish', h('div', {},
      h('p', {}, `${dataId.value} (group ${group.value}) in namespace ${namespaceName(ns)}`),
      diffView(current, content)), asBeta ? 'Publish beta' : 'Publish');
    if (!ok) return;
    try {
      await api('POST', '/v1/cs/configs', {
        form: {
          dataId: dataId.value.trim(), group: group.value.trim(), content, tenant: ns, type: format(),
          desc: desc.value, config_tags: tags.value.trim(), appName: appName.value.trim(),
        },
        headers: asBeta ? { betaIps: betaIps.value.trim() } : {},
      });
      if (isNew) {
        go('/configs/edit', { dataId: dataId.value.trim(), group: group.value.trim(), published: '1' });
      } else {
        go('/configs/edit', { dataId: key.dataId, group: key.group, published: String(Date.now()) });
      }
    } catch (e) { msg.error(e.message); }
  };
  if (query.get('published')) msg.ok('Published.');

  const stopBeta = beta ? button('Stop Beta', async () => {
    try {
      await api('DELETE', '/v1/cs/configs', { query: { beta: 'true', dataId: key.dataId, group: key.group, tenant: ns } });
      go('/configs/edit', { dataId: key.dataId, group: key.group });
    } catch (e) { msg.error(e.message); }
  }) : null;

  return h('section', { class: 'page' },
    h('h1', {}, isNew ? 'Create Configuration' : 'Edit Configuration'),
    h('p', { class: 'sub' }, `Namespace: ${namespaceName(ns)}`),
    beta ? h('p', { class: 'message' }, `A beta version is published to ${beta.betaIps}.`) : null,
    h('form', { class: 'edit', onSubmit: (e) => { e.preventDefault(); publish(); } },
      field('Data ID', dataId), field('Group', group), field('Description', desc),
      field('Tags', tags, 'Comma-separated'), field('Application', appName),
      betaOn.el, betaField, formats, ed.el, formatMsg.el, msg.el,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Publish'),
        stopBeta,
        button('Back', () => go('/configs', {})))));
});

export { current };
