//! `latchkey gateway` (the REST gateway alone, for production) and `latchkey dev` (auth,
//! settings and the gateway in one process on an embedded SQLite file, with dev secrets
//! generated once under `./.latchkey/`).

use super::{Failure, log_startup, shutdown_for};
use anyhow::Context;
use latchkey_common::config::Config;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs the gateway against the configured auth and settings addresses.
pub async fn run_gateway(config: &Config) -> Result<(), Failure> {
    let gateway = latchkey_gateway::GatewayConfig::from_config(config)?;
    let shutdown = shutdown_for(config)?;
    let app = latchkey_gateway::build(&gateway).await?;
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

/// The dev secrets file: `KEY=value` lines, mode 0600, written once and reused.
const SECRETS_FILE: &str = "dev-secrets.env";

/// Runs auth, settings and the gateway together for local development.
pub async fn run_dev() -> Result<(), Failure> {
    let process_env: HashMap<String, String> = std::env::vars().collect();
    let dir = PathBuf::from(
        process_env
            .get("LATCHKEY_DEV_DIR")
            .map(String::as_str)
            .unwrap_or(".latchkey"),
    );
    let env = dev_environment(&dir, process_env)?;
    let config = Config::from_env_map(env);
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
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
    gateway_config.dev_session = config.secret("sync_secret");
    let shutdown = shutdown_for(&config)?;

    let clock: latchkey_common::clock::SharedClock = Arc::new(latchkey_common::clock::SystemClock);
    let auth = latchkey_auth::build(&auth_config, clock.clone()).await?;
    let settings = latchkey_settings::build(&settings_config, clock).await?;
    let gateway = latchkey_gateway::build(&gateway_config).await?;
    log_startup(
        "auth",
        auth.local_addr(),
        &config,
        &[("sync_secret", true), ("seal_key", true)],
    );
    log_startup(
        "settings",
        settings.local_addr(),
        &config,
        &[("encryption_keys", true)],
    );
    let gateway_addr = gateway.local_addr();
    log_startup("gateway", gateway_addr, &config, &[]);

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
        "\nLatchkey dev is running. Open the Settings page: http://{host}:{}/\n  (sign in with \"Sign in as dev user\"; data in {}; secrets in {}, including the service client `{DEV_SERVICE_CLIENT}` for reveal and the audit log; Ctrl-C stops)\n",
        gateway_addr.port(),
        latchkey_common::db::redact_url(config.get("database_url").unwrap_or_default()),
        dir.join(SECRETS_FILE).display(),
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

/// The environment `dev` runs with: generated secrets, then local defaults, then the process
/// environment on top (anything set there wins).
fn dev_environment(
    dir: &Path,
    process_env: HashMap<String, String>,
) -> anyhow::Result<HashMap<String, String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut env = load_or_create_secrets(&dir.join(SECRETS_FILE))?;
    let get = |key: &str| process_env.get(key).cloned();
    let auth_listen = get("LATCHKEY_AUTH_LISTEN").unwrap_or_else(|| "127.0.0.1:50051".into());
    let settings_listen =
        get("LATCHKEY_SETTINGS_LISTEN").unwrap_or_else(|| "127.0.0.1:50052".into());
    env.insert(
        "LATCHKEY_AUTH_URL".into(),
        format!("http://{}", loopback(&auth_listen)),
    );
    env.insert(
        "LATCHKEY_SETTINGS_URL".into(),
        format!("http://{}", loopback(&settings_listen)),
    );
    let has_db = [
        "LATCHKEY_DATABASE_URL",
        "LATCHKEY_DATABASE_URL_FILE",
        "DATABASE_URL",
    ]
    .iter()
    .any(|k| process_env.contains_key(*k));
    if !has_db {
        env.insert(
            "LATCHKEY_DATABASE_URL".into(),
            format!("sqlite://{}/latchkey.db?mode=rwc", dir.display()),
        );
    }
    env.extend(process_env);
    Ok(env)
}

/// A listen address as a client dials it (`0.0.0.0:P` → `127.0.0.1:P`).
fn loopback(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        _ => listen.to_owned(),
    }
}

/// Reads the dev secrets, generating the file (mode 0600) on first run.
fn load_or_create_secrets(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    if !path.exists() {
        use std::io::Write;
        let seal = latchkey_common::seal::SealKey::generate();
        let encryption = latchkey_common::seal::SealKey::generate();
        let text = format!(
            "# Generated by `latchkey dev` for local development only. Keep it: it opens the dev database.\nLATCHKEY_SYNC_SECRET={dev}{}\nLATCHKEY_SEAL_KEY={dev}{}\nLATCHKEY_ENCRYPTION_KEYS=dev1:{dev}{}\n",
            latchkey_common::secret::random_token(32),
            seal.to_base64().as_str(),
            encryption.to_base64().as_str(),
            dev = latchkey_common::config::DEV_SECRET_PREFIX,
        );
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "generated dev secrets");
    }
    add_dev_service_client(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {} to mode 0600", path.display()))?;
        }
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// The client id `latchkey dev` configures for trying reveal and the audit log.
pub const DEV_SERVICE_CLIENT: &str = "dev-service";

/// Appends a service client with `settings:reveal settings:audit` to the dev secrets when they
/// have none (files from older versions included), so reveal and the audit log can be tried
/// locally with `IssueServiceToken`.
fn add_dev_service_client(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text
        .lines()
        .any(|l| l.trim_start().starts_with("LATCHKEY_SERVICE_CLIENTS="))
    {
        return Ok(());
    }
    let line = format!(
        "LATCHKEY_SERVICE_CLIENTS={DEV_SERVICE_CLIENT}:{}:settings:reveal settings:audit\n",
        latchkey_common::secret::random_token(32)
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let separator = if text.ends_with('\n') || text.is_empty() {
        ""
    } else {
        "\n"
    };
    file.write_all(format!("{separator}{line}").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_generated_once_with_mode_0600_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let first = dev_environment(dir.path(), HashMap::new()).unwrap();
        let again = dev_environment(dir.path(), HashMap::new()).unwrap();
        for key in [
            "LATCHKEY_SYNC_SECRET",
            "LATCHKEY_SEAL_KEY",
            "LATCHKEY_ENCRYPTION_KEYS",
            "LATCHKEY_SERVICE_CLIENTS",
        ] {
            assert!(first[key].len() >= 32, "{key}");
            assert_eq!(first[key], again[key], "{key} is reused");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRETS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(first["LATCHKEY_DATABASE_URL"].starts_with("sqlite://"));
        assert!(
            first["LATCHKEY_SERVICE_CLIENTS"].starts_with("dev-service:")
                && first["LATCHKEY_SERVICE_CLIENTS"].ends_with(":settings:reveal settings:audit"),
            "a service client for reveal and the audit log"
        );
        // A secrets file from before the service client gets one added, the rest kept.
        let old = tempfile::tempdir().unwrap();
        std::fs::write(
            old.path().join(SECRETS_FILE),
            "LATCHKEY_SYNC_SECRET=kept-0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        let upgraded = dev_environment(old.path(), HashMap::new()).unwrap();
        assert_eq!(
            upgraded["LATCHKEY_SYNC_SECRET"],
            "kept-0123456789abcdef0123456789abcdef"
        );
        assert!(upgraded["LATCHKEY_SERVICE_CLIENTS"].starts_with("dev-service:"));
        let env = HashMap::from([
            ("LATCHKEY_SYNC_SECRET".to_owned(), "from-env".to_owned()),
            ("DATABASE_URL".to_owned(), "postgres://x@h/db".to_owned()),
            (
                "LATCHKEY_SETTINGS_LISTEN".to_owned(),
                "0.0.0.0:7000".to_owned(),
            ),
        ]);
        let overridden = dev_environment(dir.path(), env).unwrap();
        assert_eq!(overridden["LATCHKEY_SYNC_SECRET"], "from-env");
        assert!(!overridden.contains_key("LATCHKEY_DATABASE_URL"));
        assert_eq!(overridden["LATCHKEY_SETTINGS_URL"], "http://127.0.0.1:7000");
    }
}
