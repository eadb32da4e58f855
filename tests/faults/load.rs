//! A small load generator: a fixed number of workers, each a signed-in user looping over REST
//! calls through the gateway (list, write, read `me`) and optionally gRPC reveals straight to
//! settings (which decrypt), recording every outcome with its time. Writes carry a counter so a
//! scenario can check afterwards that no acknowledged write was lost.

use crate::stack::{REVEALER, Stack};
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::settings::v1 as settings_pb;
use latchkey_proto::settings::v1::settings_service_client::SettingsServiceClient;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One call a worker makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    List,
    Write,
    Me,
    Reveal,
    /// A fresh token for the worker's user (`POST /api/auth/token`), used from then on.
    Renew,
}

impl Op {
    /// The route's whole-request budget at the gateway (see the gateway's `budget` module).
    pub fn budget(self) -> Duration {
        match self {
            Op::List | Op::Me => Duration::from_secs(3),
            Op::Write => Duration::from_secs(10),
            Op::Renew => Duration::from_secs(5),
            Op::Reveal => Duration::from_secs(30),
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// An error answer: HTTP status and catalogue code.
    Problem(u16, String),
    /// No answer: the connection failed (kind of failure).
    Transport(String),
}

/// One call.
#[derive(Debug, Clone)]
pub struct Record {
    /// When the call started, from the start of the load.
    pub at: Duration,
    /// How long the call took.
    pub took: Duration,
    pub op: Op,
    /// Which worker (its user) made the call.
    pub worker: usize,
    /// For writes: the counter written.
    pub written: Option<u64>,
    pub outcome: Outcome,
}

impl Record {
    /// When the call ended, from the start of the load.
    pub fn end(&self) -> Duration {
        self.at + self.took
    }
}

/// What the workers do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent workers, one user each.
    pub workers: usize,
    /// The calls each worker cycles through.
    pub ops: Vec<Op>,
    /// The least time between two calls of one worker (None: back to back).
    pub pace: Option<Duration>,
}

impl Plan {
    /// `workers` users cycling list, write, me, paced at `pace`.
    pub fn rest(workers: usize, pace: Duration) -> Plan {
        Plan {
            workers,
            ops: vec![Op::List, Op::Write, Op::Me],
            pace: Some(pace),
        }
    }
}

/// A running load.
pub struct Load {
    started: Instant,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Record>>>,
    /// Each worker's (user id, first token), by worker index.
    pub users: Vec<(String, String)>,
}

/// Everything a worker needs.
struct Worker {
    index: usize,
    token: String,
    user_id: String,
    base: String,
    http: reqwest::Client,
    settings_url: String,
    auth_url: String,
}

impl Load {
    /// Signs in one user per worker, then starts the workers.
    pub async fn start(stack: &Stack, plan: Plan) -> Load {
        let mut users = Vec::new();
        for index in 0..plan.workers {
            users.push(
                stack
                    .sync_user(&format!("load-{index}-{}", uuid::Uuid::new_v4().simple()))
                    .await,
            );
        }
        let (stop, _) = watch::channel(false);
        let started = Instant::now();
        let plan = Arc::new(plan);
        let tasks = users
            .iter()
            .enumerate()
            .map(|(index, (user_id, token))| {
                let worker = Worker {
                    index,
                    token: token.clone(),
                    user_id: user_id.clone(),
                    base: stack.url(""),
                    http: stack.http.clone(),
                    settings_url: format!("http://{}", stack.settings.addr),
                    auth_url: format!("http://{}", stack.auth.addr),
                };
                tokio::spawn(run_worker(worker, plan.clone(), started, stop.subscribe()))
            })
            .collect();
        Load {
            started,
            stop,
            tasks,
            users,
        }
    }

    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the workers (each finishes its call) and answers every record, in start order.
    pub async fn stop(self) -> Vec<Record> {
        self.stop.send_replace(true);
        let mut records = Vec::new();
        for task in self.tasks {
            records.extend(task.await.expect("worker"));
        }
        records.sort_by_key(|r| r.at);
        records
    }
}

async fn run_worker(
    mut worker: Worker,
    plan: Arc<Plan>,
    started: Instant,
    stop: watch::Receiver<bool>,
) -> Vec<Record> {
    let mut records = Vec::new();
    let mut counter = 0u64;
    let mut reveal: Option<(SettingsServiceClient<tonic::transport::Channel>, String)> = None;
    let mut step = 0usize;
    while !*stop.borrow() {
        let op = plan.ops[step % plan.ops.len()];
        step += 1;
        let at = started.elapsed();
        let begun = Instant::now();
        let mut written = None;
        let outcome = match op {
            Op::List => {
                rest(
                    worker.http.get(format!("{}/api/settings", worker.base)),
                    &worker,
                )
                .await
            }
            Op::Me => {
                rest(
                    worker.http.get(format!("{}/api/auth/me", worker.base)),
                    &worker,
                )
                .await
            }
            Op::Write => {
                counter += 1;
                written = Some(counter);
                let body = serde_json::json!({ "settings": { "W": write_value(counter) } });
                rest(
                    worker
                        .http
                        .patch(format!("{}/api/settings", worker.base))
                        .json(&body),
                    &worker,
                )
                .await
            }
            Op::Reveal => reveal_once(&worker, &mut reveal).await,
            Op::Renew => renew(&mut worker).await,
        };
        records.push(Record {
            at,
            took: begun.elapsed(),
            op,
            worker: worker.index,
            written,
            outcome,
        });
        if let Some(pace) = plan.pace {
            let spent = begun.elapsed();
            if spent < pace {
                tokio::time::sleep(pace - spent).await;
            }
        }
    }
    records
}

/// The value a worker writes for counter `n` (its last four characters are shown masked).
pub fn write_value(n: u64) -> String {
    format!("v{n:016}")
}

async fn rest(request: reqwest::RequestBuilder, worker: &Worker) -> Outcome {
    match request.bearer_auth(&worker.token).send().await {
        Ok(response) if response.status().is_success() => {
            let _ = response.bytes().await;
            Outcome::Ok
        }
        Ok(response) => {
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            Outcome::Problem(status, body["code"].as_str().unwrap_or("?").to_owned())
        }
        Err(error) => Outcome::Transport(transport_kind(&error)),
    }
}

/// Asks for a new token with the sync secret and adopts it.
async fn renew(worker: &mut Worker) -> Outcome {
    let response = worker
        .http
        .post(format!("{}/api/auth/token", worker.base))
        .header("X-Latchkey-Sync-Secret", crate::stack::SYNC_SECRET)
        .json(&serde_json::json!({ "user_id": worker.user_id }))
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            match body["access_token"].as_str() {
                Some(token) => {
                    worker.token = token.to_owned();
                    Outcome::Ok
                }
                None => Outcome::Problem(200, "NO_TOKEN".into()),
            }
        }
        Ok(response) => {
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            Outcome::Problem(status, body["code"].as_str().unwrap_or("?").to_owned())
        }
        Err(error) => Outcome::Transport(transport_kind(&error)),
    }
}

fn transport_kind(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "connect".to_owned()
    } else if error.is_timeout() {
        "timeout".to_owned()
    } else {
        "other".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

/// Reveals the worker's `W` through settings' gRPC API with a service token (decrypts a row).
async fn reveal_once(
    worker: &Worker,
    state: &mut Option<(SettingsServiceClient<tonic::transport::Channel>, String)>,
) -> Outcome {
    if state.is_none() {
        match reveal_client(worker).await {
            Ok(client) => *state = Some(client),
            Err(outcome) => return outcome,
        }
    }
    let (client, token) = state.as_mut().expect("set above");
    let mut request = tonic::Request::new(settings_pb::RevealSettingRequest {
        user_id: worker.user_id.clone(),
        name: "W".into(),
        require_valid: false,
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match client.reveal_setting(request).await {
        Ok(_) => Outcome::Ok,
        Err(status) => {
            let error = latchkey_proto::ApiError::from_status(&status);
            // The worker has not written W yet: nothing to decrypt, not a failure.
            if error.reason == latchkey_proto::Reason::NotFound {
                return Outcome::Ok;
            }
            Outcome::Problem(error.reason.http_status(), error.reason.to_string())
        }
    }
}

async fn reveal_client(
    worker: &Worker,
) -> Result<(SettingsServiceClient<tonic::transport::Channel>, String), Outcome> {
    let unavailable = |e: &dyn std::fmt::Display| Outcome::Transport(format!("grpc: {e}"));
    let auth = tonic::transport::Endpoint::from_shared(worker.auth_url.clone())
        .unwrap()
        .connect_lazy();
    let token = AuthServiceClient::new(auth)
        .issue_service_token(auth_pb::IssueServiceTokenRequest {
            client_id: REVEALER.0.into(),
            client_secret: REVEALER.1.into(),
            scopes: vec![],
        })
        .await
        .map_err(|s| unavailable(&s))?
        .into_inner()
        .token
        .map(|t| t.access_token)
        .unwrap_or_default();
    let channel = tonic::transport::Endpoint::from_shared(worker.settings_url.clone())
        .unwrap()
        .connect_lazy();
    Ok((SettingsServiceClient::new(channel), token))
}

/// Counts per outcome (`200`, `503 UPSTREAM_UNAVAILABLE`, `transport: …`).
pub fn tally<'a>(records: impl IntoIterator<Item = &'a Record>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        let key = match &record.outcome {
            Outcome::Ok => "ok".to_owned(),
            Outcome::Problem(status, code) => format!("{status} {code}"),
            Outcome::Transport(kind) => format!("transport: {kind}"),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Requests per second over the records' span.
pub fn rate(records: &[Record]) -> f64 {
    let span = records
        .iter()
        .map(Record::end)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    if span == 0.0 {
        0.0
    } else {
        records.len() as f64 / span
    }
}

/// The `q` quantile (0–1) of the calls' durations.
pub fn quantile(records: &[&Record], q: f64) -> Duration {
    let mut took: Vec<Duration> = records.iter().map(|r| r.took).collect();
    if took.is_empty() {
        return Duration::ZERO;
    }
    took.sort();
    took[((took.len() - 1) as f64 * q).round() as usize]
}

/// Checks that each worker's stored `W` is its last acknowledged write or a later attempt (a
/// write whose answer was lost may still have committed); answers the workers that lost one.
pub async fn lost_writes(
    stack: &Stack,
    users: &[(String, String)],
    records: &[Record],
) -> Vec<String> {
    let mut lost = Vec::new();
    for (index, (_, token)) in users.iter().enumerate() {
        let writes: Vec<&Record> = records
            .iter()
            .filter(|r| r.worker == index && r.written.is_some())
            .collect();
        let acknowledged = writes.iter().rposition(|r| r.outcome == Outcome::Ok);
        let Some(position) = acknowledged else {
            continue;
        };
        let candidates: Vec<String> = writes[position..]
            .iter()
            .map(|r| write_value(r.written.unwrap()))
            .map(|v| format!("****{}", &v[v.len() - 4..]))
            .collect();
        let response = stack
            .http
            .get(stack.url("/api/settings"))
            .bearer_auth(token)
            .send()
            .await
            .expect("list");
        let body: serde_json::Value = response.json().await.unwrap();
        let stored = body["settings"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == "W"))
            .and_then(|s| s["masked"].as_str())
            .unwrap_or("<none>")
            .to_owned();
        if !candidates.contains(&stored) {
            lost.push(format!(
                "worker {index}: stored {stored}, acknowledged {}",
                candidates[0]
            ));
        }
    }
    lost
}
