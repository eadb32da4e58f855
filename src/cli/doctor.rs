//! `latchkey doctor`: the whole chain, checked — configuration (a setting under two names with
//! different values included), databases, services, JWKS, the sync secret as auth sees it, then
//! a live probe — as a ✔/✘ checklist where every ✘ names its cause and the command that fixes
//! it. `--json` for machines; non-zero exit on any ✘. Run next to `latchkey dev` it reads dev's
//! files beneath the environment ([`super::devfiles`]); `--web-app-env` adds the web app's side
//! ([`super::web_app_env`]).

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
    /// Settings' gRPC address (default: LATCHKEY_SETTINGS_URL).
    #[arg(long)]
    settings_url: Option<String>,
    /// The gateway's base URL (default: `http://` + LATCHKEY_GATEWAY_LISTEN).
    #[arg(long, env = "LATCHKEY_GATEWAY_URL")]
    gateway_url: Option<String>,
    /// Check only this service's configuration and database (repeatable; default: all three).
    /// For separately deployed services: run doctor next to each with `--service` naming it.
    #[arg(long = "service", value_enum)]
    services: Vec<ServiceArg>,
    /// Skip the database checks (when doctor runs away from the database).
    #[arg(long)]
    no_database: bool,
    /// The web app's env file (e.g. `../web/.env.local`): check its sync secret, its
    /// AUTH_SECRET/NEXTAUTH_SECRET and the Latchkey URL it calls against this Latchkey (values
    /// are never printed).
    #[arg(long, value_name = "PATH")]
    web_app_env: Option<std::path::PathBuf>,
}

/// A service whose configuration and database `--service` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceArg {
    Auth,
    Settings,
    Gateway,
}

impl DoctorArgs {
    fn checks(&self, service: ServiceArg) -> bool {
        self.services.is_empty() || self.services.contains(&service)
    }
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
    pub(super) fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            cause: None,
            fix: None,
        }
    }

    pub(super) fn fail(
        name: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: String::new(),
            cause: Some(cause.into()),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check and prints the checklist. `dev_files`: the `latchkey dev` files read beneath
/// the environment when doctor runs next to dev (or why they could not be read).
pub async fn run(
    args: &DoctorArgs,
    config: &Config,
    dev_files: Option<Result<Vec<std::path::PathBuf>, String>>,
) -> Result<(), Failure> {
    let mut checks = Vec::new();
    match dev_files {
        Some(Ok(files)) => checks.push(Check::pass(
            "next to latchkey dev",
            format!(
                "read {} beneath the environment (the environment wins), as dev does",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        )),
        Some(Err(error)) => checks.push(Check::fail(
            "next to latchkey dev",
            error,
            "fix the file as the cause says, or delete it and restart `latchkey dev` to generate a new one",
        )),
        None => {}
    }
    check_names(config, &mut checks);
    checks.extend(collect(args, config).await);
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

/// One ✘ per setting given under several names with different values (production refuses to
/// start on it, development warns), else one ✔ naming the aliases in use.
fn check_names(config: &Config, checks: &mut Vec<Check>) {
    for conflict in config.conflicts() {
        checks.push(Check::fail(
            format!("config: names: {}", conflict.setting),
            conflict.what(),
            conflict.fix(),
        ));
    }
    if !config.conflicts().is_empty() {
        return;
    }
    let aliases: Vec<String> = latchkey_common::config::SETTINGS
        .iter()
        .filter_map(|spec| match config.source(spec.key) {
            Some(source @ latchkey_common::config::Source::Alias(_)) => {
                Some(format!("{source} read as {}", spec.env()))
            }
            _ => None,
        })
        .collect();
    let detail = if aliases.is_empty() {
        "no setting is set under two names with different values".to_owned()
    } else {
        format!(
            "no setting is set under two names with different values; {}",
            aliases.join(", ")
        )
    };
    checks.push(Check::pass("config: names", detail));
}

/// Whether a configuration problem is a [`Conflict`](latchkey_common::aliases::Conflict),
/// already shown once by [`check_names`].
fn is_conflict(config: &Config, problem: &latchkey_common::config::Problem) -> bool {
    config
        .conflicts()
        .iter()
        .any(|c| c.setting == problem.variable && c.what() == problem.what)
}

async fn collect(args: &DoctorArgs, config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    let auth_config = if args.checks(ServiceArg::Auth) {
        check_auth_config(config, &mut checks)
    } else {
        None
    };
    let settings_config = if args.checks(ServiceArg::Settings) {
        check_settings_config(config, &mut checks)
    } else {
        None
    };
    if args.checks(ServiceArg::Gateway) {
        check_gateway_config(config, &mut checks);
    }
    if !args.no_database && (args.checks(ServiceArg::Auth) || args.checks(ServiceArg::Settings)) {
        check_database(args, config, settings_config.as_ref(), &mut checks).await;
    }

    let auth_url = args
        .auth_url
        .clone()
        .or_else(|| config.get("auth_url").map(str::to_owned))
        .unwrap_or_default();
    let mut auth_kids = None;
    let mut versions = Vec::new();
    let auth_channel = check_service_health(
        &mut checks,
        &mut versions,
        "auth",
        &auth_url,
        "latchkey.auth.v1.AuthService",
        "latchkey auth",
        "LATCHKEY_AUTH_URL",
    )
    .await;
    if let Some(channel) = auth_channel.clone() {
        auth_kids = check_jwks(&mut checks, channel.clone()).await;
        if let Some(secret) = config.secret("sync_secret") {
            check_sync_secret(
                &mut checks,
                channel,
                secret.expose_secret(),
                &SyncProbe::of_this_environment(config),
            )
            .await;
        } else if auth_config.is_none() {
            checks.push(Check::fail(
                "sync secret as auth sees it",
                "LATCHKEY_SYNC_SECRET is not set here, so doctor cannot compare it with auth's",
                "set LATCHKEY_SYNC_SECRET to the value your web app sends",
            ));
        }
    }

    match args
        .settings_url
        .clone()
        .or_else(|| config.get("settings_url").map(str::to_owned))
        .and_then(|urls| urls.split(',').next().map(|u| u.trim().to_owned()))
        .filter(|u| !u.is_empty())
    {
        Some(url) => {
            check_service_health(
                &mut checks,
                &mut versions,
                "settings",
                &url,
                "latchkey.settings.v1.SettingsService",
                "latchkey settings",
                "LATCHKEY_SETTINGS_URL",
            )
            .await;
        }
        None => checks.push(Check::fail(
            "service reachable: settings",
            "doctor does not know where settings listens",
            "set LATCHKEY_SETTINGS_URL=http://HOST:PORT or pass --settings-url",
        )),
    }

    let gateway_url = gateway_url(args, config);
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            checks.push(Check::fail(
                "service reachable: gateway",
                format!("cannot build an HTTP client: {error}"),
                "report this as a bug",
            ));
            return checks;
        }
    };
    let gateway = Gateway {
        http,
        base: gateway_url.trim_end_matches('/').to_owned(),
    };
    if check_gateway_ready(&mut checks, &gateway).await {
        if let Some(version) = gateway_version(&gateway).await {
            versions.push(("gateway".to_owned(), version));
        }
        check_versions(&mut checks, &versions);
        if let Some(kids) = &auth_kids {
            check_gateway_jwks(&mut checks, &gateway, kids).await;
        }
        match config.secret("sync_secret") {
            Some(secret) => live_probe(&mut checks, &gateway, secret.expose_secret()).await,
            None => checks.push(Check::fail(
                "live probe: sync probe user",
                "LATCHKEY_SYNC_SECRET is not set here, so doctor cannot sign a probe user in",
                "set LATCHKEY_SYNC_SECRET to the value your web app sends (compare with `latchkey fingerprint` where auth runs)",
            )),
        }
    }
    if let Some(path) = &args.web_app_env {
        let reach = super::web_app_env::Reach {
            auth: auth_channel,
            http: &gateway.http,
            gateway: &gateway.base,
        };
        super::web_app_env::check(&mut checks, path, config, reach).await;
    }
    checks
}

/// `--gateway-url`, LATCHKEY_GATEWAY_URL, else `http://` + LATCHKEY_GATEWAY_LISTEN (a wildcard
/// bind address becomes loopback).
fn gateway_url(args: &DoctorArgs, config: &Config) -> String {
    if let Some(url) = args.gateway_url.as_deref().filter(|u| !u.trim().is_empty()) {
        return url.trim().to_owned();
    }
    let listen = config.get("gateway_listen").unwrap_or("127.0.0.1:8080");
    let listen = match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        _ => listen.to_owned(),
    };
    format!("http://{listen}")
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
            push_problems(checks, config, "auth", problems);
            None
        }
    }
}

fn check_settings_config(
    config: &Config,
    checks: &mut Vec<Check>,
) -> Option<latchkey_settings::SettingsConfig> {
    match latchkey_settings::SettingsConfig::from_config(config) {
        Ok(settings) => {
            let ids: Vec<&str> = settings.keys.ids().collect();
            checks.push(Check::pass(
                "config: settings",
                format!(
                    "valid; master keys {} (active {})",
                    ids.join(", "),
                    settings.keys.active().id
                ),
            ));
            Some(settings)
        }
        Err(problems) => {
            push_problems(checks, config, "settings", problems);
            None
        }
    }
}

fn check_gateway_config(config: &Config, checks: &mut Vec<Check>) {
    match latchkey_gateway::GatewayConfig::from_config(config) {
        Ok(gateway) => checks.push(Check::pass(
            "config: gateway",
            format!(
                "valid; listens on {}, auth at {}, settings at {}",
                gateway.listen,
                gateway.auth_urls.join(","),
                gateway.settings_urls.join(",")
            ),
        )),
        Err(problems) => push_problems(checks, config, "gateway", problems),
    }
}

fn push_problems(
    checks: &mut Vec<Check>,
    config: &Config,
    service: &str,
    problems: latchkey_common::config::Problems,
) {
    for problem in problems.0.into_iter().filter(|p| !is_conflict(config, p)) {
        checks.push(Check::fail(
            format!("config: {service}: {}", problem.variable),
            problem.what,
            problem.fix,
        ));
    }
}

async fn check_database(
    args: &DoctorArgs,
    config: &Config,
    settings: Option<&latchkey_settings::SettingsConfig>,
    checks: &mut Vec<Check>,
) {
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
    if args.checks(ServiceArg::Auth) {
        migrated(
            checks,
            "auth",
            latchkey_auth::store::pending_migrations(&db).await,
        );
    }
    if args.checks(ServiceArg::Settings) {
        let up_to_date = migrated(
            checks,
            "settings",
            latchkey_settings::store::pending_migrations(&db).await,
        );
        if let (true, Some(settings)) = (up_to_date, settings) {
            let rows = latchkey_settings::rotation::rows_per_key(&db).await;
            check_key_ids(checks, rows, &settings.keys);
        }
    }
}

/// One "database migrated" line; answers whether the schema is up to date.
fn migrated(
    checks: &mut Vec<Check>,
    service: &str,
    pending: Result<usize, impl std::fmt::Display>,
) -> bool {
    let name = format!("database migrated: {service}");
    match pending {
        Ok(0) => {
            checks.push(Check::pass(name, "schema up to date"));
            true
        }
        Ok(n) => {
            checks.push(Check::fail(
                name,
                format!("{n} {service} migration(s) not applied"),
                "run `latchkey migrate`",
            ));
            false
        }
        Err(error) => {
            checks.push(Check::fail(
                name,
                error.to_string(),
                "run `latchkey migrate`",
            ));
            false
        }
    }
}

/// Every key id the stored settings rows were sealed with must be configured here.
fn check_key_ids(
    checks: &mut Vec<Check>,
    rows: Result<std::collections::BTreeMap<String, i64>, impl std::fmt::Display>,
    keys: &latchkey_settings::config::MasterKeys,
) {
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            checks.push(Check::fail(
                "database key ids: settings",
                error.to_string(),
                "check the database; `latchkey keys status` shows rows per key",
            ));
            return;
        }
    };
    let mut missing = false;
    for (id, count) in rows.iter().filter(|(id, _)| keys.get(id).is_none()) {
        missing = true;
        checks.push(Check::fail(
            format!("database key ids: settings: key `{id}`"),
            format!(
                "{count} stored setting(s) are sealed with master key `{id}`, which LATCHKEY_ENCRYPTION_KEYS does not configure (configured: {})",
                keys.ids().collect::<Vec<_>>().join(", ")
            ),
            format!(
                "add `{id}:<key>` to LATCHKEY_ENCRYPTION_KEYS (after the active key) with the key that sealed them; `latchkey keys status` lists rows per key"
            ),
        ));
    }
    if !missing {
        let used: Vec<String> = rows.iter().map(|(id, n)| format!("{id}={n}")).collect();
        checks.push(Check::pass(
            "database key ids: settings",
            if used.is_empty() {
                "no stored settings yet".to_owned()
            } else {
                format!(
                    "every stored row's key is configured (rows per key: {})",
                    used.join(", ")
                )
            },
        ));
    }
}

async fn check_service_health(
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
async fn check_jwks(
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
    fn of_this_environment(config: &Config) -> SyncProbe {
        use latchkey_common::config::Source;
        let source = config.source("sync_secret");
        let fix = match source {
            Some(Source::Underlay(origin)) => format!(
                "`latchkey dev` runs with another sync secret than {origin} holds, taken from its environment (LATCHKEY_SYNC_SECRET or AUTH_SYNC_SECRET): run doctor with that same environment, or compare with `latchkey fingerprint`"
            ),
            _ => "run `latchkey fingerprint` where auth runs and here; set the same LATCHKEY_SYNC_SECRET on both".to_owned(),
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

/// The gateway as doctor reaches it over HTTP.
struct Gateway {
    http: reqwest::Client,
    base: String,
}

impl Gateway {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The gateway's answer when it was not the expected one: the problem+json `code` (or the HTTP
/// status) and its detail.
struct GatewayRefusal {
    code: String,
    detail: String,
}

impl GatewayRefusal {
    async fn of(response: reqwest::Response) -> GatewayRefusal {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        GatewayRefusal {
            code: body["code"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
            detail: body["detail"].as_str().unwrap_or_default().to_owned(),
        }
    }

    fn transport(error: &reqwest::Error) -> GatewayRefusal {
        GatewayRefusal {
            code: "UNREACHABLE".to_owned(),
            detail: format!("the gateway did not answer: {error}"),
        }
    }

    fn cause(&self) -> String {
        if self.detail.is_empty() {
            format!("the gateway answered {}", self.code)
        } else {
            format!("the gateway answered {}: {}", self.code, self.detail)
        }
    }

    fn check(&self, name: &str) -> Check {
        Check::fail(name, self.cause(), fix_for(&self.code, &self.detail))
    }
}

/// The command or change that fixes a problem+json `code` seen on the probe.
fn fix_for(code: &str, detail: &str) -> String {
    match code {
        "SYNC_SECRET_INVALID" => "the gateway's auth holds a different sync secret than this environment: run `latchkey fingerprint` here and where auth runs, and set the same LATCHKEY_SYNC_SECRET on both".into(),
        "SYNC_SECRET_MISSING" => "set LATCHKEY_SYNC_SECRET here to the value auth holds (compare with `latchkey fingerprint`)".into(),
        "UPSTREAM_UNAVAILABLE" | "DEADLINE_EXCEEDED" => {
            if detail.contains("settings") {
                "start `latchkey settings`, or point the gateway's LATCHKEY_SETTINGS_URL at it".into()
            } else if detail.contains("auth") {
                "start `latchkey auth`, or point the gateway's LATCHKEY_AUTH_URL at it".into()
            } else {
                "start the upstream the detail names (`latchkey auth` / `latchkey settings`), or correct the gateway's LATCHKEY_AUTH_URL / LATCHKEY_SETTINGS_URL".into()
            }
        }
        "USER_NOT_SYNCED" => "the probe user auth just synced is unknown to the auth that checked its token: every auth instance must share one database (LATCHKEY_DATABASE_URL), and the gateway's and settings' LATCHKEY_AUTH_URL must reach that auth".into(),
        "TOKEN_KEY_UNKNOWN" | "TOKEN_SIGNATURE_INVALID" => "the token was checked against another auth's keys: point the gateway's and settings' LATCHKEY_AUTH_URL at the auth that signs tokens".into(),
        "TOKEN_ISSUER_UNTRUSTED" | "TOKEN_AUDIENCE_MISMATCH" => "set the same LATCHKEY_ISSUER and LATCHKEY_AUDIENCE on auth and settings".into(),
        "TOKEN_EXPIRED" | "TOKEN_NOT_YET_VALID" => "the machines' clocks disagree: sync them (NTP) or raise LATCHKEY_LEEWAY_SECS".into(),
        "RATE_LIMITED" => "wait a minute and rerun, or raise the gateway's LATCHKEY_SYNC_RATE_PER_MINUTE".into(),
        "DATA_INTEGRITY" => "a stored value does not open with the configured master keys: compare LATCHKEY_ENCRYPTION_KEYS (`latchkey fingerprint`) and run `latchkey keys status`".into(),
        "UNREACHABLE" => "start `latchkey gateway`, or point --gateway-url / LATCHKEY_GATEWAY_URL at it".into(),
        other => format!("see docs/TROUBLESHOOTING.md for {other} and the gateway's log"),
    }
}

/// The gateway's version from `GET /healthz`.
async fn gateway_version(gateway: &Gateway) -> Option<String> {
    let response = gateway
        .http
        .get(gateway.url("/healthz"))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    Some(
        body["version"]
            .as_str()
            .unwrap_or("unknown (older than 0.1.0)")
            .to_owned(),
    )
}

/// Every service reached runs this doctor's release; a mix means a rollout stopped halfway.
fn check_versions(checks: &mut Vec<Check>, versions: &[(String, String)]) {
    let ours = latchkey_common::telemetry::VERSION;
    let listed = versions
        .iter()
        .map(|(name, version)| format!("{name} {version}"))
        .collect::<Vec<_>>()
        .join(", ");
    if versions.iter().all(|(_, version)| version == ours) {
        checks.push(Check::pass(
            "versions",
            format!("{listed} (this doctor {ours})"),
        ));
    } else {
        checks.push(Check::fail(
            "versions",
            format!("the services run different releases: {listed}; this doctor is {ours}"),
            "finish the rollout: run the same image (or binary) for every service",
        ));
    }
}

/// `GET /readyz`; answers whether the gateway answered HTTP at all (so the probe can run and name
/// what is behind it).
async fn check_gateway_ready(checks: &mut Vec<Check>, gateway: &Gateway) -> bool {
    let title = format!("service reachable: gateway ({})", gateway.base);
    match gateway.http.get(gateway.url("/readyz")).send().await {
        Ok(response) if response.status().is_success() => {
            checks.push(Check::pass(
                title,
                "GET /readyz: ready (auth and settings serving)",
            ));
            true
        }
        Ok(response) => {
            let problem = GatewayRefusal::of(response).await;
            checks.push(Check::fail(
                title,
                format!("GET /readyz: {}", problem.cause()),
                fix_for(&problem.code, &problem.detail),
            ));
            true
        }
        Err(error) => {
            checks.push(Check::fail(
                title,
                format!("cannot connect: {error}"),
                fix_for("UNREACHABLE", ""),
            ));
            false
        }
    }
}

/// The gateway's `/.well-known/jwks.json` names the same keys auth publishes.
async fn check_gateway_jwks(checks: &mut Vec<Check>, gateway: &Gateway, auth_kids: &[String]) {
    let name = "JWKS as the gateway serves it";
    let response = match gateway
        .http
        .get(gateway.url("/.well-known/jwks.json"))
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            checks.push(GatewayRefusal::of(response).await.check(name));
            return;
        }
        Err(error) => {
            checks.push(GatewayRefusal::transport(&error).check(name));
            return;
        }
    };
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let mut served: Vec<String> = body["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut published = auth_kids.to_vec();
    served.sort();
    published.sort();
    if served == published {
        checks.push(Check::pass(
            name,
            format!("the same {} key(s) auth publishes", served.len()),
        ));
    } else {
        checks.push(Check::fail(
            name,
            format!(
                "the gateway serves [{}] but auth publishes [{}]: they talk to different auths",
                served.join(", "),
                published.join(", ")
            ),
            "point the gateway's LATCHKEY_AUTH_URL at the same auth doctor reaches (LATCHKEY_AUTH_URL / --auth-url)",
        ));
    }
}

const PROBE_SETTING: &str = "DOCTOR_PROBE";

/// Signs a probe user in through the gateway, round-trips one setting, and deletes the user
/// (which deletes their settings too). Every step is its own line.
async fn live_probe(checks: &mut Vec<Check>, gateway: &Gateway, secret: &str) {
    let subject = uuid::Uuid::new_v4().simple().to_string();
    let step = "live probe: sync probe user";
    let answer = gateway
        .http
        .post(gateway.url("/api/auth/sync-user"))
        .header("X-Latchkey-Sync-Secret", secret)
        .json(&serde_json::json!({
            "provider": "latchkey-doctor",
            "subject": subject,
            "email": format!("doctor-{subject}@latchkey-doctor.invalid"),
            "name": "latchkey doctor probe",
        }))
        .send()
        .await;
    let token = match answer {
        Ok(response) if response.status().is_success() => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            match body["access_token"].as_str() {
                Some(token) => {
                    checks.push(Check::pass(
                        step,
                        format!(
                            "POST /api/auth/sync-user: user {} (provider latchkey-doctor), token issued",
                            body["user"]["id"].as_str().unwrap_or("?")
                        ),
                    ));
                    token.to_owned()
                }
                None => {
                    checks.push(Check::fail(
                        step,
                        "POST /api/auth/sync-user answered without an access_token",
                        "check that --gateway-url points at a Latchkey gateway",
                    ));
                    return;
                }
            }
        }
        Ok(response) => {
            checks.push(GatewayRefusal::of(response).await.check(step));
            return;
        }
        Err(error) => {
            checks.push(GatewayRefusal::transport(&error).check(step));
            return;
        }
    };
    let value = format!("doctor-{}", uuid::Uuid::new_v4().simple());
    let _ = probe_settings(checks, gateway, &token, &value).await;
    // Clean up whatever happened above.
    let step = "live probe: delete probe user";
    match gateway
        .http
        .delete(gateway.url("/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => checks.push(Check::pass(
            step,
            "DELETE /api/auth/me: the probe user and their settings are gone",
        )),
        Ok(response) => checks.push(GatewayRefusal::of(response).await.check(step)),
        Err(error) => checks.push(GatewayRefusal::transport(&error).check(step)),
    }
}

/// Read, write, read back masked. Stops at the first failing step.
async fn probe_settings(
    checks: &mut Vec<Check>,
    gateway: &Gateway,
    token: &str,
    value: &str,
) -> Option<()> {
    let step = "live probe: read settings";
    let before = list_settings(checks, gateway, token, step).await?;
    checks.push(Check::pass(
        step,
        format!(
            "GET /api/settings with the probe token: {} setting(s)",
            before.len()
        ),
    ));

    let step = "live probe: write a setting";
    let answer = gateway
        .http
        .patch(gateway.url("/api/settings"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "settings": { PROBE_SETTING: value } }))
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => checks.push(Check::pass(
            step,
            format!("PATCH /api/settings stored {PROBE_SETTING}"),
        )),
        Ok(response) => {
            checks.push(GatewayRefusal::of(response).await.check(step));
            return None;
        }
        Err(error) => {
            checks.push(GatewayRefusal::transport(&error).check(step));
            return None;
        }
    }

    let step = "live probe: list shows it masked";
    let after = list_settings(checks, gateway, token, step).await?;
    let entry = after
        .iter()
        .find(|s| s["name"].as_str() == Some(PROBE_SETTING));
    match entry {
        Some(entry)
            if entry["masked"]
                .as_str()
                .is_some_and(|m| m != value && !m.contains(value))
                && entry["length"].as_u64() == Some(value.len() as u64) =>
        {
            checks.push(Check::pass(
                step,
                format!(
                    "{PROBE_SETTING} listed as {} (length {})",
                    entry["masked"].as_str().unwrap_or_default(),
                    value.len()
                ),
            ));
            Some(())
        }
        Some(entry) => {
            checks.push(Check::fail(
                step,
                format!("{PROBE_SETTING} is listed but not masked as expected: {entry}"),
                "report this as a bug: the list must never carry plaintext",
            ));
            None
        }
        None => {
            checks.push(Check::fail(
                step,
                format!("{PROBE_SETTING} was stored but the list does not show it"),
                "the gateway may balance across settings instances on different databases: give every settings instance the same LATCHKEY_DATABASE_URL",
            ));
            None
        }
    }
}

/// `GET /api/settings`; a failure is pushed as the step's ✘.
async fn list_settings(
    checks: &mut Vec<Check>,
    gateway: &Gateway,
    token: &str,
    step: &str,
) -> Option<Vec<serde_json::Value>> {
    match gateway
        .http
        .get(gateway.url("/api/settings"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            Some(body["settings"].as_array().cloned().unwrap_or_default())
        }
        Ok(response) => {
            checks.push(GatewayRefusal::of(response).await.check(step));
            None
        }
        Err(error) => {
            checks.push(GatewayRefusal::transport(&error).check(step));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_stopped_halfway_is_a_failed_versions_check() {
        let ours = latchkey_common::telemetry::VERSION.to_owned();
        let mut checks = Vec::new();
        check_versions(
            &mut checks,
            &[
                ("auth".into(), ours.clone()),
                ("settings".into(), "0.0.9".into()),
            ],
        );
        let json = serde_json::to_value(&checks[0]).unwrap();
        assert_eq!(json["ok"], false, "{json}");
        assert!(
            json["cause"].as_str().unwrap().contains("settings 0.0.9"),
            "{json}"
        );
        assert!(
            json["fix"].as_str().unwrap().contains("same image"),
            "{json}"
        );
        checks.clear();
        check_versions(&mut checks, &[("auth".into(), ours)]);
        assert_eq!(serde_json::to_value(&checks[0]).unwrap()["ok"], true);
    }
}
