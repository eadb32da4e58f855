/**
 * The one error type of this package: every refusal from Latchkey (problem+json) and every
 * failure to reach it becomes a `LatchkeyError` carrying the catalogue `code`, so an app can
 * `switch (err.code)`. The codes are Latchkey's error catalogue (README.md, "Troubleshooting by
 * error code"); what each means and how to fix it is in docs/TROUBLESHOOTING.md.
 */

/** Every reason code in Latchkey's catalogue, in catalogue order. */
export const ERROR_CODES = [
  'TOKEN_MISSING',
  'TOKEN_MALFORMED',
  'TOKEN_ALGORITHM_REJECTED',
  'TOKEN_KEY_UNKNOWN',
  'TOKEN_SIGNATURE_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_NOT_YET_VALID',
  'TOKEN_ISSUER_UNTRUSTED',
  'TOKEN_AUDIENCE_MISMATCH',
  'TOKEN_REVOKED',
  'TOKEN_SECRET_MISMATCH',
  'USER_NOT_SYNCED',
  'USER_DISABLED',
  'USER_AMBIGUOUS',
  'SYNC_SECRET_MISSING',
  'SYNC_SECRET_INVALID',
  'CLIENT_CREDENTIALS_INVALID',
  'SCOPE_MISSING',
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'PAYLOAD_TOO_LARGE',
  'RATE_LIMITED',
  'DATA_INTEGRITY',
  'UPSTREAM_UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'INTERNAL',
  'SETTING_INVALID',
  'REFRESH_TOKEN_INVALID',
  'REFRESH_TOKEN_EXPIRED',
  'REFRESH_TOKEN_REUSED',
  'REFRESH_TOKEN_REVOKED',
] as const;

/** A catalogue reason code, e.g. `TOKEN_EXPIRED`. */
export type LatchkeyErrorCode = (typeof ERROR_CODES)[number];

/**
 * A code this version of the package does not list yet (a newer Latchkey added it): passed on
 * as Latchkey sent it rather than guessed.
 */
export type NewerErrorCode = string & { readonly newerCode?: never };

/** One bad field or `.env` line of an `INVALID_ARGUMENT` refusal. */
export interface Violation {
  /** The field (`settings.FLY_API_TOKEN`) or line (`line 7`) at fault. */
  field: string;
  /** The `.env` line number, when the violation is about a line. */
  line?: number;
  /** What is wrong, as a sentence. */
  description: string;
}

/** What a `LatchkeyError` is made from. */
export interface LatchkeyErrorInit {
  code: LatchkeyErrorCode | NewerErrorCode;
  status: number;
  detail: string;
  title?: string;
  requestId?: string;
  violations?: Violation[];
  retryAfter?: number;
}

/**
 * A refusal or failure, with the catalogue `code`, the HTTP `status` (0 when Latchkey was never
 * reached), the `detail` sentence saying what to do, the `requestId` to find the server's log
 * line, every bad field or line in `violations`, and `retryAfter` seconds for `RATE_LIMITED`.
 */
export class LatchkeyError extends Error {
  override readonly name = 'LatchkeyError';
  /** The catalogue reason, e.g. `TOKEN_EXPIRED`; switch on this. */
  readonly code: LatchkeyErrorCode | NewerErrorCode;
  /** The HTTP status Latchkey answered; 0 when it could not be reached. */
  readonly status: number;
  /** What went wrong and what to do, as a sentence. */
  readonly detail: string;
  /** The catalogue's short title of the code. */
  readonly title: string | undefined;
  /** Latchkey's request id (also in its logs), when it answered. */
  readonly requestId: string | undefined;
  /** Every bad field or `.env` line (`INVALID_ARGUMENT`); empty otherwise. */
  readonly violations: readonly Violation[];
  /** Seconds to wait before retrying (`RATE_LIMITED`). */
  readonly retryAfter: number | undefined;

  constructor(init: LatchkeyErrorInit) {
    super(`${init.code}: ${init.detail}`);
    this.code = init.code;
    this.status = init.status;
    this.detail = init.detail;
    this.title = init.title;
    this.requestId = init.requestId;
    this.violations = init.violations ?? [];
    this.retryAfter = init.retryAfter;
  }

  /** A plain object for logs and JSON answers (never holds a secret or a token). */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      status: this.status,
      detail: this.detail,
      title: this.title,
      request_id: this.requestId,
      errors: this.violations.length ? this.violations : undefined,
      retry_after: this.retryAfter,
    };
  }
}

/** True for errors of this package, narrowing the type. */
export function isLatchkeyError(error: unknown): error is LatchkeyError {
  return error instanceof LatchkeyError;
}

/** What a catalogue code looks like on the wire. */
const CODE_SHAPE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** The catalogue code for an answer that carries none (a proxy's page, an old server). */
function codeForStatus(status: number): LatchkeyErrorCode {
  switch (status) {
    case 400:
      return 'INVALID_ARGUMENT';
    case 401:
      return 'TOKEN_MISSING';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 429:
      return 'RATE_LIMITED';
    case 504:
      return 'DEADLINE_EXCEEDED';
    default:
      return status >= 500 ? 'UPSTREAM_UNAVAILABLE' : 'INTERNAL';
  }
}

function violationsOf(value: unknown): Violation[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null)
    .map((v) => {
      const violation: Violation = {
        field: typeof v.field === 'string' ? v.field : '',
        description: typeof v.description === 'string' ? v.description : '',
      };
      if (typeof v.line === 'number') violation.line = v.line;
      return violation;
    });
}

function retryAfterOf(header: string | null, body: unknown): number | undefined {
  const fromHeader = header === null ? NaN : Number(header);
  if (Number.isFinite(fromHeader) && fromHeader >= 0) return fromHeader;
  return typeof body === 'number' && body >= 0 ? body : undefined;
}

/** The error for a non-2xx answer: its problem+json when it is one, a named guess otherwise. */
export function errorFromResponse(response: Response, body: unknown): LatchkeyError {
  const problem = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const requestId =
    (typeof problem.request_id === 'string' ? problem.request_id : undefined) ??
    response.headers.get('x-request-id') ??
    undefined;
  const retryAfter = retryAfterOf(response.headers.get('retry-after'), problem.retry_after);
  if (typeof problem.code === 'string' && CODE_SHAPE.test(problem.code)) {
    return new LatchkeyError({
      code: problem.code,
      status: response.status,
      detail: typeof problem.detail === 'string' ? problem.detail : String(problem.title ?? ''),
      title: typeof problem.title === 'string' ? problem.title : undefined,
      requestId,
      violations: violationsOf(problem.errors),
      retryAfter,
    });
  }
  const type = response.headers.get('content-type') ?? 'no content type';
  return new LatchkeyError({
    code: codeForStatus(response.status),
    status: response.status,
    detail:
      `${response.url || 'Latchkey'} answered HTTP ${response.status} (${type}) without a Latchkey ` +
      'problem: check that the URL points at the Latchkey gateway and nothing in between rewrites its answers.',
    requestId,
    retryAfter,
  });
}
