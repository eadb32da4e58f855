// What syncUser sends for each shape Auth.js hands a sign-in callback, and how answers that are
// not Latchkey's own become errors (no server needed).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES, LatchkeyError, decodeJwt, latchkey, renewAt, syncBody } from '../dist/index.js';
import { REPO } from './support/dev.mjs';

test('Google: provider and subject from the account, email_verified from the profile', () => {
  const body = syncBody({
    user: { id: 'u1', email: 'ada@gmail.com', name: 'Ada', image: 'https://lh3/ada' },
    account: { provider: 'google', providerAccountId: '1098', type: 'oidc' },
    profile: { sub: '1098', email: 'ada@gmail.com', email_verified: true, picture: 'https://lh3/ada', name: 'Ada' },
  });
  assert.deepEqual(body, {
    provider: 'google',
    subject: '1098',
    email: 'ada@gmail.com',
    name: 'Ada',
    avatar_url: 'https://lh3/ada',
    email_verified: true,
  });
});

test('GitHub: numeric account ids become strings, no email_verified is claimed', () => {
  const body = syncBody({
    user: { email: 'ada@example.com', name: null },
    account: { provider: 'github', providerAccountId: 583231 },
    profile: { login: 'ada', name: 'Ada L', avatar_url: 'https://avatars/583231' },
  });
  assert.deepEqual(body, {
    provider: 'github',
    subject: '583231',
    email: 'ada@example.com',
    name: 'Ada L',
    avatar_url: 'https://avatars/583231',
  });
});

test('an unverified Google email is sent as false; string booleans are understood', () => {
  const base = { user: { email: 'a@b.c' }, account: { provider: 'google', providerAccountId: '1' } };
  assert.equal(syncBody({ ...base, profile: { email_verified: false } }).email_verified, false);
  assert.equal(syncBody({ ...base, profile: { email_verified: 'true' } }).email_verified, true);
  assert.equal('email_verified' in syncBody({ ...base, profile: { email_verified: 'maybe' } }), false);
});

test('a bare { email, name } is sent as it is', () => {
  assert.deepEqual(syncBody({ email: 'a@b.c', name: 'A' }), { email: 'a@b.c', name: 'A' });
});

test('no email anywhere is INVALID_ARGUMENT naming the field', () => {
  assert.throws(() => syncBody({ user: { name: 'x' }, account: { provider: 'github', providerAccountId: '1' } }), (error) => {
    assert.ok(error instanceof LatchkeyError);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.match(error.detail, /email/);
    return true;
  });
});

test('renewAt: a minute before expiry, a quarter of the lifetime for short tokens', () => {
  assert.equal(renewAt(1_000_000, 900_000), 940_000);
  assert.equal(renewAt(1_000_000, 20_000), 995_000);
  assert.equal(renewAt(1_000_000, 0), 1_000_000);
});

test('decodeJwt never throws on junk', () => {
  for (const junk of ['', '.', '..', 'a.b.c', '!!.??.##', 'e30.e30', 'W10.W10.', `${'A'.repeat(5)}.e30.`, 'e30.bnVsbA.']) {
    assert.equal(decodeJwt(junk), null, junk);
  }
  assert.deepEqual(decodeJwt('e30.e30.')?.payload, {});
});

/** A client whose every call gets `response` (what a proxy or a newer server might answer). */
const answering = (response) => latchkey({ url: 'http://latchkey.invalid', fetch: async () => response.clone() });

test('a code this package does not list yet is passed on, not guessed', async () => {
  const problem = { code: 'BRAND_NEW_REASON', detail: 'Do the new thing.', status: 409, request_id: 'r-1' };
  const client = answering(new Response(JSON.stringify(problem), { status: 409, headers: { 'content-type': 'application/problem+json' } }));
  await assert.rejects(client.me('t'), (error) => {
    assert.equal(error.code, 'BRAND_NEW_REASON');
    assert.equal(error.detail, 'Do the new thing.');
    assert.equal(error.requestId, 'r-1');
    return true;
  });
});

test('a proxy\'s HTML error page becomes UPSTREAM_UNAVAILABLE saying so', async () => {
  const client = answering(new Response('<html>Bad Gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }));
  await assert.rejects(client.me('t'), (error) => {
    assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
    assert.equal(error.status, 502);
    assert.match(error.detail, /HTTP 502 \(text\/html\)/);
    return true;
  });
});

test('ERROR_CODES is the catalogue in README.md', () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('<!-- troubleshooting:start -->'), readme.indexOf('<!-- troubleshooting:end -->'));
  const codes = [...table.matchAll(/^\| \[`([A-Z_]+)`\]/gm)].map((m) => m[1]);
  assert.ok(codes.length > 20);
  assert.deepEqual([...ERROR_CODES], codes, 'update ERROR_CODES in clients/js/src/errors.ts');
});
