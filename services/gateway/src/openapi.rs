//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the code: the router
//! registers each handler with its `#[utoipa::path]` operation ([`crate::router::api`]), and
//! the schemas are the `ToSchema` of the very types the handlers decode and serialise. This
//! module adds what is not a route: the title, the security schemes, the `Problem` schema, and
//! two JSON Schema rules no derive states (provider and subject together; exactly one of
//! `user_id` and `email`).

use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document without its paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey gateway",
        description = "REST/JSON door to Latchkey auth and settings. Every error is application/problem+json with a stable `code` (see docs/TROUBLESHOOTING.md)."
    ),
    servers((url = "/")),
    components(schemas(
        crate::problem::ProblemBody,
        crate::routes::settings::SettingName,
        crate::routes::auth::DevHeader
    )),
    modifiers(&SecuritySchemes)
)]
struct Base;

/// The document [`crate::router::api`] adds its operations to.
pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

/// `bearer` (an access token), and the web app's sync secret under either header name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        let header = |name: &str| SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(name)));
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme("syncSecret", header("X-Latchkey-Sync-Secret"));
        components.add_security_scheme("authSecret", header("X-Auth-Secret"));
    }
}

/// The document served at `/openapi.json`: every route, dev ones included.
pub fn document() -> Value {
    let api = crate::router::api(true).into_openapi();
    let mut doc = serde_json::to_value(api).unwrap_or_default();
    add_rules(&mut doc);
    doc
}

/// [`document`] as served, built once.
pub fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| document().to_string())
}

/// The rules between fields of a request body, which the decoding handler enforces and no
/// derive describes.
fn add_rules(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    schemas["SyncUserRequest"]["dependentRequired"] =
        json!({ "provider": ["subject"], "subject": ["provider"] });
    schemas["TokenRequest"]["oneOf"] =
        json!([{ "required": ["user_id"] }, { "required": ["email"] }]);
}

/// The methods the document lists for a concrete path (`/api/settings/X` matches
/// `/api/settings/{name}`), upper case, for the `Allow` header of a 405.
pub fn methods_of(path: &str) -> Vec<String> {
    static DOC: OnceLock<Value> = OnceLock::new();
    let doc = DOC.get_or_init(document);
    let Some(paths) = doc["paths"].as_object() else {
        return Vec::new();
    };
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(t, s)| t.starts_with('{') || t == s)
    };
    let exact = paths.keys().find(|t| t.as_str() == path);
    let template = exact.or_else(|| paths.keys().find(|t| matches(t)));
    let Some(item) = template.and_then(|t| paths[t].as_object()) else {
        return Vec::new();
    };
    item.keys()
        .filter(|key| !matches!(key.as_str(), "parameters" | "summary" | "description"))
        .map(|m| m.to_ascii_uppercase())
        .collect()
}
