// The console shell: server state, login state, the menu, the namespace switcher and a
// hash router (#/page?query) that hands the main area to one page module at a time.

import { api, serverState, session, clearSession, whenSessionEnds } from './api.js';
import { h, clear, button, field, select } from './dom.js';

const routes = new Map();
const state = {
  server: {},
  namespaces: [],
  namespace: window.localStorage.getItem('namespace') || '',
};

export function route(path, page) { routes.set(path, page); }
export function serverInfo() { return state.server; }
export function authOn() { return state.server.auth_enabled === 'true'; }

/** The current route: {path, query}. */
export function current() {
  const hash = window.location.hash.replace(/^#/, '') || '/';
  const [path, search = ''] = hash.split('?');
  return { path, query: new URLSearchParams(search) };
}

export function go(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) q.set(k, v);
  const s = q.toString();
  const target = `#${path}${s ? `?${s}` : ''}`;
  if (window.location.hash === target) render();
  else window.location.hash = target;
}

// ---------------------------------------------------------------------------------------------
// Namespaces

export function namespace() { return state.namespace; }
export function setNamespace(id) {
  state.namespace = id;
  window.localStorage.setItem('namespace', id);
}
export async function loadNamespaces() {
  const res = await api('GET', '/v1/console/namespaces');
  state.namespaces = res.data || [];
  if (!state.namespaces.some((n) => n.namespace === state.namespace)) setNamespace('');
  return state.namespaces;
}
export function namespaces() { return state.namespaces; }
export function namespaceName(id) {
  const ns = state.namespaces.find((n) => n.namespace === id);
  return ns ? ns.namespaceShowName : id || 'public';
}

/** The namespace switcher shown above config and service lists. */
export function namespaceBar(onChange) {
  const bar = h('div', { class: 'ns-bar', role: 'group', 'aria-label': 'Namespace' });
  const list = h('div', { class: 'ns-list' });
  const draw = () => {
    clear(list);
    for (const ns of state.namespaces) {
      const active = ns.namespace === state.namespace;
      list.append(button(ns.namespaceShowName || 'public', () => {
        setNamespace(ns.namespace);
        draw();
        onChange(ns.namespace);
      }, { class: active ? 'ns active' : 'ns', 'aria-pressed': String(active), title: ns.namespace || 'public' }));
    }
  };
  draw();
  bar.append(h('span', { class: 'ns-label' }, 'Namespace:'), list);
  return bar;
}

// ---------------------------------------------------------------------------------------------
// Menu

const MENU = [
  ['Overview', '/overview'],
  ['Configuration Management', null, [
    ['Configurations', '/configs'],
    ['History Versions', '/history'],
    ['Listening Query', '/listening'],
  ]],
  ['Service Management', null, [
    ['Service List', '/services'],
    ['Subscribers', '/subscribers'],
  ]],
  ['Authority Control', null, [
    ['User List', '/users'],
    ['Role Management', '/roles'],
    ['Privilege Management', '/permissions'],
  ], () => authOn()],
  ['Namespace', '/namespaces'],
  ['Cluster Management', null, [
    ['Node List', '/cluster'],
  ]],
];

function drawMenu() {
  const menu = document.getElementById('menu');
  clear(menu);
  const { path } = current();
  const list = h('ul');
  for (const [title, target, children, shown] of MENU) {
    if (shown && !shown()) continue;
    if (target) {
      list.append(h('li', {}, h('a', { href: `#${target}`, 'aria-current': path.startsWith(target) ? 'page' : null }, title)));
    } else {
      const sub = h('ul');
      for (const [t, p] of children) {
        sub.append(h('li', {}, h('a', { href: `#${p}`, 'aria-current': path === p || path.startsWith(`${p}/`) ? 'page' : null }, t)));
      }
      list.append(h('li', {}, h('span', { class: 'group' }, title), sub));
    }
  }
  menu.append(list);
}

function drawUser() {
  const el = document.getElementById('user');
  clear(el);
  const s = session();
  if (authOn() && s) {
    el.append(h('span', { class: 'username' }, s.username || ''),
      button('Logout', () => { clearSession(); go('/login'); }, { class: 'link' }));
  }
}

// ---------------------------------------------------------------------------------------------
// Router

let rendering = 0;
export async function render(notice) {
  const ticket = ++rendering;
  const main = document.getElementById('main');
  const { path, query } = current();
  const needsLogin = authOn() && !session() && path !== '/login' && path !== '/init-admin';
  if (authOn() && state.server.auth_admin_request === 'true' && path !== '/init-admin' && !session()) {
    go('/init-admin');
    return;
  }
  if (needsLogin) {
    go('/login');
    return;
  }
  if (path === '/' || !routes.has(path)) {
    go('/configs');
    return;
  }
  document.body.classList.toggle('bare', path === '/login' || path === '/init-admin');
  drawMenu();
  drawUser();
  clear(main);
  const page = routes.get(path);
  try {
    if (!['/login', '/init-admin'].includes(path) && !state.namespaces.length) {
      await loadNamespaces().catch(() => {});
    }
    if (ticket !== rendering) return;
    const view = await page({ query, notice });
    if (ticket !== rendering) return;
    clear(main);
    main.append(view);
  } catch (e) {
    if (ticket !== rendering) return;
    clear(main);
    main.append(h('div', { class: 'message error', role: 'alert' }, e.message || String(e)));
  }
}

whenSessionEnds((message) => {
  clearSession();
  state.namespaces = [];
  if (current().path !== '/login') {
    window.sessionStorage.setItem('loginNotice', message);
    go('/login');
  }
});

export async function refreshServerState() {
  state.server = await serverState();
  document.getElementById('version').textContent = state.server.version ? `v${state.server.version}` : '';
}

async function start() {
  const pages = ['login', 'overview', 'configs', 'history', 'listening', 'services', 'namespaces', 'cluster', 'authority'];
  await Promise.all(pages.map((p) => import(`./pages/${p}.js`)));
  try {
    await refreshServerState();
  } catch (e) {
    document.getElementById('main').append(h('div', { class: 'message error', role: 'alert' }, `Cannot read the server state: ${e.message}`));
    return;
  }
  window.addEventListener('hashchange', () => render());
  render();
}

export { h, field, select };
start();
