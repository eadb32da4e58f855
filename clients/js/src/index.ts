/**
 * `@latchkey/client`: Latchkey for a web app's server (and, for verification and settings, the
 * browser). See README.md in this package.
 */

export { latchkey } from './client.js';
export type { LatchkeyClient, LatchkeyOptions, LatchkeyUser, SyncResult, TokenSubject } from './client.js';
export { ERROR_CODES, LatchkeyError, isLatchkeyError } from './errors.js';
export type { LatchkeyErrorCode, NewerErrorCode, Violation } from './errors.js';
export { decodeJwt } from './jwt.js';
export type { LatchkeyClaims } from './jwt.js';
export type { RefreshedToken } from './refresh.js';
export type { ImportOptions, ImportResult, ImportWarning, MaskedSetting, SettingsClient } from './settings.js';
export { syncBody } from './sync.js';
export type { SignInAccount, SignInProfile, SignInUser, SyncBody, SyncInput } from './sync.js';
export { RENEW_BEFORE_MS, renewAt } from './token-cache.js';
export type { AccessToken } from './token-cache.js';
export type { TokenVerifier, VerifyOptions } from './verify.js';
