//! `latchkey settings`: the settings service alone, for production.

use super::{Failure, log_startup};
use latchkey_common::config::Config;
use latchkey_common::shutdown::Shutdown;

/// Validates settings' configuration, checks the master keys against stored rows, serves.
pub async fn run_settings(config: &Config) -> Result<(), Failure> {
    let settings = latchkey_settings::SettingsConfig::from_config(config)?;
    let clock = std::sync::Arc::new(latchkey_common::clock::SystemClock);
    let app = latchkey_settings::build(&settings, clock).await?;
    log_startup(
        "settings",
        app.local_addr(),
        config,
        &[("encryption_keys", true)],
    );
    tracing::info!(auth = %settings.auth_urls.join(","), "settings verifies tokens against auth's JWKS");
    let shutdown = Shutdown::new();
    shutdown.on_os_signals();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
