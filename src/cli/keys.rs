//! `latchkey keys …`: signing key rotation and status, straight against auth's database (running
//! auth replicas pick the new key up on their next key refresh; no restart), and re-encryption of
//! settings under the active master key, online, with rows and encryptions per master key.

use super::Failure;
use clap::Subcommand;
use latchkey_common::ExposeSecret;
use latchkey_common::clock::{Clock, SystemClock, rfc3339};
use latchkey_common::config::Config;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key active; the old one stays published until its tokens expire.
    RotateSigning,
    /// Re-encrypt every setting not under the active master key (the first of
    /// LATCHKEY_ENCRYPTION_KEYS), in batches, while settings keeps serving. Resumable.
    RotateEncryption {
        /// Rows re-encrypted per batch.
        #[arg(long, default_value_t = latchkey_settings::rotation::DEFAULT_BATCH)]
        batch_size: u64,
    },
    /// Show every signing key, and the settings rows and encryptions per master key.
    Status,
}

pub async fn run(command: KeysCommand, config: &Config) -> Result<(), Failure> {
    match command {
        KeysCommand::RotateEncryption { batch_size } => rotate_encryption(config, batch_size).await,
        KeysCommand::Status => {
            let auth = latchkey_auth::AuthConfig::from_config(config);
            let settings = latchkey_settings::SettingsConfig::from_config(config);
            if let (Err(problems), Err(more)) = (&auth, &settings) {
                let mut all = problems.clone();
                all.0
                    .extend(more.0.iter().filter(|p| !problems.0.contains(p)).cloned());
                return Err(Failure::Config(all));
            }
            match auth {
                Ok(_) => signing(KeysCommand::Status, config).await?,
                Err(_) => println!(
                    "signing keys: skipped (auth's configuration is incomplete; `latchkey config --service auth`)"
                ),
            }
            match settings {
                Ok(settings) => encryption_status(&settings).await,
                Err(_) => {
                    println!(
                        "encryption keys: skipped (settings' configuration is incomplete; `latchkey config --service settings`)"
                    );
                    Ok(())
                }
            }
        }
        KeysCommand::RotateSigning => signing(command, config).await,
    }
}

async fn signing(command: KeysCommand, config: &Config) -> Result<(), Failure> {
    let auth = latchkey_auth::AuthConfig::from_config(config)?;
    let db = latchkey_common::db::connect(auth.database_url.expose_secret())
        .await
        .map_err(anyhow::Error::from)?;
    latchkey_auth::store::migrate(&db)
        .await
        .map_err(anyhow::Error::from)?;
    match command {
        KeysCommand::RotateSigning => {
            let now = SystemClock.now();
            latchkey_auth::keys::ensure_active_key(&db, &auth.seal_key, now)
                .await
                .map_err(anyhow::Error::from)?;
            let rotation = latchkey_auth::keys::rotate(
                &db,
                &auth.seal_key,
                now,
                auth.rules.ttl,
                auth.rules.leeway,
            )
            .await
            .map_err(anyhow::Error::from)?;
            println!("new active signing key: {}", rotation.new_kid);
            for kid in &rotation.retired {
                println!(
                    "retired {kid}: still published until {}",
                    rfc3339(rotation.publish_until)
                );
            }
            for kid in &rotation.removed {
                println!("removed {kid}: its tokens have all expired");
            }
            println!(
                "running auth services pick the new key up within {}s; no restart needed",
                auth.key_refresh.as_secs()
            );
        }
        KeysCommand::Status | KeysCommand::RotateEncryption { .. } => {
            println!("signing keys:");
            for key in latchkey_auth::keys::status(&db)
                .await
                .map_err(anyhow::Error::from)?
            {
                let state = match (key.retired_at, key.publish_until) {
                    (None, _) => "active".to_owned(),
                    (Some(_), Some(until)) => {
                        format!("retired, published until {}", rfc3339(until))
                    }
                    (Some(_), None) => "retired".to_owned(),
                };
                println!(
                    "{}  {}  created {}  {state}",
                    key.kid,
                    key.algorithm,
                    rfc3339(key.created_at)
                );
            }
        }
    }
    Ok(())
}

/// Rows and encryptions per master key, with the nonce-budget warning and removability.
async fn encryption_status(settings: &latchkey_settings::SettingsConfig) -> Result<(), Failure> {
    use latchkey_settings::rotation::{NONCE_BUDGET, NONCE_WARNING};
    let db = latchkey_settings::store::connect_migrated(settings).await?;
    let keys = latchkey_settings::rotation::status(&db, &settings.keys)
        .await
        .map_err(anyhow::Error::from)?;
    println!("encryption keys (settings):");
    for key in &keys {
        let state = match (key.configured, key.active) {
            // A key dropped after rotation still has its encryption count; it guards nothing.
            (false, _) if key.rows == 0 => {
                "not configured, guards no rows: nothing to do".to_owned()
            }
            (false, _) => "NOT CONFIGURED: add it back to LATCHKEY_ENCRYPTION_KEYS".to_owned(),
            (true, true) => "active".to_owned(),
            (true, false) if key.rows == 0 => "inactive, guards no rows: removable".to_owned(),
            (true, false) => {
                "inactive, still guards rows: run `latchkey keys rotate-encryption`".to_owned()
            }
        };
        println!(
            "{:<12} {:>8} row(s)  {:>12} encryption(s)  {state}",
            key.key_id, key.rows, key.encryptions
        );
        if key.nonce_warning() {
            println!(
                "  warning: {} has sealed {} values, past {NONCE_WARNING} of the {NONCE_BUDGET} random-nonce AES-GCM budget; put a new key first in LATCHKEY_ENCRYPTION_KEYS and run `latchkey keys rotate-encryption`",
                key.key_id, key.encryptions
            );
        }
    }
    Ok(())
}

/// Re-encrypts every row under the active key, printing progress per batch.
async fn rotate_encryption(config: &Config, batch_size: u64) -> Result<(), Failure> {
    let settings = latchkey_settings::SettingsConfig::from_config(config)?;
    let db = latchkey_settings::store::connect_migrated(&settings).await?;
    latchkey_settings::rotation::check_keys_configured(&db, &settings.keys)
        .await
        .map_err(anyhow::Error::from)?;
    let active = settings.keys.active().id.clone();
    println!("re-encrypting settings under {active}, {batch_size} rows per batch");
    let report =
        latchkey_settings::rotation::rotate_encryption(&db, &settings.keys, batch_size, |r| {
            println!(
                "  batch {}: {} re-encrypted, {} changed concurrently, {} unreadable",
                r.batches, r.rotated, r.conflicts, r.failed
            )
        })
        .await
        .map_err(anyhow::Error::from)?;
    println!(
        "done: {} re-encrypted, {} skipped because a concurrent write already re-sealed them, {} unreadable (see the log)",
        report.rotated, report.conflicts, report.failed
    );
    encryption_status(&settings).await?;
    if report.failed > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{} setting(s) could not be opened and stay under their old key; `latchkey keys status` shows which keys still guard rows",
            report.failed
        )));
    }
    Ok(())
}
