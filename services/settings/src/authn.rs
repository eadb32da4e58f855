//! Who is calling: latchkey-client's [`Authenticator`] verifies the bearer token locally against
//! auth's cached JWKS (signature, issuer, audience, expiry), then, for user tokens, asks auth
//! whether the user is still allowed (`Authenticate`: exists, not disabled, not revoked),
//! remembering the answer for at most [`ALLOWED_CACHE_SECS`], so a revocation or a deletion
//! takes effect here within that bound and a deleted user's still-unexpired token cannot write
//! settings that would be orphaned.

use latchkey_client::{Authenticator, VerifyRules};
use latchkey_common::clock::SharedClock;
use std::time::Duration;
use tonic::transport::Channel;

/// How long auth's "still allowed" answer for a user token is reused (the revocation bound).
pub const ALLOWED_CACHE_SECS: i64 = 4;

/// Settings' authenticator: tokens held to `rules`, auth asked at `channel`.
pub fn authenticator(channel: Channel, rules: VerifyRules, clock: SharedClock) -> Authenticator {
    let bound = Duration::from_secs(ALLOWED_CACHE_SECS as u64);
    Authenticator::new(channel, rules, bound, clock)
}
