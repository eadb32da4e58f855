/**
 * Refresh tokens (`lkr_…`) for clients with no server of their own: start a family from the
 * user's own token (`POST /api/auth/me/refresh`, a web app's Auth.js or legacy token included),
 * then trade each refresh token for a new access token and the next refresh token
 * (`POST /api/auth/refresh`). Neither needs the sync secret, so both run in a browser too. Every
 * exchange retires the refresh token sent: keep only the newest one.
 */

import { send, type Transport } from './http.js';
import { decodeJwt } from './jwt.js';
import type { AccessToken } from './token-cache.js';

/** An access token and the refresh token to present next time. */
export interface RefreshedToken extends AccessToken {
  /** The next refresh token; the one sent is retired (sending it again later revokes them all). */
  refreshToken: string;
  /** Milliseconds since the epoch when `refreshToken` expires unused. */
  refreshExpiresAt: number;
}

interface WireRefreshed {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
}

function fromWire(answer: WireRefreshed, now: number): RefreshedToken {
  // As the token cache counts it: from `expires_in` here, never later than the token's `exp`.
  const exp = decodeJwt(answer.access_token)?.payload.exp;
  const counted = now + answer.expires_in * 1000;
  return {
    accessToken: answer.access_token,
    tokenType: 'Bearer',
    expiresAt: typeof exp === 'number' ? Math.min(counted, exp * 1000) : counted,
    refreshToken: answer.refresh_token,
    refreshExpiresAt: now + answer.refresh_expires_in * 1000,
  };
}

/** `POST /api/auth/refresh`: exchanges `refreshToken` for a new pair. */
export async function exchangeRefreshToken(transport: Transport, refreshToken: string, now: () => number): Promise<RefreshedToken> {
  const json = { refresh_token: refreshToken };
  const answer = (await send(transport, { method: 'POST', path: '/api/auth/refresh', json })) as WireRefreshed;
  return fromWire(answer, now());
}

/** `POST /api/auth/me/refresh`: a new family for the user of `token` (theirs, not a service's). */
export async function startRefreshFamily(transport: Transport, token: string, now: () => number): Promise<RefreshedToken> {
  const headers = { authorization: `Bearer ${token}` };
  const answer = (await send(transport, { method: 'POST', path: '/api/auth/me/refresh', headers })) as WireRefreshed;
  return fromWire(answer, now());
}
