//! The auth domain: user sync, token issue, authentication, revocation and deletion, over the
//! store and the key ring. Knows nothing of gRPC: the adapter in [`crate::grpc`] decodes, calls
//! and maps errors.

use crate::accounts::{self, SignIn, Synced};
use crate::config::{AuthConfig, ServiceClient};
use crate::error::AuthError;
use crate::keys::{self, KeyRing};
use crate::store::{identities, users};
use crate::tokens::{IssuedClaims, Subject, TokenRules, VerifiedToken, sign};
use crate::verified::VerifiedTokens;
use latchkey_common::clock::SharedClock;
use latchkey_common::hot_reads::HotReads;
use latchkey_common::seal::SealKey;
use latchkey_common::secret::secrets_match;
use latchkey_proto::Violation;
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use std::time::{Duration, Instant};

/// Scope settings requires of auth's own token when purging a deleted user's data.
pub const PURGE_SCOPE: &str = latchkey_proto::scopes::SETTINGS_PURGE;
/// The client id auth uses for its own calls to settings.
pub const AUTH_CLIENT_ID: &str = "latchkey-auth";
/// At most one forced key reload per this interval, however many unknown `kid`s arrive.
const FORCED_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The identity provider of an email-only sync (`{email, name}`): the subject is the email.
pub const EMAIL_PROVIDER: &str = "email";
/// The identity provider of users created just in time from a legacy token's email.
pub const LEGACY_PROVIDER: &str = "legacy";

/// What a sync request carries. `provider` and `subject` both empty: an email-only sync.
#[derive(Debug, Clone, Default)]
pub struct SyncInput {
    pub provider: String,
    pub subject: String,
    pub email: String,
    /// Whether the provider vouches for `email`; only then may the identity join an existing user.
    pub email_verified: bool,
    pub name: String,
    pub avatar_url: String,
}

/// An issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_in: i64,
    pub scopes: Vec<String>,
}

/// Who a token belongs to, after every check.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token: VerifiedToken,
    /// Set for user (and legacy) tokens.
    pub user: Option<users::Model>,
    /// The user's identity signed in with last: the `provider`/`subject` callers see.
    pub identity: Option<identities::Model>,
}

/// How a token request names its user.
#[derive(Debug, Clone)]
pub enum UserRef {
    Id(String),
    Email(String),
}

/// Deletes a user's settings in the settings service before the user goes.
#[async_trait::async_trait]
pub trait SettingsPurger: Send + Sync {
    /// Removes every setting of `user_id`, answering how many went.
    async fn purge(&self, user_id: &str, bearer: &str) -> Result<i64, AuthError>;
}

/// The auth domain's state.
pub struct AuthCore {
    db: DatabaseConnection,
    keys: KeyRing,
    seal: SealKey,
    /// Where the seal key came from, named when a stored key will not open.
    seal_variable: String,
    rules: TokenRules,
    sync_secret: SecretString,
    clients: Vec<ServiceClient>,
    jit_provisioning: bool,
    link_verified_emails: bool,
    clock: SharedClock,
    /// Lifetimes of refresh tokens ([`crate::refresh`]).
    refresh_rules: crate::refresh::RefreshRules,
    /// Algorithm of new keys, automatic rotation, standby lead (the JWKS cache lifetime).
    key_policy: crate::key_policy::KeyPolicy,
    /// When keys were last re-read for an unknown `kid`; held during that re-read, so callers
    /// arriving meanwhile wait for it and use its keys.
    last_forced_reload: tokio::sync::Mutex<Option<Instant>>,
    purger: Option<Box<dyn SettingsPurger>>,
    /// Auth's own tokens whose signature verified lately (see [`crate::verified`]).
    verified: VerifiedTokens,
    /// Connections for a token's user, the hottest read (none: it goes through `db`).
    hot: Option<users::HotUsers>,
}

impl AuthCore {
    /// Builds the core and loads (creating when absent) the signing keys.
    pub async fn new(
        db: DatabaseConnection,
        config: &AuthConfig,
        clock: SharedClock,
        purger: Option<Box<dyn SettingsPurger>>,
    ) -> Result<Self, AuthError> {
        let now = clock.now();
        let seal_error = |error| AuthError::from_keys(error, &config.seal_key_variable);
        keys::ensure_active_key(&db, &config.seal_key, now, config.key_policy.algorithm)
            .await
            .map_err(seal_error)?;
        keys::record_seal_fingerprints(&db, &config.seal_key)
            .await
            .map_err(seal_error)?;
        let ring = KeyRing::default();
        ring.reload(&db, &config.seal_key, now)
            .await
            .map_err(seal_error)?;
        Ok(AuthCore {
            db,
            keys: ring,
            seal: config.seal_key.clone(),
            seal_variable: config.seal_key_variable.clone(),
            rules: config.rules.clone(),
            sync_secret: config.sync_secret.clone(),
            clients: config.clients.clone(),
            jit_provisioning: config.jit_provisioning,
            link_verified_emails: config.link_verified_emails,
            clock,
            refresh_rules: config.refresh,
            key_policy: config.key_policy,
            last_forced_reload: tokio::sync::Mutex::new(None),
            purger,
            verified: VerifiedTokens::new(config.rules.leeway),
            hot: None,
        })
    }

    /// The same core reading a token's user through `hot` (see [`HotReads`]).
    pub fn with_hot_reads(mut self, hot: Option<HotReads>) -> Self {
        self.hot = hot.map(users::hot_users);
        self
    }

    /// The database, for readiness checks.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The clock every lifetime is measured with.
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Lifetimes of refresh tokens.
    pub(crate) fn refresh_rules(&self) -> crate::refresh::RefreshRules {
        self.refresh_rules
    }

    /// Re-reads signing keys (periodically, so rotation needs no restart).
    pub async fn reload_keys(&self) -> Result<(), AuthError> {
        self.keys
            .reload(&self.db, &self.seal, self.clock.now())
            .await
            .map_err(|error| AuthError::from_keys(error, &self.seal_variable))
    }

    /// Checks the sync secret in constant time.
    pub fn check_sync_secret(&self, presented: Option<&str>) -> Result<(), AuthError> {
        let presented = presented
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::SyncSecretMissing)?;
        if secrets_match(presented.as_bytes(), &self.sync_secret) {
            Ok(())
        } else {
            Err(AuthError::SyncSecretInvalid)
        }
    }

    /// Resolves a sign-in to its user (by identity; a new identity may join the one user holding
    /// its verified email, see [`accounts`]) and issues them a token.
    pub async fn sync_user(
        &self,
        secret: Option<&str>,
        input: SyncInput,
    ) -> Result<(Synced, Issued), AuthError> {
        self.check_sync_secret(secret)?;
        let sign_in = validate_sync(input)?;
        let synced = accounts::sync(
            &self.db,
            &sign_in,
            self.link_verified_emails,
            self.clock.now(),
        )
        .await?;
        if synced.user.disabled {
            return Err(AuthError::UserDisabled(synced.user.id));
        }
        let issued = self.issue_for_user(&synced.user)?;
        tracing::info!(
            user_id = %synced.user.id,
            provider = %synced.identity.provider,
            outcome = ?synced.outcome,
            "user synced"
        );
        Ok((synced, issued))
    }

    /// Mints a fresh token for an already-synced user.
    pub async fn issue_token(
        &self,
        secret: Option<&str>,
        who: UserRef,
    ) -> Result<Issued, AuthError> {
        let user = self.token_user(secret, who).await?;
        self.issue_for_user(&user)
    }

    /// The synced, enabled user a token request names, after checking the sync secret.
    pub(crate) async fn token_user(
        &self,
        secret: Option<&str>,
        who: UserRef,
    ) -> Result<users::Model, AuthError> {
        self.check_sync_secret(secret)?;
        let user = match who {
            UserRef::Id(id) if !id.trim().is_empty() => self
                .find_user(id.trim())
                .await?
                .ok_or(AuthError::UserNotSynced(id))?,
            UserRef::Email(email) if !email.trim().is_empty() => {
                self.user_by_email(&email, "email").await?
            }
            _ => {
                return Err(AuthError::Invalid(
                    "Name the user with user_id or email.".into(),
                    vec![Violation::new("user_id", "give user_id or email")],
                ));
            }
        };
        if user.disabled {
            return Err(AuthError::UserDisabled(user.id));
        }
        Ok(user)
    }

    /// Client-credentials: a token with the requested scopes (or all the client may have).
    pub fn issue_service_token(
        &self,
        client_id: &str,
        secret: &str,
        wanted: &[String],
    ) -> Result<Issued, AuthError> {
        let client = self.clients.iter().find(|c| c.id == client_id);
        let secret_ok = match client {
            Some(client) => secrets_match(secret.as_bytes(), &client.secret),
            None => {
                // Same work for an unknown id, so timing does not tell which ids exist.
                secrets_match(secret.as_bytes(), &SecretString::from(String::from("-")));
                false
            }
        };
        let client = client
            .filter(|_| secret_ok)
            .ok_or(AuthError::ClientCredentialsInvalid)?;
        let scopes = if wanted.is_empty() {
            client.scopes.clone()
        } else {
            wanted.to_vec()
        };
        if let Some(missing) = scopes.iter().find(|s| !client.scopes.contains(s)) {
            return Err(AuthError::ScopeMissing(missing.clone()));
        }
        let issued = self.sign_now(
            format!("client:{}", client.id),
            scopes.join(" "),
            Some(client.id.clone()),
            self.clock.now(),
        )?;
        Ok(Issued { scopes, ..issued })
    }

    /// A token auth uses itself to ask settings to purge a user's data.
    pub fn internal_token(&self, scope: &str) -> Result<String, AuthError> {
        let issued = self.sign_now(
            format!("client:{AUTH_CLIENT_ID}"),
            scope.to_owned(),
            Some(AUTH_CLIENT_ID.to_owned()),
            self.clock.now(),
        )?;
        Ok(issued.token)
    }

    /// For a verified legacy token: a Latchkey token for the same user, expiring no later than
    /// the legacy one (nor than a token issued now would), for callers that forward the user's
    /// identity to services verifying only Latchkey's keys. `None` for any other principal, or
    /// when no signing key is active (the legacy token itself stays valid for auth).
    pub fn exchange_legacy(&self, principal: &Principal) -> Option<SecretString> {
        let (Subject::LegacyEmail(_), Some(user)) = (&principal.token.subject, &principal.user)
        else {
            return None;
        };
        let mut claims = self.user_claims(user);
        claims.exp = claims.exp.min(principal.token.expires_at);
        match self.sign_claims(&claims) {
            Ok(token) => Some(SecretString::from(token)),
            Err(error) => {
                tracing::warn!(user_id = %user.id, %error, "a legacy token cannot be exchanged");
                None
            }
        }
    }

    pub(crate) fn issue_for_user(&self, user: &users::Model) -> Result<Issued, AuthError> {
        self.issue(self.user_claims(user))
    }

    /// A user token's claims. After a revocation it is issued at the revocation boundary, so
    /// the new token is not revoked.
    fn user_claims(&self, user: &users::Model) -> IssuedClaims {
        let iat = self.clock.now().max(user.tokens_valid_after);
        self.rules.claims(user.id.clone(), String::new(), None, iat)
    }

    fn sign_now(
        &self,
        sub: String,
        scope: String,
        client_id: Option<String>,
        iat: i64,
    ) -> Result<Issued, AuthError> {
        self.issue(self.rules.claims(sub, scope, client_id, iat))
    }

    fn issue(&self, claims: IssuedClaims) -> Result<Issued, AuthError> {
        Ok(Issued {
            token: self.sign_claims(&claims)?,
            expires_in: claims.exp - self.clock.now(),
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        })
    }

    /// Signs with the active key; the one place that needs one.
    fn sign_claims(&self, claims: &IssuedClaims) -> Result<String, AuthError> {
        let keys = self.keys.snapshot();
        let active = keys
            .active
            .as_ref()
            .ok_or_else(|| AuthError::Internal("no active signing key".into()))?;
        Ok(sign(active, claims))
    }

    /// The public keys of every key whose tokens may still be live.
    pub fn jwks(&self) -> Vec<latchkey_proto::auth::v1::Jwk> {
        let keys = self.keys.snapshot();
        let mut jwks: Vec<_> = keys.published.values().map(keys::jwk).collect();
        jwks.sort_by(|a, b| a.kid.cmp(&b.kid));
        jwks
    }

    /// How long a verifier may cache the JWKS: the standby lead, so a key is in every cached
    /// set before it signs.
    pub fn jwks_max_age(&self) -> i64 {
        self.key_policy.standby_lead
    }

    /// Verifies a token and, for users, that they exist, are enabled and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let verified = self.verify_remembered(token).await?;
        let (user, identity) = match &verified.subject {
            Subject::Service(_) => {
                return Ok(Principal {
                    token: verified,
                    user: None,
                    identity: None,
                });
            }
            Subject::User(id) => match &self.hot {
                Some(hot) => users::find_with_identity_hot(hot, id).await?,
                None => users::find_with_identity(&self.db, id).await?,
            }
            .ok_or_else(|| AuthError::UserNotSynced(id.clone()))?,
            Subject::LegacyEmail(email) => {
                let user = self.legacy_user(email).await?;
                let identity = identities::last_used(&self.db, &user.id).await?;
                (user, identity)
            }
        };
        if user.disabled {
            return Err(AuthError::UserDisabled(user.id));
        }
        if verified.issued_at < user.tokens_valid_after {
            return Err(AuthError::TokenRevoked);
        }
        Ok(Principal {
            token: verified,
            user: Some(user),
            identity,
        })
    }

    /// [`Self::verify_signature`], answered from [`VerifiedTokens`] for a token that verified
    /// before (unexpired, its key still published), remembered when it verifies now.
    async fn verify_remembered(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let (digest, hit) = self
            .verified
            .lookup(token, &self.keys.snapshot(), self.clock.now());
        if let Some(verified) = hit {
            return Ok(verified);
        }
        let verified = self.verify_signature(token).await?;
        self.verified
            .remember(digest, token, &self.keys.snapshot(), &verified);
        Ok(verified)
    }

    /// Verifies signature and claims; on an unknown `kid`, re-reads keys once (rate-limited).
    /// Tokens with the new `kid` arriving together (another replica rotated) wait for the one
    /// re-read and are checked against its keys, instead of failing while it runs.
    async fn verify_signature(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let verify = || {
            self.rules
                .verify(token, &self.keys.snapshot(), self.clock.now())
        };
        let first = verify();
        if !matches!(first, Err(crate::tokens::TokenError::KeyUnknown(_))) {
            return Ok(first?);
        }
        let mut last = self.last_forced_reload.lock().await;
        match verify() {
            Err(crate::tokens::TokenError::KeyUnknown(_))
                if last.is_none_or(|at| at.elapsed() >= FORCED_RELOAD_INTERVAL) =>
            {
                *last = Some(Instant::now());
                self.reload_keys().await?;
                Ok(verify()?)
            }
            other => Ok(other?),
        }
    }

    /// The user a web app's token names by email (legacy HS256, Auth.js): the one user holding
    /// the address, USER_AMBIGUOUS when several do; with JIT provisioning on, a user created on
    /// first sight (identity provider `legacy`, subject the email) when none does.
    pub async fn legacy_user(&self, email: &str) -> Result<users::Model, AuthError> {
        match self
            .user_by_email(email, "token email (claim `email` or `sub`)")
            .await
        {
            Err(AuthError::UserNotSynced(email)) if self.jit_provisioning => {
                let sign_in = SignIn {
                    provider: LEGACY_PROVIDER.to_owned(),
                    subject: email.clone(),
                    email,
                    email_verified: false,
                    name: String::new(),
                    avatar_url: String::new(),
                };
                accounts::provision(&self.db, &sign_in, self.clock.now()).await
            }
            other => other,
        }
    }

    /// The one user holding this email, after normalising and validating it (`field` names where
    /// it came from in a refusal): USER_NOT_SYNCED when nobody does, USER_AMBIGUOUS when several.
    pub async fn user_by_email(&self, email: &str, field: &str) -> Result<users::Model, AuthError> {
        let email = crate::email::normalise(email)
            .map_err(|error| AuthError::invalid_email(field, error))?;
        accounts::user_by_email(&self.db, &email)
            .await?
            .ok_or(AuthError::UserNotSynced(email))
    }

    /// The user behind a bearer token.
    pub async fn current_user(&self, token: &str) -> Result<users::Model, AuthError> {
        Ok(self.current_account(token).await?.0)
    }

    /// The user behind a bearer token, with the identity they signed in with last.
    pub async fn current_account(
        &self,
        token: &str,
    ) -> Result<(users::Model, Option<identities::Model>), AuthError> {
        let principal = self.authenticate(token).await?;
        let user = principal.user.ok_or_else(|| {
            AuthError::Invalid(
                "This call needs a user token, not a service token.".into(),
                Vec::new(),
            )
        })?;
        Ok((user, principal.identity))
    }

    /// Revokes every token issued to the bearer token's user so far, refresh families included.
    /// Returns the boundary.
    pub async fn revoke_tokens(&self, token: &str) -> Result<i64, AuthError> {
        let user = self.current_user(token).await?;
        let boundary = users::revoke_until_now(&self.db, &user.id, self.clock.now())
            .await?
            .ok_or_else(|| AuthError::UserNotSynced(user.id.clone()))?;
        self.revoke_refresh_families(&user.id).await?;
        Ok(boundary)
    }

    /// Deletes the bearer token's user; their settings go first, so nothing is left orphaned.
    pub async fn delete_user(&self, token: &str) -> Result<i64, AuthError> {
        let user = self.current_user(token).await?;
        let purged = match &self.purger {
            Some(purger) => {
                purger
                    .purge(&user.id, &self.internal_token(PURGE_SCOPE)?)
                    .await?
            }
            None => 0,
        };
        users::delete(&self.db, &user.id).await?;
        tracing::info!(user_id = %user.id, settings_deleted = purged, "user deleted");
        Ok(purged)
    }

    async fn find_user(&self, id: &str) -> Result<Option<users::Model>, AuthError> {
        Ok(users::find(&self.db, id).await?)
    }
}

/// Checks every field at once; an email-only sync (no provider, no subject) becomes identity
/// `email`/<the normalised address>.
fn validate_sync(input: SyncInput) -> Result<SignIn, AuthError> {
    let provider = input.provider.trim().to_lowercase();
    let subject = input.subject.trim().to_owned();
    let name = input.name.trim().to_owned();
    let avatar_url = input.avatar_url.trim().to_owned();
    let email = crate::email::normalise(&input.email);
    let mut violations: Vec<Violation> = Vec::new();
    let email_only = provider.is_empty() && subject.is_empty();
    let provider_ok = email_only
        || (!provider.is_empty()
            && provider.len() <= 64
            && provider
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'));
    if !provider_ok {
        violations.push(Violation::new(
            "provider",
            "1-64 characters of a-z, 0-9, `-`, `_`, `.` (e.g. google, github), given with subject; or leave out both for an email-only sync",
        ));
    }
    if !email_only && (subject.is_empty() || subject.chars().count() > 255) {
        violations.push(Violation::new(
            "subject",
            "the provider's user id, at most 255 characters, given with provider; or leave out both for an email-only sync",
        ));
    } else if subject.chars().any(char::is_control) {
        violations.push(Violation::new(
            "subject",
            "contains a control character; send the provider's user id as the provider gives it",
        ));
    }
    if let Err(error) = &email {
        violations.push(Violation::new("email", error.to_string()));
    }
    if name.chars().count() > 256 {
        violations.push(Violation::new("name", "at most 256 characters"));
    }
    if !avatar_url.is_empty()
        && (avatar_url.chars().count() > 2048
            || !(avatar_url.starts_with("https://") || avatar_url.starts_with("http://")))
    {
        violations.push(Violation::new(
            "avatar_url",
            "an http(s) URL of at most 2048 characters",
        ));
    }
    let email = match email {
        Ok(email) if violations.is_empty() => email,
        _ => {
            return Err(AuthError::Invalid(
                "The sync request has invalid fields; see the violations.".into(),
                violations,
            ));
        }
    };
    let (provider, subject) = if email_only {
        (EMAIL_PROVIDER.to_owned(), email.clone())
    } else {
        (provider, subject)
    };
    Ok(SignIn {
        provider,
        subject,
        email,
        email_verified: input.email_verified,
        name,
        avatar_url,
    })
}
