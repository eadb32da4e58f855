//! The Settings page: static HTML, CSS and JS compiled into the binary (no build step, no
//! external network). The script is a separate file so the page's CSP forbids inline script.
//!
//! How the page gets its token: in production the embedding web app sends the user to
//! `https://GATEWAY/#token=<access token>` (its server obtained the token from
//! `POST /api/auth/token`). The page moves the token into `sessionStorage` and strips the
//! fragment from the address bar and history; fragments are never sent to servers or in
//! `Referer`. Under `latchkey dev` a "Sign in as dev user" button calls `POST /api/dev/session`.
//!
//! Renewal: a fragment `&renew=/api/latchkey/token` names the embedding app's token URL; the page
//! asks it (same origin, with the app's cookie) for a fresh token within a minute of expiry or on
//! `TOKEN_EXPIRED`, and retries the call once. A page opened with `#refresh_token=…` renews
//! through `POST /api/auth/refresh` instead (page/refresh.js), storing each rotated token. For that the app serves this page under its own
//! origin (e.g. `/latchkey/`, proxied to the gateway), which is why every URL in the page is
//! relative. See clients/js (`@latchkey/client/next`).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page's markup; `{{DEV}}` becomes `true` under `latchkey dev`.
pub const INDEX_HTML: &str = include_str!("page/index.html");
/// The page's behaviour.
pub const APP_JS: &str = include_str!("page/app.js");
/// The page's refresh-token hook (a page opened with `#refresh_token=…`); loaded before app.js.
pub const REFRESH_JS: &str = include_str!("page/refresh.js");
/// The page's look.
pub const APP_CSS: &str = include_str!("page/app.css");
/// The declared settings' form (built from `GET /api/settings/schema`).
pub const FORM_JS: &str = include_str!("page/form.js");

/// The page's Content-Security-Policy: only same-origin script, style and fetches; never framed.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The markup for this mode.
pub fn index_html(dev: bool) -> String {
    INDEX_HTML.replace("{{DEV}}", if dev { "true" } else { "false" })
}

/// The page with its security headers.
pub fn html_response(html: String) -> Response {
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A static asset.
pub fn asset_response(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
