//! Latchkey gateway: the browser's and the web app's only door. It translates the REST/JSON
//! contract (docs/ARCHITECTURE.md §3) into gRPC calls to auth and settings and answers every
//! failure as `application/problem+json` with the catalogue reason.
//!
//! - [`config`]: the gateway's typed, validated configuration.
//! - [`upstream`]: tonic channels to auth and settings (lazy, balanced, short connect timeout).
//! - [`problem`]: the one mapping from a gRPC status or local error to an HTTP problem response.
//! - [`client_ip`]: the client address behind trusted proxies (`LATCHKEY_TRUSTED_PROXIES`).
//! - [`limits`]: per-IP rate limiters, recently accepted sync secrets, the request body limit.
//! - [`dev`]: `latchkey dev`'s loopback-Host and same-origin guards.
//! - [`authn`]: the verdict cache for bearer verification through `Auth.Authenticate`
//!   (latchkey-client's), reused for at most 5 s.
//! - [`state`]: what every handler shares (upstream clients, caches, limits).
//! - [`middleware`]: request id and client IP, problem rendering, security headers.
//! - [`caller`]: who is calling: a bearer token through `Auth.Authenticate`, or the sync secret.
//! - [`forward`]: the gRPC request a route sends: deadline, allowed metadata, credentials.
//! - [`routes`]: the handlers and their typed bodies, by area (auth, settings, ops).
//! - [`router`]: every route registered with its OpenAPI operation, fallbacks, CORS.
//! - [`openapi`]: the OpenAPI 3.1 document served at `/openapi.json`, generated from the code.
//! - [`page`]: the Settings page (HTML, CSS and JS embedded in the binary).
//! - [`server`]: the accept loop: connection cap, header and idle timeouts, graceful drain.
//! - [`app`]: build, bind, serve, stop.

pub mod app;
pub mod authn;
pub mod caller;
pub mod client_ip;
pub mod config;
pub mod dev;
pub mod forward;
pub mod limits;
pub mod middleware;
pub mod openapi;
pub mod page;
pub mod problem;
pub mod router;
pub mod routes;
pub mod server;
pub mod state;
pub mod upstream;

pub use app::{GatewayApp, build};
pub use config::{GatewayConfig, HttpLimits};
pub use router::router;
pub use state::GatewayState;
