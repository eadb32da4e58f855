// Latchkey Settings page. No framework, no build step, no external network.
// Token: from `#token=…` (fragment removed at once; stored once we know whose it is — a link for
// another account than the one signed in asks first), or dev sign-in.
// Renewal: `#…&renew=/api/latchkey/token` names a same-origin token URL of the embedding app
// (the app serves this page under its own origin); see renew() below.
// URLs are relative, so the page works at the gateway's `/` and under an app's `/latchkey/`.
'use strict';

const TOKEN_KEY = 'latchkey.token';
const $ = (id) => document.getElementById(id);
const DEV = document.querySelector('meta[name="latchkey-dev"]').content === 'true';

// What each catalogue code means to the person at the page, and what to do.
const MESSAGES = {
  TOKEN_MISSING: 'You are not signed in. Open this page from your app, or sign in below.',
  TOKEN_MALFORMED: 'Your sign-in token is not valid. Open this page from your app again.',
  TOKEN_ALGORITHM_REJECTED: 'Your sign-in token was refused. Open this page from your app again.',
  TOKEN_KEY_UNKNOWN: 'Your sign-in token was signed by a key this server does not know. Sign in again.',
  TOKEN_SIGNATURE_INVALID: 'Your sign-in token was refused. Open this page from your app again.',
  TOKEN_EXPIRED: 'Your session expired. Open this page from your app again to continue.',
  TOKEN_NOT_YET_VALID: 'Your sign-in token is not valid yet; check this device\'s clock, then reload.',
  TOKEN_ISSUER_UNTRUSTED: 'Your sign-in token comes from an issuer this server does not trust.',
  TOKEN_AUDIENCE_MISMATCH: 'Your sign-in token is meant for another service.',
  TOKEN_REVOKED: 'Your session was signed out everywhere. Sign in again.',
  USER_NOT_SYNCED: 'Your account has not been set up in Latchkey yet: the app must sync you at sign-in. Sign out and in again in your app, or ask its maintainer.',
  USER_DISABLED: 'Your account is disabled. Contact your administrator.',
  SCOPE_MISSING: 'Your session does not allow this action.',
  INVALID_ARGUMENT: 'Some of what you sent is not valid:',
  NOT_FOUND: 'That setting no longer exists; the list has been refreshed.',
  METHOD_NOT_ALLOWED: 'This page sent a request the server does not accept. Reload the page.',
  PAYLOAD_TOO_LARGE: 'That is too much text at once (the limit is 256 KiB). Import it in parts.',
  RATE_LIMITED: 'Too many attempts. Wait a moment and try again.',
  DATA_INTEGRITY: 'A stored value failed its integrity check. Contact your administrator.',
  UPSTREAM_UNAVAILABLE: 'A Latchkey service is unavailable right now. Nothing was changed; try again in a moment.',
  DEADLINE_EXCEEDED: 'The server took too long to answer. Nothing may have changed; refresh and try again.',
  INTERNAL: 'Something went wrong on the server. Nothing was changed.',
};
const SIGNED_OUT_CODES = new Set(['TOKEN_MISSING', 'TOKEN_MALFORMED', 'TOKEN_ALGORITHM_REJECTED',
  'TOKEN_KEY_UNKNOWN', 'TOKEN_SIGNATURE_INVALID', 'TOKEN_EXPIRED', 'TOKEN_NOT_YET_VALID',
  'TOKEN_ISSUER_UNTRUSTED', 'TOKEN_AUDIENCE_MISMATCH', 'TOKEN_REVOKED', 'USER_NOT_SYNCED', 'USER_DISABLED']);

class ApiProblem extends Error {
  constructor(problem) {
    super(problem.detail || problem.title || 'request failed');
    this.problem = problem;
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

// The link's token, with the fragment removed from the address bar and history at once.
function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromFragment = params.get('token');
  if (fromFragment) history.replaceState(null, '', location.pathname + location.search);
  return fromFragment;
}

// ---- Token renewal through the embedding app -------------------------------------------
const RENEW_KEY = 'latchkey.renew';
const RENEW_BEFORE_SECONDS = 60;

function renewUrl() { return sessionStorage.getItem(RENEW_KEY); }
// A refresh token the page was opened with renews instead (refresh.js).
const refreshHook = typeof LatchkeyRefresh === 'undefined' ? null : LatchkeyRefresh;

// Only a URL of this page's own origin: the app's cookie goes there, and a token from
// anywhere else must never be taken.
function sameOriginPath(value) {
  try {
    const url = new URL(value, location.href);
    return url.origin === location.origin ? url.pathname + url.search : null;
  } catch (e) { return null; }
}

function takeRenewFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has('renew')) return;
  const url = sameOriginPath(params.get('renew'));
  if (url) sessionStorage.setItem(RENEW_KEY, url); else sessionStorage.removeItem(RENEW_KEY);
  if (!params.get('token')) history.replaceState(null, '', location.pathname + location.search);
}

function claims(t) {
  try {
    const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch (e) { return null; }
}

// Within a minute of expiry (a quarter of the lifetime for short-lived tokens).
function expiresSoon(t) {
  const c = t && claims(t);
  if (!c || typeof c.exp !== 'number' || (!renewUrl() && !(refreshHook && refreshHook.held()))) return false;
  const lifetime = typeof c.iat === 'number' ? c.exp - c.iat : RENEW_BEFORE_SECONDS * 4;
  return Date.now() / 1000 >= c.exp - Math.min(RENEW_BEFORE_SECONDS, lifetime / 4);
}

// Asks the app's token URL (with the app's cookie) for a fresh token for the same user; one
// request at a time. True when the page holds a fresh token.
let renewing = null;
function renew() {
  if (refreshHook && refreshHook.held()) return refreshHook.renew();
  const url = renewUrl();
  if (!url) return Promise.resolve(false);
  if (!renewing) {
    const before = claims(token() || '');
    renewing = fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(async (response) => {
        const data = response.ok ? await response.json() : null;
        const fresh = data && typeof data.access_token === 'string' ? data.access_token : null;
        const after = fresh && claims(fresh);
        // Another account signed in to the app meanwhile: reopening the page from the app decides.
        if (!after || (before && before.sub !== after.sub)) return false;
        sessionStorage.setItem(TOKEN_KEY, fresh);
        return true;
      })
      .catch(() => false)
      .finally(() => { renewing = null; });
  }
  return renewing;
}

async function api(method, path, body, options) {
  const soon = expiresSoon(token());
  if (soon) await renew();
  try {
    return await call(method, path, body, options);
  } catch (e) {
    // An expired token is renewed once and the call retried, unless renewal was just tried.
    if (e.problem && e.problem.code === 'TOKEN_EXPIRED' && !soon && (await renew())) {
      return call(method, path, body, options);
    }
    throw e;
  }
}

// `options.token` overrides the stored token (checking a link's token before storing it);
// `options.headers` adds headers.
async function call(method, path, body, options) {
  const headers = { Accept: 'application/json', ...((options && options.headers) || {}) };
  const t = (options && options.token) || token();
  if (t) headers.Authorization = 'Bearer ' + t;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path.replace(/^\//, ''), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch (e) {
    throw new ApiProblem({ code: 'NETWORK', detail: 'The gateway cannot be reached. Check your connection and that Latchkey is running.' });
  }
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await response.json().catch(() => ({})) : {};
  if (!response.ok) {
    if (!data.code) data.code = response.status >= 500 ? 'UPSTREAM_UNAVAILABLE' : 'INTERNAL';
    if (!data.request_id) data.request_id = response.headers.get('X-Request-Id');
    const retry = response.headers.get('Retry-After');
    if (retry) data.retry_after = Number(retry);
    throw new ApiProblem(data);
  }
  return data;
}

// Whose token is it? The user, or the problem (never signs anyone out).
async function whose(t) {
  try { return { user: await call('GET', '/api/auth/me', undefined, { token: t }) }; } catch (e) { return { problem: e.problem || { code: 'INTERNAL' } }; }
}

// Login-CSRF guard: a link must not silently replace the session of someone already signed in
// here (their next .env would land in the link's account). The same user (a renewed token) or no
// live session: take the link's token. Another user: ask, and keep the current one by default.
async function adoptLinkToken(linkToken) {
  const current = token();
  if (!current || current === linkToken) { sessionStorage.setItem(TOKEN_KEY, linkToken); return; }
  const [mine, theirs] = await Promise.all([whose(current), whose(linkToken)]);
  if (mine.problem && SIGNED_OUT_CODES.has(mine.problem.code)) { sessionStorage.setItem(TOKEN_KEY, linkToken); return; }
  if (mine.problem || theirs.problem) {
    const code = (theirs.problem || mine.problem).code;
    showStatus('error', 'The sign-in link could not be used, so you stay signed in as before.', [el('span', { class: 'rid' }, `Code ${code}`)]);
    box_data(code);
    return;
  }
  if (mine.user.id === theirs.user.id) { sessionStorage.setItem(TOKEN_KEY, linkToken); return; }
  if (await confirmSwitch(mine.user.email, theirs.user.email)) sessionStorage.setItem(TOKEN_KEY, linkToken);
}

// Shows both accounts; resolves true only on "Switch", false on "Stay" or Escape.
function confirmSwitch(currentEmail, newEmail) {
  $('switch-current').textContent = currentEmail;
  $('switch-keep-email').textContent = currentEmail;
  $('switch-new').textContent = newEmail;
  $('switch-accept-email').textContent = newEmail;
  $('signin').hidden = true;
  $('app').hidden = true;
  $('switch').hidden = false;
  $('switch-keep').focus();
  return new Promise((resolve) => {
    const done = (accept) => {
      $('switch').hidden = true;
      $('switch-keep').removeEventListener('click', keep);
      $('switch-accept').removeEventListener('click', accept_);
      $('switch').removeEventListener('keydown', escape);
      resolve(accept);
    };
    const keep = () => done(false);
    const accept_ = () => done(true);
    const escape = (event) => { if (event.key === 'Escape') done(false); };
    $('switch-keep').addEventListener('click', keep);
    $('switch-accept').addEventListener('click', accept_);
    $('switch').addEventListener('keydown', escape);
  });
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v; else if (k.startsWith('data-')) node.setAttribute(k, v); else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function showStatus(kind, message, extra) {
  const box = $('status');
  clear(box);
  box.className = 'status ' + kind;
  box.append(el('span', { class: 'message' }, message));
  for (const line of extra || []) box.append(line);
  box.hidden = false;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

function hideStatus() { $('status').hidden = true; }

// One place turning any failure into words for the person at the page.
function showError(error) {
  const p = error.problem || { code: 'INTERNAL', detail: String(error) };
  let message = p.code === 'NETWORK' ? p.detail : (MESSAGES[p.code] || p.title || 'The request failed.');
  if (p.code === 'RATE_LIMITED' && p.retry_after) message = `Too many attempts. Wait ${p.retry_after} s and try again.`;
  const extra = [];
  if (p.detail && p.code !== 'NETWORK' && p.code !== 'INTERNAL') extra.push(el('span', { class: 'detail' }, p.detail));
  if (p.request_id) extra.push(el('span', { class: 'rid' }, `Code ${p.code} · request id ${p.request_id}`));
  showStatus('error', message, extra);
  box_data(p.code);
  if (SIGNED_OUT_CODES.has(p.code)) signOut(false);
}

function box_data(code) { $('status').setAttribute('data-code', code || ''); }

function signOut(clearStatus) {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(RENEW_KEY);
  if (refreshHook) refreshHook.forget();
  $('app').hidden = true;
  $('who').hidden = true;
  $('signin').hidden = false;
  $('dev-box').hidden = !DEV;
  if (clearStatus) hideStatus();
}

async function signedIn() {
  $('signin').hidden = true;
  $('app').hidden = false;
  try {
    const me = await api('GET', '/api/auth/me');
    $('who-email').textContent = me.email;
    $('who').hidden = false;
    await refresh();
  } catch (e) { showError(e); }
}

function renderList(all) {
  // Declared settings are the form's (form.js); the table lists the others.
  const settings = all.filter((s) => !s.declared);
  $('list-title').textContent = settings.length < all.length ? 'Other settings' : 'Your settings';
  const body = $('settings-list');
  clear(body);
  $('empty').hidden = settings.length > 0;
  $('settings-table').hidden = settings.length === 0;
  for (const s of settings) {
    const del = el('button', { type: 'button', class: 'danger', textContent: 'Delete', 'data-name': s.name });
    del.setAttribute('aria-label', `Delete ${s.name}`);
    del.addEventListener('click', () => deleteSetting(del, s.name));
    const masked = s.masked ? s.masked : '••••';
    body.append(el('tr', { 'data-name': s.name },
      el('td', { 'data-label': 'Name' }, el('code', {}, s.name)),
      el('td', { 'data-label': 'Value', class: 'masked' }, masked),
      el('td', { 'data-label': 'Length' }, String(s.length)),
      el('td', { 'data-label': 'Updated' }, s.updated_at ? new Date(s.updated_at).toLocaleString() : ''),
      el('td', {}, del)));
  }
}

async function refresh() {
  const data = await api('GET', '/api/settings');
  renderList(data.settings);
  document.dispatchEvent(new CustomEvent('latchkey:listed', { detail: data }));
}

async function deleteSetting(button, name) {
  if (button.dataset.armed !== 'true') {
    button.dataset.armed = 'true';
    button.textContent = 'Confirm delete';
    button.setAttribute('aria-label', `Confirm deleting ${name}`);
    setTimeout(() => { if (button.isConnected) { button.dataset.armed = 'false'; button.textContent = 'Delete'; } }, 5000);
    return;
  }
  button.disabled = true;
  try {
    await api('DELETE', '/api/settings/' + encodeURIComponent(name));
    showStatus('ok', `Deleted ${name}.`);
    $('preview-result').hidden = true;
    await refresh();
    $('refresh').focus();
  } catch (e) {
    showError(e);
    if (e.problem && e.problem.code === 'NOT_FOUND') refresh().catch(showError);
  } finally { button.disabled = false; }
}

// The text the last successful preview was made from (kept in memory, never in the DOM).
let previewedText = null;

function mode() { return document.querySelector('input[name="mode"]:checked').value; }

function listOf(title, names, cls) {
  if (!names || names.length === 0) return [];
  return [el('h3', {}, `${title} (${names.length})`), el('ul', { class: cls || '' }, ...names.map((n) => el('li', {}, el('code', {}, n))))];
}

function renderPreview(result, applied) {
  const box = $('preview-result');
  clear(box);
  const counts = applied
    ? `Saved: ${result.added.length} added, ${result.changed.length} changed, ${result.removed.length} removed, ${result.unchanged.length} unchanged.`
    : `Preview — nothing is saved until you apply: ${result.added.length} to add, ${result.changed.length} to replace, ${result.removed.length} to remove. A preview does not compare values: every stored name the file sets is listed as replaced.`;
  box.append(el('p', { class: 'summary' }, counts));
  box.append(...listOf('Added', result.added), ...listOf(applied ? 'Changed' : 'Replaced', result.changed), ...listOf('Removed', result.removed, 'bad'));
  if (!applied) document.dispatchEvent(new CustomEvent('latchkey:previewed', { detail: result }));
  if (result.warnings.length) {
    box.append(el('h3', {}, 'Warnings'), el('ul', {}, ...result.warnings.map((w) => el('li', {}, `Line ${w.line}${w.name ? ' (' + w.name + ')' : ''}: ${w.message}`))));
  }
  box.hidden = false;
}

function renderBadLines(problem) {
  const box = $('preview-result');
  clear(box);
  const errors = problem.errors || [];
  box.append(el('p', { class: 'bad summary' }, `Nothing was saved. Fix ${errors.length === 1 ? 'this line' : 'these lines'} and preview again:`));
  box.append(el('ul', { id: 'bad-lines', class: 'bad' }, ...errors.map((e) => {
    const where = e.line ? `Line ${e.line}` : e.field;
    const item = el('li', { 'data-line': e.line ? String(e.line) : '' }, `${where}: ${e.description}`);
    return item;
  })));
  box.hidden = false;
}

async function runImport(dryRun) {
  const dotenv = $('dotenv').value;
  const button = dryRun ? $('preview') : $('apply');
  button.disabled = true;
  try {
    const result = await api('POST', '/api/settings/import', { dotenv, mode: mode(), dry_run: dryRun });
    renderPreview(result, !dryRun);
    if (dryRun) {
      hideStatus();
      $('apply').disabled = false;
      previewedText = dotenv;
    } else {
      $('dotenv').value = '';
      previewedText = null;
      $('apply').disabled = true;
      showStatus('ok', 'Saved. Values are shown masked below.');
      renderList(result.settings);
      await refresh();
    }
  } catch (e) {
    $('apply').disabled = true;
    if (e.problem && e.problem.code === 'INVALID_ARGUMENT' && e.problem.errors) {
      hideStatus();
      renderBadLines(e.problem);
      showStatus('error', MESSAGES.INVALID_ARGUMENT + ' see the lines listed under the text box.');
      box_data('INVALID_ARGUMENT');
    } else {
      showError(e);
    }
  } finally {
    if (dryRun) button.disabled = false;
  }
}

async function init() {
  takeRenewFromFragment();
  const linkToken = takeTokenFromFragment();
  $('dev-box').hidden = !DEV;
  $('dev-signin').addEventListener('click', async () => {
    try {
      const session = await api('POST', '/api/dev/session', undefined, { headers: { 'X-Latchkey-Dev': '1' } });
      sessionStorage.setItem(TOKEN_KEY, session.access_token);
      hideStatus();
      await signedIn();
    } catch (e) { showError(e); }
  });
  $('token-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim());
    $('token-input').value = '';
    hideStatus();
    await signedIn();
  });
  $('signout').addEventListener('click', () => signOut(true));
  $('refresh').addEventListener('click', () => refresh().then(hideStatus).catch(showError));
  $('import-form').addEventListener('submit', (event) => { event.preventDefault(); runImport(true); });
  $('apply').addEventListener('click', () => runImport(false));
  $('dotenv').addEventListener('input', () => {
    // A preview is only good for the text it was made from.
    $('apply').disabled = previewedText !== $('dotenv').value;
  });
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener('change', () => { $('apply').disabled = true; previewedText = null; });
  }
  if (linkToken) await adoptLinkToken(linkToken);
  if (token()) signedIn();
  else renew().then((renewed) => (renewed ? signedIn() : signOut(false)));
}

document.addEventListener('DOMContentLoaded', init);
