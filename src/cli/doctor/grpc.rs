//! gRPC checks against auth and settings: health and version, auth's published keys, and the
//! sync secret as auth sees it.

use super::check::Check;
use latchkey_common::config::{Config, SYNC_SECRET, Setting};
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::{ApiError, Reason};
use std::time::Duration;

pub(super) async fn check_service_health(
    checks: &mut Vec<Check>,
    versions: &mut Vec<(String, String)>,
    name: &str,
    url: &str,
    grpc_service: &str,
    start: &str,
    variable: &str,
) -> Option<tonic::transport::Channel> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let title = format!("service reachable: {name} ({url})");
    let endpoint = match tonic::transport::Endpoint::from_shared(url.to_owned()) {
        Ok(endpoint) => endpoint
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5)),
        Err(_) => {
            checks.push(Check::fail(
                title,
                format!("{variable} `{url}` is not a URL"),
                format!("set {variable}=http://HOST:PORT"),
            ));
            return None;
        }
    };
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(error) => {
            checks.push(Check::fail(
                title,
                format!("cannot connect: {error}"),
                format!("start `{start}`, or point {variable} at it"),
            ));
            return None;
        }
    };
    let answer = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: grpc_service.to_owned(),
        })
        .await;
    let answer = answer.map(|response| {
        let version = response
            .metadata()
            .get(latchkey_common::telemetry::VERSION_METADATA)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown (older than 0.1.0)")
            .to_owned();
        (response.into_inner().status, version)
    });
    match answer {
        Ok((status, version)) if status == ServingStatus::Serving as i32 => {
            checks.push(Check::pass(
                title,
                format!("gRPC health SERVING, version {version}"),
            ));
            versions.push((name.to_owned(), version));
            Some(channel)
        }
        Ok((status, _)) => {
            checks.push(Check::fail(
                title,
                format!("gRPC health answers {status:?} (not SERVING)"),
                format!("check the {name} service's log; it may be shutting down"),
            ));
            None
        }
        Err(status) => {
            checks.push(Check::fail(
                title,
                format!("gRPC health failed: {}", status.message()),
                format!("is {variable} pointing at {name}?"),
            ));
            None
        }
    }
}

/// Auth's published key ids, when it publishes any.
pub(super) async fn check_jwks(
    checks: &mut Vec<Check>,
    channel: tonic::transport::Channel,
) -> Option<Vec<String>> {
    let mut client = auth_pb::auth_service_client::AuthServiceClient::new(channel);
    match client.get_jwks(auth_pb::GetJwksRequest {}).await {
        Ok(response) if !response.get_ref().keys.is_empty() => {
            let kids: Vec<String> = response
                .into_inner()
                .keys
                .into_iter()
                .map(|k| k.kid)
                .collect();
            checks.push(Check::pass(
                "JWKS served",
                format!("{} key(s): {}", kids.len(), kids.join(", ")),
            ));
            Some(kids)
        }
        Ok(_) => {
            checks.push(Check::fail(
                "JWKS served",
                "auth publishes no signing key",
                "run `latchkey keys rotate-signing` against auth's database",
            ));
            None
        }
        Err(status) => {
            checks.push(Check::fail(
                "JWKS served",
                status.message().to_owned(),
                "check auth's log",
            ));
            None
        }
    }
}

/// Whose sync secret [`check_sync_secret`] presents, as its line names it.
pub(super) struct SyncProbe {
    /// The checklist line.
    pub name: String,
    /// Whose secret, e.g. "this environment's sync secret (from AUTH_SYNC_SECRET (alias))".
    pub whose: String,
    /// What to do when auth rejects it.
    pub fix: String,
}

impl SyncProbe {
    /// The secret doctor's own configuration holds.
    pub(super) fn of_this_environment(config: &Config) -> SyncProbe {
        use latchkey_common::config::Source;
        let source = config.source(SYNC_SECRET);
        let fix = match source {
            Some(Source::Underlay(origin)) => format!(
                "`latchkey dev` runs with another sync secret than {origin} holds, taken from its environment ({}): run doctor with that same environment, or compare with `latchkey fingerprint`",
                variables(SYNC_SECRET)
            ),
            _ => format!(
                "run `latchkey fingerprint` where auth runs and here; set the same {} on both",
                SYNC_SECRET.env()
            ),
        };
        SyncProbe {
            name: "sync secret as auth sees it".to_owned(),
            whose: match source {
                Some(source) => format!("this environment's sync secret (from {source})"),
                None => "this environment's sync secret".to_owned(),
            },
            fix,
        }
    }
}

/// Asks auth for a token for a user that cannot exist: USER_NOT_SYNCED proves the secret was
/// accepted; SYNC_SECRET_INVALID proves the two sides hold different secrets.
pub(super) async fn check_sync_secret(
    checks: &mut Vec<Check>,
    channel: tonic::transport::Channel,
    secret: &str,
    probe: &SyncProbe,
) {
    let fingerprint = latchkey_common::secret::fingerprint(secret.as_bytes());
    let (name, whose) = (probe.name.as_str(), probe.whose.as_str());
    let mut request = tonic::Request::new(auth_pb::IssueTokenRequest {
        user: Some(auth_pb::issue_token_request::User::UserId(format!(
            "doctor-probe-{}",
            uuid::Uuid::new_v4()
        ))),
    });
    let Ok(value) = secret.parse() else {
        checks.push(Check::fail(
            name,
            format!("{whose} holds characters a header cannot carry"),
            "generate one with `openssl rand -base64 32`",
        ));
        return;
    };
    request
        .metadata_mut()
        .insert(latchkey_proto::SYNC_SECRET_METADATA, value);
    let result = auth_pb::auth_service_client::AuthServiceClient::new(channel)
        .issue_token(request)
        .await;
    let reason = result
        .err()
        .map(|status| ApiError::from_status(&status).reason);
    match reason {
        Some(Reason::UserNotSynced) | None => checks.push(Check::pass(
            name,
            format!("auth accepts {whose} (fingerprint {fingerprint})"),
        )),
        Some(Reason::SyncSecretInvalid) => checks.push(Check::fail(
            name,
            format!(
                "auth rejects {whose} (fingerprint {fingerprint}): the two hold different secrets"
            ),
            probe.fix.clone(),
        )),
        Some(other) => checks.push(Check::fail(
            name,
            format!("auth answered {other}"),
            "see docs/TROUBLESHOOTING.md for that code",
        )),
    }
}

/// A setting's names, `LATCHKEY_X or ALIAS…`, as a fix lists them.
fn variables<T>(setting: Setting<T>) -> String {
    std::iter::once(setting.env())
        .chain(
            setting
                .spec()
                .aliases
                .iter()
                .map(|alias| (*alias).to_owned()),
        )
        .collect::<Vec<_>>()
        .join(" or ")
}
