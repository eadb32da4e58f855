//! The settings routes: the caller's settings, masked; merge (PATCH) and replace (PUT); a pasted
//! `.env` imported or previewed; one setting deleted. Bodies are typed; their field names and
//! presence are the REST contract (fields serialise in alphabetical order, as they always have).

use super::parse_json;
use super::problems::{BearerBodyProblems, BearerLookupProblems, BearerProblems};
use crate::caller::authenticate;
use crate::forward::{SETTINGS, budget, grpc_request, with_bearer};
use crate::limits::read_body;
use crate::middleware::Ctx;
use crate::problem::{HttpProblem, from_grpc};
use crate::state::GatewayState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Extension, Json};
use latchkey_common::upstream::retry_idempotent;
use latchkey_proto::settings::v1 as settings_pb;
use latchkey_proto::{ApiError, Violation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// Longest value settings stores, in bytes; the document states it as `maxLength` (characters),
/// an upper bound that multi-byte text reaches sooner.
const MAX_VALUE: usize = 16 * 1024;
/// Most settings one user holds.
const MAX_SETTINGS: usize = 200;

/// Longest setting name, in characters.
const MAX_NAME: usize = 128;

/// A setting's name in the document: an environment variable name. Settings checks names; the
/// gateway passes them on as strings.
pub struct SettingName;

impl SettingName {
    fn rules() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$"))
            .max_length(Some(MAX_NAME))
    }
}

impl PartialSchema for SettingName {
    fn schema() -> RefOr<Schema> {
        Self::rules().into()
    }
}

impl ToSchema for SettingName {}

/// `{"settings": {NAME: value or null}}`: PATCH sets each value and deletes each null; PUT makes
/// the set exactly the non-null entries.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[schema(schema_with = change_map)]
    settings: BTreeMap<String, Option<String>>,
}

/// The schema of the `settings` map: setting names to a value or null, within the limits.
fn change_map() -> Schema {
    let value = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(MAX_VALUE));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(MAX_SETTINGS))
        .property_names(Some(SettingName::rules()))
        .additional_properties(Some(value))
        .into()
}

const SETTINGS_EXAMPLE: &str = r#"{"settings": {"FLY_API_TOKEN": "fo1_…", "OLD_KEY": null}}"#;

/// A stored setting as the caller may see it: never the value.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaskedSetting {
    length: i64,
    /// at most the last four characters; empty for values shorter than 12
    masked: String,
    #[schema(value_type = SettingName)]
    name: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<settings_pb::MaskedSetting> for MaskedSetting {
    fn from(setting: settings_pb::MaskedSetting) -> Self {
        MaskedSetting {
            length: setting.length,
            masked: setting.masked,
            name: setting.name,
            updated_at: setting.updated_at,
        }
    }
}

fn masked(settings: Vec<settings_pb::MaskedSetting>) -> Vec<MaskedSetting> {
    settings.into_iter().map(MaskedSetting::from).collect()
}

/// The caller's settings, masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsList {
    settings: Vec<MaskedSetting>,
}

/// A stored setting as the list shows it: masked, and what the declared settings say of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedSetting {
    /// the declared settings name it (GET /api/settings/schema)
    declared: bool,
    length: i64,
    /// at most the last four characters; empty for values shorter than 12
    masked: String,
    #[schema(value_type = SettingName)]
    name: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// the value fits the declared settings (always true for a name they do not constrain)
    valid: bool,
}

/// The caller's settings, masked, and the required declared settings not set yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsListing {
    /// required declared settings not set yet
    #[schema(value_type = Vec<SettingName>)]
    missing: Vec<String>,
    settings: Vec<ListedSetting>,
}

impl From<settings_pb::ListSettingsResponse> for SettingsListing {
    fn from(response: settings_pb::ListSettingsResponse) -> Self {
        SettingsListing {
            missing: response.missing,
            settings: response
                .settings
                .into_iter()
                .map(|s| ListedSetting {
                    declared: s.declared.unwrap_or(false),
                    length: s.length,
                    masked: s.masked,
                    name: s.name,
                    updated_at: s.updated_at,
                    valid: s.valid.unwrap_or(true),
                })
                .collect(),
        }
    }
}

/// How an import treats stored settings the file does not name.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    /// keep them
    Merge,
    /// delete them
    Replace,
}

/// The JSON form of an import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    dotenv: String,
    #[serde(default)]
    #[schema(default = "merge", nullable = false)]
    mode: Option<ImportMode>,
    #[serde(default)]
    #[schema(default = false)]
    dry_run: bool,
}

/// The query of a `text/plain` import (with a JSON body, both go in the body).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// text/plain bodies only
    #[serde(default)]
    #[param(nullable = false)]
    mode: Option<ImportMode>,
    /// text/plain bodies only
    #[serde(default)]
    #[param(nullable = false)]
    dry_run: Option<bool>,
}

/// A line of the `.env` that was skipped or deserves a look.
#[derive(Debug, Serialize, ToSchema)]
pub struct DotenvWarning {
    line: i64,
    message: String,
    name: String,
}

/// What an import applied, or (dry run) would apply.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    added: Vec<String>,
    applied: bool,
    /// stored names the file sets with another value; a dry run compares no values and lists
    /// every stored name the file sets (would be replaced)
    changed: Vec<String>,
    removed: Vec<String>,
    settings: Vec<MaskedSetting>,
    /// stored names whose value already equals the file's; always empty for a dry run
    unchanged: Vec<String>,
    warnings: Vec<DotenvWarning>,
}

impl From<settings_pb::ImportDotenvResponse> for ImportResult {
    fn from(response: settings_pb::ImportDotenvResponse) -> Self {
        let warnings = response
            .warnings
            .into_iter()
            .map(|w| DotenvWarning {
                line: w.line,
                message: w.message,
                name: w.name,
            })
            .collect();
        ImportResult {
            added: response.added,
            applied: response.applied,
            changed: response.changed,
            removed: response.removed,
            settings: masked(response.settings),
            unchanged: response.unchanged,
            warnings,
        }
    }
}

/// The user's settings, masked.
#[utoipa::path(
    get,
    path = "/api/settings",
    tag = "settings",
    operation_id = "listSettings",
    security(("bearer" = [])),
    responses((status = 200, description = "masked settings, and the required ones missing", body = SettingsListing), BearerProblems)
)]
pub async fn list_settings(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<SettingsListing>, HttpProblem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let settings = retry_idempotent(&ctx.deadline(budget::READ), || {
        let mut client = state.settings();
        let request = with_bearer(
            grpc_request(settings_pb::ListSettingsRequest {}, &ctx, budget::READ),
            &token,
        );
        async move { client.list_settings(request).await }
    })
    .await
    .map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::READ)))?
    .into_inner();
    Ok(Json(settings.into()))
}

/// The body's entries, nulls included: settings checks every name (a PUT with a bad name and a
/// null value is still a bad request) and treats a null in a PUT as absent.
async fn changes_from(
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<settings_pb::SettingChange>, HttpProblem> {
    let bytes = read_body(headers, body).await?;
    Ok(setting_changes(&bytes)?)
}

/// A PATCH or PUT body as the RPC's changes (shared with [`super::decode_body`]).
pub(crate) fn setting_changes(bytes: &Bytes) -> Result<Vec<settings_pb::SettingChange>, ApiError> {
    let body: SettingsChange = parse_json(bytes, SETTINGS_EXAMPLE)?;
    Ok(body
        .settings
        .into_iter()
        .map(|(name, value)| settings_pb::SettingChange { name, value })
        .collect())
}

/// Merge: a value sets, null deletes; atomic.
#[utoipa::path(
    patch,
    path = "/api/settings",
    tag = "settings",
    operation_id = "patchSettings",
    security(("bearer" = [])),
    request_body(content = SettingsChange, example = json!({"settings": {"FLY_API_TOKEN": "fo1_abcdefghijklmnop", "OLD_KEY": null}})),
    responses((status = 200, description = "the new list", body = SettingsList), BearerBodyProblems)
)]
pub async fn patch_settings(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SettingsList>, HttpProblem> {
    write_settings(&state, &ctx, &headers, body, WriteMode::Merge).await
}

/// Replace the whole set; atomic.
#[utoipa::path(
    put,
    path = "/api/settings",
    tag = "settings",
    operation_id = "replaceSettings",
    security(("bearer" = [])),
    request_body(content = SettingsChange, example = json!({"settings": {"FLY_API_TOKEN": "fo1_abcdefghijklmnop"}})),
    responses((status = 200, description = "the new list", body = SettingsList), BearerBodyProblems)
)]
pub async fn replace_settings(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SettingsList>, HttpProblem> {
    write_settings(&state, &ctx, &headers, body, WriteMode::Replace).await
}

/// PATCH merges (null deletes), PUT replaces the whole set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    Merge,
    Replace,
}

/// The shared body of PATCH and PUT /api/settings: authenticate, decode, one gRPC call.
async fn write_settings(
    state: &GatewayState,
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Body,
    mode: WriteMode,
) -> Result<Json<SettingsList>, HttpProblem> {
    let token = authenticate(state, headers, ctx).await?;
    let settings = changes_from(headers, body).await?;
    let mut client = state.settings();
    let answer = match mode {
        WriteMode::Merge => {
            let message = settings_pb::PatchSettingsRequest { settings };
            let request = with_bearer(grpc_request(message, ctx, budget::WRITE), &token);
            client
                .patch_settings(request)
                .await
                .map(|r| r.into_inner().settings)
        }
        WriteMode::Replace => {
            let message = settings_pb::ReplaceSettingsRequest { settings };
            let request = with_bearer(grpc_request(message, ctx, budget::WRITE), &token);
            client
                .replace_settings(request)
                .await
                .map(|r| r.into_inner().settings)
        }
    };
    let settings = answer.map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::WRITE)))?;
    Ok(Json(SettingsList {
        settings: masked(settings),
    }))
}

/// The query string of an import, checked whatever the body, so a wrong `?mode=` never passes
/// unnoticed.
fn import_query(uri: &http::Uri) -> Result<ImportQuery, ApiError> {
    if uri.query().is_none() {
        return Ok(ImportQuery::default());
    }
    axum::extract::Query::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| {
            ApiError::invalid(
                format!(
                    "The query string is invalid: {}. Use ?mode=merge|replace&dry_run=true|false.",
                    e.body_text()
                ),
                vec![Violation {
                    field: "query".into(),
                    description: e.body_text(),
                }],
            )
        })
}

/// The import request from either form: JSON `{dotenv, mode, dry_run}`, or the `.env` itself as
/// `text/plain` with `?mode=replace&dry_run=true`.
pub(crate) fn import_request(
    headers: &HeaderMap,
    uri: &http::Uri,
    bytes: &Bytes,
) -> Result<settings_pb::ImportDotenvRequest, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = content_type == "application/json" || content_type.ends_with("+json");
    let is_text = content_type.starts_with("text/") || content_type == "application/octet-stream";
    let query = import_query(uri)?;
    let (dotenv, mode, dry_run) = if is_json {
        if query.mode.is_some() || query.dry_run.is_some() {
            return Err(ApiError::invalid(
                "With a JSON body, mode and dry_run go in the body, not in the query string.",
                vec![Violation {
                    field: "query".into(),
                    description: "mode and dry_run apply to text/plain bodies only".into(),
                }],
            ));
        }
        let body: ImportRequest = parse_json(
            bytes,
            r#"{"dotenv": "FLY_API_TOKEN=fo1_…\n", "mode": "merge", "dry_run": true}"#,
        )?;
        (body.dotenv, body.mode, body.dry_run)
    } else if is_text {
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
            ApiError::invalid(
                "The .env is not valid UTF-8; save it as UTF-8 and paste it again.",
                vec![Violation {
                    field: "body".into(),
                    description: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
                }],
            )
        })?;
        (text, query.mode, query.dry_run.unwrap_or(false))
    } else {
        return Err(ApiError::invalid(
            format!(
                "Content-Type `{content_type}` is not accepted here; send the .env as text/plain, or JSON {{\"dotenv\": …}} as application/json."
            ),
            vec![Violation {
                field: "content-type".into(),
                description: "expected text/plain or application/json".into(),
            }],
        ));
    };
    let mode = match mode {
        Some(ImportMode::Replace) => settings_pb::ImportMode::Replace,
        Some(ImportMode::Merge) | None => settings_pb::ImportMode::Merge,
    };
    Ok(settings_pb::ImportDotenvRequest {
        dotenv,
        mode: mode as i32,
        dry_run,
    })
}

/// Import a pasted .env (merge or replace), or preview it with dry_run.
#[utoipa::path(
    post,
    path = "/api/settings/import",
    tag = "settings",
    operation_id = "importDotenv",
    security(("bearer" = [])),
    params(ImportQuery),
    request_body(content(
        (ImportRequest = "application/json", example = json!({"dotenv": "FLY_API_TOKEN=fo1_abcdefghijklmnop\nexport OPENROUTER_API_KEY=\"sk-or-v1-0123\"\n", "mode": "merge", "dry_run": true})),
        (String = "text/plain", example = json!("FLY_API_TOKEN=fo1_abcdefghijklmnop\n"))
    )),
    responses((status = 200, description = "what was (or would be) applied", body = ImportResult), BearerBodyProblems)
)]
pub async fn import_dotenv(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    uri: http::Uri,
    body: Body,
) -> Result<Json<ImportResult>, HttpProblem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let bytes = read_body(&headers, body).await?;
    let message = import_request(&headers, &uri, &bytes)?;
    let request = with_bearer(grpc_request(message, &ctx, budget::IMPORT), &token);
    let response = state
        .settings()
        .import_dotenv(request)
        .await
        .map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::IMPORT)))?
        .into_inner();
    Ok(Json(response.into()))
}

/// Delete one setting.
#[utoipa::path(
    delete,
    path = "/api/settings/{name}",
    tag = "settings",
    operation_id = "deleteSetting",
    security(("bearer" = [])),
    params(("name" = SettingName, Path)),
    responses((status = 204, description = "deleted"), BearerLookupProblems)
)]
pub async fn delete_setting(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, HttpProblem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let Path(name) = name.map_err(|e| {
        ApiError::invalid(
            "The setting name in the path is not valid.",
            vec![Violation {
                field: "name".into(),
                description: e.body_text(),
            }],
        )
    })?;
    let message = settings_pb::DeleteSettingRequest { name };
    let request = with_bearer(grpc_request(message, &ctx, budget::WRITE), &token);
    state
        .settings()
        .delete_setting(request)
        .await
        .map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::WRITE)))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting() -> settings_pb::MaskedSetting {
        settings_pb::MaskedSetting {
            name: "FLY_API_TOKEN".into(),
            masked: "wxyz".into(),
            length: 24,
            updated_at: "2026-01-01T00:00:00Z".into(),
            declared: None,
            valid: None,
        }
    }

    /// The typed bodies serialise exactly as the `json!` values they replaced.
    #[test]
    fn bodies_keep_their_wire_format() {
        let s = setting();
        let masked_before = serde_json::json!({
            "name": s.name, "masked": s.masked, "length": s.length, "updated_at": s.updated_at,
        });
        let list = SettingsList {
            settings: masked(vec![setting()]),
        };
        let before = serde_json::json!({ "settings": [masked_before.clone()] });
        assert_eq!(serde_json::to_string(&list).unwrap(), before.to_string());

        let response = settings_pb::ImportDotenvResponse {
            applied: true,
            added: vec!["A".into()],
            changed: vec!["B".into()],
            removed: vec![],
            unchanged: vec!["C".into()],
            warnings: vec![settings_pb::DotenvWarning {
                line: 3,
                name: "D".into(),
                message: "no `=`".into(),
            }],
            settings: vec![setting()],
        };
        let before = serde_json::json!({
            "applied": true, "added": ["A"], "changed": ["B"], "removed": [], "unchanged": ["C"],
            "warnings": [{ "line": 3, "name": "D", "message": "no `=`" }],
            "settings": [masked_before],
        });
        let after = ImportResult::from(response);
        assert_eq!(serde_json::to_string(&after).unwrap(), before.to_string());
    }
}
