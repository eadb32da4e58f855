/**
 * The in-memory cache behind `tokenFor`: one access token per user, reused until a minute before
 * it expires (a quarter of its lifetime for tokens shorter than four minutes), concurrent asks
 * for the same user sharing one request. Expiry is counted from `expires_in` on this machine's
 * clock (never later than the token's `exp`), so a skewed clock cannot make it keep a dead token.
 */

import { decodeJwt } from './jwt.js';

/** An access token and when this process stops using it. */
export interface AccessToken {
  /** The bearer token for `Authorization: Bearer …` or the Settings page's `#token=`. */
  accessToken: string;
  tokenType: 'Bearer';
  /** Milliseconds since the epoch when the token expires. */
  expiresAt: number;
}

/** The longest margin before expiry at which a token is renewed. */
export const RENEW_BEFORE_MS = 60_000;

/** When a token of `lifetimeMs` expiring at `expiresAt` should be replaced. */
export function renewAt(expiresAt: number, lifetimeMs: number): number {
  return expiresAt - Math.min(RENEW_BEFORE_MS, Math.max(0, lifetimeMs) / 4);
}

interface Entry {
  token: AccessToken;
  renewAt: number;
}

/** Tokens by key (`user:<id>` or `email:<address>`), bounded in size. */
export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<AccessToken>>();

  constructor(
    private readonly now: () => number,
    private readonly maxEntries = 10_000,
  ) {}

  /** The cached token for `key` if it is still good, else what `mint` answers (then cached). */
  get(key: string, mint: () => Promise<{ accessToken: string; expiresIn: number }>): Promise<AccessToken> {
    const cached = this.entries.get(key);
    if (cached && this.now() < cached.renewAt) return Promise.resolve(cached.token);
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const fresh = mint()
      .then((minted) => this.put(key, minted.accessToken, minted.expiresIn))
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, fresh);
    return fresh;
  }

  /** Records a token Latchkey issued `expiresIn` seconds of life to. */
  put(key: string, accessToken: string, expiresIn: number): AccessToken {
    const now = this.now();
    const lifetime = Math.max(0, expiresIn) * 1000;
    // `exp` is whole seconds: counted from here alone, expiry could look up to a second later.
    const exp = decodeJwt(accessToken)?.payload.exp;
    const expiresAt = typeof exp === 'number' ? Math.min(now + lifetime, exp * 1000) : now + lifetime;
    const token: AccessToken = { accessToken, tokenType: 'Bearer', expiresAt };
    this.entries.delete(key);
    this.entries.set(key, { token, renewAt: renewAt(token.expiresAt, lifetime) });
    this.evict();
    return token;
  }

  /** Forgets `key` (e.g. after the user was deleted or revoked). */
  forget(key: string): void {
    this.entries.delete(key);
  }

  private evict(): void {
    // The oldest insertion (Map keeps insertion order) expires first: tokens share one lifetime.
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(key);
    }
  }
}
