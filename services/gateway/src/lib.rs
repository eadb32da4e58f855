//! Latchkey gateway: the browser's and the web app's only door. It translates the REST/JSON
//! contract (DESIGN.md §4a) into gRPC calls to auth and settings and answers every failure as
//! `application/problem+json` with the catalogue reason.
//!
//! - [`config`]: the gateway's typed, validated configuration.
//! - [`upstream`]: tonic channels to auth and settings (lazy, balanced, short connect timeout).
//! - [`problem`]: the one mapping from a gRPC status or local error to an HTTP problem response.
//! - [`client_ip`]: the client address behind trusted proxies (`LATCHKEY_TRUSTED_PROXIES`).
//! - [`limits`]: per-IP rate limiters, recently accepted sync secrets, the request body limit.
//! - [`dev`]: `latchkey dev`'s loopback-Host and same-origin guards.
//! - [`authn`]: the verdict cache for bearer verification through `Auth.Authenticate`
//!   (latchkey-client's), reused for at most 5 s.
//! - [`routes`]: the handlers; [`router`] puts them together with CORS and request ids.
//! - [`openapi`]: the OpenAPI 3.1 document served at `/openapi.json`.
//! - [`page`]: the Settings page (HTML, CSS and JS embedded in the binary).
//! - [`server`]: the accept loop: connection cap, header and idle timeouts, graceful drain.
//! - [`app`]: build, bind, serve, stop.

pub mod app;
pub mod authn;
pub mod client_ip;
pub mod config;
pub mod dev;
pub mod limits;
pub mod openapi;
pub mod page;
pub mod problem;
pub mod routes;
pub mod server;
pub mod upstream;

pub use app::{GatewayApp, build};
pub use config::{GatewayConfig, HttpLimits};
pub use routes::{GatewayState, router};
