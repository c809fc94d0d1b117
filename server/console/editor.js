// The content editor: a <textarea> with a highlighted copy of its text drawn behind it (the
// textarea's own text is transparent, its caret is not), format checks run before publishing,
// and a line diff.

import { h, clear, uid } from './dom.js';

export const FORMATS = [
  ['text', 'TEXT'], ['json', 'JSON'], ['xml', 'XML'], ['yaml', 'YAML'],
  ['html', 'HTML'], ['properties', 'Properties'], ['toml', 'TOML'],
];

const RULES = {
  json: [
    [/"(?:[^"\\]|\\.)*"(?=\s*:)/y, 'key'],
    [/"(?:[^"\\]|\\.)*"?/y, 'str'],
    [/-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y, 'num'],
    [/\b(?:true|false|null)\b/y, 'kw'],
    [/[{}[\],:]/y, 'punct'],
  ],
  yaml: [
    [/#.*/y, 'comment'],
    [/^(\s*-\s+)?[^\s#:'"][^:#]*(?=:(\s|$))/y, 'key'],
    [/"(?:[^"\\]|\\.)*"?|'[^']*'?/y, 'str'],
    [/\b-?\d+(?:\.\d+)?\b/y, 'num'],
    [/\b(?:true|false|null|yes|no|on|off)\b/y, 'kw'],
    [/^---$|[|>]$/y, 'punct'],
  ],
  properties: [
    [/^\s*[#!].*/y, 'comment'],
    [/^\s*(?:[^=:\s\\]|\\.)+/y, 'key'],
    [/[=:]/y, 'punct'],
  ],
  toml: [
    [/#.*/y, 'comment'],
    [/^\s*\[\[?[^\]]*\]\]?/y, 'section'],
    [/^\s*[\w.\-"]+(?=\s*=)/y, 'key'],
    [/"(?:[^"\\]|\\.)*"?|'[^']*'?/y, 'str'],
    [/\b-?\d+(?:\.\d+)?\b/y, 'num'],
    [/\b(?:true|false)\b/y, 'kw'],
  ],
  xml: [
    [/<!--.*?(?:-->|$)/y, 'comment'],
    [/<\/?[\w:.-]+/y, 'tag'],
    [/\/?>/y, 'tag'],
    [/[\w:.-]+(?==)/y, 'key'],
    [/"[^"]*"?|'[^']*'?/y, 'str'],
  ],
};
RULES.html = RULES.xml;

/** Highlighted lines of `text` as DOM nodes (text only through text nodes). */
export function highlight(text, format) {
  const rules = RULES[format];
  const frag = document.createDocumentFragment();
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!rules) {
      frag.append(line);
    } else {
      let pos = 0;
      let plain = '';
      while (pos < line.length) {
        let matched = false;
        for (const [re, cls] of rules) {
          if (re.source.startsWith('^') && pos !== 0) continue;
          re.lastIndex = pos;
          const m = re.exec(line);
          if (m && m[0].length) {
            if (plain) { frag.append(plain); plain = ''; }
            frag.append(h('span', { class: `t-${cls}` }, m[0]));
            pos += m[0].length;
            matched = true;
            break;
          }
        }
        if (!matched) { plain += line[pos]; pos += 1; }
      }
      if (plain) frag.append(plain);
    }
    if (i < lines.length - 1) frag.append('\n');
  });
  return frag;
}

/** An editor for `format`: {el, textarea, value(), setValue(), setFormat()}. */
export function editor(initial = '', format = 'text', label = 'Configuration Content') {
  let fmt = format;
  const id = uid('content');
  const textarea = h('textarea', { id, spellcheck: 'false', class: 'code-input', rows: 16, autocapitalize: 'off', autocomplete: 'off' });
  textarea.value = initial;
  const layer = h('pre', { class: 'code-layer', 'aria-hidden': 'true' });
  const redraw = () => {
    clear(layer);
    layer.append(highlight(textarea.value, fmt));
    layer.append('\n');
    layer.scrollTop = textarea.scrollTop;
    layer.scrollLeft = textarea.scrollLeft;
  };
  textarea.addEventListener('input', redraw);
  textarea.addEventListener('scroll', () => { layer.scrollTop = textarea.scrollTop; layer.scrollLeft = textarea.scrollLeft; });
  textarea.addEventListener('keydown', (e) => {
    // Tab indents with two spaces; Escape then Tab leaves the editor (keyboard users).
    if (e.key === 'Tab' && !e.shiftKey && !textarea.dataset.escaped) {
      e.preventDefault();
      const { selectionStart: s, selectionEnd: t } = textarea;
      textarea.setRangeText('  ', s, t, 'end');
      redraw();
    }
    textarea.dataset.escaped = e.key === 'Escape' ? '1' : '';
  });
  redraw();
  const el = h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('div', { class: 'code' }, layer, textarea),
    h('div', { class: 'hint' }, 'Tab inserts two spaces; press Escape, then Tab, to leave the editor.'));
  return {
    el,
    textarea,
    value: () => textarea.value,
    setValue: (v) => { textarea.value = v; redraw(); },
    setFormat: (f) => { fmt = f; redraw(); },
  };
}

// ---------------------------------------------------------------------------------------------
// Format checks: an error message, or null when the content looks right.

function checkJson(text) {
  try { JSON.parse(text); return null; } catch (e) { return `Invalid JSON: ${e.message}`; }
}

function checkYaml(text) {
  const lines = text.split('\n');
  const keysAt = [];
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    const n = i + 1;
    if (/^\s*$/.test(line) || /^\s*#/.test(line) || /^(---|\.\.\.)\s*$/.test(line)) continue;
    const indent = line.match(/^[ \t]*/)[0];
    if (indent.includes('\t')) return `Invalid YAML at line ${n}: tabs cannot indent YAML`;
    const body = line.slice(indent.length).replace(/\s+#.*$/, '');
    let quotes = 0;
    let inSingle = false;
    for (const ch of body) {
      if (ch === "'" ) inSingle = !inSingle;
      if (ch === '"' && !inSingle) quotes += 1;
    }
    if (quotes % 2 === 1 && !/[|>]\s*$/.test(body)) return `Invalid YAML at line ${n}: unclosed quote`;
    const flow = body.replace(/^-\s+/, '').replace(/^[^:]+:\s+/, '');
    if (/^[[{]/.test(flow)) {
      let depth = 0;
      for (const ch of flow) {
        if (ch === '[' || ch === '{') depth += 1;
        if (ch === ']' || ch === '}') depth -= 1;
        if (depth < 0) break;
      }
      if (depth !== 0) return `Invalid YAML at line ${n}: unbalanced brackets`;
    }
    const key = body.match(/^([^\s'"#-][^:]*?|"[^"]*"|'[^']*'):(\s|$)/);
    const level = indent.length;
    keysAt.length = Math.min(keysAt.length, level + 1);
    for (let l = level + 1; l < keysAt.length; l += 1) keysAt[l] = undefined;
    if (key) {
      if (!keysAt[level]) keysAt[level] = new Set();
      if (keysAt[level].has(key[1])) return `Invalid YAML at line ${n}: duplicate key "${key[1]}"`;
      keysAt[level].add(key[1]);
      for (let l = level + 1; l < keysAt.length; l += 1) keysAt[l] = undefined;
    } else if (body.startsWith('- ') || body === '-') {
      for (let l = level + 1; l < keysAt.length; l += 1) keysAt[l] = undefined;
    } else if (/^[^\s:]+:[^\s/]/.test(body) && !/^\w+:\/\//.test(body) && i === 0) {
      return `Invalid YAML at line ${n}: a mapping key needs a space after ':'`;
    }
  }
  return null;
}

function checkProperties(text) {
  const lines = text.split('\n');
  let continued = false;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i].trim();
    const n = i + 1;
    if (continued) { continued = /(^|[^\\])(\\\\)*\\$/.test(line); continue; }
    if (!line || line.startsWith('#') || line.startsWith('!')) continue;
    if (/^[=:]/.test(line)) return `Invalid Properties at line ${n}: the key is empty`;
    continued = /(^|[^\\])(\\\\)*\\$/.test(line);
  }
  if (continued) return 'Invalid Properties: the last line continues past the end';
  return null;
}

export function checkFormat(text, format) {
  if (format === 'json') return checkJson(text);
  if (format === 'yaml') return checkYaml(text);
  if (format === 'properties') return checkProperties(text);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Line diff (longest common subsequence).

export function diffLines(before, after) {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.length * b.length > 4_000_000) {
    return [...a.map((l) => ['-', l]), ...b.map((l) => ['+', l])];
  }
  const m = a.length;
  const n = b.length;
  const lcs = Array.from({ length: m + 1 }, () => new Uint32Array(n + 1));
  for (let i = m - 1; i >= 0; i -= 1) {
    for (let j = n - 1; j >= 0; j -= 1) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < m && j < n) {
    if (a[i] === b[j]) { out.push([' ', a[i]]); i += 1; j += 1; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) { out.push(['-', a[i]]); i += 1; }
    else { out.push(['+', b[j]]); j += 1; }
  }
  while (i < m) { out.push(['-', a[i]]); i += 1; }
  while (j < n) { out.push(['+', b[j]]); j += 1; }
  return out;
}

/** A diff view: removed lines marked "-" (red), added "+" (green). */
export function diffView(before, after, beforeTitle = 'Published', afterTitle = 'To publish') {
  const rows = diffLines(before, after);
  const changed = rows.filter(([op]) => op !== ' ').length;
  const pre = h('pre', { class: 'diff', tabindex: '0', 'aria-label': 'Differences' });
  for (const [op, line] of rows) {
    const cls = op === '+' ? 'add' : op === '-' ? 'del' : 'same';
    pre.append(h('span', { class: `d-${cls}` }, `${op} ${line}\n`));
  }
  return h('div', { class: 'diff-wrap' },
    h('p', { class: 'diff-legend' },
      h('span', { class: 'd-del' }, `- ${beforeTitle}`), ' ',
      h('span', { class: 'd-add' }, `+ ${afterTitle}`), ' ',
      changed ? `${changed} changed lines` : 'No changes'),
    pre);
}
