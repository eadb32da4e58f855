// Latchkey Settings page. No framework, no build step, no external network.
// Token: from `#token=…` (moved to sessionStorage, fragment removed), or dev sign-in.
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

function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromFragment = params.get('token');
  if (fromFragment) {
    sessionStorage.setItem(TOKEN_KEY, fromFragment);
    history.replaceState(null, '', location.pathname + location.search);
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
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

function renderList(settings) {
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

function init() {
  takeTokenFromFragment();
  $('dev-box').hidden = !DEV;
  $('dev-signin').addEventListener('click', async () => {
    try {
      const session = await api('POST', '/api/dev/session');
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
  if (token()) signedIn(); else signOut(false);
}

document.addEventListener('DOMContentLoaded', init);
