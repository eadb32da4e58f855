//! `latchkey dev` as a newcomer runs it: one process with auth, settings and the gateway, dev
//! secrets generated once (mode 0600) and reused, the page's URL printed, dev sign-in working,
//! data kept across restarts; on SQLite by default and on PostgreSQL with DATABASE_URL.

mod support;

use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::gateway::unused_addr;
use support::{Backend, TestDb};

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
        .stderr(Stdio::null());
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
        "LATCHKEY_SERVICE_CLIENTS=dev-service:",
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
    let clients = secrets
        .lines()
        .find_map(|l| l.strip_prefix("LATCHKEY_SERVICE_CLIENTS="))
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
        .reveal_setting(support::with_bearer(
            settings_pb::RevealSettingRequest {
                user_id: user_id.to_owned(),
                name: "FLY_API_TOKEN".into(),
            },
            &token,
        ))
        .await
        .expect("reveal")
        .into_inner();
    assert_eq!(revealed.value, "fo1_abcdefghijklmnopqrstuvwxyz");
    let audit = settings
        .list_reveal_audit(support::with_bearer(
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
