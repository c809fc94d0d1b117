// Login, and the first-start page that sets the admin password (auth on, no admin yet).

import { route, go, refreshServerState } from '../app.js';
import { api, saveSession, clearSession } from '../api.js';
import { h, field, input, messageBox } from '../dom.js';

route('/login', async () => {
  const msg = messageBox();
  const notice = window.sessionStorage.getItem('loginNotice');
  if (notice) {
    window.sessionStorage.removeItem('loginNotice');
    msg.error(notice);
  }
  const username = input({ name: 'username', autocomplete: 'username', required: true });
  const password = input({ type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'login', onSubmit: async (e) => {
    e.preventDefault();
    msg.clear();
    clearSession();
    try {
      const res = await api('POST', '/v1/auth/users/login', { form: { username: username.value, password: password.value } });
      saveSession(res);
      go('/configs');
    } catch (err) {
      msg.error(err.status === 403 ? 'Wrong username or password.' : err.message);
      password.focus();
    }
  } },
  h('h1', {}, 'Login'),
  field('Username', username),
  field('Password', password),
  msg.el,
  h('button', { type: 'submit', class: 'primary' }, 'Submit'));
  setTimeout(() => username.focus(), 0);
  return h('div', { class: 'login-page' }, form);
});

route('/init-admin', async () => {
  const msg = messageBox();
  const password = input({ type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const again = input({ type: 'password', autocomplete: 'new-password', required: true });
  const form = h('form', { class: 'login', onSubmit: async (e) => {
    e.preventDefault();
    msg.clear();
    if (password.value.length < 8) { msg.error('The password needs at least 8 characters.'); return; }
    if (password.value !== again.value) { msg.error('The passwords do not match.'); return; }
    try {
      await api('POST', '/v1/auth/users/admin', { form: { password: password.value } });
      const res = await api('POST', '/v1/auth/users/login', { form: { username: 'nacos', password: password.value } });
      saveSession(res);
      await refreshServerState();
      go('/configs');
    } catch (err) {
      msg.error(err.message);
    }
  } },
  h('h1', {}, 'Initialize the admin password'),
  h('p', {}, 'No administrator exists yet. Choose the password of the user "nacos".'),
  field('Password', password),
  field('Confirm password', again),
  msg.el,
  h('button', { type: 'submit', class: 'primary' }, 'Submit'));
  return h('div', { class: 'login-page' }, form);
});
