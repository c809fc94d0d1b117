// The console's calls to the server's HTTP API. The login answer is kept in localStorage under
// "token" (as Nacos's console does) and sent in the `accessToken` header, never in URLs.

/** The context path the console was served under, e.g. "/nacos". */
export const CONTEXT = window.location.pathname.replace(/\/(index\.html)?$/, '').replace(/\/ui\/.*$/, '');

// The auth plugin's identity failures (not authority ones): the token is no longer any good.
const SESSION_ENDS = ['token expired', 'token invalid', 'user not found', 'invalid signature',
  'unsupported signature algorithm', 'validate identity failed'];

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function session() {
  try {
    const raw = window.localStorage.getItem('token');
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function saveSession(login) {
  window.localStorage.setItem('token', JSON.stringify(login));
}

export function clearSession() {
  window.localStorage.removeItem('token');
}

/** Called when the server says the session is over (set by app.js). */
let onSessionEnd = () => {};
export function whenSessionEnds(f) { onSessionEnd = f; }

function readableMessage(status, text) {
  const trimmed = (text || '').trim();
  if (!trimmed) return `The server answered ${status}`;
  try {
    const json = JSON.parse(trimmed);
    if (json && typeof json === 'object') {
      const parts = [json.message, typeof json.data === 'string' ? json.data : null].filter(Boolean);
      if (parts.length) return parts.join(': ');
    }
  } catch { /* plain text */ }
  return trimmed.replace(/^caused: /, '').replace(/;caused: /g, '; ');
}

/**
 * Call the API. `query` and `form` are objects (undefined/null values are left out); `json` is
 * sent as a JSON body; `body` as is (FormData for uploads). Answers parsed JSON, or text.
 */
export async function api(method, path, { query, form, json, body, headers = {}, raw = false } = {}) {
  const url = new URL(CONTEXT + path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null) url.searchParams.set(k, v);
  }
  const init = { method, headers: { ...headers } };
  const s = session();
  if (s && s.accessToken) init.headers.accessToken = s.accessToken;
  if (form) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) {
      if (v !== undefined && v !== null) params.set(k, v);
    }
    init.body = params;
  } else if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, `The server cannot be reached (${e.message})`);
  }
  if (raw && resp.ok) return resp;
  const text = await resp.text();
  if (!resp.ok) {
    const message = readableMessage(resp.status, text);
    if (resp.status === 403 && s && SESSION_ENDS.some((m) => message.toLowerCase().includes(m))) {
      onSessionEnd('Your session has ended; please log in again.');
    }
    throw new ApiError(resp.status, message);
  }
  const type = resp.headers.get('content-type') || '';
  if (type.includes('json')) {
    let data;
    try { data = JSON.parse(text); } catch { return text; }
    // RestResult failures travel with HTTP 200 and their own code.
    if (data && typeof data === 'object' && !Array.isArray(data) && typeof data.code === 'number'
        && data.code !== 200 && data.code !== 0 && 'message' in data) {
      throw new ApiError(data.code, data.message || `Failed with code ${data.code}`);
    }
    return data;
  }
  return text;
}

export const get = (path, query) => api('GET', path, { query });
export const post = (path, form, query) => api('POST', path, { form, query });
export const put = (path, form, query) => api('PUT', path, { form, query });
export const del = (path, query) => api('DELETE', path, { query });

/** The server's flat state map (version, auth, console flags). */
export function serverState() {
  return get('/v1/console/server/state');
}
