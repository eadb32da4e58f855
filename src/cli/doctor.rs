//! `latchkey doctor`: the whole chain, checked — configuration, databases, services, JWKS, the
//! sync secret as auth sees it, then a live probe — as a ✔/✘ checklist where every ✘ names its
//! cause and the command that fixes it. `--json` for machines; non-zero exit on any ✘.

use super::Failure;
use latchkey_common::ExposeSecret;
use latchkey_common::config::Config;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::{ApiError, Reason};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print the checklist as JSON.
    #[arg(long)]
    json: bool,
    /// Auth's gRPC address (default: LATCHKEY_AUTH_URL).
    #[arg(long)]
    auth_url: Option<String>,
    /// Skip the database checks (when doctor runs away from the database).
    #[arg(long)]
    no_database: bool,
}

/// One line of the checklist.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            cause: None,
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, cause: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: String::new(),
            cause: Some(cause.into()),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check and prints the checklist.
pub async fn run(args: &DoctorArgs, config: &Config) -> Result<(), Failure> {
    let checks = collect(args, config).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "ok": checks.iter().all(|c| c.ok), "checks": checks })
            )
            .unwrap_or_default()
        );
    } else {
        print_checklist(&checks);
    }
    match checks.iter().filter(|c| !c.ok).count() {
        0 => Ok(()),
        n => Err(Failure::Runtime(anyhow::anyhow!(
            "doctor found {n} problem(s)"
        ))),
    }
}

fn print_checklist(checks: &[Check]) {
    for check in checks {
        if check.ok {
            println!("✔ {}: {}", check.name, check.detail);
        } else {
            println!("✘ {}", check.name);
            if let Some(cause) = &check.cause {
                println!("    cause: {cause}");
            }
            if let Some(fix) = &check.fix {
                println!("    fix:   {fix}");
            }
        }
    }
}

async fn collect(args: &DoctorArgs, config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    let auth_config = check_auth_config(config, &mut checks);
    if !args.no_database {
        check_auth_database(config, &mut checks).await;
    }
    let auth_url = args
        .auth_url
        .clone()
        .or_else(|| config.get("auth_url").map(str::to_owned))
        .unwrap_or_default();
    if let Some(channel) = check_service_health(
        &mut checks,
        "auth",
        &auth_url,
        "latchkey.auth.v1.AuthService",
        "latchkey auth",
        "LATCHKEY_AUTH_URL",
    )
    .await
    {
        check_jwks(&mut checks, channel.clone()).await;
        if let Some(secret) = config.secret("sync_secret") {
            check_sync_secret(&mut checks, channel, secret.expose_secret()).await;
        } else if auth_config.is_none() {
            checks.push(Check::fail(
                "sync secret as auth sees it",
                "LATCHKEY_SYNC_SECRET is not set here, so doctor cannot compare it with auth's",
                "set LATCHKEY_SYNC_SECRET to the value your web app sends",
            ));
        }
    }
    checks
}

fn check_auth_config(
    config: &Config,
    checks: &mut Vec<Check>,
) -> Option<latchkey_auth::AuthConfig> {
    match latchkey_auth::AuthConfig::from_config(config) {
        Ok(auth) => {
            checks.push(Check::pass(
                "config: auth",
                format!(
                    "valid; sync secret fingerprint {}",
                    latchkey_common::secret::fingerprint_str(&auth.sync_secret)
                ),
            ));
            Some(auth)
        }
        Err(problems) => {
            for problem in problems.0 {
                checks.push(Check::fail(
                    format!("config: auth: {}", problem.variable),
                    problem.what,
                    problem.fix,
                ));
            }
            None
        }
    }
}

async fn check_auth_database(config: &Config, checks: &mut Vec<Check>) {
    let Some(url) = config.secret("database_url") else {
        return;
    };
    let shown = latchkey_common::db::redact_url(url.expose_secret());
    let db = match latchkey_common::db::connect(url.expose_secret()).await {
        Ok(db) => db,
        Err(error) => {
            checks.push(Check::fail(
                format!("database reachable ({shown})"),
                error.to_string(),
                "start the database or correct LATCHKEY_DATABASE_URL",
            ));
            return;
        }
    };
    checks.push(Check::pass("database reachable", shown));
    match latchkey_auth::store::pending_migrations(&db).await {
        Ok(0) => checks.push(Check::pass("database migrated: auth", "schema up to date")),
        Ok(n) => checks.push(Check::fail(
            "database migrated: auth",
            format!("{n} auth migration(s) not applied"),
            "run `latchkey migrate`",
        )),
        Err(error) => checks.push(Check::fail(
            "database migrated: auth",
            error.to_string(),
            "run `latchkey migrate`",
        )),
    }
}

async fn check_service_health(
    checks: &mut Vec<Check>,
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
    match answer.map(|r| r.into_inner().status) {
        Ok(status) if status == ServingStatus::Serving as i32 => {
            checks.push(Check::pass(title, "gRPC health SERVING"));
            Some(channel)
        }
        Ok(status) => {
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

async fn check_jwks(checks: &mut Vec<Check>, channel: tonic::transport::Channel) {
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
        }
        Ok(_) => checks.push(Check::fail(
            "JWKS served",
            "auth publishes no signing key",
            "run `latchkey keys rotate-signing` against auth's database",
        )),
        Err(status) => checks.push(Check::fail(
            "JWKS served",
            status.message().to_owned(),
            "check auth's log",
        )),
    }
}

/// Asks auth for a token for a user that cannot exist: USER_NOT_SYNCED proves the secret was
/// accepted; SYNC_SECRET_INVALID proves the two sides hold different secrets.
async fn check_sync_secret(
    checks: &mut Vec<Check>,
    channel: tonic::transport::Channel,
    secret: &str,
) {
    let fingerprint = latchkey_common::secret::fingerprint(secret.as_bytes());
    let name = "sync secret as auth sees it";
    let mut request = tonic::Request::new(auth_pb::IssueTokenRequest {
        user: Some(auth_pb::issue_token_request::User::UserId(format!(
            "doctor-probe-{}",
            uuid::Uuid::new_v4()
        ))),
    });
    let Ok(value) = secret.parse() else {
        checks.push(Check::fail(
            name,
            "LATCHKEY_SYNC_SECRET holds characters a header cannot carry",
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
        Some(Reason::UserNotSynced) | None => checks.push(Check::pass(name, format!("auth accepts this environment's secret (fingerprint {fingerprint})"))),
        Some(Reason::SyncSecretInvalid) => checks.push(Check::fail(
            name,
            format!("auth rejects this environment's sync secret (fingerprint {fingerprint}): the two hold different secrets"),
            "run `latchkey fingerprint` where auth runs and here; set the same LATCHKEY_SYNC_SECRET on both",
        )),
        Some(other) => checks.push(Check::fail(name, format!("auth answered {other}"), "see docs/TROUBLESHOOTING.md for that code")),
    }
}
