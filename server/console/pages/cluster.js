// Cluster Management → Node List: state, address, last refresh, Raft role / term / leader on an
// embedded cluster; remove a member.

import { route, go } from '../app.js';
import { api } from '../api.js';
import { h, field, input, button, messageBox, table, confirm, formatTime } from '../dom.js';

function raftOf(node) {
  const ext = node.extendInfo || {};
  return ext.raftMetaData || null;
}

route('/cluster', async ({ query }) => {
  const msg = messageBox();
  const keyword = input({ value: query.get('keyword') || '' });
  const res = await api('GET', '/v1/core/cluster/nodes', { query: { keyword: query.get('keyword') || '' } });
  const nodes = res.data || [];
  const self = await api('GET', '/v1/core/cluster/self').then((r) => r.data).catch(() => null);
  const selfRaft = self ? raftOf(self) : null;
  const leave = async (node) => {
    if (!await confirm('Remove member', h('p', {}, `Remove ${node.address} from the cluster?`), 'Remove')) return;
    try {
      await api('POST', '/v1/core/cluster/server/leave', { json: [node.address] });
      go('/cluster', { t: Date.now() });
    } catch (e) { msg.error(e.message); }
  };
  const raftAddr = (n) => `${n.ip}:${(n.extendInfo || {}).raftPort}`;
  const leaderNode = selfRaft && selfRaft.leader ? nodes.find((n) => raftAddr(n) === selfRaft.leader) : null;
  const leaderName = leaderNode ? leaderNode.address : (selfRaft && selfRaft.leader) || 'none';
  const roleOf = (n) => {
    const r = raftOf(n);
    if (r && r.role) return r.role;
    if (!selfRaft) return '—';
    if (leaderNode && n.address === leaderNode.address) return 'Leader';
    return (selfRaft.voters || []).includes(raftAddr(n)) ? 'Follower' : 'Learner';
  };
  const summary = h('div', { class: 'cards' });
  const up = nodes.filter((n) => n.state === 'UP').length;
  summary.append(h('div', { class: 'card' }, h('div', { class: 'card-title' }, 'Nodes'), h('div', { class: 'card-value' }, `${up} UP of ${nodes.length}`)));
  if (selfRaft) {
    summary.append(
      h('div', { class: 'card' }, h('div', { class: 'card-title' }, 'Raft leader'), h('div', { class: 'card-value', id: 'raft-leader' }, leaderName)),
      h('div', { class: 'card' }, h('div', { class: 'card-title' }, 'Raft term'), h('div', { class: 'card-value' }, String(selfRaft.term ?? ''))));
  }
  return h('section', { class: 'page' }, h('h1', {}, 'Node List'),
    h('form', { class: 'search', role: 'search', onSubmit: (e) => { e.preventDefault(); go('/cluster', { keyword: keyword.value.trim() }); } },
      field('Node IP', keyword), h('button', { type: 'submit', class: 'primary' }, 'Query')),
    msg.el, summary,
    table([
      { title: 'Node IP', render: (n) => n.address },
      { title: 'Node State', render: (n) => h('span', { class: `state state-${(n.state || '').toLowerCase()}` }, n.state) },
      { title: 'Version', render: (n) => (n.extendInfo || {}).version || '' },
      { title: 'Last Refresh', render: (n) => formatTime((n.extendInfo || {}).lastRefreshTime) },
      { title: 'Raft Role', render: (n) => roleOf(n) },
      { title: 'Operation', render: (n) => (self && n.address === self.address ? h('span', { class: 'muted' }, 'This node')
        : button('Remove', () => leave(n), { class: 'danger', 'aria-label': `Remove ${n.address}` })) },
    ], nodes, { 'aria-label': 'Cluster nodes' }),
    selfRaft ? h('details', {}, h('summary', {}, 'Raft status of this node'), h('pre', {}, JSON.stringify(selfRaft, null, 2))) : null);
});
