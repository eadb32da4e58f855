//! Operations and documents: liveness, readiness (both upstreams serving, not draining), the
//! OpenAPI document, and the Settings page with its assets.

use super::problems::ReadyProblems;
use crate::forward::{AUTH, SETTINGS, budget};
use crate::problem::HttpProblem;
use crate::state::GatewayState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use latchkey_common::grpc::direct::DirectChannel as Channel;
use latchkey_proto::{ApiError, Reason};
use serde::Serialize;
use utoipa::ToSchema;

/// The liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    /// the gateway's Latchkey version
    version: &'static str,
}

/// The readiness answer: each upstream's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    auth: &'static str,
    settings: &'static str,
    status: &'static str,
}

/// Liveness.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    operation_id = "healthz",
    security(),
    responses((status = 200, description = "alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: latchkey_common::telemetry::VERSION,
    })
}

/// `serving`, `not_serving` or `unreachable`, within [`budget::HEALTH`].
async fn upstream_health(channel: Channel) -> &'static str {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(budget::HEALTH);
    let mut client = HealthClient::new(channel);
    match tokio::time::timeout(budget::HEALTH, client.check(request)).await {
        Ok(Ok(response)) if response.get_ref().status == 1 => "serving",
        Ok(Ok(_)) => "not_serving",
        _ => "unreachable",
    }
}

/// Readiness: both upstreams serving.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    operation_id = "readyz",
    security(),
    responses((status = 200, description = "ready", body = Ready), ReadyProblems)
)]
pub async fn readyz(State(state): State<GatewayState>) -> Result<Json<Ready>, HttpProblem> {
    if state.is_draining() {
        return Err(ApiError::new(
            Reason::UpstreamUnavailable,
            "This gateway instance is shutting down; send requests to another instance.",
        )
        .with_metadata("state", "draining")
        .into());
    }
    let (auth, settings) = tokio::join!(
        upstream_health(state.inner.auth_channel.clone()),
        upstream_health(state.inner.settings_channel.clone())
    );
    if auth != "serving" {
        return Err(ApiError::unavailable(AUTH)
            .with_metadata("state", auth)
            .into());
    }
    if settings != "serving" {
        return Err(ApiError::unavailable(SETTINGS)
            .with_metadata("state", settings)
            .into());
    }
    Ok(Json(Ready {
        auth,
        settings,
        status: "ready",
    }))
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    operation_id = "openapi",
    security(),
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_text(),
    )
}

/// The Settings page.
#[utoipa::path(
    get,
    path = "/",
    tag = "page",
    operation_id = "settingsPage",
    security(),
    responses((status = 200, description = "HTML", body = String, content_type = "text/html"))
)]
pub async fn page(State(state): State<GatewayState>) -> Response {
    crate::page::html_response(state.inner.page.clone())
}

/// Content type of the page's scripts.
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The Settings page's script.
#[utoipa::path(
    get,
    path = "/assets/app.js",
    tag = "page",
    operation_id = "settingsPageScript",
    security(),
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript"))
)]
pub async fn page_js() -> Response {
    crate::page::asset_response(crate::page::APP_JS, JAVASCRIPT)
}

/// The Settings page's refresh-token hook (page/refresh.js).
#[utoipa::path(
    get,
    path = "/assets/refresh.js",
    tag = "page",
    operation_id = "settingsPageRefreshScript",
    security(),
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript"))
)]
pub async fn page_refresh_js() -> Response {
    crate::page::asset_response(crate::page::REFRESH_JS, JAVASCRIPT)
}

/// The Settings page's style sheet.
#[utoipa::path(
    get,
    path = "/assets/app.css",
    tag = "page",
    operation_id = "settingsPageStyle",
    security(),
    responses((status = 200, description = "CSS", body = String, content_type = "text/css"))
)]
pub async fn page_css() -> Response {
    crate::page::asset_response(crate::page::APP_CSS, "text/css; charset=utf-8")
}

/// The Settings page's form of declared settings.
#[utoipa::path(
    get,
    path = "/assets/form.js",
    tag = "page",
    operation_id = "settingsPageFormScript",
    security(),
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript"))
)]
pub async fn page_form_js() -> Response {
    crate::page::asset_response(crate::page::FORM_JS, JAVASCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed bodies serialise exactly as the `json!` values they replaced.
    #[test]
    fn bodies_keep_their_wire_format() {
        let ready = Ready {
            auth: "serving",
            settings: "serving",
            status: "ready",
        };
        let before =
            serde_json::json!({ "status": "ready", "auth": "serving", "settings": "serving" });
        assert_eq!(serde_json::to_string(&ready).unwrap(), before.to_string());
        let health = Health {
            status: "ok",
            version: "1.2.3",
        };
        let before = serde_json::json!({ "status": "ok", "version": "1.2.3" });
        assert_eq!(serde_json::to_string(&health).unwrap(), before.to_string());
    }
}
