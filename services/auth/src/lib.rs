//! Latchkey auth: owns users and signing keys, issues and verifies tokens.
//!
//! - [`config`]: auth's typed, validated configuration.
//! - [`store`]: tables (users, identities, signing keys), their queries and migrations.
//! - [`email`]: the one email normaliser (NFKC, lower case; invisible, control and mixed-script
//!   look-alike characters refused).
//! - [`accounts`]: which user a sign-in (identity) or an email belongs to; linking by verified
//!   email; race-free first sign-ins.
//! - [`keys`]: key generation (Ed25519, P-256), sealing, the life cycle (standby, active,
//!   retired, removed) and the hot-swapped key ring; [`key_policy`]: algorithm and rotation
//!   settings; [`rotation`]: automatic rotation, one replica at a time under a database lease.
//! - [`tokens`]: signing, and the rules for the web app's tokens (pure, clock passed in); the
//!   verify-only rules, claims and refusals are latchkey-client's, shared with every verifier.
//! - [`authjs`]: the web app's Auth.js session tokens (JWE), keys derived from its secret.
//! - [`refresh`]: refresh tokens: rotation on use, reuse detection, families, grace window.
//! - [`service`]: the domain: sync, issue, authenticate, revoke, delete.
//! - [`error`]: domain errors and their mapping onto the catalogue.
//! - [`grpc`]: the `AuthService` adapter; [`purge`]: the call to settings on user deletion.
//! - [`admin`]: operator actions on users (`latchkey users …`).
//! - [`app`]: build, bind, serve, stop.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod authjs;
pub mod config;
pub mod email;
pub mod error;
pub mod grpc;
pub mod key_policy;
pub mod keys;
pub mod life_cycle;
pub mod purge;
pub mod refresh;
pub mod rotation;
pub mod service;
pub mod store;
pub mod tokens;
pub mod verified;

pub use app::{AuthApp, build};
pub use config::AuthConfig;
