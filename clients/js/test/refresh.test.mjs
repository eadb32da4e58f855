// @latchkey/client's refresh tokens against a real `latchkey dev` (SQLite and PostgreSQL): a family
// started from the user's own token, rotation on each exchange, reuse revoking the family, and
// refusals as LatchkeyError with catalogue codes. No sync secret on the refreshing client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LatchkeyError, latchkey } from '../dist/index.js';
import { backends, startDev } from './support/dev.mjs';

/** The error `promise` rejects with, which must be a LatchkeyError. */
async function refusal(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof LatchkeyError, `a LatchkeyError, got ${error}`);
    return error;
  }
  assert.fail('expected a LatchkeyError');
}

/** Every test below, against a `latchkey dev` on `backend` with a 0 s grace window. */
function suite(backend) {
  let dev;
  let server;
  before(async () => {
    dev = await startDev({ LATCHKEY_REFRESH_TOKEN_GRACE_SECS: '0' }, backend);
    server = latchkey({ url: dev.url, syncSecret: dev.syncSecret });
  });
  after(async () => {
    await dev?.stop();
  });

  /** A synced user's access token, as the web app's server would get it. */
  async function signedIn(email) {
    const { token } = await server.syncUser({
      user: { id: email, email, name: 'Refresher' },
      account: { provider: 'credentials', providerAccountId: email, type: 'credentials' },
    });
    return token;
  }

  test('startRefresh then refresh: each exchange answers a working access token and retires the refresh token', async () => {
    const token = await signedIn('rotate@example.com');
    const browser = latchkey({ url: dev.url });
    const first = await browser.startRefresh(token);
    assert.equal(first.tokenType, 'Bearer');
    assert.match(first.refreshToken, /^lkr_[A-Za-z0-9_-]{43}$/);
    assert.ok(first.expiresAt > Date.now() + 60_000);
    assert.ok(first.refreshExpiresAt > first.expiresAt);
    const second = await browser.refresh(first.refreshToken);
    assert.notEqual(second.refreshToken, first.refreshToken);
    assert.equal((await browser.me(second)).email, 'rotate@example.com');
    const third = await browser.refresh(second.refreshToken);
    assert.equal((await browser.me(third.accessToken)).email, 'rotate@example.com');
  });

  test('a retired refresh token presented again is REFRESH_TOKEN_REUSED and revokes the newest', async () => {
    const browser = latchkey({ url: dev.url });
    const first = await browser.startRefresh(await signedIn('reuse@example.com'));
    const second = await browser.refresh(first.refreshToken);
    // Auth counts in whole seconds and a 0 s window still covers the second of the exchange.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const reused = await refusal(browser.refresh(first.refreshToken));
    assert.equal(reused.code, 'REFRESH_TOKEN_REUSED');
    assert.equal(reused.status, 401);
    assert.ok(!JSON.stringify(reused).includes(first.refreshToken) && !reused.message.includes(first.refreshToken));
    const revoked = await refusal(browser.refresh(second.refreshToken));
    assert.equal(revoked.code, 'REFRESH_TOKEN_REVOKED');
  });

  test('refusals carry the catalogue codes', async () => {
    const browser = latchkey({ url: dev.url });
    const unknown = await refusal(browser.refresh(`lkr_${'A'.repeat(43)}`));
    assert.equal(unknown.code, 'REFRESH_TOKEN_INVALID');
    const empty = await refusal(browser.refresh(''));
    assert.equal(empty.code, 'INVALID_ARGUMENT');
    const forged = await refusal(browser.startRefresh('eyJhbGciOiJFZERTQSJ9.e30.c2ln'));
    assert.equal(forged.status, 401);
    assert.match(forged.code, /^TOKEN_/);
  });
}

for (const backend of backends()) describe(backend, () => suite(backend));
