//! `latchkey settings`: the settings service alone, for production.

use super::{Failure, log_startup, refused, shutdown_for};
use latchkey_common::config::Config;

/// Validates settings' configuration, checks the master keys against stored rows, serves.
pub async fn run_settings(config: &Config) -> Result<(), Failure> {
    let settings = latchkey_settings::SettingsConfig::from_config(config)?;
    let shutdown = shutdown_for(config)?;
    let clock = std::sync::Arc::new(latchkey_common::clock::SystemClock);
    let app = latchkey_settings::build(&settings, clock).await?;
    log_startup(
        "settings",
        app.local_addr(),
        config,
        &[latchkey_common::config::ENCRYPTION_KEYS],
    );
    tracing::info!(auth = %settings.auth_urls.join(","), "settings verifies tokens against auth's JWKS");
    shutdown.on_os_signals();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}

/// Operator commands on one user's settings, straight against settings' database with the
/// configured master keys (the service may keep running).
#[derive(Debug, clap::Subcommand)]
pub enum SettingsCommand {
    /// Print every setting of a user as a `.env` that parses back to the same values. Each value
    /// written out is recorded in the reveal audit log, with caller `cli:<--caller>`.
    Export {
        /// The user's id (the `sub` of their tokens).
        #[arg(long)]
        user_id: String,
        /// Write here (created with mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Who is exporting, for the audit log.
        #[arg(long, default_value = "operator")]
        caller: String,
    },
    /// Import a `.env` file into a user's settings (merge, or `--replace`); all or nothing.
    Import {
        /// The user's id (the `sub` of their tokens). Not checked against auth (settings does not
        /// own users): `latchkey users show <email>` gives it.
        #[arg(long)]
        user_id: String,
        /// The `.env` file to read; `-` reads standard input.
        #[arg(long)]
        file: std::path::PathBuf,
        /// Make the file the whole set: settings it does not name are removed.
        #[arg(long)]
        replace: bool,
        /// Only say what would be added, changed and removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Per user holding settings: how many required declared settings are missing or invalid
    /// (counts, never values or names). Exits non-zero when any user is incomplete.
    Check,
}

/// Runs one operator command on settings' database.
pub async fn run_command(command: SettingsCommand, config: &Config) -> Result<(), Failure> {
    let settings = latchkey_settings::SettingsConfig::from_config(config)?;
    let db = latchkey_settings::store::connect_migrated(&settings).await?;
    let clock = std::sync::Arc::new(latchkey_common::clock::SystemClock);
    let schema = latchkey_settings::schema::source::SchemaSource::fixed(settings.schema.clone());
    let core = latchkey_settings::service::SettingsCore::new(db, settings.keys.clone(), clock)
        .with_schema(std::sync::Arc::new(schema));
    match command {
        SettingsCommand::Export {
            user_id,
            out,
            caller,
        } => export(&core, &user_id, out.as_deref(), &caller).await,
        SettingsCommand::Import {
            user_id,
            file,
            replace,
            dry_run,
        } => import(&core, &user_id, &file, replace, dry_run).await,
        SettingsCommand::Check => check(&core).await,
    }
}

/// `latchkey settings check`: one line per incomplete user, then a summary.
async fn check(core: &latchkey_settings::service::SettingsCore) -> Result<(), Failure> {
    let schema = core.schema();
    let required = schema.settings.values().filter(|d| d.required).count();
    if required == 0 {
        println!(
            "the declared settings require nothing (LATCHKEY_SETTINGS_SCHEMA): every user is complete"
        );
        return Ok(());
    }
    let users = core.completeness().await.map_err(refused)?;
    let incomplete: Vec<_> = users
        .iter()
        .filter(|u| u.missing > 0 || u.invalid > 0)
        .collect();
    for user in &incomplete {
        println!(
            "user {}: {} required setting(s) missing, {} invalid",
            user.user_id, user.missing, user.invalid
        );
    }
    println!(
        "{} of {} user(s) holding settings are incomplete ({required} required setting(s) declared)",
        incomplete.len(),
        users.len()
    );
    if incomplete.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} user(s) miss required settings or hold invalid ones",
            incomplete.len()
        )
        .into())
    }
}

async fn export(
    core: &latchkey_settings::service::SettingsCore,
    user_id: &str,
    out: Option<&std::path::Path>,
    caller: &str,
) -> Result<(), Failure> {
    use latchkey_settings::service::{Caller, REVEAL_SCOPE};
    use std::io::Write;
    let caller = Caller::Service {
        client_id: format!("cli:{caller}"),
        scopes: vec![REVEAL_SCOPE.to_owned()],
    };
    // The file is claimed before anything is revealed, so a refused path audits nothing.
    let mut sink: Box<dyn Write> = match out {
        None => Box::new(std::io::stdout()),
        Some(path) => Box::new(create_private(path)?),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let text = match core.export(&caller, user_id, &request_id).await {
        Ok(text) => text,
        Err(error) => {
            if let Some(path) = out {
                let _ = std::fs::remove_file(path);
            }
            return Err(refused(error));
        }
    };
    if text.is_empty() {
        eprintln!(
            "latchkey: user {user_id} has no settings (ids are not checked against auth: is it the `sub` of their tokens?)"
        );
    }
    if let Err(error) = sink.write_all(text.as_bytes()).and_then(|()| sink.flush()) {
        if let Some(path) = out {
            let _ = std::fs::remove_file(path);
        }
        return Err(anyhow::Error::from(error).into());
    }
    Ok(())
}

/// Creates a file only its owner can read, refusing to overwrite one that exists.
fn create_private(path: &std::path::Path) -> Result<std::fs::File, Failure> {
    use anyhow::Context;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    Ok(options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?)
}

async fn import(
    core: &latchkey_settings::service::SettingsCore,
    user_id: &str,
    file: &std::path::Path,
    replace: bool,
    dry_run: bool,
) -> Result<(), Failure> {
    use anyhow::Context;
    use latchkey_settings::service::{Caller, ImportMode};
    if user_id.trim().is_empty() {
        return Err(anyhow::anyhow!("INVALID_ARGUMENT: --user-id must not be empty").into());
    }
    let text = zeroize::Zeroizing::new(if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    });
    let mode = if replace {
        ImportMode::Replace
    } else {
        ImportMode::Merge
    };
    let outcome = core
        .import(&Caller::User(user_id.to_owned()), &text, mode, dry_run)
        .await
        .map_err(refused)?;
    let verb = if outcome.applied {
        "imported"
    } else {
        "would import (dry run: values are not compared, so every stored name the file sets is listed as changed)"
    };
    println!(
        "{verb} for {user_id}: added {:?}, changed {:?}, removed {:?}, unchanged {}",
        outcome.added,
        outcome.changed,
        outcome.removed,
        outcome.unchanged.len()
    );
    for warning in &outcome.warnings {
        println!(
            "  warning: line {} ({}): {}",
            warning.line, warning.name, warning.message
        );
    }
    Ok(())
}
