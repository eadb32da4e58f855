/**
 * Verifying Latchkey access tokens in the app itself, against the gateway's JWKS
 * (`GET /.well-known/jwks.json`): EdDSA (Ed25519) or ES256 (P-256), each token under its key's
 * `alg`, `kid` required, `exp`/`nbf` with leeway,
 * `iss` and `aud` pinned. Keys are cached; an unknown `kid` refetches the JWKS (at most once per
 * `refetchIntervalMs`), so a key rotation needs no restart. Uses WebCrypto only (Node 20, modern
 * browsers). A local check cannot see revocation or a disabled user: ask Latchkey (any Bearer
 * route, e.g. `GET /api/auth/me`) where that matters.
 */

import { LatchkeyError, type LatchkeyErrorCode } from './errors.js';
import { send, type Transport } from './http.js';
import { base64UrlBytes, decodeJwt, type LatchkeyClaims } from './jwt.js';

/** How tokens are held; the defaults are Latchkey's. */
export interface VerifyOptions {
  /** Required `iss` (`LATCHKEY_ISSUER`, default `latchkey`). */
  issuer?: string;
  /** Required `aud` (`LATCHKEY_AUDIENCE`, default `latchkey`). */
  audience?: string;
  /** Clock skew tolerated on `exp`/`nbf`, seconds (`LATCHKEY_LEEWAY_SECS`, default 30). */
  leewaySeconds?: number;
  /** Least time between two JWKS fetches for unknown `kid`s (default 1000 ms). */
  refetchIntervalMs?: number;
  /** Longest time a fetched JWKS is used before it is fetched again (default 10 minutes). */
  maxAgeMs?: number;
  /** Milliseconds since the epoch; tests pass their own clock. */
  now?: () => number;
}

/** Checks Latchkey tokens; one per process, sharing its key cache. */
export interface TokenVerifier {
  /** The token's claims when it verifies; a `LatchkeyError` with the reason otherwise. */
  verify(token: string): Promise<LatchkeyClaims>;
}

const refuse = (code: LatchkeyErrorCode, detail: string) =>
  new LatchkeyError({ code, status: 401, detail });

/** A verifier fetching keys through `transport`. */
export function createVerifier(transport: Transport, options: VerifyOptions = {}): TokenVerifier {
  const issuer = options.issuer ?? 'latchkey';
  const audience = options.audience ?? 'latchkey';
  const leeway = options.leewaySeconds ?? 30;
  const now = options.now ?? Date.now;
  const keys = new KeyCache(transport, options.refetchIntervalMs ?? 1000, options.maxAgeMs ?? 600_000, now);

  return {
    async verify(token: string): Promise<LatchkeyClaims> {
      const decoded = typeof token === 'string' ? decodeJwt(token) : null;
      if (!decoded) throw refuse('TOKEN_MALFORMED', 'The token is not a compact JWS (three base64url parts); pass the access_token Latchkey issued.');
      const { header, payload } = decoded;
      if (header.alg !== 'EdDSA' && header.alg !== 'ES256') {
        throw refuse('TOKEN_ALGORITHM_REJECTED', `Latchkey tokens are EdDSA or ES256; this one says ${JSON.stringify(header.alg ?? null)}.`);
      }
      if (typeof header.kid !== 'string' || header.kid === '') {
        throw refuse('TOKEN_MALFORMED', 'The token has no `kid` header; Latchkey always sets one.');
      }
      const key = await keys.get(header.kid);
      if (!key) {
        throw refuse('TOKEN_KEY_UNKNOWN', `No key with kid ${JSON.stringify(header.kid)} is in Latchkey's JWKS; the token was signed elsewhere or its key has been retired.`);
      }
      if (key.alg !== header.alg) {
        throw refuse('TOKEN_ALGORITHM_REJECTED', `Key ${JSON.stringify(header.kid)} is ${key.alg}; this token says ${header.alg}.`);
      }
      const data = new TextEncoder().encode(decoded.signingInput);
      const params = key.alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : 'Ed25519';
      const ok = await crypto.subtle.verify(params, key.key, decoded.signature, data);
      if (!ok) throw refuse('TOKEN_SIGNATURE_INVALID', 'The token\'s signature does not verify against Latchkey\'s key.');
      return checkClaims(payload, { issuer, audience, leeway, nowSeconds: Math.floor(now() / 1000) });
    },
  };
}

interface ClaimRules {
  issuer: string;
  audience: string;
  leeway: number;
  nowSeconds: number;
}

function checkClaims(payload: Record<string, unknown>, rules: ClaimRules): LatchkeyClaims {
  const { exp, nbf, iss, aud, sub } = payload;
  if (typeof exp !== 'number' || typeof sub !== 'string') {
    throw refuse('TOKEN_MALFORMED', 'The token lacks a numeric `exp` or a `sub`.');
  }
  if (rules.nowSeconds > exp + rules.leeway) {
    throw refuse('TOKEN_EXPIRED', `The token expired at ${new Date(exp * 1000).toISOString()}; get a fresh one (tokenFor renews by itself).`);
  }
  if (typeof nbf === 'number' && rules.nowSeconds + rules.leeway < nbf) {
    throw refuse('TOKEN_NOT_YET_VALID', 'The token is not valid yet; check this machine\'s clock.');
  }
  if (iss !== rules.issuer) {
    throw refuse('TOKEN_ISSUER_UNTRUSTED', `The token's issuer is ${JSON.stringify(iss ?? null)}, not ${JSON.stringify(rules.issuer)}; set the verifier's issuer to LATCHKEY_ISSUER.`);
  }
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(rules.audience)) {
    throw refuse('TOKEN_AUDIENCE_MISMATCH', `The token is for ${JSON.stringify(aud ?? null)}, not ${JSON.stringify(rules.audience)}; set the verifier's audience to LATCHKEY_AUDIENCE.`);
  }
  return payload as LatchkeyClaims;
}

/** Public keys by `kid`, fetched lazily and refetched on an unknown `kid` or when stale. */
interface PublishedKey {
  alg: 'EdDSA' | 'ES256';
  key: CryptoKey;
}

class KeyCache {
  private keys = new Map<string, PublishedKey>();
  private fetchedAt = -Infinity;
  private pending: Promise<void> | null = null;

  constructor(
    private readonly transport: Transport,
    private readonly refetchIntervalMs: number,
    private readonly maxAgeMs: number,
    private readonly now: () => number,
  ) {}

  async get(kid: string): Promise<PublishedKey | undefined> {
    const age = this.now() - this.fetchedAt;
    const known = this.keys.get(kid);
    if (known && age < this.maxAgeMs) return known;
    if (!known && age < this.refetchIntervalMs) return undefined;
    try {
      await this.refresh();
    } catch (error) {
      if (known) return known; // a stale key beats none while the JWKS cannot be fetched
      throw error;
    }
    return this.keys.get(kid);
  }

  private refresh(): Promise<void> {
    this.pending ??= this.load().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  private async load(): Promise<void> {
    const jwks = await send(this.transport, { method: 'GET', path: '/.well-known/jwks.json' });
    const list = (jwks as { keys?: unknown } | null)?.keys;
    const next = new Map<string, PublishedKey>();
    for (const jwk of Array.isArray(list) ? list : []) {
      const key = (await importEd25519(jwk)) ?? (await importP256(jwk));
      if (key) next.set(key.kid, { alg: key.alg, key: key.key });
    }
    this.keys = next;
    this.fetchedAt = this.now();
  }
}

type Imported = { kid: string; alg: 'EdDSA' | 'ES256'; key: CryptoKey };

async function importEd25519(jwk: unknown): Promise<Imported | null> {
  if (typeof jwk !== 'object' || jwk === null) return null;
  const { kty, crv, x, kid } = jwk as Record<string, unknown>;
  if (kty !== 'OKP' || crv !== 'Ed25519' || typeof x !== 'string' || typeof kid !== 'string') return null;
  const raw = base64UrlBytes(x);
  if (!raw || raw.length !== 32) return null;
  try {
    const key = await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
    return { kid, alg: 'EdDSA', key };
  } catch {
    return null;
  }
}

async function importP256(jwk: unknown): Promise<Imported | null> {
  if (typeof jwk !== 'object' || jwk === null) return null;
  const { kty, crv, x, y, kid, alg } = jwk as Record<string, unknown>;
  if (kty !== 'EC' || crv !== 'P-256' || alg !== 'ES256') return null;
  if (typeof x !== 'string' || typeof y !== 'string' || typeof kid !== 'string') return null;
  try {
    const key = await crypto.subtle.importKey('jwk', { kty, crv, x, y }, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    return { kid, alg: 'ES256', key };
  } catch {
    return null;
  }
}
