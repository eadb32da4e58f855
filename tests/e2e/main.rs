//! The end-to-end suite as one test binary: real services started in-process on port 0 (or the
//! `latchkey` binary as an operator runs it), one module per area, on SQLite and PostgreSQL.
//! One binary links the workspace once instead of once per file.
//!
//! Two suites keep processes of their own: `tests/process` (tests that install the global
//! tracing subscriber to read logs and spans, which would see and disturb every other test
//! here) and `tests/faults` (long scenarios on real processes, one at a time).

#[macro_use]
mod support;

mod auth_grpc;
mod auth_identities;
mod authjs_interop;
mod cli;
mod declared_settings;
mod deployer;
mod doctor;
mod gateway_abuse;
mod gateway_auth;
mod gateway_browser;
mod gateway_deadlines;
mod gateway_dev;
mod gateway_identities;
mod gateway_settings;
mod grpc_limits;
mod outside_clients;
mod refresh_tokens;
mod replicas;
mod seal_keys;
mod settings_grpc;
mod settings_probe;
mod shutdown;
mod signing_keys;
mod web_app_secret;
