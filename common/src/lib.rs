//! Plumbing shared by the Latchkey services, and nothing of their domains:
//!
//! - [`aliases`]: one setting under several names (`AUTH_SECRET`, `NEXTAUTH_SECRET`, …) and
//!   the conflict when they disagree.
//! - [`config`]: the table of every setting with a typed handle per row, layered loading
//!   (defaults → `latchkey.toml` → `LATCHKEY_*` env, `…_FILE` for secrets), shared validators
//!   and validation problems with their fixes.
//! - [`secret`]: fingerprints and constant-time comparison of secrets, and the strength policy
//!   production holds them to.
//! - [`seal`]: AES-256-GCM sealing with associated data (signing keys, settings values).
//! - [`balance`]: gRPC channels balanced per request over every address a name resolves to.
//! - [`clock`]: time as an input, so expiry and rotation are testable without sleeping.
//! - [`db`]: connecting to SQLite or PostgreSQL, with credentials kept out of messages.
//! - [`hot_reads`]: the hottest single-key reads on connections sqlx does not ping after each query.
//! - [`breaker`]: the "database down" breaker that answers 503 at once during an outage.
//! - [`upstream`]: one deadline per request and the one reading of an upstream's gRPC status.
//! - [`telemetry`]: tracing setup and the per-request span with its request id.
//! - [`metrics`]: Prometheus metrics and the gRPC metrics layer.
//! - [`shutdown`]: one shutdown signal for SIGTERM/Ctrl-C: drain (not ready, still serving),
//!   then stop with a deadline.
//! - [`ratelimit`]: a token bucket per client address (IPv6 by /64), bounded in memory.
//! - [`grpc`]: the gRPC server kit: serve with health, reflection and shutdown; [`grpc::refuse`];
//!   named channel profiles.
//! - [`grpc_limits`]: load shedding and a per-peer credential-failure limit for gRPC servers.

pub mod aliases;
pub mod balance;
pub mod breaker;
pub mod clock;
pub mod config;
pub mod db;
pub mod grpc;
pub mod grpc_limits;
pub mod hot_reads;
pub mod metrics;
pub mod ratelimit;
pub mod seal;
pub mod secret;
pub mod shutdown;
pub mod telemetry;
pub mod upstream;

pub use secrecy::{ExposeSecret, SecretString};
