// Declared settings as a form (GET /api/settings/schema): one labelled, masked field per
// declared setting — missing ones first, required ones marked — with its format as a hint and a
// check as you type, "replace" for a stored value and "generate" where settings can make one.
// Saving sends only the fields filled in (PATCH); settings checks every value again and a refusal
// is shown on the field it names. The .env paste stays: a preview marks the fields it would set,
// and a line whose value breaks a format is listed by number (settings' answer). Uses app.js's
// helpers (api, el, clear, showStatus, showError, hideStatus). No values are ever put in the DOM
// other than what the person types into a password field.
'use strict';

const FORM = { schema: null, listing: null };

// Mirrors settings' presets; settings is the judge, this only warns early.
const PRESETS = {
  openrouter_key: (v) => /^sk-or-v1-[0-9a-f]{64}$/.test(v),
  fly_token: (v) => /^(fo1_|FlyV1 )/.test(v) && !/[\r\n]/.test(v),
  url: (v) => {
    if (/\s/.test(v)) return false;
    try { const u = new URL(v); return (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname !== ''; } catch (e) { return false; }
  },
  pem: (v) => /^-----BEGIN ([^-\r\n]+)-----[\s\S]*[A-Za-z0-9+/=][\s\S]*-----END \1-----$/.test(v.trim()),
};

// Why a value does not fit `d` (a declared setting), or null.
function formatProblem(d, value) {
  const length = [...value].length;
  if (d.min_length != null && length < d.min_length) return `is too short: at least ${d.min_length} characters`;
  if (d.max_length != null && length > d.max_length) return `is too long: at most ${d.max_length} characters`;
  if (d.preset && PRESETS[d.preset] && !PRESETS[d.preset](value)) return `does not look right: expected ${d.hint}`;
  if (d.pattern) {
    let re = null;
    try { re = new RegExp(d.pattern, 'u'); } catch (e) { re = null; }
    if (re && !re.test(value)) return `does not match the expected format (${d.pattern})`;
  }
  return null;
}

const fieldId = (name) => 'field-' + name;

// Missing first, then the rest; each in the order the schema declares them (the API's order).
function ordered(settings, listing) {
  const missing = new Set(listing.missing || []);
  return [...settings.filter((d) => missing.has(d.name)), ...settings.filter((d) => !missing.has(d.name))];
}

function stateLine(d, stored, missing) {
  if (missing) return el('p', { class: 'state bad', id: 'state-' + d.name }, 'Missing — required.');
  if (!stored) return el('p', { class: 'state', id: 'state-' + d.name }, d.generate ? 'Not set yet: made for you on first use, or press Generate.' : 'Not set (optional).');
  const shown = stored.masked ? `ending ${stored.masked.replace(/^[•*]+/, '')}` : 'hidden';
  if (!stored.valid) return el('p', { class: 'state bad', id: 'state-' + d.name }, `Stored value (${stored.length} characters) does not fit the format; replace it.`);
  return el('p', { class: 'state ok', id: 'state-' + d.name }, `Set ✓ (${stored.length} characters, ${shown}).`);
}

function renderField(d, stored, missing) {
  const input = el('input', {
    type: 'password', id: fieldId(d.name), name: d.name, autocomplete: 'off', spellcheck: false,
    placeholder: stored ? 'Type a new value to replace the stored one' : d.generate ? 'Leave empty to have one generated' : 'Paste the value here',
  });
  input.setAttribute('autocapitalize', 'off');
  input.setAttribute('aria-describedby', `state-${d.name} hint-${d.name} error-${d.name}`);
  if (missing) input.setAttribute('aria-required', 'true');
  if (!stored || !stored.valid) input.setAttribute('aria-invalid', missing || (stored && !stored.valid) ? 'true' : 'false');
  const label = el('label', { htmlFor: fieldId(d.name) }, d.label);
  if (d.required) {
    const mark = el('span', { class: 'req' }, ' (required)');
    label.append(mark);
  }
  const hintParts = [];
  if (d.hint) hintParts.push(`Format: ${d.hint}.`);
  if (d.help) hintParts.push(' ' + d.help);
  const hint = el('p', { class: 'hint', id: 'hint-' + d.name }, ...hintParts);
  if (d.link) {
    hint.append(' ', el('a', { href: d.link, target: '_blank', rel: 'noopener noreferrer' }, 'Where to get it'));
  }
  const error = el('p', { class: 'field-error', id: 'error-' + d.name, role: 'alert', hidden: true });
  input.addEventListener('input', () => checkField(d, input, error, false));
  input.addEventListener('blur', () => checkField(d, input, error, true));
  const box = el('div', { class: 'field', 'data-name': d.name, 'data-state': missing ? 'missing' : stored ? (stored.valid ? 'set' : 'invalid') : 'empty' },
    label, el('code', { class: 'name' }, d.name), stateLine(d, stored, missing), input, hint, error);
  if (d.generate) {
    const generate = el('button', { type: 'button', class: 'generate', 'data-name': d.name, textContent: stored ? 'Generate a new value' : 'Generate' });
    generate.setAttribute('aria-label', `Generate a new random value for ${d.label}`);
    generate.addEventListener('click', () => generateValue(d, generate));
    box.append(el('div', { class: 'row' }, generate, el('span', { class: 'hint' }, `${d.generate.bytes} random bytes, ${d.generate.encoding}`)));
  }
  return box;
}

// Shows (or clears) the field's format problem; `final` also reports empty required fields.
function checkField(d, input, error, final) {
  const value = input.value;
  const problem = value === '' ? null : formatProblem(d, value);
  if (problem) {
    error.textContent = `${d.label} ${problem}.`;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  } else if (!final || value !== '') {
    error.hidden = true;
    error.textContent = '';
    input.setAttribute('aria-invalid', 'false');
  }
  return !problem;
}

function renderForm() {
  const card = $('form-card');
  const schema = FORM.schema;
  if (!schema || schema.settings.length === 0 || !FORM.listing) { card.hidden = true; return; }
  const stored = new Map(FORM.listing.settings.map((s) => [s.name, s]));
  const missing = new Set(FORM.listing.missing || []);
  const fields = $('form-fields');
  clear(fields);
  for (const d of ordered(schema.settings, FORM.listing)) fields.append(renderField(d, stored.get(d.name), missing.has(d.name)));
  const summary = $('missing');
  const labels = schema.settings.filter((d) => missing.has(d.name)).map((d) => d.label);
  summary.setAttribute('data-count', String(labels.length));
  summary.className = labels.length ? 'missing bad' : 'missing ok';
  summary.textContent = labels.length ? `Still needed: ${labels.join(', ')}.` : 'Nothing missing: every required setting is set.';
  $('undeclared-note').textContent = schema.allow_undeclared
    ? 'Other names are allowed too: paste them in the .env box below; they are listed under "Other settings".'
    : 'Only the settings above are accepted; other names in a pasted .env are refused.';
  card.hidden = false;
}

async function saveForm(event) {
  event.preventDefault();
  const schema = FORM.schema;
  const changes = {};
  let firstBad = null;
  for (const d of schema.settings) {
    const input = $(fieldId(d.name));
    const error = $('error-' + d.name);
    if (!input || input.value === '') continue;
    if (!checkField(d, input, error, true)) { firstBad = firstBad || input; continue; }
    changes[d.name] = input.value;
  }
  if (firstBad) { showStatus('error', 'Some values do not look right; nothing was saved. Fix the fields marked in red.'); firstBad.focus(); return; }
  if (Object.keys(changes).length === 0) { showStatus('error', 'Nothing to save: fill in a field first.'); return; }
  const button = $('form-save');
  button.disabled = true;
  try {
    await api('PATCH', '/api/settings', { settings: changes });
    showStatus('ok', `Saved ${Object.keys(changes).length} setting(s). Values are shown masked.`);
    await refresh();
    $('missing').focus();
  } catch (e) {
    const errors = (e.problem && e.problem.errors) || [];
    let focused = false;
    for (const v of errors) {
      const name = (v.field || '').replace(/^settings\./, '');
      const error = $('error-' + name);
      if (!error) continue;
      error.textContent = `${v.description}.`;
      error.hidden = false;
      $(fieldId(name)).setAttribute('aria-invalid', 'true');
      if (!focused) { $(fieldId(name)).focus(); focused = true; }
    }
    showError(e);
  } finally { button.disabled = false; }
}

async function generateValue(d, button) {
  button.disabled = true;
  try {
    await api('POST', '/api/settings/' + encodeURIComponent(d.name) + '/generate');
    showStatus('ok', `Generated a new ${d.label}. It is stored; only its last characters are shown.`);
    await refresh();
    const again = document.querySelector(`.generate[data-name="${d.name}"]`);
    if (again) again.focus();
  } catch (e) { showError(e); } finally { button.disabled = false; }
}

// A preview of the pasted .env: mark the fields it would set.
function markFromPaste(result) {
  for (const box of document.querySelectorAll('#form-fields .field')) box.removeAttribute('data-from-env');
  for (const name of [...result.added, ...result.changed]) {
    const box = document.querySelector(`#form-fields .field[data-name="${name}"]`);
    if (!box) continue;
    box.setAttribute('data-from-env', 'true');
    const state = $('state-' + name);
    if (state) state.textContent += ' The pasted .env sets it (apply to save).';
  }
}

async function loadSchema() {
  try { FORM.schema = await api('GET', '/api/settings/schema'); } catch (e) { FORM.schema = null; }
  renderForm();
}

document.addEventListener('latchkey:listed', (event) => {
  FORM.listing = event.detail;
  if (FORM.schema === null) loadSchema(); else renderForm();
});
document.addEventListener('latchkey:previewed', (event) => markFromPaste(event.detail));
document.addEventListener('DOMContentLoaded', () => {
  $('declared-form').addEventListener('submit', saveForm);
});
