//! Latchkey settings: each user's named secrets (API keys), encrypted at rest.
//!
//! - [`config`]: settings' typed, validated configuration and the master keys.
//! - [`crypto`]: sealing one value with associated data (user, name, key id), and masking.
//! - [`dotenv`]: the pure `.env` parser and writer (the README's grammar); [`import`] adapts it
//!   and plans an import against what is stored (pure: no database).
//! - [`budget`]: a request's deadline, and CPU-heavy work on the blocking pool within it.
//! - [`store`]: tables (values, reveal audit, key usage), every query over them, migrations.
//! - [`caller`]: who is calling (a user, or a service with scopes) and the scope checks.
//! - [`validate`]: the limits, and the checks of names, values and batches.
//! - [`service`]: the domain: list, merge, replace, import, delete, purge.
//! - [`reveal`]: plaintext for services, always audited first: reveal, export, the audit log.
//! - [`stored`]: opening a stored value with the key its row names (DATA_INTEGRITY otherwise).
//! - [`rotation`]: key status, the start-up key check and online re-encryption.
//! - [`keyring`]: the master keys in use, re-read from their file so a rotation needs no restart.
//! - [`declared`]: the schema applied: writes and imports checked, the list annotated, values
//!   generated, completeness per user.
//! - [`schema`]: the operator's declared settings: formats, required names, generated values.
//! - [`error`]: domain errors and their mapping onto the catalogue.
//! - [`authn`]: the caller from a bearer token (latchkey-client: local JWKS verification, auth's
//!   revocation answer within [`authn::ALLOWED_CACHE_SECS`]).
//! - [`grpc`]: the `SettingsService` adapter.
//! - [`app`]: build, bind, serve, stop.

pub mod app;
pub mod authn;
pub mod budget;
pub mod caller;
pub mod config;
pub mod crypto;
pub mod declared;
pub mod dotenv;
pub mod error;
pub mod grpc;
pub mod import;
pub mod keyring;
pub mod reveal;
pub mod rotation;
pub mod schema;
pub mod service;
pub mod store;
pub mod stored;
pub mod validate;

pub use app::{SettingsApp, build, build_on};
pub use config::SettingsConfig;
