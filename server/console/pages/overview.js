// Overview: version, mode, storage, uptime, counts, and two small live charts (requests per
// second and connections) drawn as SVG from the overview counters, polled every 2 seconds.

import { route, current } from '../app.js';
import { api } from '../api.js';
import { h, messageBox } from '../dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const POINTS = 60;

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function chart(title) {
  const width = 320;
  const height = 100;
  const box = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title });
  const grid = svg('line', { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: 'axis' });
  const area = svg('polygon', { class: 'area', points: '' });
  const line = svg('polyline', { class: 'line', points: '' });
  const label = svg('text', { x: 4, y: 14, class: 'chart-label' });
  box.append(grid, area, line, label);
  const values = [];
  const push = (v) => {
    values.push(v);
    if (values.length > POINTS) values.shift();
    const max = Math.max(1, ...values);
    const step = width / (POINTS - 1);
    const pts = values.map((y, i) => `${(i + POINTS - values.length) * step},${height - 4 - (y / max) * (height - 22)}`);
    line.setAttribute('points', pts.join(' '));
    const first = pts[0] ? pts[0].split(',')[0] : 0;
    area.setAttribute('points', `${first},${height} ${pts.join(' ')} ${width},${height}`);
    label.textContent = `now ${Math.round(v * 10) / 10}, max ${Math.round(max * 10) / 10}`;
    box.setAttribute('aria-label', `${title}: now ${Math.round(v * 10) / 10}`);
  };
  return { el: h('figure', { class: 'chart-box' }, box, h('figcaption', {}, title)), push };
}

function uptime(seconds) {
  const d = Math.floor(seconds / 86400);
  const hh = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${d ? `${d}d ` : ''}${hh}h ${m}m ${seconds % 60}s`;
}

route('/overview', async () => {
  const msg = messageBox();
  const cards = h('div', { class: 'cards' });
  const requests = chart('HTTP + gRPC requests per second');
  const connections = chart('gRPC connections');
  const root = h('section', { class: 'page' }, h('h1', {}, 'Overview'), msg.el, cards,
    h('div', { class: 'charts' }, requests.el, connections.el));
  let last = null;
  const draw = (o) => {
    cards.replaceChildren(...[
      ['Version', o.version], ['Mode', o.mode], ['Storage', o.storage], ['Uptime', uptime(o.uptimeSeconds)],
      ['Namespaces', o.namespaceCount], ['Configurations', o.configCount], ['Services', o.serviceCount],
      ['Instances', o.instanceCount], ['Connections', o.connectionCount], ['Config listeners', o.configListenerCount],
      ['Subscribers', o.subscriberCount], ['Nodes UP', `${o.membersUp} of ${o.memberCount}`],
    ].map(([k, v]) => h('div', { class: 'card' }, h('div', { class: 'card-title' }, k), h('div', { class: 'card-value' }, String(v)))));
    const total = o.httpRequests + o.grpcRequests;
    if (last) {
      const secs = Math.max(0.001, (o.serverTimeMs - last.serverTimeMs) / 1000);
      requests.push(Math.max(0, (total - last.total) / secs));
    }
    connections.push(o.connectionCount);
    last = { total, serverTimeMs: o.serverTimeMs };
  };
  const poll = async () => {
    if (current().path !== '/overview' || !root.isConnected && last) return;
    try {
      draw(await api('GET', '/v1/console/overview'));
      msg.clear();
    } catch (e) { msg.error(e.message); }
    setTimeout(poll, 2000);
  };
  await poll();
  return root;
});
