//! The files `latchkey dev` keeps in its folder (`./.latchkey/`, or `LATCHKEY_DEV_DIR`), read
//! the same way by `latchkey dev` and by the operator commands run next to it (`doctor`,
//! `fingerprint`, `keys`, `users`, `settings export|import`, `migrate`):
//!
//! - `dev-secrets.env` (mode 0600): sync secret, seal key, master key and the `dev-service`
//!   client, generated once and reused;
//! - `dev-running.env` (mode 0600): the addresses and database the running dev uses, rewritten at
//!   each start, so doctor finds them with an empty environment.
//!
//! Both sit beneath `latchkey.toml` and the environment ([`Underlay`]): whatever the environment
//! sets, under a setting's `LATCHKEY_` name or any alias, wins. Both are written so that a POSIX
//! shell (`set -a; . .latchkey/dev-secrets.env; set +a`) and Latchkey's `.env` parser read the
//! same values: a value with anything but `A-Z a-z 0-9 _ . / : @ % + = , -` is single-quoted.
//! A secrets file from an older version (an unquoted value with spaces) is upgraded in place.

use anyhow::Context;
use latchkey_common::config::{
    AUTH_LISTEN, AUTH_URL, Config, DATABASE_URL, ENCRYPTION_KEYS, SEAL_KEY, SERVICE_CLIENTS,
    SETTINGS_LISTEN, SETTINGS_URL, SYNC_SECRET, Underlay,
};
use latchkey_common::secret::DEV_SECRET_PREFIX;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The dev secrets, generated once and reused.
pub const SECRETS_FILE: &str = "dev-secrets.env";
/// Where the running dev listens and keeps its data.
pub const RUNNING_FILE: &str = "dev-running.env";
/// The client id `latchkey dev` configures for trying reveal and the audit log.
pub const DEV_SERVICE_CLIENT: &str = "dev-service";

/// Dev's folder: `LATCHKEY_DEV_DIR`, else `.latchkey` in the current directory.
pub fn dir(env: &HashMap<String, String>) -> PathBuf {
    PathBuf::from(
        env.get("LATCHKEY_DEV_DIR")
            .map(String::as_str)
            .unwrap_or(".latchkey"),
    )
}

/// What `latchkey dev` lays beneath the file and the environment: its secrets (generated on the
/// first run) and its local addresses and database.
pub fn dev_underlay(dir: &Path, env: &HashMap<String, String>) -> anyhow::Result<Vec<Underlay>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(SECRETS_FILE);
    load_or_create_secrets(&path)?;
    let mut underlay = read(&path)?;
    underlay.extend(local_defaults(dir, env));
    Ok(underlay)
}

/// The configuration of an operator command run next to `latchkey dev`: dev's files
/// beneath the file and the environment, as dev reads them (never in production). Also answers
/// which files were read, or why they could not be.
pub fn config_next_to_dev() -> (Config, Option<Result<Vec<PathBuf>, String>>) {
    let env: HashMap<String, String> = std::env::vars().collect();
    let plain = Config::from_env_map(env.clone());
    let dir = dir(&env);
    let secrets = dir.join(SECRETS_FILE);
    if plain.is_production() || !secrets.exists() {
        return (plain, None);
    }
    match next_to_dev(&dir, &env) {
        Ok((underlay, files)) => (Config::layered(underlay, env), Some(Ok(files))),
        Err(error) => (plain, Some(Err(format!("{error:#}")))),
    }
}

/// The one line a command run next to `latchkey dev` prints about dev's files: which it read
/// (the environment winning), or why they could not be read.
pub fn note(files: &Result<Vec<PathBuf>, String>) -> String {
    match files {
        Ok(files) => {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            format!(
                "(next to `latchkey dev`: read {}; the environment wins)",
                files.join(", ")
            )
        }
        Err(error) => format!("(next to `latchkey dev`, but its files are unreadable: {error})"),
    }
}

/// Dev's secrets, its default addresses and database, then what the running dev recorded.
fn next_to_dev(
    dir: &Path,
    env: &HashMap<String, String>,
) -> anyhow::Result<(Vec<Underlay>, Vec<PathBuf>)> {
    let secrets = dir.join(SECRETS_FILE);
    let mut underlay = read(&secrets)?;
    let mut files = vec![secrets];
    underlay.extend(local_defaults(dir, env));
    let running = dir.join(RUNNING_FILE);
    if running.exists() {
        underlay.extend(read(&running)?);
        files.push(running);
    }
    Ok((underlay, files))
}

/// Where dev's services reach each other and keep their data when nothing else says: auth and
/// settings at their listen addresses (as a client dials them), SQLite in dev's folder.
fn local_defaults(dir: &Path, env: &HashMap<String, String>) -> Vec<Underlay> {
    let config = Config::from_env_map(env.clone());
    let origin = "`latchkey dev` default";
    [
        (
            AUTH_URL.env(),
            format!("http://{}", loopback(config.raw_or_default(AUTH_LISTEN))),
        ),
        (
            SETTINGS_URL.env(),
            format!(
                "http://{}",
                loopback(config.raw_or_default(SETTINGS_LISTEN))
            ),
        ),
        (
            DATABASE_URL.env(),
            format!("sqlite://{}/latchkey.db?mode=rwc", dir.display()),
        ),
    ]
    .into_iter()
    .map(|(variable, value)| Underlay {
        variable,
        value: Zeroizing::new(value),
        origin: origin.to_owned(),
    })
    .collect()
}

/// A listen address as a client dials it (`0.0.0.0:P` → `127.0.0.1:P`).
pub fn loopback(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        _ => listen.to_owned(),
    }
}

/// Records what the running dev uses (addresses, database), for doctor run next to it.
pub fn write_running(dir: &Path, values: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut text = String::from(
        "# Written by `latchkey dev` at each start: where it listens and keeps its data, so `latchkey doctor` run here finds it.\n",
    );
    for (name, value) in values {
        text.push_str(&shell_line(name, value)?);
    }
    write_private(&dir.join(RUNNING_FILE), &text)
}

/// Reads one of dev's files with Latchkey's `.env` parser, each value an [`Underlay`].
fn read(path: &Path) -> anyhow::Result<Vec<Underlay>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let parsed = parse(path, &text)?;
    Ok(parsed
        .entries
        .into_iter()
        .map(|entry| Underlay {
            variable: entry.name,
            value: Zeroizing::new(entry.value),
            origin: path.display().to_string(),
        })
        .collect())
}

fn parse(path: &Path, text: &str) -> anyhow::Result<latchkey_settings::dotenv::Parsed> {
    latchkey_settings::dotenv::parse(text).map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("line {}: {}", e.line, e.message))
            .collect();
        anyhow::anyhow!(
            "{} cannot be read: {}; fix those lines, or delete the file (and dev's database, which its keys open) to start afresh",
            path.display(),
            lines.join("; ")
        )
    })
}

/// Generates the dev secrets file (mode 0600) on the first run; adds the service client to
/// files from before it; quotes values an older version left unquoted.
fn load_or_create_secrets(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        let seal = latchkey_common::seal::SealKey::generate();
        let encryption = latchkey_common::seal::SealKey::generate();
        let mut text = String::from(
            "# Generated by `latchkey dev` for local development only. Keep it: it opens the dev database.\n# Use it from a shell with: set -a; . .latchkey/dev-secrets.env; set +a\n",
        );
        for (name, value) in [
            (
                SYNC_SECRET.env(),
                format!(
                    "{DEV_SECRET_PREFIX}{}",
                    latchkey_common::secret::random_token(32)
                ),
            ),
            (
                SEAL_KEY.env(),
                format!("{DEV_SECRET_PREFIX}{}", seal.to_base64().as_str()),
            ),
            (
                ENCRYPTION_KEYS.env(),
                format!(
                    "dev1:{DEV_SECRET_PREFIX}{}",
                    encryption.to_base64().as_str()
                ),
            ),
        ] {
            text.push_str(&shell_line(&name, &Zeroizing::new(value))?);
        }
        write_new_private(path, &text)?;
        tracing::info!(path = %path.display(), "generated dev secrets");
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let mut upgraded = upgrade_quoting(path, &text)?;
    let parsed = parse(path, &upgraded)?;
    if !parsed
        .entries
        .iter()
        .any(|e| e.name == SERVICE_CLIENTS.env())
    {
        let clients = Zeroizing::new(format!(
            "{DEV_SERVICE_CLIENT}:{}:{} {}",
            latchkey_common::secret::random_token(32),
            latchkey_proto::scopes::SETTINGS_REVEAL,
            latchkey_proto::scopes::SETTINGS_AUDIT,
        ));
        if !upgraded.is_empty() && !upgraded.ends_with('\n') {
            upgraded.push('\n');
        }
        upgraded.push_str(&shell_line(&SERVICE_CLIENTS.env(), &clients)?);
    }
    if *upgraded != *text {
        write_private(path, &upgraded)?;
    }
    restrict(path)
}

/// The file's text with every unquoted value a shell would misread rewritten single-quoted
/// (comments and every other line kept as they are).
fn upgrade_quoting(path: &Path, text: &str) -> anyhow::Result<Zeroizing<String>> {
    let parsed = parse(path, text)?;
    let normalised = text.replace("\r\n", "\n");
    let mut lines: Vec<String> = normalised.split('\n').map(str::to_owned).collect();
    for entry in &parsed.entries {
        let Some(line) = lines.get_mut(entry.line - 1) else {
            continue;
        };
        let quoted = line
            .split_once('=')
            .is_some_and(|(_, value)| value.trim_start().starts_with(['\'', '"']));
        if !quoted && !shell_safe(&entry.value) {
            *line = shell_line(&entry.name, &entry.value)?.trim_end().to_owned();
        }
    }
    Ok(Zeroizing::new(lines.join("\n")))
}

/// Characters a shell and the `.env` parser both read literally without quotes.
fn shell_safe(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c))
}

/// `NAME=value\n`, read alike by a POSIX shell and Latchkey's `.env` parser.
fn shell_line(name: &str, value: &str) -> anyhow::Result<String> {
    if shell_safe(value) {
        Ok(format!("{name}={value}\n"))
    } else if !value.contains('\'') {
        Ok(format!("{name}='{value}'\n"))
    } else {
        anyhow::bail!(
            "{name}'s value holds a single quote, which dev's files cannot carry for both a shell and the .env parser; set it in the environment instead"
        )
    }
}

/// Creates `path` with mode 0600; never replaces an existing file.
fn write_new_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
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
        .with_context(|| format!("writing {}", path.display()))
}

/// Replaces `path` (mode 0600) through a temporary file, so a reader never sees half of it.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let temporary = path.with_extension("env.tmp");
    let _ = std::fs::remove_file(&temporary);
    write_new_private(&temporary, text)?;
    std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))?;
    restrict(path)
}

/// Mode 0600 (a file copied in with other permissions is restricted).
fn restrict(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {} to mode 0600", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(underlay: &[Underlay]) -> HashMap<String, String> {
        underlay
            .iter()
            .map(|u| (u.variable.clone(), u.value.to_string()))
            .collect()
    }

    #[test]
    fn secrets_are_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let first = values(&dev_underlay(dir.path(), &HashMap::new()).unwrap());
        let again = values(&dev_underlay(dir.path(), &HashMap::new()).unwrap());
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
        let text = std::fs::read_to_string(dir.path().join(SECRETS_FILE)).unwrap();
        assert!(
            text.contains("LATCHKEY_SERVICE_CLIENTS='dev-service:"),
            "the value with a space is quoted for a shell: {text}"
        );
    }

    #[test]
    fn an_older_file_is_upgraded_keeping_its_values_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let old = "# kept\nLATCHKEY_SYNC_SECRET=kept-0123456789abcdef0123456789abcdef\nLATCHKEY_SERVICE_CLIENTS=dev-service:abc:settings:reveal settings:audit\n";
        std::fs::write(dir.path().join(SECRETS_FILE), old).unwrap();
        let upgraded = values(&dev_underlay(dir.path(), &HashMap::new()).unwrap());
        assert_eq!(
            upgraded["LATCHKEY_SYNC_SECRET"],
            "kept-0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            upgraded["LATCHKEY_SERVICE_CLIENTS"],
            "dev-service:abc:settings:reveal settings:audit"
        );
        let text = std::fs::read_to_string(dir.path().join(SECRETS_FILE)).unwrap();
        assert_eq!(
            text,
            "# kept\nLATCHKEY_SYNC_SECRET=kept-0123456789abcdef0123456789abcdef\nLATCHKEY_SERVICE_CLIENTS='dev-service:abc:settings:reveal settings:audit'\n"
        );
        // A file from before the service client gets one added, the rest kept.
        let older = tempfile::tempdir().unwrap();
        std::fs::write(
            older.path().join(SECRETS_FILE),
            "LATCHKEY_SYNC_SECRET=kept-0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        let upgraded = values(&dev_underlay(older.path(), &HashMap::new()).unwrap());
        assert!(upgraded["LATCHKEY_SERVICE_CLIENTS"].starts_with("dev-service:"));
    }

    #[test]
    fn local_defaults_follow_the_listen_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let env = HashMap::from([(
            "LATCHKEY_SETTINGS_LISTEN".to_owned(),
            "0.0.0.0:7000".to_owned(),
        )]);
        let underlay = values(&dev_underlay(dir.path(), &env).unwrap());
        assert_eq!(underlay["LATCHKEY_SETTINGS_URL"], "http://127.0.0.1:7000");
        assert_eq!(underlay["LATCHKEY_AUTH_URL"], "http://127.0.0.1:50051");
    }

    #[test]
    fn shell_lines_quote_only_what_needs_it() {
        assert_eq!(shell_line("A", "a+b/c=").unwrap(), "A=a+b/c=\n");
        assert_eq!(shell_line("A", "x y").unwrap(), "A='x y'\n");
        assert_eq!(shell_line("A", "$HOME").unwrap(), "A='$HOME'\n");
        assert!(shell_line("A", "it's").is_err());
    }
}
