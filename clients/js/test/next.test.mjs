// @latchkey/client/next against a real `latchkey dev`: the token route the Settings page renews
// through, and the proxy serving the page under the app's origin.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { latchkey } from '../dist/index.js';
import { settingsPageProxy, settingsPageUrl, tokenRoute } from '../dist/next.js';
import { startDev } from './support/dev.mjs';

const APP = 'http://app.localhost:3000';

let dev;
let lk;
let user;
before(async () => {
  dev = await startDev();
  lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret });
  ({ user } = await lk.syncUser({
    user: { email: 'next@example.com', name: 'Next' },
    account: { provider: 'credentials', providerAccountId: 'next@example.com' },
  }));
});
after(async () => {
  await dev?.stop();
});

describe('tokenRoute', () => {
  test('mints a token for the signed-in user, never cached', async () => {
    const route = tokenRoute({ client: lk, subject: () => ({ userId: user.id }) });
    const response = await route(new Request(`${APP}/api/latchkey/token`, { headers: { 'sec-fetch-site': 'same-origin' } }));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const body = await response.json();
    assert.equal(body.token_type, 'Bearer');
    assert.ok(body.expires_in > 800 && body.expires_in <= 900, String(body.expires_in));
    assert.equal((await lk.me(body.access_token)).email, 'next@example.com');
  });

  test('nobody signed in is 401; a cross-site request is 403; Latchkey refusals pass through', async () => {
    const signedOut = tokenRoute({ client: lk, subject: async () => null });
    const none = await signedOut(new Request(`${APP}/api/latchkey/token`));
    assert.equal(none.status, 401);
    assert.equal((await none.json()).code, 'TOKEN_MISSING');
    const signedIn = tokenRoute({ client: lk, subject: () => ({ userId: user.id }) });
    const cross = await signedIn(new Request(`${APP}/api/latchkey/token`, { headers: { 'sec-fetch-site': 'cross-site' } }));
    assert.equal(cross.status, 403);
    const unknown = tokenRoute({ client: lk, subject: () => ({ email: 'ghost@example.com' }) });
    const refused = await unknown(new Request(`${APP}/api/latchkey/token`));
    assert.equal(refused.status, 401);
    const problem = await refused.json();
    assert.equal(problem.code, 'USER_NOT_SYNCED');
    assert.ok(problem.request_id);
  });
});

describe('settingsPageProxy', () => {
  const seen = [];
  const spy = (input, init) => {
    seen.push({ url: String(input), headers: new Headers(init.headers) });
    return fetch(input, init);
  };
  const call = (path, init = {}) => settingsPageProxy({ url: dev.url, fetch: spy })(new Request(`${APP}${path}`, init));

  test('/latchkey redirects to /latchkey/ so the page\'s relative URLs stay under the prefix', async () => {
    const response = await call('/latchkey');
    assert.equal(response.status, 308);
    assert.equal(response.headers.get('location'), '/latchkey/');
  });

  test('serves the page with its CSP and its relative assets', async () => {
    const page = await call('/latchkey/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy'), /script-src 'self'/);
    const html = await page.text();
    assert.match(html, /src="assets\/app\.js"/);
    const script = await call('/latchkey/assets/app.js');
    assert.equal(script.status, 200);
    assert.match(await script.text(), /renew/);
  });

  test('passes the bearer token, never the app\'s cookies, and Latchkey\'s answers come back as they are', async () => {
    const token = await lk.tokenFor({ userId: user.id });
    const headers = { authorization: `Bearer ${token.accessToken}`, cookie: 'authjs.session-token=app-secret', 'content-type': 'application/json' };
    const patched = await call('/latchkey/api/settings', { method: 'PATCH', headers, body: JSON.stringify({ settings: { K: 'value-123456789' } }) });
    assert.equal(patched.status, 200);
    assert.equal((await patched.json()).settings[0].name, 'K');
    assert.ok(seen.length > 0);
    for (const request of seen) assert.equal(request.headers.get('cookie'), null, request.url);
    const bad = await call('/latchkey/api/settings/import', { method: 'POST', headers, body: JSON.stringify({ dotenv: 'nope\n', dry_run: true }) });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('content-type'), 'application/problem+json');
    assert.equal((await bad.json()).errors[0].line, 1);
    const removed = await call('/latchkey/api/settings/K', { method: 'DELETE', headers });
    assert.equal(removed.status, 204);
    const expired = await call('/latchkey/api/auth/me', { headers: { authorization: 'Bearer x.y.z' } });
    assert.equal(expired.status, 401);
    assert.ok(expired.headers.get('x-request-id'));
  });

  test('only the page\'s own routes are reachable through the app', async () => {
    const refused = [
      ['POST', '/latchkey/api/auth/sync-user'],
      ['POST', '/latchkey/api/auth/token'],
      ['POST', '/latchkey/api/dev/session'],
      ['POST', '/latchkey/api/settings/a/b'],
      ['DELETE', '/latchkey/api/auth/me'],
      ['POST', '/latchkey/api/auth/me/revoke'],
      ['GET', '/latchkey/metrics'],
      ['GET', '/latchkey/.well-known/jwks.json'],
      ['POST', '/latchkey/'],
    ];
    for (const [method, path] of refused) {
      const response = await call(path, method === 'GET' ? { method } : { method, body: '{}' });
      assert.equal(response.status, 404, `${method} ${path}`);
    }
  });

  test('bodies larger than the gateway accepts are refused before they are buffered', async () => {
    const token = await lk.tokenFor({ userId: user.id });
    const body = new ReadableStream({
      pull(controller) {
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const response = await call('/latchkey/api/settings/import', {
      method: 'POST',
      headers: { authorization: `Bearer ${token.accessToken}`, 'content-type': 'text/plain' },
      body,
      duplex: 'half',
    });
    assert.equal(response.status, 413);
    assert.equal((await response.json()).code, 'PAYLOAD_TOO_LARGE');
  });
});

test('settingsPageUrl puts the token and the renew route in the fragment', () => {
  const url = settingsPageUrl({ token: { accessToken: 'a.b.c' } });
  assert.equal(url, '/latchkey/#token=a.b.c&renew=%2Fapi%2Flatchkey%2Ftoken');
  assert.equal(settingsPageUrl({ token: 't', renew: '/t', pagePath: '/lk/' }), '/lk/#token=t&renew=%2Ft');
});
