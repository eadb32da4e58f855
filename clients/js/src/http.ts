/**
 * One HTTP exchange with the Latchkey gateway: JSON in, JSON out, a time budget, and every
 * failure turned into a `LatchkeyError` (never the sync secret or a token in its text).
 */

import { LatchkeyError, errorFromResponse } from './errors.js';

/** The `fetch` this package calls (the global one unless an app passes its own). */
export type Fetch = typeof fetch;

/** Where and how to call. */
export interface Transport {
  /** The gateway's base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  fetch: Fetch;
  /** Milliseconds before a call is abandoned with `DEADLINE_EXCEEDED`. */
  timeoutMs: number;
}

/** One call's method, path, headers and optional JSON body. */
export interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  json?: unknown;
}

/** Performs `call`; the parsed JSON answer, or `null` for `204 No Content`. */
export async function send(transport: Transport, call: Call): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  let body: string | undefined;
  if (call.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(call.json);
  }
  const url = transport.baseUrl + call.path;
  let response: Response;
  try {
    response = await transport.fetch(url, {
      method: call.method,
      headers,
      body,
      cache: 'no-store',
      redirect: 'error',
      signal: AbortSignal.timeout(transport.timeoutMs),
    });
  } catch (error) {
    throw unreachable(transport, call, error);
  }
  const parsed = await readBody(response);
  if (!response.ok) throw errorFromResponse(response, parsed);
  return response.status === 204 ? null : parsed;
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text().catch(() => '');
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function unreachable(transport: Transport, call: Call, error: unknown): LatchkeyError {
  const name = error instanceof Error ? error.name : '';
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new LatchkeyError({
      code: 'DEADLINE_EXCEEDED',
      status: 0,
      detail: `Latchkey at ${transport.baseUrl} did not answer ${call.method} ${call.path} within ${transport.timeoutMs} ms; retry, and run \`latchkey doctor\` if it persists.`,
    });
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
  return new LatchkeyError({
    code: 'UPSTREAM_UNAVAILABLE',
    status: 0,
    detail: `Latchkey at ${transport.baseUrl} cannot be reached (${cause}); check LATCHKEY_URL and that the gateway is running (\`latchkey dev\` locally).`,
  });
}
