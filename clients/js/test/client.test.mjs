// @latchkey/client against a real `latchkey dev` (SQLite and PostgreSQL): sync from Auth.js shapes, tokens and their
// cache, settings, errors as LatchkeyError with catalogue codes, JWKS verification.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LatchkeyError, latchkey } from '../dist/index.js';
import { backends, runCli, startDev } from './support/dev.mjs';

/** A fetch that counts calls per path (the real one underneath). */
function countingFetch() {
  const calls = [];
  const wrapped = (input, init) => {
    calls.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
    return fetch(input, init);
  };
  return { fetch: wrapped, calls };
}

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

/** Every test below, against a `latchkey dev` on `backend`. */
function suite(backend) {
  let dev;
  before(async () => {
    dev = await startDev({}, backend);
  });
  after(async () => {
    await dev?.stop();
  });

  const github = (id, email) => ({
    user: { id: 'authjs-id', email, name: 'Ada Lovelace', image: 'https://avatars.example/ada.png' },
    account: { provider: 'github', providerAccountId: id, type: 'oauth' },
    profile: { id: Number(id), login: 'ada', avatar_url: 'https://avatars.example/ada.png' },
  });

  describe('syncUser', () => {
    test('syncs an Auth.js GitHub sign-in and caches the token it answers', async () => {
      const counting = countingFetch();
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret, fetch: counting.fetch });
      const { user, token } = await lk.syncUser(github('1001', 'Ada@Example.com'));
      assert.equal(user.email, 'ada@example.com');
      assert.equal(user.name, 'Ada Lovelace');
      assert.equal(user.provider, 'github');
      assert.equal(user.avatarUrl, 'https://avatars.example/ada.png');
      assert.equal(token.tokenType, 'Bearer');
      assert.ok(token.expiresAt > Date.now() + 60_000);
      const again = await lk.tokenFor({ userId: user.id });
      assert.equal(again.accessToken, token.accessToken, 'the sync token is reused');
      assert.deepEqual(counting.calls, ['POST /api/auth/sync-user']);
      const resynced = await lk.syncUser(github('1001', 'ada@example.com'));
      assert.equal(resynced.user.id, user.id, 'the same identity is the same user');
    });

    test('accepts a credentials sign-in (no profile) and the user is then known by email', async () => {
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret });
      const { user } = await lk.syncUser({
        user: { id: 'grace@example.com', email: 'grace@example.com', name: 'Grace' },
        account: { provider: 'credentials', providerAccountId: 'grace@example.com', type: 'credentials' },
      });
      const byEmail = await lk.tokenFor({ email: 'Grace@example.com' });
      assert.equal((await lk.me(byEmail)).id, user.id);
    });

    test('a wrong sync secret is SYNC_SECRET_INVALID with a request id, and never echoes the secret', async () => {
      const wrong = 'not-the-secret-0123456789abcdef0123456789';
      const lk = latchkey({ url: dev.url, syncSecret: wrong });
      const error = await refusal(lk.syncUser(github('1002', 'x@example.com')));
      assert.equal(error.code, 'SYNC_SECRET_INVALID');
      assert.equal(error.status, 401);
      assert.ok(error.requestId, 'request id');
      assert.ok(!JSON.stringify(error).includes(wrong) && !error.message.includes(wrong));
    });

    test('a sign-in without an email is refused before anything is sent', async () => {
      const counting = countingFetch();
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret, fetch: counting.fetch });
      const error = await refusal(lk.syncUser({ user: { name: 'No Mail' }, account: { provider: 'github', providerAccountId: '9' } }));
      assert.equal(error.code, 'INVALID_ARGUMENT');
      assert.equal(error.violations[0].field, 'email');
      assert.deepEqual(counting.calls, []);
    });
  });

  describe('tokenFor', () => {
    test('caches per user and renews a quarter of the lifetime (at most a minute) before expiry', async () => {
      let now = Date.now();
      const counting = countingFetch();
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret, fetch: counting.fetch, now: () => now });
      await latchkey({ url: dev.url, syncSecret: dev.syncSecret }).syncUser(github('2001', 'cache@example.com'));
      const first = await lk.tokenFor({ email: 'cache@example.com' });
      const [a, b] = await Promise.all([lk.tokenFor({ email: 'cache@example.com' }), lk.tokenFor({ email: 'cache@example.com' })]);
      assert.equal(a.accessToken, first.accessToken);
      assert.equal(b.accessToken, first.accessToken);
      assert.equal(counting.calls.length, 1);
      now = first.expiresAt - 61_000; // the default 900 s lifetime: renewed a minute before expiry
      assert.equal((await lk.tokenFor({ email: 'cache@example.com' })).accessToken, first.accessToken);
      assert.equal(counting.calls.length, 1);
      now = first.expiresAt - 59_000;
      const renewed = await lk.tokenFor({ email: 'cache@example.com' });
      assert.equal(counting.calls.length, 2, 'renewed within a minute of expiry');
      assert.notEqual(renewed.accessToken, first.accessToken);
    });

    test('concurrent asks for a new user share one request', async () => {
      const counting = countingFetch();
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret, fetch: counting.fetch });
      const { user } = await latchkey({ url: dev.url, syncSecret: dev.syncSecret }).syncUser(github('2002', 'shared@example.com'));
      const tokens = await Promise.all(Array.from({ length: 5 }, () => lk.tokenFor({ userId: user.id })));
      assert.equal(new Set(tokens.map((t) => t.accessToken)).size, 1);
      assert.deepEqual(counting.calls, ['POST /api/auth/token']);
    });

    test('an unknown user is USER_NOT_SYNCED, and a failure is not cached', async () => {
      const counting = countingFetch();
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret, fetch: counting.fetch });
      const error = await refusal(lk.tokenFor({ email: 'never@example.com' }));
      assert.equal(error.code, 'USER_NOT_SYNCED');
      assert.match(error.detail, /sync-user/);
      await refusal(lk.tokenFor({ email: 'never@example.com' }));
      assert.equal(counting.calls.length, 2);
    });
  });

  describe('settings', () => {
    let lk;
    let token;
    before(async () => {
      lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret });
      const { user } = await lk.syncUser(github('3001', 'settings@example.com'));
      token = await lk.tokenFor({ userId: user.id });
    });

    test('patch, list, replace and remove; values are only ever masked', async () => {
      const settings = lk.settings(token);
      const patched = await settings.patch({ FLY_API_TOKEN: 'fo1_abc123abc123abc', SHORT: 'x' });
      assert.deepEqual(patched.map((s) => s.name), ['FLY_API_TOKEN', 'SHORT']);
      const listed = await settings.list();
      assert.deepEqual(listed, patched);
      const fly = listed.find((s) => s.name === 'FLY_API_TOKEN');
      assert.equal(fly.length, 19);
      assert.ok(fly.masked.endsWith('3abc') && !fly.masked.includes('fo1_'), fly.masked);
      assert.ok(fly.updatedAt);
      assert.ok(!JSON.stringify(listed).includes('abc123abc123'));
      assert.deepEqual((await settings.patch({ SHORT: null })).map((s) => s.name), ['FLY_API_TOKEN']);
      assert.deepEqual((await settings.replace({ ONLY: 'value-1' })).map((s) => s.name), ['ONLY']);
      await settings.remove('ONLY');
      assert.deepEqual(await settings.list(), []);
      const missing = await refusal(settings.remove('ONLY'));
      assert.equal(missing.code, 'NOT_FOUND');
      assert.equal(missing.status, 404);
    });

    test('importDotenv: dry run saves nothing, a bad line is named, then it applies', async () => {
      const settings = lk.settings(token.accessToken);
      const bad = await refusal(settings.importDotenv('OPENROUTER_API_KEY=sk-or-123456789\nthis is not a line\n', { dryRun: true }));
      assert.equal(bad.code, 'INVALID_ARGUMENT');
      assert.equal(bad.status, 400);
      assert.equal(bad.violations.length, 1);
      assert.equal(bad.violations[0].line, 2);
      assert.equal(bad.violations[0].field, 'line 2');
      const preview = await settings.importDotenv('OPENROUTER_API_KEY=sk-or-123456789\nA=1\nA=2\n', { dryRun: true });
      assert.equal(preview.applied, false);
      assert.deepEqual(preview.added, ['A', 'OPENROUTER_API_KEY']);
      assert.ok(preview.warnings.some((w) => w.line === 3 && w.name === 'A'), JSON.stringify(preview.warnings));
      assert.deepEqual(await settings.list(), [], 'a dry run saves nothing');
      const applied = await settings.importDotenv('OPENROUTER_API_KEY=sk-or-123456789\n');
      assert.equal(applied.applied, true);
      assert.deepEqual((await settings.list()).map((s) => s.name), ['OPENROUTER_API_KEY']);
      const replaced = await settings.importDotenv('B=2\n', { mode: 'replace' });
      assert.deepEqual(replaced.removed, ['OPENROUTER_API_KEY']);
      assert.deepEqual(replaced.settings.map((s) => s.name), ['B']);
    });

    test('a bad token is a catalogue refusal, not a bare 401', async () => {
      const error = await refusal(lk.settings('not-a-jwt').list());
      assert.equal(error.code, 'TOKEN_MALFORMED');
      assert.equal(error.status, 401);
    });
  });

  describe('verifyToken', () => {
    test('verifies against the JWKS; tampering, other algorithms, unknown keys and expiry are named', async () => {
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret });
      const { user, token } = await lk.syncUser(github('4001', 'verify@example.com'));
      const claims = await lk.verifyToken(token.accessToken);
      assert.equal(claims.sub, user.id);
      assert.equal(claims.iss, 'latchkey');
      const [h, p, s] = token.accessToken.split('.');
      const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
      assert.equal((await refusal(lk.verifyToken(`${h}.${p}.${flipped}`))).code, 'TOKEN_SIGNATURE_INVALID');
      const none = Buffer.from(JSON.stringify({ alg: 'none', kid: 'x' })).toString('base64url');
      assert.equal((await refusal(lk.verifyToken(`${none}.${p}.`))).code, 'TOKEN_ALGORITHM_REJECTED');
      const unknown = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: 'no-such-kid' })).toString('base64url');
      assert.equal((await refusal(lk.verifyToken(`${unknown}.${p}.${s}`))).code, 'TOKEN_KEY_UNKNOWN');
      assert.equal((await refusal(lk.verifyToken('a.b'))).code, 'TOKEN_MALFORMED');
      const later = latchkey({ url: dev.url, now: () => (claims.exp + 31) * 1000 });
      assert.equal((await refusal(later.verifyToken(token.accessToken))).code, 'TOKEN_EXPIRED');
      const otherAudience = latchkey({ url: dev.url, verify: { audience: 'someone-else' } });
      assert.equal((await refusal(otherAudience.verifyToken(token.accessToken))).code, 'TOKEN_AUDIENCE_MISMATCH');
    });

    test('a rotated signing key is fetched on its first token (unknown kid), with no restart', async () => {
      const counting = countingFetch();
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret, fetch: counting.fetch });
      const before = await lk.syncUser(github('4002', 'rotate@example.com'));
      await lk.verifyToken(before.token.accessToken);
      const oldKid = JSON.parse(Buffer.from(before.token.accessToken.split('.')[0], 'base64url')).kid;
      await runCli(dev, ['keys', 'rotate-signing']);
      let fresh;
      for (let i = 0; i < 50; i += 1) {
        // auth picks the new key up within LATCHKEY_SIGNING_KEY_REFRESH_SECS (1 s here)
        fresh = (await lk.syncUser(github('4002', 'rotate@example.com'))).token.accessToken;
        if (JSON.parse(Buffer.from(fresh.split('.')[0], 'base64url')).kid !== oldKid) break;
        await new Promise((ok) => setTimeout(ok, 200));
      }
      assert.notEqual(JSON.parse(Buffer.from(fresh.split('.')[0], 'base64url')).kid, oldKid, 'auth signs with the new key');
      await new Promise((ok) => setTimeout(ok, 1100)); // past the refetch interval
      const claims = await lk.verifyToken(fresh);
      assert.equal(claims.sub, before.user.id);
      assert.equal(counting.calls.filter((c) => c === 'GET /.well-known/jwks.json').length, 2, 'one refetch for the new kid');
      await lk.verifyToken(before.token.accessToken); // the old key is still published
    });

    test('after a switch to ES256 both EdDSA and ES256 tokens verify, each under its key', async () => {
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret, verify: { refetchIntervalMs: 0 } });
      const alg = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url')).alg;
      const before = (await lk.syncUser(github('4003', 'es256@example.com'))).token.accessToken;
      assert.equal(alg(before), 'EdDSA');
      await runCli(dev, ['keys', 'rotate-signing'], { LATCHKEY_SIGNING_ALG: 'ES256' });
      let fresh;
      for (let i = 0; i < 50; i += 1) {
        fresh = (await lk.syncUser(github('4003', 'es256@example.com'))).token.accessToken;
        if (alg(fresh) === 'ES256') break;
        await new Promise((ok) => setTimeout(ok, 200));
      }
      assert.equal(alg(fresh), 'ES256', 'auth signs with the new P-256 key');
      assert.equal((await lk.verifyToken(fresh)).sub, (await lk.verifyToken(before)).sub);
      // An ES256 signature under the EdDSA key's kid is refused by algorithm.
      const [, p, s] = fresh.split('.');
      const oldKid = JSON.parse(Buffer.from(before.split('.')[0], 'base64url')).kid;
      const forged = Buffer.from(JSON.stringify({ alg: 'ES256', kid: oldKid })).toString('base64url');
      assert.equal((await refusal(lk.verifyToken(`${forged}.${p}.${s}`))).code, 'TOKEN_ALGORITHM_REJECTED');
      await runCli(dev, ['keys', 'rotate-signing']); // back to EdDSA for the other tests
    });
  });

  describe('errors', () => {
    test('an unreachable gateway is UPSTREAM_UNAVAILABLE with status 0', async () => {
      const lk = latchkey({ url: 'http://127.0.0.1:9', syncSecret: 'x'.repeat(40) });
      const error = await refusal(lk.tokenFor({ email: 'a@example.com' }));
      assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
      assert.equal(error.status, 0);
      assert.match(error.detail, /LATCHKEY_URL/);
    });

    test('missing configuration names the variable at the first call, not at construction', async () => {
      const saved = { url: process.env.LATCHKEY_URL, secret: process.env.LATCHKEY_SYNC_SECRET };
      delete process.env.LATCHKEY_URL;
      delete process.env.LATCHKEY_SYNC_SECRET;
      try {
        const bare = latchkey();
        const noUrl = await refusal(bare.me('t'));
        assert.equal(noUrl.code, 'INVALID_ARGUMENT');
        assert.match(noUrl.detail, /LATCHKEY_URL/);
        const noSecret = await refusal(latchkey({ url: dev.url }).tokenFor({ email: 'a@example.com' }));
        assert.equal(noSecret.code, 'SYNC_SECRET_MISSING');
        assert.match(noSecret.detail, /LATCHKEY_SYNC_SECRET/);
        process.env.LATCHKEY_URL = dev.url;
        process.env.LATCHKEY_SYNC_SECRET = dev.syncSecret;
        const fromEnv = latchkey();
        assert.equal(fromEnv.url, dev.url);
        await fromEnv.syncUser(github('5001', 'env@example.com'));
      } finally {
        for (const [key, value] of [['LATCHKEY_URL', saved.url], ['LATCHKEY_SYNC_SECRET', saved.secret]]) {
          if (value === undefined) delete process.env[key];
          else process.env[key] = value;
        }
      }
    });

    test('the client never shows the sync secret when printed', () => {
      const lk = latchkey({ url: dev.url, syncSecret: dev.syncSecret });
      assert.ok(!JSON.stringify(lk).includes(dev.syncSecret));
      assert.ok(!String(Object.values(lk)).includes(dev.syncSecret));
    });

    test('RATE_LIMITED carries retryAfter', async () => {
      const limited = await startDev({ LATCHKEY_SYNC_RATE_PER_MINUTE: '1' }, backend);
      try {
        const lk = latchkey({ url: limited.url, syncSecret: limited.syncSecret });
        await lk.syncUser(github('6001', 'rate@example.com'));
        const error = await refusal(lk.syncUser(github('6001', 'rate@example.com')));
        assert.equal(error.code, 'RATE_LIMITED');
        assert.equal(error.status, 429);
        assert.ok(error.retryAfter >= 1, `retryAfter ${error.retryAfter}`);
      } finally {
        await limited.stop();
      }
    });
  });
}

for (const backend of backends()) describe(backend, () => suite(backend));
