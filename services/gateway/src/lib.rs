//! Latchkey gateway: the browser's and the web app's only door. It translates the REST/JSON
//! contract (DESIGN.md §4a) into gRPC calls to auth and settings and answers every failure as
//! `application/problem+json` with the catalogue reason.
//!
//! - [`config`]: the gateway's typed, validated configuration.
//! - [`upstream`]: tonic channels to auth and settings (lazy, balanced, short connect timeout).
//! - [`problem`]: the one mapping from a gRPC status or local error to an HTTP problem response.
//! - [`limits`]: per-IP rate limiters and the request body limit.
//! - [`authn`]: bearer verification through `Auth.Authenticate`, cached for at most 5 s.
//! - [`routes`]: the handlers; [`router`] puts them together with CORS and request ids.
//! - [`openapi`]: the OpenAPI 3.1 document served at `/openapi.json`.
//! - [`page`]: the Settings page (HTML, CSS and JS embedded in the binary).
//! - [`app`]: build, bind, serve, stop.

pub mod app;
pub mod authn;
pub mod config;
pub mod limits;
pub mod openapi;
pub mod page;
pub mod problem;
pub mod routes;
pub mod upstream;

pub use app::{GatewayApp, build};
pub use config::GatewayConfig;
pub use routes::{GatewayState, router};
