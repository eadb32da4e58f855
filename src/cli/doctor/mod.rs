//! `latchkey doctor`: the whole chain, checked — configuration (a setting under two names with
//! different values included), databases, services, JWKS, the sync secret as auth sees it, then
//! a live probe — as a ✔/✘ checklist where every ✘ names its cause and the command that fixes
//! it. `--json` for machines; non-zero exit on any ✘. Run next to `latchkey dev` it reads dev's
//! files beneath the environment ([`super::devfiles`]); `--web-app-env` adds the web app's side
//! ([`web_app_env`]).
//!
//! - [`check`]: the checklist's lines and how they print;
//! - [`config`]: each service's settings as it would validate them at start;
//! - [`database`]: reachable, migrated, master key ids configured;
//! - [`signing_keys`]: each signing key's state and when it changes next;
//! - [`grpc`]: auth and settings health, auth's keys, the sync secret as auth sees it;
//! - [`gateway`]: the gateway over HTTP, and its answers when they are not the expected ones;
//! - [`probe`]: a throwaway user and setting round-tripped through the gateway;
//! - [`fixes`]: the fix for each catalogue [`Reason`](latchkey_proto::Reason) the probe meets;
//! - [`web_app_env`]: the web app's env file against this Latchkey.

mod check;
mod config;
mod database;
mod fixes;
mod gateway;
mod grpc;
mod probe;
mod signing_keys;
mod web_app_env;

use super::Failure;
use check::{Check, check_versions, print_checklist};
use config::{check_auth_config, check_gateway_config, check_names, check_settings_config};
use database::check_database;
use gateway::{Gateway, check_gateway_jwks, check_gateway_ready, gateway_url, gateway_version};
use grpc::{SyncProbe, check_jwks, check_service_health, check_sync_secret};
use latchkey_common::ExposeSecret;
use latchkey_common::config::{AUTH_URL, Config, SETTINGS_URL, SYNC_SECRET};
use probe::live_probe;
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
        check_database(
            args,
            config,
            auth_config.as_ref(),
            settings_config.as_ref(),
            &mut checks,
        )
        .await;
    }

    let auth_url = args
        .auth_url
        .clone()
        .or_else(|| config.get(AUTH_URL).map(str::to_owned))
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
        &AUTH_URL.env(),
    )
    .await;
    if let Some(channel) = auth_channel.clone() {
        auth_kids = check_jwks(&mut checks, channel.clone()).await;
        if let Some(secret) = config.secret(SYNC_SECRET) {
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
                format!(
                    "{} is not set here, so doctor cannot compare it with auth's",
                    SYNC_SECRET.env()
                ),
                format!("set {} to the value your web app sends", SYNC_SECRET.env()),
            ));
        }
    }

    match args
        .settings_url
        .clone()
        .or_else(|| config.get(SETTINGS_URL).map(str::to_owned))
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
                &SETTINGS_URL.env(),
            )
            .await;
        }
        None => checks.push(Check::fail(
            "service reachable: settings",
            "doctor does not know where settings listens",
            format!(
                "set {}=http://HOST:PORT or pass --settings-url",
                SETTINGS_URL.env()
            ),
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
        match config.secret(SYNC_SECRET) {
            Some(secret) => live_probe(&mut checks, &gateway, secret.expose_secret()).await,
            None => checks.push(Check::fail(
                "live probe: sync probe user",
                format!(
                    "{} is not set here, so doctor cannot sign a probe user in",
                    SYNC_SECRET.env()
                ),
                format!(
                    "set {} to the value your web app sends (compare with `latchkey fingerprint` where auth runs)",
                    SYNC_SECRET.env()
                ),
            )),
        }
    }
    if let Some(path) = &args.web_app_env {
        let reach = web_app_env::Reach {
            auth: auth_channel,
            http: &gateway.http,
            gateway: &gateway.base,
        };
        web_app_env::check(&mut checks, path, config, reach).await;
    }
    checks
}
