//! `latchkey dev` as a newcomer runs it: one process with auth, settings and the gateway, dev
//! secrets generated once (mode 0600) and reused, the page's URL printed, dev sign-in working,
//! data kept across restarts; on SQLite by default and on PostgreSQL with DATABASE_URL.

use crate::support::gateway::unused_addr;
use crate::support::{Backend, TestDb};
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Dev {
    child: Child,
    url: String,
    auth: String,
    settings: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `latchkey dev` in `dir` and waits for the line with the page's URL.
fn start(dir: &Path, env: &[(&str, String)]) -> Dev {
    let (auth, settings) = (unused_addr().to_string(), unused_addr().to_string());
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .arg("dev")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LATCHKEY_AUTH_LISTEN", &auth)
        .env("LATCHKEY_SETTINGS_LISTEN", &settings)
        .env("LATCHKEY_GATEWAY_LISTEN", unused_addr().to_string())
        .stdout(Stdio::piped())
        .stderr(log_file(dir));
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("start latchkey dev");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = sender.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                if let Some(at) = line.find("http://") {
                    let url = line[at..].trim().to_owned();
                    return Dev {
                        child,
                        url,
                        auth: format!("http://{auth}"),
                        settings: format!("http://{settings}"),
                    };
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("latchkey dev printed no URL; stdout: {seen:?}");
            }
        }
    }
}

/// Dev's log (stderr), appended to `dev.log` in its folder.
fn log_file(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("dev.log"))
        .unwrap()
}

async fn sign_in(http: &reqwest::Client, dev: &Dev) -> (String, String) {
    let response = http
        .post(format!("{}api/dev/session", dev.url))
        .header("x-latchkey-dev", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["user"]["id"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

fn stop(mut dev: Dev) {
    let status = Command::new("kill")
        .args(["-TERM", &dev.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = dev.child.wait().unwrap();
    assert!(
        exit.success(),
        "latchkey dev exits cleanly on SIGTERM: {exit:?}"
    );
}

async fn dev_runs_everything_and_keeps_its_secrets(backend: Backend) {
    let mut env = Vec::new();
    let _db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let Some(db) = TestDb::new(backend).await else {
                return;
            };
            env.push(("DATABASE_URL", db.url.clone()));
            Some(db)
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let dev = start(dir.path(), &env);
    assert!(
        dev.url.starts_with("http://127.0.0.1:") && dev.url.ends_with('/'),
        "{}",
        dev.url
    );
    let page = http
        .get(&dev.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<meta name="latchkey-dev" content="true">"#));
    let (user_id, token) = sign_in(&http, &dev).await;
    let response = http
        .patch(format!("{}api/settings", dev.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"settings": {"FLY_API_TOKEN": "fo1_abcdefghijklmnopqrstuvwxyz"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    stop(dev);

    let secrets_path = dir.path().join(".latchkey/dev-secrets.env");
    let secrets = std::fs::read_to_string(&secrets_path).unwrap();
    for key in [
        "LATCHKEY_SYNC_SECRET=",
        "LATCHKEY_SEAL_KEY=",
        "LATCHKEY_ENCRYPTION_KEYS=",
        "LATCHKEY_SERVICE_CLIENTS='dev-service:",
    ] {
        assert!(secrets.contains(key), "{key}");
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        dir.path().join(".latchkey/latchkey.db").exists(),
        backend == Backend::Sqlite
    );

    // Second start: same secrets, same user, the value still decrypts into the masked list.
    let dev = start(dir.path(), &env);
    assert_eq!(std::fs::read_to_string(&secrets_path).unwrap(), secrets);
    let (again, token) = sign_in(&http, &dev).await;
    assert_eq!(again, user_id);
    let list: Value = http
        .get(format!("{}api/settings", dev.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["settings"][0]["name"], "FLY_API_TOKEN", "{list}");
    reveal_and_audit_with_the_dev_service_client(&dev, &secrets, &user_id).await;
    stop(dev);
}

/// The service client `latchkey dev` writes into its secrets file: a service token, one
/// reveal, and the audit row it left.
async fn reveal_and_audit_with_the_dev_service_client(dev: &Dev, secrets: &str, user_id: &str) {
    use latchkey_proto::auth::v1 as auth_pb;
    use latchkey_proto::settings::v1 as settings_pb;
    let parsed = latchkey_settings::dotenv::parse(secrets).expect("dev's secrets parse");
    let clients = parsed
        .entries
        .iter()
        .find(|e| e.name == "LATCHKEY_SERVICE_CLIENTS")
        .map(|e| e.value.as_str())
        .expect("a dev service client");
    let mut parts = clients.splitn(3, ':');
    let (client_id, client_secret) = (parts.next().unwrap(), parts.next().unwrap());
    let mut auth = auth_pb::auth_service_client::AuthServiceClient::connect(dev.auth.clone())
        .await
        .unwrap();
    let token = auth
        .issue_service_token(auth_pb::IssueServiceTokenRequest {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            scopes: vec![],
        })
        .await
        .expect("the dev service client gets a token")
        .into_inner()
        .token
        .unwrap()
        .access_token;
    let mut settings =
        settings_pb::settings_service_client::SettingsServiceClient::connect(dev.settings.clone())
            .await
            .unwrap();
    let revealed = settings
        .reveal_setting(crate::support::with_bearer(
            settings_pb::RevealSettingRequest {
                user_id: user_id.to_owned(),
                name: "FLY_API_TOKEN".into(),
                require_valid: false,
            },
            &token,
        ))
        .await
        .expect("reveal")
        .into_inner();
    assert_eq!(revealed.value, "fo1_abcdefghijklmnopqrstuvwxyz");
    let audit = settings
        .list_reveal_audit(crate::support::with_bearer(
            settings_pb::ListRevealAuditRequest {
                user_id: user_id.to_owned(),
                page_size: 10,
                page_token: String::new(),
            },
            &token,
        ))
        .await
        .expect("audit")
        .into_inner();
    assert_eq!(audit.entries.len(), 1);
    assert_eq!(audit.entries[0].caller, client_id);
    assert_eq!(audit.entries[0].name, "FLY_API_TOKEN");
}

backend_tests!(dev_runs_everything_and_keeps_its_secrets);

/// Issue 9, as a team moving to Latchkey meets `latchkey dev`: what the environment sets wins
/// under any name, two names with different values warn (naming both fingerprints and which
/// NextAuth major reads which), `latchkey doctor` run in dev's folder with an empty environment
/// passes, and dev's files read the same in a POSIX shell and in Latchkey's `.env` parser.
mod names_and_doctor {
    use super::*;
    use latchkey_common::secret::fingerprint;

    /// `latchkey <args>` in `dir` with exactly `env` (plus PATH).
    fn latchkey(dir: &Path, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("run latchkey")
    }

    /// `latchkey doctor --json` in `dir` with exactly `env`: (exit ok, report).
    fn doctor(dir: &Path, env: &[(&str, String)]) -> (bool, Value) {
        let output = latchkey(dir, &["doctor", "--json"], env);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("json: {}", String::from_utf8_lossy(&output.stdout)));
        (output.status.success(), report)
    }

    fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
    }

    /// The log without its terminal colour codes.
    fn without_colours(log: &str) -> String {
        let mut out = String::with_capacity(log.len());
        let mut chars = log.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|c| *c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Every variable of one of dev's files reads the same through `sh` as through our parser.
    fn shell_reads_what_the_parser_reads(file: &Path) {
        let text = std::fs::read_to_string(file).unwrap();
        let parsed = latchkey_settings::dotenv::parse(&text).expect("our parser reads it");
        assert!(!parsed.entries.is_empty(), "{}", file.display());
        for entry in &parsed.entries {
            let output = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "set -a; . \"$1\"; set +a; printf %s \"${}\"",
                    entry.name
                ))
                .arg("sh")
                .arg(file)
                .env_clear()
                .output()
                .unwrap();
            assert!(
                output.status.success() && output.stderr.is_empty(),
                "sh cannot source {}: {}",
                file.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                entry.value,
                "{} in {}",
                entry.name,
                file.display()
            );
        }
    }

    /// `DATABASE_URL` for PostgreSQL (and the database, kept alive); `None` when PostgreSQL is
    /// missing outside CI.
    async fn database(backend: Backend) -> Option<(Vec<(&'static str, String)>, Option<TestDb>)> {
        match backend {
            Backend::Sqlite => Some((Vec::new(), None)),
            Backend::Postgres => {
                let db = TestDb::new(backend).await?;
                Some((vec![("DATABASE_URL", db.url.clone())], Some(db)))
            }
        }
    }

    async fn doctor_next_to_dev_passes_with_an_empty_environment(backend: Backend) {
        let Some((env, _db)) = database(backend).await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let dev = start(dir.path(), &env);
        let (ok, report) = doctor(dir.path(), &[]);
        assert!(ok, "{report:#}");
        for check in report["checks"].as_array().unwrap() {
            assert_eq!(check["ok"], true, "{check}");
        }
        let next = check(&report, "next to latchkey dev");
        assert!(
            next["detail"].as_str().unwrap().contains("dev-running.env"),
            "{next}"
        );
        for name in [
            "database migrated: settings",
            "sync secret as auth sees it",
            "live probe: delete probe user",
        ] {
            assert_eq!(check(&report, name)["ok"], true);
        }
        let latchkey_dir = dir.path().join(".latchkey");
        shell_reads_what_the_parser_reads(&latchkey_dir.join("dev-secrets.env"));
        shell_reads_what_the_parser_reads(&latchkey_dir.join("dev-running.env"));
        stop(dev);
    }

    async fn the_environment_wins_under_any_name(backend: Backend) {
        let Some((mut env, _db)) = database(backend).await else {
            return;
        };
        let keys = tempfile::tempdir().unwrap();
        let seal_file = keys.path().join("seal");
        let seal = latchkey_common::seal::SealKey::generate();
        std::fs::write(&seal_file, seal.to_base64().as_str()).unwrap();
        let master = latchkey_common::seal::SealKey::generate();
        let app_secret = "the-web-apps-own-sync-secret-0123456789abcdef";
        env.extend([
            ("AUTH_SYNC_SECRET", app_secret.to_owned()),
            (
                "LATCHKEY_SEAL_KEY_FILE",
                seal_file.to_str().unwrap().to_owned(),
            ),
            ("ENCRYPTION_KEY", master.to_base64().to_string()),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let dev = start(dir.path(), &env);
        let http = reqwest::Client::new();
        let sync = |secret: String| {
            http.post(format!("{}api/auth/sync-user", dev.url))
                .header("X-Auth-Secret", secret)
                .json(&serde_json::json!({
                    "provider": "github", "subject": "4242",
                    "email": "ada@example.com", "name": "Ada",
                }))
                .send()
        };
        let response = sync(app_secret.to_owned()).await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "the app's AUTH_SYNC_SECRET is the one auth holds"
        );
        let generated = std::fs::read_to_string(dir.path().join(".latchkey/dev-secrets.env"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("LATCHKEY_SYNC_SECRET=").map(str::to_owned))
            .unwrap();
        let response = sync(generated).await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "SYNC_SECRET_INVALID", "{body}");
        let log = std::fs::read_to_string(dir.path().join("dev.log")).unwrap();
        assert!(
            log.contains("AUTH_SYNC_SECRET is read as LATCHKEY_SYNC_SECRET"),
            "{log}"
        );
        assert!(
            without_colours(&log).contains("active_key=k1"),
            "ENCRYPTION_KEY is settings' master key: {log}"
        );
        assert!(
            log.contains(&format!("seal_key={}", seal.fingerprint())),
            "the seal key from LATCHKEY_SEAL_KEY_FILE, as its sealed keys record it: {log}"
        );

        // Doctor in dev's folder with the same environment passes; with an empty one it names
        // the sync secret dev took from its environment.
        let (ok, report) = doctor(dir.path(), &env);
        assert!(ok, "{report:#}");
        let (ok, report) = doctor(dir.path(), &[]);
        assert!(!ok);
        let sync_check = check(&report, "sync secret as auth sees it");
        assert_eq!(sync_check["ok"], false, "{sync_check}");
        assert!(
            sync_check["fix"]
                .as_str()
                .unwrap()
                .contains("run doctor with that same environment"),
            "{sync_check}"
        );
        stop(dev);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_names_with_different_values_warn_at_start_and_in_doctor() {
        let (v5, v4) = (
            "the-auth-js-v5-secret-0123456789abcdef",
            "the-next-auth-v4-secret-0123456789abcd",
        );
        let env = [
            ("AUTH_SECRET", v5.to_owned()),
            ("NEXTAUTH_SECRET", v4.to_owned()),
        ];
        let dir = tempfile::tempdir().unwrap();
        let dev = start(dir.path(), &env);
        let log = std::fs::read_to_string(dir.path().join("dev.log")).unwrap();
        let warning = log
            .lines()
            .find(|l| l.contains("WARN") && l.contains("LATCHKEY_LEGACY_HS256_SECRET"))
            .unwrap_or_else(|| panic!("a WARN line at start: {log}"));
        for expected in [
            format!(
                "NEXTAUTH_SECRET (fingerprint {})",
                fingerprint(v4.as_bytes())
            ),
            format!("AUTH_SECRET (fingerprint {})", fingerprint(v5.as_bytes())),
            "next-auth v4 (≥ 4.24.10) reads NEXTAUTH_SECRET first".to_owned(),
            "Auth.js v5 (next-auth@5, @auth/core) reads AUTH_SECRET first".to_owned(),
        ] {
            assert!(warning.contains(&expected), "{expected} in {warning}");
        }
        assert!(!log.contains(v5) && !log.contains(v4), "never the values");

        let (ok, report) = doctor(dir.path(), &env);
        assert!(!ok);
        let names = check(&report, "config: names: LATCHKEY_LEGACY_HS256_SECRET");
        assert_eq!(names["ok"], false, "{names}");
        let cause = names["cause"].as_str().unwrap();
        assert!(cause.contains(&fingerprint(v5.as_bytes())), "{cause}");
        assert!(cause.contains("reads AUTH_SECRET first"), "{cause}");
        assert!(!report.to_string().contains(v5), "never the values");
        // The same value under both names is fine.
        let same = [
            ("AUTH_SECRET", v5.to_owned()),
            ("NEXTAUTH_SECRET", v5.to_owned()),
        ];
        let (ok, report) = doctor(dir.path(), &same);
        assert!(ok, "{report:#}");
        stop(dev);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_old_secrets_file_is_upgraded_and_reads_alike_in_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let latchkey_dir = dir.path().join(".latchkey");
        std::fs::create_dir(&latchkey_dir).unwrap();
        let secrets = latchkey_dir.join("dev-secrets.env");
        let key = || {
            format!(
                "latchkey-dev-{}",
                latchkey_common::seal::SealKey::generate()
                    .to_base64()
                    .as_str()
            )
        };
        let clients =
            "dev-service:old-client-secret-0123456789abcdef:settings:reveal settings:audit";
        std::fs::write(
            &secrets,
            format!(
                "# Generated by `latchkey dev` for local development only. Keep it: it opens the dev database.\nLATCHKEY_SYNC_SECRET=latchkey-dev-old-0123456789abcdef0123456789\nLATCHKEY_SEAL_KEY={}\nLATCHKEY_ENCRYPTION_KEYS=dev1:{}\nLATCHKEY_SERVICE_CLIENTS={clients}\n",
                key(),
                key()
            ),
        )
        .unwrap();
        let shell = Command::new("sh")
            .arg("-c")
            .arg("set -a; . .latchkey/dev-secrets.env; set +a; printf %s \"$LATCHKEY_SERVICE_CLIENTS\"")
            .current_dir(dir.path())
            .env_clear()
            .output()
            .unwrap();
        assert_ne!(
            String::from_utf8_lossy(&shell.stdout),
            clients,
            "the old format does not read in a shell"
        );
        assert!(!shell.stderr.is_empty(), "the shell complains about it");

        let dev = start(dir.path(), &[]);
        stop(dev);
        shell_reads_what_the_parser_reads(&secrets);
        let text = std::fs::read_to_string(&secrets).unwrap();
        assert!(
            text.contains(&format!("LATCHKEY_SERVICE_CLIENTS='{clients}'")),
            "{text}"
        );
        assert!(
            text.contains("LATCHKEY_SYNC_SECRET=latchkey-dev-old-0123456789abcdef0123456789\n")
        );
        let (ok, report) = doctor(dir.path(), &[]);
        // dev is stopped: only its services are unreachable, the files read fine.
        assert!(!ok);
        assert_eq!(
            check(&report, "next to latchkey dev")["ok"],
            true,
            "{report:#}"
        );
        assert_eq!(check(&report, "config: auth")["ok"], true, "{report:#}");
    }

    backend_tests!(
        doctor_next_to_dev_passes_with_an_empty_environment,
        the_environment_wins_under_any_name,
    );
}
