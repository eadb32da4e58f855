//! Configuration: one table ([`SETTINGS`]) naming every setting with a typed handle per row,
//! loaded in layers (defaults → underlay → `latchkey.toml` → environment) and validated by each
//! service into its own typed config, collecting one [`ConfigProblem`] per mistake (variable,
//! what is wrong, fix).
//!
//! - [`table`]: the rows, their handles (`SEAL_KEY`, `LEEWAY_SECS`, …) and [`Service`].
//! - [`loader`]: the layers, `…_FILE` secrets, aliases and their conflicts.
//! - `read`: typed accessors on [`Config`] (`get`, `secret`, `parsed`, `flag`, …).
//! - [`validate`]: listen addresses, upstream URLs and database URLs, shared by the services.
//! - [`problems`]: [`ConfigProblem`] and [`Problems`].
//! - [`docs`]: the lines `latchkey config` prints and the README table.
//! - [`fingerprint`]: the fingerprint each secret setting shows, keys digested as services record them.
//!
//! The secret-strength policy production applies lives beside the secret types, in
//! [`crate::secret::strength`].

pub mod docs;
pub mod fingerprint;
pub mod loader;
pub mod problems;
mod read;
pub mod table;
pub mod validate;

#[cfg(test)]
mod tests;

pub use docs::markdown_table;
pub use loader::{Config, Source, Underlay};
pub use problems::{ConfigProblem, Problems};
pub use table::*;
