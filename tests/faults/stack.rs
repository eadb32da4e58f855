//! The system under test as real processes: `latchkey auth`, `latchkey settings` and `latchkey
//! gateway` (the binary cargo built for this test), each on a free loopback port, sharing one fresh
//! PostgreSQL database reached through the test's [`PgProxy`]. Processes can be stopped with
//! SIGTERM or SIGKILL and started again on the same port; their logs go to files in a temporary
//! directory (printed when a scenario fails).

use crate::proxy::PgProxy;
use crate::support::{Backend, TestDb};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The sync secret every stack uses.
pub const SYNC_SECRET: &str = "faults-sync-secret-6f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// The service client allowed to reveal values (for decrypting load).
pub const REVEALER: (&str, &str) = ("revealer", "revealer-secret-0a1b2c3d4e5f6a7b8c9d");

/// One service process, restartable on the same address.
pub struct Proc {
    /// The subcommand: auth, settings or gateway.
    pub name: &'static str,
    /// Where it listens, the same across restarts.
    pub addr: SocketAddr,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn new(name: &'static str, env: Vec<(String, String)>, dir: &Path, addr: SocketAddr) -> Proc {
        Proc {
            name,
            addr,
            env,
            cwd: dir.to_path_buf(),
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    /// Starts the process (its log is appended to).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg(self.name)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start latchkey");
        self.child = Some(child);
    }

    /// The running process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM (graceful stop), through the shell's `kill` builtin.
    pub fn sigterm(&self) {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", self.pid())])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// SIGKILL and reap.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `limit` for the process to exit; answers its status, or None if it is still
    /// running (it then keeps running).
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let child = self.child.as_mut().expect("running");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Resident memory of the running process, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the port accepts connections (the process is serving).
    pub async fn wait_listening(&mut self) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} does not listen after 30 s:\n{}", self.name, self.log());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// Three services over one database behind a proxy.
pub struct Stack {
    /// Between both services and PostgreSQL.
    pub proxy: PgProxy,
    pub auth: Proc,
    pub settings: Proc,
    pub gateway: Proc,
    /// A client for the gateway.
    pub http: reqwest::Client,
    /// `LATCHKEY_ENCRYPTION_KEYS_FILE` of settings (and of the CLI commands).
    pub keys_file: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    _db: TestDb,
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `id:key` with a fresh random 32-byte key.
pub fn master_key(id: &str) -> String {
    format!("{id}:{}", random_key())
}

fn random_key() -> String {
    latchkey_common::seal::SealKey::generate()
        .to_base64()
        .as_str()
        .to_owned()
}

impl Stack {
    /// A fresh database, a proxy in front of it, and the three services started and ready.
    /// None when PostgreSQL is not reachable (and CI is not set).
    pub async fn start() -> Option<Stack> {
        Self::start_with(&[]).await
    }

    /// [`Stack::start`] with extra environment for every process.
    pub async fn start_with(extra: &[(&str, &str)]) -> Option<Stack> {
        let db = TestDb::new(Backend::Postgres).await?;
        let (host_port, upstream) = pg_socket(&db.url);
        let proxy = PgProxy::start(upstream).await;
        let proxied = db.url.replacen(&host_port, &proxy.addr.to_string(), 1);
        let dir = tempfile::tempdir().expect("tempdir");
        let keys_file = dir.path().join("encryption-keys");
        std::fs::write(&keys_file, master_key("k1")).unwrap();
        let (auth_addr, settings_addr, gateway_addr) = (free_addr(), free_addr(), free_addr());
        let mut env: Vec<(String, String)> = [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("RUST_LOG", "info".to_owned()),
            ("NO_COLOR", "1".to_owned()),
            ("LATCHKEY_DATABASE_URL", proxied),
            ("LATCHKEY_SYNC_SECRET", SYNC_SECRET.to_owned()),
            ("LATCHKEY_SEAL_KEY", random_key()),
            (
                "LATCHKEY_ENCRYPTION_KEYS_FILE",
                keys_file.display().to_string(),
            ),
            ("LATCHKEY_AUTH_LISTEN", auth_addr.to_string()),
            ("LATCHKEY_SETTINGS_LISTEN", settings_addr.to_string()),
            ("LATCHKEY_GATEWAY_LISTEN", gateway_addr.to_string()),
            ("LATCHKEY_AUTH_URL", format!("http://{auth_addr}")),
            ("LATCHKEY_SETTINGS_URL", format!("http://{settings_addr}")),
            (
                "LATCHKEY_SERVICE_CLIENTS",
                format!("{}:{}:settings:reveal", REVEALER.0, REVEALER.1),
            ),
            ("LATCHKEY_SIGNING_KEY_REFRESH_SECS", "1".to_owned()),
            ("LATCHKEY_SYNC_RATE_PER_MINUTE", "0".to_owned()),
            ("LATCHKEY_AUTH_FAILURE_RATE_PER_MINUTE", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.to_string()));
        }
        let path = dir.path();
        let mut stack = Stack {
            auth: Proc::new("auth", env.clone(), path, auth_addr),
            settings: Proc::new("settings", env.clone(), path, settings_addr),
            gateway: Proc::new("gateway", env.clone(), path, gateway_addr),
            proxy,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            keys_file,
            env,
            dir,
            _db: db,
        };
        // auth migrates its tables first; settings and the gateway follow.
        stack.auth.start();
        stack.auth.wait_listening().await;
        stack.settings.start();
        stack.settings.wait_listening().await;
        stack.gateway.start();
        stack.gateway.wait_listening().await;
        stack.wait_ready().await;
        Some(stack)
    }

    /// `http://gateway{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.addr)
    }

    /// Waits until the gateway's `/readyz` answers 200 (both upstreams serving).
    pub async fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Ok(response) = self.http.get(self.url("/readyz")).send().await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the stack is not ready after 30 s\n{}", self.logs());
    }

    /// Runs `latchkey ARGS…` with the stack's environment; answers (success, stdout + stderr).
    pub async fn cli(&self, args: &[&str]) -> (bool, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("run latchkey");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    /// Resident memory of each process, in KiB.
    pub fn rss_kib(&self) -> Vec<(&'static str, u64)> {
        [&self.auth, &self.settings, &self.gateway]
            .iter()
            .map(|p| (p.name, p.rss_kib()))
            .collect()
    }

    /// Every process's log, for a failure message.
    pub fn logs(&self) -> String {
        [&self.auth, &self.settings, &self.gateway]
            .iter()
            .map(|p| {
                let log = p.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {} (last 40 lines)\n{}", p.name, tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Syncs a user through the gateway; answers (user id, access token).
    pub async fn sync_user(&self, subject: &str) -> (String, String) {
        let response = self
            .http
            .post(self.url("/api/auth/sync-user"))
            .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
            .json(&serde_json::json!({
                "provider": "github",
                "subject": subject,
                "email": format!("{subject}@example.com"),
                "name": "Fault User",
            }))
            .send()
            .await
            .expect("sync-user");
        assert_eq!(response.status(), 200, "sync-user");
        let body: serde_json::Value = response.json().await.unwrap();
        (
            body["user"]["id"].as_str().unwrap().to_owned(),
            body["access_token"].as_str().unwrap().to_owned(),
        )
    }
}

/// The `host[:port]` text of a PostgreSQL URL, and the address it resolves to.
fn pg_socket(url: &str) -> (String, SocketAddr) {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://").expect("url").1;
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split('/').next().unwrap().to_owned();
    let with_port = if host_port.contains(':') {
        host_port.clone()
    } else {
        format!("{host_port}:5432")
    };
    let addr = with_port
        .to_socket_addrs()
        .expect("resolve PostgreSQL host")
        .next()
        .expect("an address");
    (host_port, addr)
}
