//! `latchkey keys …`: signing key rotation and status, straight against auth's database. Running
//! auth replicas pick the new key up on their next key refresh; no restart.

use super::Failure;
use clap::Subcommand;
use latchkey_common::ExposeSecret;
use latchkey_common::clock::{Clock, SystemClock, rfc3339};
use latchkey_common::config::Config;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key active; the old one stays published until its tokens expire.
    RotateSigning,
    /// Show every signing key: active, retired (published until …).
    Status,
}

pub async fn run(command: KeysCommand, config: &Config) -> Result<(), Failure> {
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
        KeysCommand::Status => {
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
