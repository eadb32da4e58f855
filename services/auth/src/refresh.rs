//! Refresh tokens: opaque, 256-bit random, stored only as a SHA-256 digest, bound to a user and
//! a family (every token descending from one sign-in). Each exchange retires the token presented
//! and answers the next one of its family; a retired token presented again revokes the family
//! (`REFRESH_TOKEN_REUSED`), except within a short grace window after its exchange, where it gets
//! a *sibling* — a new current token of the same family — so two tabs refreshing with the same
//! token at once both carry on. A family lives at most its absolute lifetime from sign-in; each
//! token dies unused after the idle lifetime. Sign-out everywhere revokes every family of the user
//! (and any family started before the user's revocation boundary is refused); deleting the user
//! deletes them.

use crate::error::AuthError;
use crate::service::{AuthCore, Issued, UserRef};
use crate::store::refresh_tokens::{self, NewToken, RETIRED, REVOKED};
use crate::store::users;
use latchkey_common::config::{
    Config, Problems, REFRESH_TOKEN_GRACE_SECS, REFRESH_TOKEN_IDLE_SECS, REFRESH_TOKEN_TTL_SECS,
    Setting,
};
use latchkey_proto::Violation;

/// What every refresh token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const PREFIX: &str = "lkr_";
/// Random bytes in a token: 256 bits.
const RANDOM_BYTES: usize = 32;
/// Length of a token: the prefix and 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = PREFIX.len() + 43;

/// The lifetimes of refresh tokens, from the settings table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshRules {
    /// A family's absolute lifetime from sign-in, seconds.
    pub absolute: i64,
    /// A token unused this long expires, seconds.
    pub idle: i64,
    /// A retired token presented again within this many seconds gets a sibling, not a revocation.
    pub grace: i64,
}

impl RefreshRules {
    /// Reads the three settings, one problem per bad value.
    pub fn from_config(config: &Config, problems: &mut Problems) -> Option<RefreshRules> {
        let absolute = seconds(config, REFRESH_TOKEN_TTL_SECS, 1, problems);
        let idle = seconds(config, REFRESH_TOKEN_IDLE_SECS, 1, problems);
        let grace = seconds(config, REFRESH_TOKEN_GRACE_SECS, 0, problems);
        Some(RefreshRules {
            absolute: absolute?,
            idle: idle?,
            grace: grace?,
        })
    }
}

fn seconds(
    config: &Config,
    setting: Setting<i64>,
    least: i64,
    problems: &mut Problems,
) -> Option<i64> {
    let value = config.parsed(setting, "a number of seconds", problems)?;
    if value < least {
        problems.push(
            setting.env(),
            format!("must be at least {least}"),
            format!("set a number of seconds of at least {least}"),
        );
        return None;
    }
    Some(value)
}

/// A refresh token just issued, and how long it may be used. `Debug` never shows the token.
#[derive(Clone)]
pub struct IssuedRefresh {
    pub token: String,
    /// Seconds until it expires unused (the idle lifetime, capped by the family's).
    pub expires_in: i64,
}

impl std::fmt::Debug for IssuedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRefresh")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The answer of an exchange: an access token and the next refresh token.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access: Issued,
    pub refresh: IssuedRefresh,
}

/// A fresh token and its lower-case hex SHA-256 digest (the only form stored).
fn mint() -> (String, String) {
    let token = format!(
        "{PREFIX}{}",
        latchkey_common::secret::random_token(RANDOM_BYTES)
    );
    let digest = digest(&token);
    (token, digest)
}

fn digest(token: &str) -> String {
    let sum = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    sum.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of a presented token, after checking its shape (length first, so any input costs
/// at most [`TOKEN_LEN`] steps): INVALID_ARGUMENT when empty, REFRESH_TOKEN_INVALID otherwise.
fn presented_digest(presented: &str) -> Result<String, AuthError> {
    let presented = presented.trim();
    if presented.is_empty() {
        return Err(AuthError::Invalid(
            "Send the refresh token in `refresh_token`.".into(),
            vec![Violation::new(
                "refresh_token",
                "required: the refresh_token a token, sync-user or refresh answer carried",
            )],
        ));
    }
    let well_formed = presented.len() == TOKEN_LEN
        && presented.starts_with(PREFIX)
        && presented[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(AuthError::RefreshTokenInvalid);
    }
    Ok(digest(presented))
}

impl RefreshRules {
    /// A new token row joining `family` (a successor or a sibling) issued at `now`: its idle
    /// deadline starts now, capped by the family's absolute one.
    fn next(&self, family: &refresh_tokens::Model, now: i64) -> (IssuedRefresh, NewToken) {
        let (token, digest) = mint();
        let idle_expires_at = (now + self.idle).min(family.family_expires_at);
        let row = NewToken {
            digest,
            family_id: family.family_id.clone(),
            user_id: family.user_id.clone(),
            created_at: now,
            idle_expires_at,
            family_started_at: family.family_started_at,
            family_expires_at: family.family_expires_at,
        };
        let issued = IssuedRefresh {
            token,
            expires_in: idle_expires_at - now,
        };
        (issued, row)
    }
}

impl AuthCore {
    /// Mints an access token and starts a refresh family for an already-synced user (the opt-in
    /// form of the token route). Guarded by the sync secret.
    pub async fn issue_token_with_refresh(
        &self,
        secret: Option<&str>,
        who: UserRef,
    ) -> Result<Refreshed, AuthError> {
        let user = self.token_user(secret, who).await?;
        let access = self.issue_for_user(&user)?;
        let refresh = self.start_refresh_family(&user).await?;
        Ok(Refreshed { access, refresh })
    }

    /// Starts a family for the user behind a bearer token — a web app's own (Auth.js, legacy
    /// HS256) or a Latchkey access token — so a browser holding no sync secret can get one. The
    /// token must verify as [`AuthCore::authenticate`] checks it (signature, expiry, user enabled,
    /// not revoked); a service token is refused, it has no user.
    pub async fn issue_token_with_refresh_for_bearer(
        &self,
        token: &str,
    ) -> Result<Refreshed, AuthError> {
        let user = self.current_user(token).await?;
        let access = self.issue_for_user(&user)?;
        let refresh = self.start_refresh_family(&user).await?;
        Ok(Refreshed { access, refresh })
    }

    /// The first token of a new family for `user`. A family started right after a revocation
    /// starts at the revocation boundary, so it is not itself revoked.
    pub async fn start_refresh_family(
        &self,
        user: &users::Model,
    ) -> Result<IssuedRefresh, AuthError> {
        let rules = self.refresh_rules();
        let now = self.clock().now();
        refresh_tokens::delete_expired_of_user(self.db(), &user.id, now).await?;
        let (token, digest) = mint();
        let family_expires_at = now + rules.absolute;
        let idle_expires_at = (now + rules.idle).min(family_expires_at);
        let row = NewToken {
            digest,
            family_id: uuid::Uuid::new_v4().to_string(),
            user_id: user.id.clone(),
            created_at: now,
            idle_expires_at,
            family_started_at: now.max(user.tokens_valid_after),
            family_expires_at,
        };
        let family_id = row.family_id.clone();
        refresh_tokens::insert(self.db(), row).await?;
        tracing::info!(user_id = %user.id, %family_id, "refresh family started");
        Ok(IssuedRefresh {
            token,
            expires_in: idle_expires_at - now,
        })
    }

    /// Exchanges a refresh token: a current one is retired and answered with an access token and
    /// its successor; a retired one within the grace window gets a sibling; a retired one after
    /// it revokes its family (REFRESH_TOKEN_REUSED). Race-free: of two exchanges of one current
    /// token exactly one retires it ([`refresh_tokens::rotate`]), the other is a presentation of
    /// a retired token.
    pub async fn refresh(&self, presented: &str) -> Result<Refreshed, AuthError> {
        let digest = presented_digest(presented)?;
        let now = self.clock().now();
        let row = refresh_tokens::find(self.db(), &digest)
            .await?
            .ok_or(AuthError::RefreshTokenInvalid)?;
        let user = self.family_owner(&row).await?;
        if now >= row.idle_expires_at.min(row.family_expires_at) {
            return Err(AuthError::RefreshTokenExpired);
        }
        let rules = self.refresh_rules();
        if row.state == refresh_tokens::CURRENT {
            let (refresh, successor) = rules.next(&row, now);
            if refresh_tokens::rotate(self.db(), &digest, successor, now).await? {
                let access = self.issue_for_user(&user)?;
                return Ok(Refreshed { access, refresh });
            }
        }
        // Retired before (or by a parallel exchange just now): read what it is now.
        let row = refresh_tokens::find(self.db(), &digest)
            .await?
            .ok_or(AuthError::RefreshTokenInvalid)?;
        match (row.state.as_str(), row.retired_at) {
            (RETIRED, Some(retired_at)) if rules.grace > 0 && now - retired_at <= rules.grace => {
                let (refresh, sibling) = rules.next(&row, now);
                refresh_tokens::insert(self.db(), sibling).await?;
                tracing::info!(
                    user_id = %user.id,
                    family_id = %row.family_id,
                    "refresh token presented again within the grace window; sibling issued"
                );
                let access = self.issue_for_user(&user)?;
                Ok(Refreshed { access, refresh })
            }
            (RETIRED, _) => {
                let revoked = refresh_tokens::revoke_family(self.db(), &row.family_id).await?;
                tracing::warn!(
                    user_id = %user.id,
                    family_id = %row.family_id,
                    revoked,
                    "retired refresh token presented again; family revoked"
                );
                Err(AuthError::RefreshTokenReused)
            }
            (REVOKED, _) => Err(AuthError::RefreshTokenRevoked),
            (state, _) => Err(AuthError::Internal(format!(
                "refresh token in state {state} after a failed rotation"
            ))),
        }
    }

    /// The user a family belongs to, if they may still refresh: a deleted user's token is
    /// invalid, a disabled user is USER_DISABLED, and a family revoked (or started before the
    /// user's revocation boundary) is REFRESH_TOKEN_REVOKED.
    async fn family_owner(&self, row: &refresh_tokens::Model) -> Result<users::Model, AuthError> {
        let user = users::find(self.db(), &row.user_id)
            .await?
            .ok_or(AuthError::RefreshTokenInvalid)?;
        if user.disabled {
            return Err(AuthError::UserDisabled(user.id));
        }
        if row.state == REVOKED || row.family_started_at < user.tokens_valid_after {
            return Err(AuthError::RefreshTokenRevoked);
        }
        Ok(user)
    }

    /// Revokes every refresh family of a user (sign-out everywhere).
    pub(crate) async fn revoke_refresh_families(&self, user_id: &str) -> Result<(), AuthError> {
        let revoked = refresh_tokens::revoke_user(self.db(), user_id).await?;
        tracing::info!(user_id, revoked, "refresh families revoked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_prefixed_base64url_and_only_their_digest_is_kept() {
        let (token, digest) = mint();
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.starts_with(PREFIX));
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains(&token[PREFIX.len()..]));
        assert_eq!(presented_digest(&token).unwrap(), digest);
        assert_eq!(presented_digest(&format!(" {token}\n")).unwrap(), digest);
        let (other, other_digest) = mint();
        assert_ne!(token, other);
        assert_ne!(digest, other_digest);
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        assert!(matches!(presented_digest(""), Err(AuthError::Invalid(..))));
        let (token, _) = mint();
        for bad in [
            token[..TOKEN_LEN - 1].to_owned(),
            format!("{token}A"),
            token.replacen(PREFIX, "xyz_", 1),
            format!("{}!", &token[..TOKEN_LEN - 1]),
            "eyJhbGciOiJFZERTQSJ9.e30.sig".to_owned(),
            "é".repeat(TOKEN_LEN),
        ] {
            assert!(
                matches!(presented_digest(&bad), Err(AuthError::RefreshTokenInvalid)),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_successor_keeps_its_family_and_never_outlives_it() {
        let rules = RefreshRules {
            absolute: 100,
            idle: 40,
            grace: 10,
        };
        let family = refresh_tokens::Model {
            digest: "d".into(),
            family_id: "f".into(),
            user_id: "u".into(),
            state: refresh_tokens::CURRENT.into(),
            created_at: 1000,
            idle_expires_at: 1040,
            family_started_at: 1000,
            family_expires_at: 1100,
            retired_at: None,
        };
        let (issued, row) = rules.next(&family, 1030);
        assert_eq!(row.family_id, "f");
        assert_eq!(row.family_expires_at, 1100);
        assert_eq!(row.idle_expires_at, 1070);
        assert_eq!(issued.expires_in, 40);
        let (issued, row) = rules.next(&family, 1080);
        assert_eq!(row.idle_expires_at, 1100, "capped by the family");
        assert_eq!(issued.expires_in, 20);
        assert!(!format!("{issued:?}").contains(PREFIX));
    }
}
