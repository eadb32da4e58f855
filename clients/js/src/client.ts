/**
 * `latchkey({ url, syncSecret })`: the web app server's handle on Latchkey. Sync users at sign-in,
 * get tokens for them (cached until a minute before expiry), act on their settings, verify
 * tokens against the JWKS. Construction never throws (so a build without the environment
 * works); a missing URL or secret is a `LatchkeyError` naming the variable at the first call.
 */

import { LatchkeyError } from './errors.js';
import { send, type Fetch, type Transport } from './http.js';
import type { LatchkeyClaims } from './jwt.js';
import { exchangeRefreshToken, startRefreshFamily, type RefreshedToken } from './refresh.js';
import { settingsClient, type SettingsClient } from './settings.js';
import { syncBody, type SyncInput } from './sync.js';
import { TokenCache, type AccessToken } from './token-cache.js';
import { createVerifier, type TokenVerifier, type VerifyOptions } from './verify.js';

/** How to reach Latchkey. Unset fields come from `LATCHKEY_URL` / `LATCHKEY_SYNC_SECRET`. */
export interface LatchkeyOptions {
  /** The gateway's URL, e.g. `http://127.0.0.1:8080` (what `latchkey dev` prints). */
  url?: string;
  /** `LATCHKEY_SYNC_SECRET`: server side only; needed by `syncUser` and `tokenFor`. */
  syncSecret?: string;
  /** Milliseconds per call before `DEADLINE_EXCEEDED` (default 20 000). */
  timeoutMs?: number;
  /** Token verification rules for `verifyToken` (issuer, audience, leeway). */
  verify?: VerifyOptions;
  /** A `fetch` of the app's own (tests, instrumentation); the global one by default. */
  fetch?: Fetch;
  /** Milliseconds since the epoch; tests pass their own clock. */
  now?: () => number;
}

/** A Latchkey user as the gateway answers it. */
export interface LatchkeyUser {
  id: string;
  email: string;
  name: string;
  provider: string;
  avatarUrl: string;
  createdAt: string;
  updatedAt: string;
}

/** What `syncUser` answers: the user and a token for them (also cached for `tokenFor`). */
export interface SyncResult {
  user: LatchkeyUser;
  token: AccessToken;
}

/** Whose token `tokenFor` gets: by Latchkey user id (preferred) or by email. */
export type TokenSubject = { userId: string } | { email: string };

/** The client. Holds the sync secret in a closure: never printed, never serialised. */
export interface LatchkeyClient {
  /** The gateway URL in use. */
  readonly url: string;
  /** Creates or updates the signed-in user; call it from the Auth.js sign-in callback. */
  syncUser(input: SyncInput): Promise<SyncResult>;
  /** A token for a synced user, from the cache while it has more than a minute left. */
  tokenFor(subject: TokenSubject): Promise<AccessToken>;
  /** The settings routes acting as the token's user. */
  settings(token: string | AccessToken): SettingsClient;
  /** The token's user, checked by Latchkey (revocation and disabled users included). */
  me(token: string | AccessToken): Promise<LatchkeyUser>;
  /** The token's claims, verified locally against the JWKS (no revocation check). */
  verifyToken(token: string): Promise<LatchkeyClaims>;
  /** A new access token and the next refresh token for `refreshToken`, which is retired. */
  refresh(refreshToken: string): Promise<RefreshedToken>;
  /** The first refresh token of a new family for the user of `token` (a web app's own too). */
  startRefresh(token: string | AccessToken): Promise<RefreshedToken>;
}

interface WireUser {
  id: string;
  email: string;
  name?: string;
  provider?: string;
  avatar_url?: string;
  created_at?: string;
  updated_at?: string;
}

interface WireToken {
  access_token: string;
  expires_in: number;
}

function fromWire(u: WireUser): LatchkeyUser {
  return {
    id: u.id,
    email: u.email,
    name: u.name ?? '',
    provider: u.provider ?? '',
    avatarUrl: u.avatar_url ?? '',
    createdAt: u.created_at ?? '',
    updatedAt: u.updated_at ?? '',
  };
}

function environment(): Record<string, string | undefined> {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env ?? {};
}

const bearer = (token: string | AccessToken) => (typeof token === 'string' ? token : token.accessToken);

function notConfigured(variable: string, what: string): LatchkeyError {
  return new LatchkeyError({
    code: variable === 'LATCHKEY_SYNC_SECRET' ? 'SYNC_SECRET_MISSING' : 'INVALID_ARGUMENT',
    status: 0,
    detail: `${variable} is not set in the web app's server environment: ${what}.`,
  });
}

function baseUrl(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
    return parsed.toString().replace(/\/+$/, '');
  } catch {
    return null;
  }
}

/** A client for the Latchkey gateway at `options.url` (or `LATCHKEY_URL`). */
export function latchkey(options: LatchkeyOptions = {}): LatchkeyClient {
  const env = environment();
  const url = baseUrl(options.url ?? env.LATCHKEY_URL);
  const secret = options.syncSecret ?? env.LATCHKEY_SYNC_SECRET;
  const now = options.now ?? Date.now;
  const transport: Transport = {
    baseUrl: url ?? '',
    fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    timeoutMs: options.timeoutMs ?? 20_000,
  };
  const cache = new TokenCache(now);
  let verifier: TokenVerifier | null = null;

  const reachable = (): Transport => {
    if (url) return transport;
    throw notConfigured('LATCHKEY_URL', 'set it to the Latchkey gateway, e.g. http://127.0.0.1:8080 (`latchkey dev` prints it)');
  };
  const secretHeaders = (): Record<string, string> => {
    if (typeof (globalThis as { document?: unknown }).document !== 'undefined') {
      throw new LatchkeyError({
        code: 'SYNC_SECRET_MISSING',
        status: 0,
        detail: 'syncUser and tokenFor run on the server only: the sync secret must never reach a browser. Call them from a route handler, server action or Auth.js callback.',
      });
    }
    if (!secret) throw notConfigured('LATCHKEY_SYNC_SECRET', 'set the same value Latchkey has (under `latchkey dev`: .latchkey/dev-secrets.env)');
    return { 'x-latchkey-sync-secret': secret };
  };

  return {
    url: url ?? '',
    async syncUser(input) {
      const json = syncBody(input);
      const headers = secretHeaders();
      const answer = (await send(reachable(), { method: 'POST', path: '/api/auth/sync-user', headers, json })) as
        { user: WireUser } & WireToken;
      const user = fromWire(answer.user);
      const token = cache.put(`user:${user.id}`, answer.access_token, answer.expires_in);
      return { user, token };
    },
    async tokenFor(subject) {
      const json = 'userId' in subject ? { user_id: subject.userId } : { email: subject.email };
      const key = 'userId' in subject ? `user:${subject.userId}` : `email:${subject.email.trim().toLowerCase()}`;
      const headers = secretHeaders();
      const target = reachable();
      return cache.get(key, async () => {
        const answer = (await send(target, { method: 'POST', path: '/api/auth/token', headers, json })) as WireToken;
        return { accessToken: answer.access_token, expiresIn: answer.expires_in };
      });
    },
    settings(token) {
      return settingsClient(reachable(), bearer(token));
    },
    async me(token) {
      const headers = { authorization: `Bearer ${bearer(token)}` };
      return fromWire((await send(reachable(), { method: 'GET', path: '/api/auth/me', headers })) as WireUser);
    },
    async verifyToken(token) {
      verifier ??= createVerifier(reachable(), { now, ...options.verify });
      return verifier.verify(token);
    },
    async refresh(refreshToken) {
      return exchangeRefreshToken(reachable(), refreshToken, now);
    },
    async startRefresh(token) {
      return startRefreshFamily(reachable(), bearer(token), now);
    },
  };
}
