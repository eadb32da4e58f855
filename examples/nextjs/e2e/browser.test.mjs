// The example app's production build against a real `latchkey dev` in headless Chromium (Debian
// `chromium`, driven by playwright-core; no browser download): sign in → the user is in
// Latchkey → open the settings page → paste a .env with a bad line → the line is named → fix →
// apply → masked values → wait out a (shortened) token lifetime → the page renews and keeps
// working, also after a TOKEN_EXPIRED answer → the app lists the masked values → sign out →
// the page cannot renew any more. Screenshots in artifacts/nextjs-*.png.
//
// Needs `npm run build` first (CI does it), the workspace's debug `latchkey` build (or
// $LATCHKEY_BIN) and /usr/bin/chromium (or $CHROMIUM).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { latchkey } from '@latchkey/client';
import { chromium } from 'playwright-core';
import { REPO, freePort, startDev } from '../../../clients/js/test/support/dev.mjs';

const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ARTIFACTS = join(REPO, 'artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** The shortened token lifetime (LATCHKEY_TOKEN_TTL_SECS) this test waits out, twice. */
const TTL_SECONDS = 8;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

mkdirSync(ARTIFACTS, { recursive: true });

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** `next start` on a free port with the three variables the example needs. */
async function startApp(dev, syncSecret = dev.syncSecret) {
  const port = await freePort();
  const child = spawn(join(APP_DIR, 'node_modules/.bin/next'), ['start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: APP_DIR,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      NEXT_TELEMETRY_DISABLED: '1',
      LATCHKEY_URL: dev.url,
      LATCHKEY_SYNC_SECRET: syncSecret,
      AUTH_SECRET: randomBytes(32).toString('base64'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`next start exited ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(url)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`next start did not answer within 60 s:\n${output}`);
    await sleep(200);
  }
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { url, stop, output: () => output };
}

/** The claims of the token the Settings page holds. */
async function pageToken(page) {
  const token = await page.evaluate(() => sessionStorage.getItem('latchkey.token'));
  assert.ok(token, 'the page holds a token');
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

/** Clicks the page's Refresh and waits for the list's last (successful) answer. */
async function refresh(page) {
  const listed = page.waitForResponse((r) => new URL(r.url()).pathname === '/latchkey/api/settings' && r.status() === 200);
  await page.click('#refresh');
  await listed;
  await page.waitForFunction(() => document.querySelectorAll('#settings-list tr').length === 2);
}

/** Sleeps until `exp` (seconds since the epoch) has passed by a second. */
async function waitPast(exp) {
  const ms = exp * 1000 + 1000 - Date.now();
  if (ms > 0) await sleep(ms);
}

/** Chromium, or a skip (a failure under CI=true) when it is not installed. */
function chromiumOrSkip(t) {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') assert.fail(`${CHROMIUM} is missing (run .ci/install-browser)`);
  t.skip(`${CHROMIUM} is missing: apt-get install chromium`);
  return false;
}

test('a wrong LATCHKEY_SYNC_SECRET stops sign-in with a message naming it', { timeout: 120_000 }, async (t) => {
  if (!chromiumOrSkip(t)) return;
  assert.ok(existsSync(join(APP_DIR, '.next/BUILD_ID')), 'run `npm run build` in examples/nextjs first');
  const dev = await startDev();
  t.after(() => dev.stop());
  const app = await startApp(dev, randomBytes(32).toString('base64'));
  t.after(() => app.stop());
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  t.after(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(`${app.url}/`);
  await page.fill('#email', 'eve@example.com');
  await page.click('#demo-sign-in button[type=submit]');
  const alert = await page.waitForSelector('#sign-in-error[data-code="SYNC_SECRET_INVALID"]');
  assert.match(await alert.textContent(), /LATCHKEY_SYNC_SECRET/);
  assert.equal(await page.isVisible('#demo-sign-in'), true, 'still signed out');
  await page.screenshot({ path: join(ARTIFACTS, 'nextjs-wrong-secret.png') });
});

test('sign in, import a .env, outlive the token, sign out — in Chromium', { timeout: 240_000 }, async (t) => {
  if (!chromiumOrSkip(t)) return;
  assert.ok(existsSync(join(APP_DIR, '.next/BUILD_ID')), 'run `npm run build` in examples/nextjs first');
  const started = Date.now();
  const dev = await startDev({ LATCHKEY_TOKEN_TTL_SECS: String(TTL_SECONDS), LATCHKEY_LEEWAY_SECS: '0' });
  t.after(() => dev.stop());
  const app = await startApp(dev);
  t.after(() => app.stop());
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const log = []; // every call the Settings page makes, in order
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (path.startsWith('/latchkey/api/') || path === '/api/latchkey/token') log.push(`${response.status()} ${path}`);
  });
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `nextjs-${name}.png`), fullPage: true });
  const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret });

  try {
    // Sign in (demo credentials provider): the sign-in callback syncs the user to Latchkey.
    await page.goto(`${app.url}/`);
    await page.fill('#email', 'ada@example.com');
    await page.fill('#name', 'Ada Lovelace');
    await page.click('#demo-sign-in button[type=submit]');
    await page.waitForURL(`${app.url}/settings`);
    await page.waitForSelector('#no-settings');
    const user = await lk.me(await lk.tokenFor({ email: 'ada@example.com' }));
    assert.equal(user.name, 'Ada Lovelace');
    assert.equal(user.provider, 'demo');

    // The Latchkey Settings page under the app's origin, with the minted token.
    await page.click('#open-latchkey');
    await page.waitForURL(`${app.url}/latchkey/`); // the fragment is removed at once
    await page.waitForSelector('#who-email:has-text("ada@example.com")');

    // A .env with one bad line: the line is named, nothing is saved.
    await page.fill('#dotenv', 'FLY_API_TOKEN=fo1_abc123abc123abc\nOPENROUTER_API_KEY sk-or-v1-0123456789\n');
    await page.click('#preview');
    const bad = await page.waitForSelector('#bad-lines li[data-line="2"]');
    assert.match(await bad.textContent(), /^Line 2: /);
    await shot('bad-line');
    // Fixed, previewed, applied: masked values only.
    await page.fill('#dotenv', 'FLY_API_TOKEN=fo1_abc123abc123abc\nOPENROUTER_API_KEY=sk-or-v1-0123456789\n');
    await page.click('#preview');
    await page.waitForSelector('#preview-result:has-text("2 to add")');
    await page.click('#apply');
    await page.waitForSelector('#settings-list tr[data-name="OPENROUTER_API_KEY"]');
    const masked = await page.textContent('#settings-list tr[data-name="FLY_API_TOKEN"] .masked');
    assert.ok(masked.endsWith('3abc') && !masked.includes('fo1_'), masked);
    assert.ok(!(await page.content()).includes('abc123abc123'), 'no plaintext in the page');
    await shot('applied');

    // Outlive the token: the page renews a quarter of the lifetime before expiry (here) …
    const first = await pageToken(page);
    assert.equal(first.exp - first.iat, TTL_SECONDS);
    await waitPast(first.exp);
    log.length = 0;
    await refresh(page);
    assert.equal((await pageToken(page)).sub, first.sub);
    assert.ok((await pageToken(page)).exp > first.exp, 'a fresh token');
    assert.deepEqual(log, ['200 /api/latchkey/token', '200 /latchkey/api/settings'], 'renewed before the call');
    assert.equal(await page.isVisible('#status.error'), false);

    // … or when Latchkey answers TOKEN_EXPIRED (the page's clock says the token is fresh).
    const second = await pageToken(page);
    await waitPast(second.exp);
    await page.clock.setFixedTime(new Date((second.exp - 300) * 1000));
    log.length = 0;
    await refresh(page);
    assert.deepEqual(log, ['401 /latchkey/api/settings', '200 /api/latchkey/token', '200 /latchkey/api/settings'], 'renewed and retried once');
    await page.waitForFunction(() => document.querySelectorAll('#settings-list tr').length === 2);
    assert.equal(await page.isVisible('#status.error'), false);
    assert.ok((await pageToken(page)).exp > second.exp, 'a fresh token');
    await page.clock.setSystemTime(new Date()); // the page's clock runs true again
    await shot('renewed');

    // The app itself lists the masked values through @latchkey/client.
    await page.goto(`${app.url}/settings`);
    await page.waitForSelector('#app-settings tr[data-name="FLY_API_TOKEN"]');
    assert.ok((await page.textContent('#app-settings')).includes(masked));
    await shot('app-list');

    // Sign out of the app: the token route refuses, so the page cannot renew any more.
    await page.goto(`${app.url}/`);
    await page.click('#sign-out');
    await page.waitForSelector('#demo-sign-in');
    const refused = await page.evaluate(async () => (await fetch('/api/latchkey/token')).status);
    assert.equal(refused, 401);
    const last = await pageToken(page); // this tab still holds the page's last token
    await waitPast(last.exp);
    log.length = 0;
    await page.goto(`${app.url}/latchkey/`);
    await page.waitForSelector('#status[data-code="TOKEN_EXPIRED"]');
    assert.ok(log.includes('401 /api/latchkey/token'), log.join(', '));
    await page.waitForSelector('#signin', { state: 'visible' });
    await shot('signed-out');
  } catch (error) {
    await shot('failure').catch(() => {});
    throw new Error(`${error.message}\n--- page calls: ${log.join(', ')}\n--- next:\n${app.output().slice(-3000)}`, { cause: error });
  }
  t.diagnostic(`browser test wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
