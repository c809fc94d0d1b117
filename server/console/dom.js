// Small DOM helpers. Every piece of data reaches the page through textContent or attribute
// setters, never through HTML parsing, so nothing a user stored can run as script.

let nextId = 0;

/** A fresh element id, for <label for>. */
export function uid(prefix = 'f') {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * h('button', {type: 'button', onClick: f, class: 'x'}, 'text', child, [children])
 * Attributes starting with "on" become event listeners (added from JS, so the CSP allows them).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === 'class') {
      el.className = value;
    } else if (name === 'value') {
      el.value = value;
    } else if (name === 'checked' || name === 'disabled' || name === 'selected' || name === 'multiple') {
      el[name] = Boolean(value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A labelled control: <div class="field"><label for=id>text</label> control hint</div>. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  const wrap = h('div', { class: 'field' },
    h('label', { for: control.id }, label), control);
  if (hint) wrap.append(h('div', { class: 'hint' }, hint));
  return wrap;
}

export function input(attrs = {}) {
  return h('input', { type: 'text', ...attrs });
}

export function select(options, value, attrs = {}) {
  const el = h('select', attrs);
  for (const opt of options) {
    const [v, text] = Array.isArray(opt) ? opt : [opt, opt];
    el.append(h('option', { value: v, selected: v === value }, text));
  }
  if (value !== undefined) el.value = value;
  return el;
}

export function checkbox(label, checked, attrs = {}) {
  const box = h('input', { type: 'checkbox', checked, ...attrs });
  box.id = box.id || uid('c');
  return { box, el: h('span', { class: 'check' }, box, h('label', { for: box.id }, label)) };
}

export function button(text, onClick, attrs = {}) {
  return h('button', { type: 'button', onClick, ...attrs }, text);
}

/** A region that shows errors and notices next to what caused them (announced to screen readers). */
export function messageBox() {
  const el = h('div', { class: 'message', role: 'status', 'aria-live': 'polite' });
  el.hidden = true;
  return {
    el,
    error(text) { el.hidden = false; el.className = 'message error'; el.setAttribute('role', 'alert'); el.textContent = text; },
    ok(text) { el.hidden = false; el.className = 'message ok'; el.setAttribute('role', 'status'); el.textContent = text; },
    clear() { el.hidden = true; el.textContent = ''; },
  };
}

/**
 * A table: columns [{title, render(row) -> node|string}], rows.
 * An empty list shows one row saying so.
 */
export function table(columns, rows, attrs = {}) {
  const head = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.title))));
  const body = h('tbody');
  if (!rows.length) {
    body.append(h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, 'No data')));
  }
  for (const row of rows) {
    body.append(h('tr', {}, columns.map((c) => h('td', {}, c.render(row)))));
  }
  return h('table', { class: 'grid', ...attrs }, head, body);
}

/** Pager over a server-paged list: shows "Page x of y (n items)" and Previous/Next buttons. */
export function pager(pageNo, pageSize, total, onPage) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  return h('nav', { class: 'pager', 'aria-label': 'Pagination' },
    button('Previous', () => onPage(pageNo - 1), { disabled: pageNo <= 1 }),
    h('span', {}, `Page ${pageNo} of ${pages} (${total} items)`),
    button('Next', () => onPage(pageNo + 1), { disabled: pageNo >= pages }));
}

/** A modal dialog (<dialog>); resolves with the value passed to close, or null when cancelled. */
export function dialog(title, build) {
  return new Promise((resolve) => {
    const titleId = uid('d');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId });
    const close = (value) => { dlg.close(); dlg.remove(); resolve(value); };
    dlg.append(h('h2', { id: titleId }, title));
    dlg.append(build(close));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); close(null); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Yes/no confirmation with an optional body node. */
export function confirm(title, body, okText = 'OK') {
  return dialog(title, (close) => h('div', {},
    body ? h('div', { class: 'dialog-body' }, body) : null,
    h('div', { class: 'actions' },
      button(okText, () => close(true), { class: 'primary' }),
      button('Cancel', () => close(null)))));
}

export function formatTime(ms) {
  if (ms === undefined || ms === null || ms === '') return '';
  const n = typeof ms === 'number' ? ms : Date.parse(ms);
  if (Number.isNaN(n)) return String(ms);
  const d = new Date(n);
  const pad = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
