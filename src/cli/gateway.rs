//! `latchkey gateway` (the REST gateway alone, for production) and `latchkey dev` (auth,
//! settings and the gateway in one process on an embedded SQLite file, with dev secrets
//! generated once under `./.latchkey/` — see [`super::devfiles`] — beneath anything the
//! environment sets).

use super::{Failure, devfiles, log_config_notes, log_startup, shutdown_for};
use latchkey_common::ExposeSecret;
use latchkey_common::clock::{SharedClock, SystemClock};
use latchkey_common::config::{
    AUTH_URL, Config, DATABASE_URL, ENCRYPTION_KEYS, GATEWAY_LISTEN, SEAL_KEY, SERVICE_CLIENTS,
    SETTINGS_URL, SYNC_SECRET, Source,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Runs the gateway against the configured auth and settings addresses.
pub async fn run_gateway(config: &Config) -> Result<(), Failure> {
    let gateway = latchkey_gateway::GatewayConfig::from_config(config)?;
    let shutdown = shutdown_for(config)?;
    let app = latchkey_gateway::build(&gateway, Arc::new(SystemClock)).await?;
    log_startup("gateway", app.local_addr(), config, &[]);
    tracing::info!(
        auth = %gateway.auth_urls.join(","),
        settings = %gateway.settings_urls.join(","),
        cors = %gateway.cors_origins.join(","),
        "gateway upstreams"
    );
    shutdown.on_os_signals();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}

/// Runs auth, settings and the gateway together for local development.
pub async fn run_dev() -> Result<(), Failure> {
    let process_env: HashMap<String, String> = std::env::vars().collect();
    let dir = devfiles::dir(&process_env);
    let underlay = devfiles::dev_underlay(&dir, &process_env)?;
    let config = Config::layered(underlay, process_env);
    log_config_notes(&config);
    let auth_config = latchkey_auth::AuthConfig::from_config(&config);
    let settings_config = latchkey_settings::SettingsConfig::from_config(&config);
    let gateway_config = latchkey_gateway::GatewayConfig::from_config(&config);
    let (auth_config, settings_config, mut gateway_config) =
        match (auth_config, settings_config, gateway_config) {
            (Ok(a), Ok(s), Ok(g)) => (a, s, g),
            (a, s, g) => {
                let mut all = latchkey_common::config::Problems::default();
                for problems in [a.err(), s.err(), g.err()].into_iter().flatten() {
                    for problem in problems.0 {
                        if !all.0.contains(&problem) {
                            all.0.push(problem);
                        }
                    }
                }
                return Err(Failure::Config(all));
            }
        };
    gateway_config.dev_session = config.secret(SYNC_SECRET);
    let shutdown = shutdown_for(&config)?;

    let clock: SharedClock = Arc::new(SystemClock);
    let auth = latchkey_auth::build(&auth_config, clock.clone()).await?;
    let settings = latchkey_settings::build(&settings_config, clock.clone()).await?;
    let gateway = latchkey_gateway::build(&gateway_config, clock).await?;
    log_startup("auth", auth.local_addr(), &config, &[SYNC_SECRET, SEAL_KEY]);
    log_startup(
        "settings",
        settings.local_addr(),
        &config,
        &[ENCRYPTION_KEYS],
    );
    let gateway_addr = gateway.local_addr();
    log_startup("gateway", gateway_addr, &config, &[]);
    let database_url = config.secret(DATABASE_URL).unwrap_or_default();
    devfiles::write_running(
        &dir,
        &[
            (
                &AUTH_URL.env(),
                &format!(
                    "http://{}",
                    devfiles::loopback(&auth.local_addr().to_string())
                ),
            ),
            (
                &SETTINGS_URL.env(),
                &format!(
                    "http://{}",
                    devfiles::loopback(&settings.local_addr().to_string())
                ),
            ),
            (&GATEWAY_LISTEN.env(), &gateway_addr.to_string()),
            (&DATABASE_URL.env(), database_url.expose_secret()),
        ],
    )?;

    shutdown.on_os_signals();
    let auth_task = tokio::spawn(auth.run_until_stopped(shutdown.clone()));
    let settings_task = tokio::spawn(settings.run_until_stopped(shutdown.clone()));
    let gateway_task = tokio::spawn(gateway.run_until_stopped(shutdown.clone()));

    let host = if gateway_addr.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        gateway_addr.ip().to_string()
    };
    println!(
        "\nLatchkey dev is running. Open the Settings page: http://{host}:{}/\n  (sign in with \"Sign in as dev user\"; data in {}; secrets in {}, including the service client `{}` for reveal and the audit log{}; Ctrl-C stops)\n",
        gateway_addr.port(),
        latchkey_common::db::redact_url(database_url.expose_secret()),
        dir.join(devfiles::SECRETS_FILE).display(),
        devfiles::DEV_SERVICE_CLIENT,
        overridden(&config),
    );

    let first = tokio::select! {
        r = auth_task => ("auth", r),
        r = settings_task => ("settings", r),
        r = gateway_task => ("gateway", r),
    };
    shutdown.trigger();
    match first {
        (_, Ok(Ok(()))) => Ok(()),
        (name, Ok(Err(error))) => Err(Failure::Runtime(error.context(format!("{name} stopped")))),
        (name, Err(join)) => Err(Failure::Runtime(anyhow::anyhow!(
            "{name} task failed: {join}"
        ))),
    }
}

/// `; the environment sets LATCHKEY_SYNC_SECRET (from AUTH_SYNC_SECRET)`, for each generated
/// secret something else overrides, so nobody copies a value from the file that is not used.
fn overridden(config: &Config) -> String {
    let list: Vec<String> = [SYNC_SECRET, SEAL_KEY, ENCRYPTION_KEYS, SERVICE_CLIENTS]
        .into_iter()
        .filter_map(|setting| {
            let source = config.source(setting)?;
            (!matches!(source, Source::Underlay(_)))
                .then(|| format!("{} (from {source})", setting.env()))
        })
        .collect();
    if list.is_empty() {
        String::new()
    } else {
        format!(
            "; not from that file but from your environment: {}",
            list.join(", ")
        )
    }
}
