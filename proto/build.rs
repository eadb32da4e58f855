//! Compiles the .proto contracts with protox (pure Rust, no system protoc) and writes the
//! file descriptor set that gRPC reflection serves.

use prost::Message;
use std::path::PathBuf;

/// The error details every Latchkey error carries (`google.rpc.ErrorInfo`, `BadRequest`,
/// `RetryInfo`): added to each service's reflection so stock clients (grpcurl) can decode them.
const ERROR_DETAILS: &str = "google/rpc/error_details.proto";

const PROTOS: &[&str] = &[
    "latchkey/auth/v1/auth.proto",
    "latchkey/settings/v1/settings.proto",
];

/// Messages holding a token, client secret or plaintext value.
const SECRET_BEARING: &[&str] = &[
    ".latchkey.auth.v1.AccessToken",
    ".latchkey.auth.v1.IssueServiceTokenRequest",
    ".latchkey.auth.v1.AuthenticateRequest",
    ".latchkey.auth.v1.AuthenticateResponse",
    ".latchkey.auth.v1.RefreshToken",
    ".latchkey.auth.v1.RefreshAccessTokenRequest",
    ".latchkey.settings.v1.SettingChange",
    ".latchkey.settings.v1.ImportDotenvRequest",
    ".latchkey.settings.v1.RevealSettingResponse",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=latchkey");
    println!("cargo:rerun-if-changed=google");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // One descriptor set per service, so each server's reflection lists only what it serves.
    for (proto, name) in PROTOS.iter().zip(["auth", "settings"]) {
        let set = protox::compile([proto, &ERROR_DETAILS], ["."])?;
        std::fs::write(
            out_dir.join(format!("{name}_descriptor.bin")),
            set.encode_to_vec(),
        )?;
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    tonic_prost_build::configure()
        // Messages that carry secrets get a hand-written, redacting Debug (src/redact.rs).
        .skip_debug(SECRET_BEARING)
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
