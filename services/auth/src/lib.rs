//! Latchkey auth: owns users and signing keys, issues and verifies tokens.
//!
//! - [`config`]: auth's typed, validated configuration.
//! - [`store`]: tables (users, identities, signing keys), their queries and migrations.
//! - [`email`]: the one email normaliser (NFKC, lower case; invisible, control and mixed-script
//!   look-alike characters refused).
//! - [`accounts`]: which user a sign-in (identity) or an email belongs to; linking by verified
//!   email; race-free first sign-ins.
//! - [`keys`]: Ed25519 key generation, sealing, rotation and the hot-swapped key ring.
//! - [`tokens`]: token claims and every verification rule (pure, clock passed in).
//! - [`service`]: the domain: sync, issue, authenticate, revoke, delete.
//! - [`error`]: domain errors and their mapping onto the catalogue.
//! - [`grpc`]: the `AuthService` adapter; [`purge`]: the call to settings on user deletion.
//! - [`remote`]: the JWKS-caching verifier settings and the gateway use.
//! - [`admin`]: operator actions on users (`latchkey users …`).
//! - [`app`]: build, bind, serve, stop.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod config;
pub mod email;
pub mod error;
pub mod grpc;
pub mod keys;
pub mod purge;
pub mod remote;
pub mod service;
pub mod store;
pub mod tokens;

pub use app::{AuthApp, build};
pub use config::AuthConfig;
