/**
 * Turning what an Auth.js (NextAuth) sign-in hands the app — `user`, `account`, `profile` — into
 * the body of `POST /api/auth/sync-user`: `provider`/`subject` from the account, `email`, `name`
 * and avatar from the user (falling back to the provider's profile), and `email_verified` only
 * when the provider states it (Google's `profile.email_verified`).
 */

import { LatchkeyError } from './errors.js';

/** The parts of an Auth.js `User` this package reads. */
export interface SignInUser {
  id?: string | null;
  email?: string | null;
  name?: string | null;
  image?: string | null;
}

/** The parts of an Auth.js `Account` this package reads. */
export interface SignInAccount {
  provider: string;
  providerAccountId: string;
}

/** The parts of a provider profile this package reads (OIDC claims and GitHub's fields). */
export interface SignInProfile {
  sub?: string | null;
  email?: string | null;
  email_verified?: boolean | string | null;
  name?: string | null;
  picture?: string | null;
  avatar_url?: string | null;
  [field: string]: unknown;
}

/**
 * What `syncUser` accepts: the callback's `{ user, account, profile }` as Auth.js passes them,
 * or a bare `{ email, name }` (identity provider `email` on servers that accept it).
 */
export interface SyncInput {
  user?: SignInUser | null;
  account?: SignInAccount | null;
  profile?: SignInProfile | null;
  email?: string | null;
  name?: string | null;
}

/** The JSON body sent to `POST /api/auth/sync-user`. */
export interface SyncBody {
  provider?: string;
  subject?: string;
  email: string;
  name?: string;
  avatar_url?: string;
  email_verified?: boolean;
}

const text = (...values: unknown[]): string | undefined =>
  values.find((v): v is string => typeof v === 'string' && v.trim() !== '');

function verified(profile: SignInProfile | null | undefined): boolean | undefined {
  const value = profile?.email_verified;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true'; // some IdPs send strings
  return undefined;
}

/** The sync-user body for `input`; `INVALID_ARGUMENT` (nothing sent) when it has no email. */
export function syncBody(input: SyncInput): SyncBody {
  const { user, account, profile } = input;
  const email = text(user?.email, input.email, profile?.email);
  if (!email) {
    throw new LatchkeyError({
      code: 'INVALID_ARGUMENT',
      status: 0,
      detail: 'The signed-in user has no email address, and Latchkey keys users by email: ask the provider for the `email` scope (GitHub: `user:email`).',
      violations: [{ field: 'email', description: 'is missing' }],
    });
  }
  const body: SyncBody = { email };
  if (account) {
    body.provider = account.provider;
    body.subject = String(account.providerAccountId);
  }
  const name = text(user?.name, input.name, profile?.name);
  if (name) body.name = name;
  const avatar = text(user?.image, profile?.picture, profile?.avatar_url);
  if (avatar) body.avatar_url = avatar;
  const isVerified = verified(profile);
  if (isVerified !== undefined) body.email_verified = isVerified;
  return body;
}
