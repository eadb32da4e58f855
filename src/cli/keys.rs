//! `latchkey keys …`: signing key rotation and status, straight against auth's database (running
//! auth replicas pick the new key up on their next key refresh; no restart), the way out when the
//! seal key that sealed them is lost (`reset-signing`), and re-encryption of settings under the
//! active master key, online, with rows and encryptions per master key.

use super::Failure;
use clap::Subcommand;
use latchkey_common::ExposeSecret;
use latchkey_common::clock::{Clock, SystemClock, rfc3339};
use latchkey_common::config::{Config, ENCRYPTION_KEYS};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key active; the old one stays published until its tokens expire.
    /// With --standby the new key is only published (it signs after --activate, or when
    /// automatic rotation gets to it); --activate KID makes a standby key the active one.
    RotateSigning {
        /// Publish a new key now and let it sign later (after one JWKS cache lifetime).
        #[arg(long, conflicts_with = "activate")]
        standby: bool,
        /// Make standby key KID the active one (the current key retires).
        #[arg(long, value_name = "KID")]
        activate: Option<String>,
        /// With --activate: activate before the key has been published one JWKS cache
        /// lifetime (verifiers holding an older cached JWKS refetch it on the unknown kid).
        #[arg(long, requires = "activate")]
        force: bool,
    },
    /// Retire every signing key the configured seal key cannot open (LATCHKEY_SEAL_KEY changed
    /// and the old one is lost) and create a new active key. Every token those keys signed stops
    /// working. Asks for confirmation unless --yes.
    ResetSigning {
        /// Reset without asking.
        #[arg(long)]
        yes: bool,
    },
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
        KeysCommand::RotateSigning { .. } => signing(command, config).await,
        KeysCommand::ResetSigning { yes } => reset_signing(config, yes).await,
    }
}

/// Opens auth's database (migrated) with auth's configuration.
async fn auth_db(
    config: &Config,
) -> Result<(latchkey_auth::AuthConfig, sea_orm::DatabaseConnection), Failure> {
    let auth = latchkey_auth::AuthConfig::from_config(config)?;
    let db = latchkey_common::db::connect(auth.database_url.expose_secret())
        .await
        .map_err(anyhow::Error::from)?;
    latchkey_auth::store::migrate(&db)
        .await
        .map_err(anyhow::Error::from)?;
    Ok((auth, db))
}

/// Lists the keys the configured seal key cannot open, asks, then retires them and makes sure a
/// readable key is active.
async fn reset_signing(config: &Config, yes: bool) -> Result<(), Failure> {
    use latchkey_auth::keys;
    let (auth, db) = auth_db(config).await?;
    let seal = format!(
        "{}, fingerprint {}",
        auth.seal_key_variable,
        auth.seal_key.fingerprint()
    );
    let now = SystemClock.now();
    let unreadable = keys::unreadable(&db, &auth.seal_key, now)
        .await
        .map_err(anyhow::Error::from)?;
    if unreadable.is_empty() {
        println!("every signing key opens with the configured seal key ({seal}); nothing to reset");
        return Ok(());
    }
    println!(
        "{} signing key(s) cannot be opened with the configured seal key ({seal}):",
        unreadable.len()
    );
    for key in &unreadable {
        println!(
            "  {}  {}  sealed with {}",
            key.kid,
            if key.active { "active" } else { "retired" },
            key.sealed_with.as_deref().unwrap_or("(not recorded)")
        );
    }
    println!(
        "resetting retires them and takes them out of the JWKS at once: every token they signed is refused (TOKEN_KEY_UNKNOWN) and users sign in again.\nif you still have the seal key they need, put it back in {} instead.",
        auth.seal_key_variable
    );
    if !yes && !confirmed()? {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "not confirmed: nothing changed"
        )));
    }
    let reset = keys::reset_signing(&db, &auth.seal_key, now, auth.key_policy.algorithm)
        .await
        .map_err(anyhow::Error::from)?;
    for key in &reset.retired {
        println!("retired {}", key.kid);
    }
    match &reset.new_kid {
        Some(kid) => println!("new active signing key: {kid} (sealed with {seal})"),
        None => {
            println!("the active signing key opens with the configured seal key; it stays active")
        }
    }
    println!(
        "auth starts again with this seal key; running auth services pick the change up within {}s",
        auth.key_refresh.as_secs()
    );
    Ok(())
}

/// Asks on the terminal; refuses (rather than guessing) when there is none.
fn confirmed() -> Result<bool, Failure> {
    use std::io::{IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "refusing to reset without confirmation: no terminal to ask on; pass --yes to confirm"
        )));
    }
    print!("retire these keys? type yes to continue: ");
    std::io::stdout().flush().map_err(anyhow::Error::from)?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(anyhow::Error::from)?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

async fn signing(command: KeysCommand, config: &Config) -> Result<(), Failure> {
    let (auth, db) = auth_db(config).await?;
    match command {
        KeysCommand::RotateSigning {
            standby,
            activate,
            force,
        } => {
            let now = SystemClock.now();
            latchkey_auth::keys::ensure_active_key(
                &db,
                &auth.seal_key,
                now,
                auth.key_policy.algorithm,
            )
            .await
            .map_err(anyhow::Error::from)?;
            match (standby, activate) {
                (true, _) => add_standby(&auth, &db, now).await?,
                (false, Some(kid)) => activate_key(&auth, &db, &kid, now, force).await?,
                (false, None) => rotate_now(&auth, &db, now).await?,
            }
            println!(
                "running auth services pick the change up within {}s; no restart needed",
                auth.key_refresh.as_secs()
            );
        }
        KeysCommand::Status
        | KeysCommand::RotateEncryption { .. }
        | KeysCommand::ResetSigning { .. } => signing_status(&auth, &db).await?,
    }
    Ok(())
}

fn token_life(auth: &latchkey_auth::AuthConfig) -> latchkey_auth::life_cycle::TokenLife {
    latchkey_auth::life_cycle::TokenLife {
        ttl: auth.rules.ttl,
        leeway: auth.rules.leeway,
    }
}

/// `rotate-signing`: a new key of the configured algorithm signs at once.
async fn rotate_now(
    auth: &latchkey_auth::AuthConfig,
    db: &sea_orm::DatabaseConnection,
    now: i64,
) -> Result<(), Failure> {
    let rotation = latchkey_auth::life_cycle::rotate_now(
        db,
        &auth.seal_key,
        now,
        token_life(auth),
        auth.key_policy.algorithm,
    )
    .await
    .map_err(anyhow::Error::from)?;
    println!(
        "new active signing key: {} ({})",
        rotation.new_kid, auth.key_policy.algorithm
    );
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
        "verifiers with a cached JWKS refetch it on the new kid; `--standby` publishes a key {}s ahead instead",
        auth.key_policy.standby_lead
    );
    Ok(())
}

/// `rotate-signing --standby`: a new key published now, signing later.
async fn add_standby(
    auth: &latchkey_auth::AuthConfig,
    db: &sea_orm::DatabaseConnection,
    now: i64,
) -> Result<(), Failure> {
    let key = latchkey_auth::life_cycle::add_standby(
        db,
        &auth.seal_key,
        now,
        auth.key_policy.algorithm,
        auth.key_policy.standby_lead,
    )
    .await
    .map_err(anyhow::Error::from)?;
    let from = rfc3339(key.activates_at.unwrap_or(now));
    println!(
        "new standby signing key: {} ({}), published now, not signing",
        key.kid, key.algorithm
    );
    match auth.key_policy.rotate_every {
        Some(_) => println!("automatic rotation activates it no earlier than {from}"),
        None => println!(
            "activate it from {from} (one JWKS cache lifetime from now): `latchkey keys rotate-signing --activate {}`",
            key.kid
        ),
    }
    Ok(())
}

/// `rotate-signing --activate KID`: a standby key signs from now on.
async fn activate_key(
    auth: &latchkey_auth::AuthConfig,
    db: &sea_orm::DatabaseConnection,
    kid: &str,
    now: i64,
    force: bool,
) -> Result<(), Failure> {
    let activation = latchkey_auth::life_cycle::activate(db, kid, now, token_life(auth), force)
        .await
        .map_err(anyhow::Error::from)?;
    println!("active signing key: {}", activation.kid);
    for retired in &activation.retired {
        println!(
            "retired {retired}: still published until {}",
            rfc3339(activation.publish_until)
        );
    }
    Ok(())
}

/// One line per signing key: state, algorithm, the seal key that sealed it, whether it opens,
/// and when its state changes next.
async fn signing_status(
    auth: &latchkey_auth::AuthConfig,
    db: &sea_orm::DatabaseConnection,
) -> Result<(), Failure> {
    let now = SystemClock.now();
    let policy = &auth.key_policy;
    match policy.rotate_every {
        Some(every) => println!(
            "signing keys (new keys {}, rotated every {}, standby lead {}s):",
            policy.algorithm,
            latchkey_auth::key_policy::format_period(every),
            policy.standby_lead
        ),
        None => println!(
            "signing keys (new keys {}, rotated by `latchkey keys rotate-signing` only):",
            policy.algorithm
        ),
    }
    for line in latchkey_auth::life_cycle::describe(db, policy, now)
        .await
        .map_err(anyhow::Error::from)?
    {
        let key = &line.key;
        println!(
            "{}  {}  created {}  {}  sealed with {}",
            key.kid,
            key.algorithm,
            rfc3339(key.created_at),
            line.state,
            key.seal_fingerprint.as_deref().unwrap_or("(not recorded)")
        );
        if let Some(next) = &line.next {
            println!("  next: {next}");
        }
        let in_use = key.publish_until.is_none_or(|until| until >= now);
        if in_use && !latchkey_auth::keys::opens(key, &auth.seal_key) {
            println!(
                "  ✘ cannot be opened with the configured seal key ({}, fingerprint {}): restore the seal key it was sealed with, or run `latchkey keys reset-signing`",
                auth.seal_key_variable,
                auth.seal_key.fingerprint()
            );
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
            (false, _) => format!("NOT CONFIGURED: add it back to {}", ENCRYPTION_KEYS.env()),
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
                "  warning: {} has sealed {} values, past {NONCE_WARNING} of the {NONCE_BUDGET} random-nonce AES-GCM budget; put a new key first in {} and run `latchkey keys rotate-encryption`",
                key.key_id,
                key.encryptions,
                ENCRYPTION_KEYS.env()
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
