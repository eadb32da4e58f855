//! The gRPC adapter: verify the bearer token into a [`Caller`], decode the request, call
//! [`SettingsCore`], map errors through the catalogue. Nothing else lives here.

use crate::budget::Budget;
use crate::caller::Caller;
use crate::error::SettingsError;
use crate::import::ImportMode;
use crate::service::{Change, SettingsCore};
use crate::store::queries::Masked;
use latchkey_client::Authenticator;
use latchkey_common::clock::rfc3339;
use latchkey_common::grpc::{Refusal, refuse, request_id};
use latchkey_proto::settings::v1 as pb;
use latchkey_proto::settings::v1::settings_service_server::SettingsService;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status, metadata::MetadataMap};
use zeroize::Zeroizing;

/// `SettingsService` over [`SettingsCore`], authenticating every call with [`Authenticator`].
#[derive(Clone)]
pub struct SettingsGrpc {
    core: Arc<SettingsCore>,
    authn: Arc<Authenticator>,
}

impl SettingsGrpc {
    /// Wraps the core and an authenticator.
    pub fn new(core: Arc<SettingsCore>, authn: Arc<Authenticator>) -> Self {
        SettingsGrpc { core, authn }
    }

    /// A write's answer annotated like the list ([`SettingsCore::annotate`]).
    async fn listed(
        &self,
        metadata: &MetadataMap,
        caller: &Caller,
        settings: Vec<Masked>,
    ) -> Result<Vec<pb::MaskedSetting>, Status> {
        let listed = self
            .core
            .annotate(caller, settings)
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(listed_messages(listed))
    }

    /// The caller behind the `authorization` bearer token; the user id is the token's `sub`.
    async fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let token = latchkey_client::bearer(metadata);
        self.authn
            .caller(token)
            .await
            .map_err(|e| status(metadata, e.into()))
    }
}

/// The one answer of a refused call: logged (never a value), counted and converted by the
/// common kit.
fn status(metadata: &MetadataMap, error: SettingsError) -> Status {
    refuse("settings", metadata, error)
}

impl Refusal for SettingsError {
    fn is_fault(&self) -> bool {
        matches!(
            self,
            SettingsError::Internal(_)
                | SettingsError::DatabaseUnavailable(_)
                | SettingsError::DataIntegrity { .. }
        )
    }
}

/// The request's budget from its gRPC deadline (`grpc-timeout`, set from each REST route's
/// budget by the gateway), counted from `received`. A little is kept back to send the answer, so
/// the caller reads DEADLINE_EXCEEDED from us rather than a cancelled call. No deadline, no limit.
fn request_budget(received: Instant, metadata: &MetadataMap) -> Budget {
    let Some(timeout) = metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
    else {
        return Budget::unlimited();
    };
    let reserve = std::cmp::min(timeout / 10, Duration::from_millis(200));
    Budget::within(received, timeout - reserve)
}

/// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n), per the gRPC HTTP/2 spec.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn masked_message(setting: Masked) -> pb::MaskedSetting {
    pb::MaskedSetting {
        updated_at: rfc3339(setting.updated_at),
        name: setting.name,
        masked: setting.masked,
        length: setting.length,
        declared: None,
        valid: None,
    }
}

/// The masked settings with `declared` and `valid`, as every answer listing them carries.
fn listed_messages(settings: Vec<crate::declared::Listed>) -> Vec<pb::MaskedSetting> {
    settings
        .into_iter()
        .map(|listed| pb::MaskedSetting {
            declared: Some(listed.declared),
            valid: Some(listed.valid),
            ..masked_message(listed.masked)
        })
        .collect()
}

/// Moves each value into a zeroizing buffer as soon as it leaves the wire message.
fn changes(entries: Vec<pb::SettingChange>) -> Vec<Change> {
    entries
        .into_iter()
        .map(|entry| Change {
            name: entry.name,
            value: entry.value.map(Zeroizing::new),
        })
        .collect()
}

#[tonic::async_trait]
impl SettingsService for SettingsGrpc {
    async fn list_settings(
        &self,
        request: Request<pb::ListSettingsRequest>,
    ) -> Result<Response<pb::ListSettingsResponse>, Status> {
        let metadata = request.metadata();
        let caller = self.caller(metadata).await?;
        let listing = self
            .core
            .listing(&caller)
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::ListSettingsResponse {
            settings: listed_messages(listing.settings),
            missing: listing.missing,
        }))
    }

    async fn patch_settings(
        &self,
        request: Request<pb::PatchSettingsRequest>,
    ) -> Result<Response<pb::PatchSettingsResponse>, Status> {
        let (metadata, _, body) = request.into_parts();
        let caller = self.caller(&metadata).await?;
        let settings = self
            .core
            .patch(&caller, changes(body.settings))
            .await
            .map_err(|e| status(&metadata, e))?;
        Ok(Response::new(pb::PatchSettingsResponse {
            settings: self.listed(&metadata, &caller, settings).await?,
        }))
    }

    async fn replace_settings(
        &self,
        request: Request<pb::ReplaceSettingsRequest>,
    ) -> Result<Response<pb::ReplaceSettingsResponse>, Status> {
        let (metadata, _, body) = request.into_parts();
        let caller = self.caller(&metadata).await?;
        let settings = self
            .core
            .replace(&caller, changes(body.settings))
            .await
            .map_err(|e| status(&metadata, e))?;
        Ok(Response::new(pb::ReplaceSettingsResponse {
            settings: self.listed(&metadata, &caller, settings).await?,
        }))
    }

    async fn import_dotenv(
        &self,
        request: Request<pb::ImportDotenvRequest>,
    ) -> Result<Response<pb::ImportDotenvResponse>, Status> {
        let received = Instant::now();
        let (metadata, _, body) = request.into_parts();
        let text = Zeroizing::new(body.dotenv);
        let caller = self.caller(&metadata).await?;
        let mode = match pb::ImportMode::try_from(body.mode) {
            Ok(pb::ImportMode::Replace) => ImportMode::Replace,
            _ => ImportMode::Merge,
        };
        let budget = request_budget(received, &metadata);
        let outcome = self
            .core
            .import_within(&caller, text, mode, body.dry_run, budget)
            .await
            .map_err(|e| status(&metadata, e))?;
        Ok(Response::new(pb::ImportDotenvResponse {
            applied: outcome.applied,
            added: outcome.added,
            changed: outcome.changed,
            removed: outcome.removed,
            unchanged: outcome.unchanged,
            warnings: outcome
                .warnings
                .into_iter()
                .map(|w| pb::DotenvWarning {
                    line: w.line,
                    name: w.name,
                    message: w.message,
                })
                .collect(),
            settings: if outcome.applied {
                self.listed(&metadata, &caller, outcome.settings).await?
            } else {
                listed_messages(self.core.annotate_preview(outcome.settings))
            },
        }))
    }

    async fn delete_setting(
        &self,
        request: Request<pb::DeleteSettingRequest>,
    ) -> Result<Response<pb::DeleteSettingResponse>, Status> {
        let metadata = request.metadata();
        let caller = self.caller(metadata).await?;
        self.core
            .delete(&caller, &request.get_ref().name)
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::DeleteSettingResponse {}))
    }

    async fn purge_user(
        &self,
        request: Request<pb::PurgeUserRequest>,
    ) -> Result<Response<pb::PurgeUserResponse>, Status> {
        let metadata = request.metadata();
        let caller = self.caller(metadata).await?;
        let settings_deleted = self
            .core
            .purge(&caller, &request.get_ref().user_id)
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::PurgeUserResponse { settings_deleted }))
    }

    async fn reveal_setting(
        &self,
        request: Request<pb::RevealSettingRequest>,
    ) -> Result<Response<pb::RevealSettingResponse>, Status> {
        let metadata = request.metadata();
        let caller = self.caller(metadata).await?;
        let body = request.get_ref();
        let revealed = self
            .core
            .reveal_checked(
                &caller,
                &body.user_id,
                &body.name,
                &request_id(metadata),
                body.require_valid,
            )
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::RevealSettingResponse {
            value: revealed.value.as_str().to_owned(),
            name: revealed.name,
        }))
    }

    async fn list_reveal_audit(
        &self,
        request: Request<pb::ListRevealAuditRequest>,
    ) -> Result<Response<pb::ListRevealAuditResponse>, Status> {
        let metadata = request.metadata();
        let caller = self.caller(metadata).await?;
        let body = request.get_ref();
        let page = self
            .core
            .audit(&caller, &body.user_id, body.page_size, &body.page_token)
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::ListRevealAuditResponse {
            entries: page
                .entries
                .into_iter()
                .map(|e| pb::RevealAuditEntry {
                    id: e.id.to_string(),
                    caller: e.caller,
                    user_id: e.user_id,
                    name: e.name,
                    revealed_at: rfc3339(e.revealed_at),
                    request_id: e.request_id,
                })
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_settings_schema(
        &self,
        request: Request<pb::GetSettingsSchemaRequest>,
    ) -> Result<Response<pb::GetSettingsSchemaResponse>, Status> {
        self.caller(request.metadata()).await?;
        Ok(Response::new(crate::schema::wire::schema_message(
            &self.core.schema(),
        )))
    }

    async fn generate_setting(
        &self,
        request: Request<pb::GenerateSettingRequest>,
    ) -> Result<Response<pb::GenerateSettingResponse>, Status> {
        let metadata = request.metadata();
        let caller = self.caller(metadata).await?;
        let setting = self
            .core
            .generate(&caller, &request.get_ref().name)
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::GenerateSettingResponse {
            setting: Some(masked_message(setting)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_per_the_spec() {
        assert_eq!(parse_grpc_timeout("15000m"), Some(Duration::from_secs(15)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "123456789m", "10x", "-1S", "1.5S", "é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_budget_keeps_a_little_back_to_answer() {
        let mut metadata = MetadataMap::new();
        assert!(!request_budget(Instant::now(), &metadata).expired());
        metadata.insert("grpc-timeout", "0m".parse().unwrap());
        assert!(request_budget(Instant::now(), &metadata).expired());
        metadata.insert("grpc-timeout", "15S".parse().unwrap());
        let long_ago = Instant::now() - Duration::from_millis(14_850);
        assert!(request_budget(long_ago, &metadata).expired());
    }
}
