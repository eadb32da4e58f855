//! Subcommands, each a thin wrapper that validates configuration and calls a library.

mod devfiles;
mod doctor;
mod gateway;
mod keys;
mod ops;
#[cfg(test)]
mod services_column;
mod settings;
mod users;

use clap::{Parser, Subcommand};
use latchkey_common::config::{
    Config, DATABASE_URL, LOG_FORMAT, METRICS_LISTEN, Problems, Setting,
};
use latchkey_common::shutdown::Shutdown;
use latchkey_common::{ExposeSecret, SecretString};
use std::process::ExitCode;

/// Latchkey: auth-and-settings backend. Every subcommand reads `latchkey.toml` and `LATCHKEY_*`.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the auth service (users, tokens, signing keys) over gRPC.
    Auth,
    /// Run the REST gateway (the browser's and web app's door, and the Settings page).
    Gateway,
    /// Run auth, settings and the gateway in one process on ./.latchkey/ (local development).
    Dev,
    /// Run the settings service (per-user encrypted values, .env import, reveal) over gRPC;
    /// `settings export | import` move one user's values as a `.env`, straight on the database.
    Settings {
        #[command(subcommand)]
        command: Option<settings::SettingsCommand>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Signing and encryption key management.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Look up, disable, enable a user or revoke their tokens (auth's database).
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Print the fingerprint of each secret in this environment, to compare machines.
    Fingerprint,
    /// List every setting: env var, file key, default, secret or not, which services need it.
    Config(ops::ConfigArgs),
    /// Check the whole chain and print a checklist with the fix for every problem.
    Doctor(doctor::DoctorArgs),
}

impl Command {
    /// The `service.name` this process reports to tracing backends.
    fn service_name(&self) -> &'static str {
        match self {
            Command::Auth => "latchkey-auth",
            Command::Settings { command: None } => "latchkey-settings",
            Command::Gateway => "latchkey-gateway",
            _ => "latchkey",
        }
    }

    /// Operator commands, which next to `latchkey dev` read its files beneath the environment
    /// (never the services, which read only their own configuration).
    fn reads_dev_files(&self) -> bool {
        matches!(
            self,
            Command::Doctor(_)
                | Command::Fingerprint
                | Command::Migrate
                | Command::Keys { .. }
                | Command::Users { .. }
                | Command::Settings { command: Some(_) }
        )
    }

    /// Whether `run` prints the line about dev's files (doctor and fingerprint print their own).
    fn notes_dev_files(&self) -> bool {
        self.reads_dev_files() && !matches!(self, Command::Doctor(_) | Command::Fingerprint)
    }
}

/// Whether logs are JSON (`LATCHKEY_LOG_FORMAT=json`), read by every command.
fn json_logs(config: &Config) -> bool {
    config.get(LOG_FORMAT) == Some("json")
}

/// Where to serve metrics (`LATCHKEY_METRICS_LISTEN`), read by every command.
fn metrics_address(config: &Config) -> Option<&str> {
    config.get(METRICS_LISTEN)
}

/// Serves Prometheus metrics when `LATCHKEY_METRICS_LISTEN` is set.
async fn serve_metrics(config: &Config, shutdown: &Shutdown) -> anyhow::Result<()> {
    use anyhow::Context;
    let Some(addr) = metrics_address(config) else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("{}: cannot bind {addr}", METRICS_LISTEN.env()))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics on /metrics");
    tokio::spawn(latchkey_common::metrics::serve(listener, shutdown.clone()));
    Ok(())
}

/// Runs a subcommand; configuration problems exit with code 2, runtime failures with 1.
pub async fn run(cli: Cli) -> ExitCode {
    // Operator commands run next to `latchkey dev` read its files the way dev does; the
    // services themselves read only their own configuration.
    let (config, dev_files) = if cli.command.reads_dev_files() {
        devfiles::config_next_to_dev()
    } else {
        (Config::load(), None)
    };
    let _telemetry =
        latchkey_common::telemetry::init(json_logs(&config), cli.command.service_name());
    let metrics_shutdown = Shutdown::new();
    if let Err(error) = serve_metrics(&config, &metrics_shutdown).await {
        eprintln!("latchkey: {error:#}");
        return ExitCode::FAILURE;
    }
    if !matches!(cli.command, Command::Dev) {
        // dev logs its own, from the configuration it builds over its generated secrets
        log_config_notes(&config);
    }
    if let Some(files) = dev_files.as_ref().filter(|_| cli.command.notes_dev_files()) {
        // on stderr: `settings export` writes a .env on stdout
        eprintln!("{}", devfiles::note(files));
    }
    let result = match cli.command {
        Command::Auth => run_auth(&config).await,
        Command::Settings { command: None } => settings::run_settings(&config).await,
        Command::Settings {
            command: Some(command),
        } => settings::run_command(command, &config).await,
        Command::Gateway => gateway::run_gateway(&config).await,
        Command::Dev => gateway::run_dev().await,
        Command::Migrate => ops::migrate(&config).await,
        Command::Keys { command } => keys::run(command, &config).await,
        Command::Users { command } => users::run(command, &config).await,
        Command::Fingerprint => ops::fingerprint(&config, dev_files.as_ref()),
        Command::Config(args) => ops::config(&args),
        Command::Doctor(args) => doctor::run(&args, &config, dev_files).await,
    };
    metrics_shutdown.trigger();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(problems)) => {
            eprintln!("latchkey: refusing to start.\n{problems}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(error)) => {
            eprintln!("latchkey: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// How a subcommand failed.
pub enum Failure {
    Config(Problems),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Runtime(error)
    }
}

/// A refusal from the catalogue as one error: the reason, its sentence and every violation
/// (a `.env` line, a field), for the operator commands that call the domains directly.
fn refused(error: impl Into<latchkey_proto::ApiError>) -> Failure {
    let api = error.into();
    let mut message = format!("{}: {}", api.reason.as_str(), api.detail);
    for violation in &api.violations {
        message.push_str(&format!(
            "\n  {}: {}",
            violation.field, violation.description
        ));
    }
    Failure::Runtime(anyhow::anyhow!(message))
}

impl From<Problems> for Failure {
    fn from(problems: Problems) -> Self {
        Failure::Config(problems)
    }
}

/// The shutdown handle of a service: `LATCHKEY_SHUTDOWN_DELAY` and `LATCHKEY_SHUTDOWN_TIMEOUT`
/// validated (call `on_os_signals` once the service is built).
fn shutdown_for(config: &Config) -> Result<Shutdown, Failure> {
    let mut problems = config.load_problems();
    let timing = latchkey_common::shutdown::Timing::from_config(config, &mut problems);
    Ok(problems.into_result(Shutdown::with_timing(timing))?)
}

async fn run_auth(config: &Config) -> Result<(), Failure> {
    let auth = latchkey_auth::AuthConfig::from_config(config)?;
    let shutdown = shutdown_for(config)?;
    let clock = std::sync::Arc::new(latchkey_common::clock::SystemClock);
    let app = latchkey_auth::build(&auth, clock).await?;
    log_startup(
        "auth",
        app.local_addr(),
        config,
        &[
            latchkey_common::config::SYNC_SECRET,
            latchkey_common::config::SEAL_KEY,
            latchkey_common::config::LEGACY_HS256_SECRET,
        ],
    );
    shutdown.on_os_signals();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}

/// Logs what loading noticed: aliases read (INFO) and settings given under several names with
/// different values (WARN; production also refuses them as problems).
fn log_config_notes(config: &Config) {
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
    for conflict in config.conflicts() {
        tracing::warn!(
            setting = %conflict.setting,
            detail = %conflict.what(),
            fix = %conflict.fix(),
            "one setting is set under several names with different values"
        );
    }
}

/// One line: version, address, database kind (no credentials) and secret fingerprints; a
/// service without a database or secrets (the gateway) prints neither field.
fn log_startup(
    service: &str,
    addr: std::net::SocketAddr,
    config: &Config,
    secrets: &[Setting<SecretString>],
) {
    let uses_database = DATABASE_URL
        .spec()
        .services
        .iter()
        .any(|s| s.as_str() == service);
    let db = uses_database.then(|| {
        config
            .raw(DATABASE_URL)
            .and_then(latchkey_common::db::DbKind::of)
            .map(|k| k.as_str())
            .unwrap_or("none")
    });
    let fingerprints: Vec<String> = secrets
        .iter()
        .filter_map(|&setting| {
            config.secret(setting).map(|v| {
                format!(
                    "{}={}",
                    setting.key(),
                    latchkey_common::config::fingerprint::of(setting.spec(), v.expose_secret())
                )
            })
        })
        .collect();
    let fingerprints = (!fingerprints.is_empty()).then(|| fingerprints.join(" "));
    tracing::info!(
        service,
        version = env!("CARGO_PKG_VERSION"),
        %addr,
        database = db,
        fingerprints = fingerprints.map(tracing::field::display),
        "latchkey started"
    );
}
