//! The declared settings' routes (settings area): the schema a form is built from, and a new
//! generated value for a declared setting. The list's `missing`, `declared` and `valid` are in
//! [`super::settings::list_settings`].

use super::problems::{BearerLookupProblems, BearerProblems};
use super::settings::{MaskedSetting, SettingName};
use crate::caller::authenticate;
use crate::forward::{SETTINGS, budget, grpc_request, with_bearer};
use crate::middleware::Ctx;
use crate::problem::{HttpProblem, from_grpc};
use crate::state::GatewayState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use latchkey_common::upstream::retry_idempotent;
use latchkey_proto::settings::v1 as settings_pb;
use latchkey_proto::{ApiError, Violation};
use serde::Serialize;
use utoipa::ToSchema;

/// How settings makes a value the user leaves empty.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateRule {
    /// random bytes per value
    bytes: i64,
    /// `base64` or `hex`
    encoding: String,
}

/// One declared setting, as a form shows it; never a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeclaredSetting {
    /// present when settings makes the value itself (on first read, or on request)
    generate: Option<GenerateRule>,
    /// empty when the schema gives none
    help: String,
    /// the format in words, for the form; empty when unconstrained
    hint: String,
    label: String,
    /// where to get the value; empty when the schema gives none
    link: String,
    max_length: Option<i64>,
    min_length: Option<i64>,
    #[schema(value_type = SettingName)]
    name: String,
    /// a regular expression (Rust `regex` syntax); empty when none
    pattern: String,
    /// `openrouter_key`, `fly_token`, `url`, `pem`; empty when none
    preset: String,
    required: bool,
}

/// The declared settings: what each user is asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsSchema {
    /// whether names outside `settings` may be stored
    allow_undeclared: bool,
    settings: Vec<DeclaredSetting>,
}

impl From<settings_pb::GetSettingsSchemaResponse> for SettingsSchema {
    fn from(schema: settings_pb::GetSettingsSchemaResponse) -> Self {
        SettingsSchema {
            allow_undeclared: schema.allow_undeclared,
            settings: schema
                .settings
                .into_iter()
                .map(|d| DeclaredSetting {
                    generate: d.generate.map(|g| GenerateRule {
                        bytes: g.bytes,
                        encoding: g.encoding,
                    }),
                    help: d.help,
                    hint: d.hint,
                    label: d.label,
                    link: d.link,
                    max_length: d.max_length,
                    min_length: d.min_length,
                    name: d.name,
                    pattern: d.pattern,
                    preset: d.preset,
                    required: d.required,
                })
                .collect(),
        }
    }
}

/// The declared settings (no values): labels, help, formats, which are required or generated.
#[utoipa::path(
    get,
    path = "/api/settings/schema",
    tag = "settings",
    operation_id = "getSettingsSchema",
    security(("bearer" = [])),
    responses((status = 200, description = "the declared settings", body = SettingsSchema), BearerProblems)
)]
pub async fn get_schema(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<SettingsSchema>, HttpProblem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let schema = retry_idempotent(&ctx.deadline(budget::READ), || {
        let mut client = state.settings();
        let request = with_bearer(
            grpc_request(settings_pb::GetSettingsSchemaRequest {}, &ctx, budget::READ),
            &token,
        );
        async move { client.get_settings_schema(request).await }
    })
    .await
    .map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::READ)))?
    .into_inner();
    Ok(Json(schema.into()))
}

/// The new value, masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Generated {
    setting: MaskedSetting,
}

/// Make a new random value for a declared setting with `generate` (replacing any stored one).
#[utoipa::path(
    post,
    path = "/api/settings/{name}/generate",
    tag = "settings",
    operation_id = "generateSetting",
    security(("bearer" = [])),
    params(("name" = SettingName, Path)),
    responses((status = 200, description = "the new value, masked", body = Generated), BearerLookupProblems)
)]
pub async fn generate_setting(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Generated>, HttpProblem> {
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
    let message = settings_pb::GenerateSettingRequest { name };
    let request = with_bearer(grpc_request(message, &ctx, budget::WRITE), &token);
    let answer = state
        .settings()
        .generate_setting(request)
        .await
        .map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::WRITE)))?
        .into_inner();
    let setting = answer
        .setting
        .ok_or_else(|| HttpProblem::from(ApiError::internal()))?;
    Ok(Json(Generated {
        setting: setting.into(),
    }))
}
