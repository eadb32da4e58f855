//! Latchkey's wire contracts: the code generated from `proto/latchkey/**.proto`, the file
//! descriptor set for gRPC reflection, and the error catalogue every transport maps from.
//!
//! - [`auth::v1`] / [`settings::v1`]: generated messages, clients and servers.
//! - [`error`]: the one table of error reasons with their gRPC code and HTTP status.
//! - [`scopes`]: the scope names service tokens carry.

#![allow(clippy::derive_partial_eq_without_eq)]

pub mod error;
mod redact;
pub mod scopes;

pub use error::{ApiError, Reason, Violation, fit_violations};

/// Generated code for `latchkey.auth.v1`.
pub mod auth {
    /// Version 1 of the auth contract.
    pub mod v1 {
        tonic::include_proto!("latchkey.auth.v1");
    }
}

/// Generated code for `latchkey.settings.v1`.
pub mod settings {
    /// Version 1 of the settings contract.
    pub mod v1 {
        tonic::include_proto!("latchkey.settings.v1");
    }
}

/// Generated code for the vendored `google.api` annotations (only referenced by the contracts).
pub mod google {
    /// `google.api` messages.
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

/// Encoded `FileDescriptorSet` of the auth contract (with its imports), for auth's reflection.
pub const AUTH_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/auth_descriptor.bin"));

/// Encoded `FileDescriptorSet` of the settings contract (with its imports), for settings' reflection.
pub const SETTINGS_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/settings_descriptor.bin"));

/// Metadata key carrying the sync secret on `SyncUser` and `IssueToken`.
pub const SYNC_SECRET_METADATA: &str = "x-latchkey-sync-secret";
/// Metadata key carrying the request id end to end.
pub const REQUEST_ID_METADATA: &str = "x-request-id";
