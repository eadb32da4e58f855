//! The gRPC server kit auth and settings share, so both serve, refuse and connect one way:
//!
//! - [`server`]: serve one service with `grpc.health.v1`, reflection, the common layers (request
//!   id, metrics, version, shedding, credential-failure limits, database breaker) and graceful
//!   shutdown.
//! - [`refusal`]: [`refuse`] — the one place a domain error becomes a `tonic::Status` (logged,
//!   counted, converted through the catalogue) — and [`request_id`].
//! - [`channel`]: named channel profiles (connect and request timeouts) for calls to another
//!   service.

pub mod channel;
pub mod direct;
pub mod refusal;
pub mod server;

pub use channel::ChannelProfile;
pub use refusal::{Refusal, refuse, request_id};
pub use server::{CredentialChecks, GrpcServer, reflection_services};
