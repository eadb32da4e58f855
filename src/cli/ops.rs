//! Operator commands: `migrate`, `fingerprint`, `config`.

use super::Failure;
use latchkey_common::ExposeSecret;
use latchkey_common::config::{Config, DATABASE_URL, SETTINGS, Service};

/// Applies every service's migrations to the configured database.
pub async fn migrate(config: &Config) -> Result<(), Failure> {
    let url = config
        .secret(DATABASE_URL)
        .ok_or_else(|| anyhow::anyhow!("{} is empty", DATABASE_URL.env()))?;
    let db = latchkey_common::db::connect(url.expose_secret())
        .await
        .map_err(anyhow::Error::from)?;
    let pending = latchkey_auth::store::pending_migrations(&db)
        .await
        .map_err(anyhow::Error::from)?;
    latchkey_auth::store::migrate(&db)
        .await
        .map_err(anyhow::Error::from)?;
    println!("auth: {pending} migration(s) applied, schema up to date");
    let pending = latchkey_settings::store::pending_migrations(&db)
        .await
        .map_err(anyhow::Error::from)?;
    latchkey_settings::store::migrate(&db)
        .await
        .map_err(anyhow::Error::from)?;
    println!("settings: {pending} migration(s) applied, schema up to date");
    Ok(())
}

/// Prints `NAME  fingerprint  (source)` for each secret that is set, then every name of a
/// setting given under several names with different values. Next to `latchkey dev`, its files
/// are read beneath the environment, as dev reads them.
pub fn fingerprint(
    config: &Config,
    dev_files: Option<&Result<Vec<std::path::PathBuf>, String>>,
) -> Result<(), Failure> {
    if let Some(files) = dev_files {
        println!("{}", super::devfiles::note(files));
    }
    for &spec in SETTINGS.iter().filter(|s| s.secret) {
        match config.raw(spec) {
            Some(value) => {
                let source = config
                    .source(spec)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                println!(
                    "{:<32} {}  (from {source})",
                    spec.env(),
                    latchkey_common::config::fingerprint::of(spec, value)
                );
            }
            None => println!("{:<32} (not set)", spec.env()),
        }
    }
    for conflict in config.conflicts() {
        println!("\n✘ {}", conflict.what());
        println!("  fix: {}", conflict.fix());
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Only settings a service refuses to start without.
    #[arg(long)]
    required: bool,
    /// Only settings this service reads (auth, settings, gateway).
    #[arg(long, value_parser = ["auth", "settings", "gateway"])]
    service: Option<String>,
    /// Print the README's Markdown table instead.
    #[arg(long)]
    markdown: bool,
}

/// Lists settings; with `--required` prints bare env names (for scripts such as deploy/preflight).
pub fn config(args: &ConfigArgs) -> Result<(), Failure> {
    if args.markdown {
        print!("{}", latchkey_common::config::markdown_table());
        return Ok(());
    }
    let wanted = |services: &[Service]| {
        args.service
            .as_deref()
            .is_none_or(|name| services.iter().any(|s| s.as_str() == name))
    };
    for spec in SETTINGS {
        if args.required {
            if !spec.required_by.is_empty() && wanted(spec.required_by) {
                println!("{}", spec.env());
            }
            continue;
        }
        if !wanted(spec.services) {
            continue;
        }
        println!("{}", latchkey_common::config::docs::describe(spec));
    }
    Ok(())
}
