//! The router: every route, registered once with its OpenAPI operation (so the document at
//! `/openapi.json` lists exactly what is mounted), the fallbacks for unknown routes and
//! methods, the request-context layer, the dev Host check and CORS.

use crate::problem::HttpProblem;
use crate::routes::{auth, declared, ops, settings};
use crate::state::GatewayState;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use latchkey_proto::{ApiError, Reason};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with its operation; `dev` adds `POST /api/dev/session` (`latchkey dev` only).
pub fn api(dev: bool) -> OpenApiRouter<GatewayState> {
    let api = OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(auth::sync_user))
        .routes(routes!(auth::issue_token))
        .routes(routes!(auth::get_me, auth::delete_me))
        .routes(routes!(auth::revoke_me))
        .routes(routes!(auth::jwks))
        .routes(routes!(
            settings::list_settings,
            settings::patch_settings,
            settings::replace_settings
        ))
        .routes(routes!(settings::import_dotenv))
        .routes(routes!(settings::delete_setting))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::openapi))
        .routes(routes!(ops::page))
        .routes(routes!(ops::page_js))
        .routes(routes!(ops::page_css))
        .routes(routes!(declared::get_schema))
        .routes(routes!(declared::generate_setting))
        .routes(routes!(ops::page_form_js))
        .routes(routes!(crate::routes::refresh::refresh))
        .routes(routes!(ops::page_refresh_js))
        .routes(routes!(crate::routes::refresh::start_refresh));
    if dev {
        api.routes(routes!(auth::dev_session))
    } else {
        api
    }
}

/// Every route, CORS, request ids, security headers, problem+json for every failure.
pub fn router(state: GatewayState) -> Router {
    let (api, _) = api(state.dev_mode()).split_for_parts();
    let cors = cors_layer(&state.inner.cors_origins);
    let dev_host_check = state.dev_mode().then(|| {
        axum::middleware::from_fn_with_state(state.inner.dev_hosts.clone(), crate::dev::check_host)
    });
    api.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower::util::option_layer(dev_host_check))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::request_context,
        ))
        .layer(tower::util::option_layer(cors))
        .with_state(state)
}

/// CORS for the configured origins (none: no CORS layer, browsers keep the same-origin rule).
fn cors_layer(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

async fn not_found(method: Method, uri: http::Uri) -> HttpProblem {
    ApiError::new(
        Reason::NotFound,
        format!(
            "There is no route {method} {}; /openapi.json lists every route.",
            uri.path()
        ),
    )
    .into()
}

async fn method_not_allowed(method: Method, uri: http::Uri) -> Response {
    let allowed = crate::openapi::methods_of(uri.path());
    let mut response = HttpProblem(ApiError::new(
        Reason::MethodNotAllowed,
        format!(
            "{} does not accept {method}; it accepts {}. /openapi.json lists every route.",
            uri.path(),
            allowed.join(", ")
        ),
    ))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}
