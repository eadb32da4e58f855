/**
 * `@latchkey/client/next`: the glue between a Next.js (App Router) app with Auth.js and the
 * Latchkey Settings page, with web-standard `Request`/`Response` only (no `next` import).
 *
 * The design: the app serves the Settings page under its own origin (`/latchkey/`, proxied to
 * the gateway by `settingsPageProxy`), so the page's fetches — Latchkey's API under
 * `/latchkey/api/…` and the app's token route `/api/latchkey/token` — are all same-origin. The
 * page's CSP (`connect-src 'self'`) then allows them, the app's session cookie reaches the token
 * route without any third-party-cookie or CORS set-up, and the app's cookies are never forwarded
 * to Latchkey (the proxy passes only the headers the page needs). The page gets its first token
 * in the link (`settingsPageUrl`) and renews through `tokenRoute` a minute before expiry or on
 * `TOKEN_EXPIRED`.
 */

import type { LatchkeyClient, TokenSubject } from './client.js';
import { isLatchkeyError } from './errors.js';

/** Where the app mounts the Settings page (the proxy's route folder). */
export const DEFAULT_PAGE_PATH = '/latchkey';
/** Where the app mounts `tokenRoute`. */
export const DEFAULT_TOKEN_PATH = '/api/latchkey/token';

/** What `tokenRoute` needs. */
export interface TokenRouteOptions {
  client: LatchkeyClient;
  /**
   * Who is signed in to the app: `{ userId }` (the Latchkey id kept in the Auth.js session) or
   * `{ email }`, or `null` when nobody is. Called per request, e.g. with Auth.js's `auth()`.
   */
  subject(request: Request): Promise<TokenSubject | null | undefined> | TokenSubject | null | undefined;
}

function problem(status: number, body: Record<string, unknown>): Response {
  return new Response(JSON.stringify({ status, ...body }), {
    status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store' },
  });
}

/**
 * `GET /api/latchkey/token`: a short-lived Latchkey token for the signed-in app user, as
 * `{ access_token, token_type, expires_in }` (the shape of Latchkey's own token route), never
 * cached by browsers or proxies. 401 when nobody is signed in; 403 for cross-site requests.
 */
export function tokenRoute(options: TokenRouteOptions): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.headers.get('sec-fetch-site') === 'cross-site') {
      return problem(403, { title: 'Cross-site request refused', detail: 'Tokens are handed only to pages of this site.' });
    }
    const subject = await options.subject(request);
    if (!subject) {
      return problem(401, {
        code: 'TOKEN_MISSING',
        title: 'Not signed in',
        detail: 'Nobody is signed in to the app: sign in again, then reopen the settings page.',
      });
    }
    try {
      const token = await options.client.tokenFor(subject);
      const expiresIn = Math.max(0, Math.floor((token.expiresAt - Date.now()) / 1000));
      return new Response(JSON.stringify({ access_token: token.accessToken, token_type: 'Bearer', expires_in: expiresIn }), {
        status: 200,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
      });
    } catch (error) {
      if (!isLatchkeyError(error)) throw error;
      return problem(error.status || 503, error.toJSON());
    }
  };
}

/** Where the Settings page link points. */
export interface SettingsPageUrlOptions {
  /** The first token (from `client.tokenFor`). */
  token: string | { accessToken: string };
  /** The same-origin token route the page renews through (default `/api/latchkey/token`). */
  renew?: string;
  /** Where `settingsPageProxy` is mounted (default `/latchkey`). */
  pagePath?: string;
}

/** The link to the Settings page: `/latchkey/#token=…&renew=/api/latchkey/token`. */
export function settingsPageUrl(options: SettingsPageUrlOptions): string {
  const token = typeof options.token === 'string' ? options.token : options.token.accessToken;
  const fragment = new URLSearchParams({ token, renew: options.renew ?? DEFAULT_TOKEN_PATH });
  return `${trimSlash(options.pagePath ?? DEFAULT_PAGE_PATH)}/#${fragment.toString()}`;
}

/** How the proxy reaches the gateway. */
export interface SettingsPageProxyOptions {
  /** The gateway's URL; `LATCHKEY_URL` when unset (read per request, so one build fits all). */
  url?: string;
  /** The route folder the proxy is mounted at (default `/latchkey`). */
  pagePath?: string;
  /** A `fetch` of the app's own (tests). */
  fetch?: typeof fetch;
}

/**
 * The gateway routes the Settings page uses, with their methods; everything else answers 404
 * through the proxy (no sync, token, account deletion or metrics routes on the app's origin).
 */
function allowed(method: string, path: string): boolean {
  const read = method === 'GET' || method === 'HEAD';
  if (path === '/' || path === '/assets/app.js' || path === '/assets/app.css' || path === '/openapi.json') return read;
  if (path === '/api/auth/me') return read;
  if (path === '/api/settings') return read || method === 'PATCH' || method === 'PUT';
  if (path === '/api/settings/import') return method === 'POST';
  return /^\/api\/settings\/[^/]+$/.test(path) && method === 'DELETE';
}

/** Request headers passed to the gateway: never the app's cookies. */
const REQUEST_HEADERS = ['accept', 'authorization', 'content-type', 'x-request-id', 'traceparent', 'tracestate'];
/** Response headers passed back: the page's CSP and the API's problem details included. */
const RESPONSE_HEADERS = [
  'content-type',
  'content-security-policy',
  'x-frame-options',
  'x-content-type-options',
  'referrer-policy',
  'cache-control',
  'x-request-id',
  'retry-after',
  'www-authenticate',
];

const trimSlash = (path: string) => path.replace(/\/+$/, '');

/** The gateway's own body limit (256 KiB); larger bodies are refused before buffering them. */
const MAX_BODY_BYTES = 256 * 1024;

/** The request body, or `null` when it is larger than the gateway would accept. */
async function cappedBody(request: Request): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) return null;
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function forwardedFor(request: Request): string | null {
  return request.headers.get('x-forwarded-for') ?? request.headers.get('x-real-ip');
}

/**
 * A route handler serving the Settings page and the API calls it makes under the app's origin
 * (mount it at `app/latchkey/[[...path]]/route.ts` for every method). `/latchkey` redirects to
 * `/latchkey/` so the page's relative URLs resolve under the prefix (set
 * `skipTrailingSlashRedirect: true` in next.config so Next keeps that slash).
 */
export function settingsPageProxy(options: SettingsPageProxyOptions = {}): (request: Request) => Promise<Response> {
  const prefix = trimSlash(options.pagePath ?? DEFAULT_PAGE_PATH);
  return async (request) => {
    const incoming = new URL(request.url);
    if (incoming.pathname === prefix) {
      return new Response(null, { status: 308, headers: { location: `${prefix}/${incoming.search}` } });
    }
    const path = incoming.pathname.startsWith(`${prefix}/`) ? incoming.pathname.slice(prefix.length) : '';
    if (!allowed(request.method, path)) {
      return problem(404, { code: 'NOT_FOUND', title: 'Not found', detail: `${incoming.pathname} is not part of the Latchkey settings page.` });
    }
    const base = options.url ?? (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.LATCHKEY_URL;
    if (!base) {
      return problem(503, { code: 'UPSTREAM_UNAVAILABLE', title: 'Latchkey is not configured', detail: 'LATCHKEY_URL is not set in the web app\'s server environment.' });
    }
    const headers = new Headers();
    for (const name of REQUEST_HEADERS) {
      const value = request.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    const client = forwardedFor(request);
    if (client) headers.set('x-forwarded-for', client);
    const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await cappedBody(request);
    if (body === null) {
      return problem(413, { code: 'PAYLOAD_TOO_LARGE', title: 'The request body is too large', detail: 'Latchkey accepts at most 256 KiB per request; import the .env in parts.' });
    }
    let upstream: Response;
    try {
      upstream = await (options.fetch ?? fetch)(`${trimSlash(base)}${path}${incoming.search}`, {
        method: request.method,
        headers,
        body,
        redirect: 'manual',
        cache: 'no-store',
      });
    } catch {
      return problem(503, { code: 'UPSTREAM_UNAVAILABLE', title: 'Latchkey is unreachable', detail: 'The Latchkey gateway cannot be reached from the web app; check LATCHKEY_URL and that it is running.' });
    }
    const answer = new Headers();
    for (const name of RESPONSE_HEADERS) {
      const value = upstream.headers.get(name);
      if (value !== null) answer.set(name, value);
    }
    return new Response(upstream.status === 204 ? null : upstream.body, { status: upstream.status, headers: answer });
  };
}
