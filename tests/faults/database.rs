//! The database goes away under load: refused (connections refused and cut), then hung (accepted
//! but never answered). Expected: only `503 UPSTREAM_UNAVAILABLE` while it is away, every answer
//! within its route's budget, `/healthz` unaffected, full service again within 5 s of its return
//! without a restart, no acknowledged write lost, no growth in memory or connections.

use crate::load::{Load, Outcome, Plan, Record, lost_writes, quantile, rate, tally};
use crate::proxy::Mode;
use crate::stack::Stack;
use std::time::Duration;

/// How long the database stays away.
const OUTAGE: Duration = Duration::from_secs(8);
/// Full service must be back this long after the database returns.
const RECOVERY: Duration = Duration::from_secs(5);

/// Failures that are not the expected 503 UPSTREAM_UNAVAILABLE.
fn unexpected(records: &[Record]) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| {
            r.outcome != Outcome::Ok
                && r.outcome != Outcome::Problem(503, "UPSTREAM_UNAVAILABLE".into())
        })
        .collect()
}

/// PostgreSQL refusing connections for [`OUTAGE`] under ~300 requests per second.
pub async fn refused_under_load() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let load = Load::start(&stack, Plan::rest(12, Duration::from_millis(40))).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let down = load.elapsed();
    stack.proxy.set(Mode::Refuse);
    tokio::time::sleep(OUTAGE).await;
    let back = load.elapsed();
    stack.proxy.set(Mode::Forward);
    tokio::time::sleep(RECOVERY + Duration::from_secs(3)).await;
    let users = load.users.clone();
    let records = load.stop().await;

    let failures: Vec<&Record> = records
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
        .collect();
    let last_failure = failures.iter().map(|r| r.end()).max().unwrap_or_default();
    let recovered_after = last_failure.saturating_sub(back);
    let outage: Vec<&Record> = records
        .iter()
        .filter(|r| r.at >= down && r.end() <= back)
        .collect();
    let after: Vec<&Record> = records.iter().filter(|r| r.at >= back + RECOVERY).collect();
    let before: Vec<&Record> = records.iter().filter(|r| r.end() < down).collect();
    println!(
        "database refused: before the outage {} requests, p50 {:?}, p99 {:?}",
        before.len(),
        quantile(&before, 0.5),
        quantile(&before, 0.99)
    );
    println!(
        "database refused {} s: {} requests ({:.0}/s), outcomes {:?}; during the outage {:?}, p50 {:?}, p99 {:?}, max {:?}; last failure {:?} after the database returned",
        OUTAGE.as_secs(),
        records.len(),
        rate(&records),
        tally(&records),
        tally(outage.iter().copied()),
        quantile(&outage, 0.5),
        quantile(&outage, 0.99),
        quantile(&outage, 1.0),
        recovered_after,
    );
    let wrong = unexpected(&records);
    assert!(
        wrong.is_empty(),
        "only 503 UPSTREAM_UNAVAILABLE is expected while the database refuses; got {:?}\n{}",
        tally(wrong.iter().copied()),
        stack.logs()
    );
    assert!(
        !failures.is_empty(),
        "the outage must be visible (the proxy refused nothing?)"
    );
    assert!(
        recovered_after <= RECOVERY,
        "full service {recovered_after:?} after the database returned (expected within {RECOVERY:?})"
    );
    assert!(
        !after.is_empty() && after.iter().all(|r| r.outcome == Outcome::Ok),
        "every request after recovery succeeds"
    );
    let lost = lost_writes(&stack, &users, &records).await;
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

/// How long past its route's budget an answer may come (scheduling on a busy machine).
const SLACK: Duration = Duration::from_secs(1);

/// PostgreSQL accepting connections but never answering for [`OUTAGE`] under load.
pub async fn hung_under_load() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let load = Load::start(&stack, Plan::rest(12, Duration::from_millis(40))).await;
    let health = HealthProbe::start(&stack);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_before = stack.rss_kib();
    let connections_before = stack.proxy.open_connections();
    let down = load.elapsed();
    stack.proxy.set(Mode::Hang);
    tokio::time::sleep(OUTAGE).await;
    let connections_hung = stack.proxy.open_connections();
    let back = load.elapsed();
    stack.proxy.set(Mode::Forward);
    tokio::time::sleep(RECOVERY + Duration::from_secs(3)).await;
    let users = load.users.clone();
    let records = load.stop().await;
    let health = health.stop().await;
    let rss_after = stack.rss_kib();
    let connections_after = stack.proxy.open_connections();

    let outage: Vec<&Record> = records
        .iter()
        .filter(|r| r.at >= down && r.at <= back)
        .collect();
    let late: Vec<&Record> = records
        .iter()
        .filter(|r| r.took > r.op.budget() + SLACK)
        .collect();
    let failures: Vec<&Record> = records
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
        .collect();
    let recovered_after = failures
        .iter()
        .map(|r| r.end())
        .max()
        .unwrap_or_default()
        .saturating_sub(back);
    let health_refs: Vec<&Record> = health.iter().collect();
    println!(
        "database hung {} s: {} requests, outcomes {:?}; during {:?}, max {:?}; /healthz {} probes, p50 {:?}, max {:?}; RSS KiB before {:?} after {:?}; proxied connections before {connections_before}, hung {connections_hung}, after {connections_after}; last failure {recovered_after:?} after the database returned",
        OUTAGE.as_secs(),
        records.len(),
        tally(&records),
        tally(outage.iter().copied()),
        quantile(&outage, 1.0),
        health.len(),
        quantile(&health_refs, 0.5),
        quantile(&health_refs, 1.0),
        rss_before,
        rss_after,
    );
    let wrong: Vec<&Record> = records
        .iter()
        .filter(|r| {
            !matches!(&r.outcome, Outcome::Ok | Outcome::Problem(503, _) | Outcome::Problem(504, _))
                || matches!(&r.outcome, Outcome::Problem(_, code) if code != "UPSTREAM_UNAVAILABLE" && code != "DEADLINE_EXCEEDED")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "only 503 UPSTREAM_UNAVAILABLE or 504 DEADLINE_EXCEEDED while the database hangs; got {:?}\n{}",
        tally(wrong.iter().copied()),
        stack.logs()
    );
    assert!(
        late.is_empty(),
        "answers past their route's budget: {:?}",
        late.iter()
            .map(|r| (r.op, r.took, r.outcome.clone()))
            .collect::<Vec<_>>()
    );
    assert!(!failures.is_empty(), "the hang must be visible");
    assert!(
        health
            .iter()
            .all(|r| r.outcome == Outcome::Ok && r.took < SLACK),
        "/healthz must answer at once throughout: {:?}",
        tally(&health)
    );
    assert!(
        recovered_after <= RECOVERY,
        "full service {recovered_after:?} after the database returned (expected within {RECOVERY:?})"
    );
    assert!(
        connections_after <= connections_before.max(POOL_CONNECTIONS),
        "connections grew: {connections_before} before, {connections_after} after"
    );
    for ((name, before), (_, after)) in rss_before.iter().zip(&rss_after) {
        assert!(
            *after <= before + before / 4,
            "{name}'s memory grew from {before} KiB to {after} KiB"
        );
    }
    let lost = lost_writes(&stack, &users, &records).await;
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

/// Connections auth's and settings' pools may hold together (16 each).
const POOL_CONNECTIONS: usize = 32;

/// `GET /healthz` every 50 ms, timed.
struct HealthProbe {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<Record>>,
}

impl HealthProbe {
    fn start(stack: &Stack) -> HealthProbe {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (http, url) = (stack.http.clone(), stack.url("/healthz"));
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut records = Vec::new();
            while !*stopped.borrow_and_update() {
                let at = started.elapsed();
                let begun = std::time::Instant::now();
                let outcome = match http.get(&url).send().await {
                    Ok(r) if r.status() == 200 => Outcome::Ok,
                    Ok(r) => Outcome::Problem(r.status().as_u16(), String::new()),
                    Err(e) => Outcome::Transport(e.to_string()),
                };
                records.push(Record {
                    at,
                    took: begun.elapsed(),
                    op: crate::load::Op::Me,
                    worker: usize::MAX,
                    written: None,
                    outcome,
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            records
        });
        HealthProbe { stop, task }
    }

    async fn stop(self) -> Vec<Record> {
        self.stop.send_replace(true);
        self.task.await.expect("health probe")
    }
}
