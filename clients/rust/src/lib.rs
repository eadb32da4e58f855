//! `latchkey-client`: what an internal Rust service adds to talk to Latchkey. Settings and the
//! gateway use it too, so no service links the auth server.
//!
//! - [`verify`]: the verify-only token rules (issuer, audience, leeway) and [`claims`];
//!   [`error`]: [`TokenError`] and its one mapping onto the catalogue.
//! - [`jwk`]: reading auth's published keys; [`jwks`]: the [`JwksVerifier`] that caches them and
//!   fetches again (rate-limited) when a token names an unknown `kid`.
//! - [`bearer`](mod@bearer): the bearer token of gRPC metadata or HTTP headers.
//! - [`verified`]: the bounded cache of tokens whose signature verified (by digest, until
//!   expiry), so a signature is checked once per token.
//! - [`verdict`]: the one bounded cache of auth's verdicts; [`allowed`]: "is this user still
//!   allowed", asked of auth (`Authenticate`) within the revocation bound.
//! - [`authenticator`]: token → [`Caller`] (user, or service with scopes); [`layer`]: the tower
//!   layer and axum extractor that hand a handler its [`Caller`].
//! - [`token_source`]: the service's own token (client credentials, renewed before expiry);
//!   [`settings`]: the typed settings client (`reveal`, `audit`).
//!
//! - [`channel`]: lazily connected channels to auth and settings.
//!
//! Scope names live in the contract crate and are re-exported as [`scopes`]; so are the
//! catalogue error ([`ApiError`], [`Reason`]), the clock ([`Clock`], [`SystemClock`]) and the
//! secret types, so a service needs no other Latchkey crate.
//!
//! # Example: reveal a user's `FLY_API_TOKEN`
//!
//! A deployer service authenticates the user who asks for a deploy, then reveals that user's
//! Fly token with its own service token (its client needs `settings:reveal` in auth's
//! `LATCHKEY_SERVICE_CLIENTS`). The whole service, tested against real auth and settings, is
//! `examples/deployer`.
//!
//! ```no_run
//! use latchkey_client::{
//!     Authenticator, Caller, ClientCredentials, ExposeSecret, SecretString, ServiceTokenSource,
//!     SettingsClient, SystemClock, VerifyRules, channel, scopes,
//! };
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # async fn deploy() -> anyhow::Result<()> {
//! let auth = channel::lazy("http://127.0.0.1:50051")?;
//! let settings = channel::lazy("http://127.0.0.1:50052")?;
//! let clock = Arc::new(SystemClock);
//!
//! // Who is asking: the user's token, verified locally and confirmed with auth.
//! let rules = VerifyRules { issuer: "latchkey".into(), audience: "latchkey".into(), leeway: 30 };
//! let authn = Authenticator::new(auth.clone(), rules, Duration::from_secs(4), clock.clone());
//! let Caller::User(user_id) = authn.caller("the user's access token").await? else {
//!     anyhow::bail!("deploys are asked for by users");
//! };
//!
//! // The deployer's own token, and the user's Fly token through it.
//! let credentials = ClientCredentials {
//!     client_id: "deployer".into(),
//!     client_secret: SecretString::from(std::env::var("DEPLOYER_CLIENT_SECRET")?),
//!     scopes: vec![scopes::SETTINGS_REVEAL.into()],
//! };
//! let tokens = ServiceTokenSource::new(auth, credentials, clock);
//! let fly_token = SettingsClient::new(settings, tokens).reveal(&user_id, "FLY_API_TOKEN").await?;
//! println!("deploying with a token of {} characters", fly_token.expose_secret().len());
//! # Ok(())
//! # }
//! ```

pub mod allowed;
pub mod authenticator;
pub mod bearer;
pub mod caller;
pub mod channel;
pub mod claims;
pub mod error;
pub mod jwk;
pub mod jwks;
pub mod layer;
pub mod settings;
pub mod signature;
pub mod token_source;
pub mod verdict;
pub mod verified;
pub mod verify;

pub use allowed::StillAllowed;
pub use authenticator::Authenticator;
pub use bearer::{bearer, bearer_header};
pub use caller::Caller;
pub use claims::{IssuedClaims, Subject, VerifiedToken};
pub use error::{AuthnError, SecretHint, TokenError};
pub use jwk::{JwkSet, PublicKey};
pub use jwks::JwksVerifier;
pub use layer::AuthLayer;
pub use settings::{AuditPage, SettingsClient};
pub use token_source::{ClientCredentials, ServiceTokenSource};
pub use verdict::{Asking, Fresh, RenewalAnswer, Verdict, VerdictCache};
pub use verify::{KeyLookup, VerifyRules};

pub use latchkey_common::clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use latchkey_proto::{ApiError, Reason, scopes};
pub use secrecy::{ExposeSecret, SecretString};
