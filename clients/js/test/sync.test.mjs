// What syncUser sends for each shape Auth.js hands a sign-in callback (no server needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatchkeyError, decodeJwt, renewAt, syncBody } from '../dist/index.js';

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
