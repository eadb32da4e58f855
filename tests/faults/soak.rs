//! A soak: steady load for `LATCHKEY_FAULTS_SOAK_SECS` (default 180 s with `CI=true`, 20 s
//! otherwise). Expected: not one error, and each process's resident memory at the end within
//! 10 % of what it was once warmed up.

use crate::load::{Load, Outcome, Plan, Record, quantile, rate, tally};
use crate::stack::Stack;
use std::time::Duration;

fn soak_length() -> Duration {
    let default = if std::env::var("CI").is_ok_and(|v| v == "true") {
        180
    } else {
        20
    };
    let secs = std::env::var("LATCHKEY_FAULTS_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}

/// Steady load, RSS sampled every 10 s.
pub async fn soak() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let length = soak_length();
    let warm_up = (length / 10).max(Duration::from_secs(2));
    let load = Load::start(&stack, Plan::rest(12, Duration::from_millis(40))).await;
    tokio::time::sleep(warm_up).await;
    let warm = stack.rss_kib();
    let mut peak = warm.clone();
    while load.elapsed() < length {
        tokio::time::sleep(Duration::from_secs(10).min(length.saturating_sub(load.elapsed())))
            .await;
        for ((_, top), (_, now)) in peak.iter_mut().zip(stack.rss_kib()) {
            *top = (*top).max(now);
        }
    }
    let end = stack.rss_kib();
    let records = load.stop().await;
    let windows: Vec<String> = records
        .chunk_by(|a, b| a.at.as_secs() / 30 == b.at.as_secs() / 30)
        .map(|window| {
            let refs: Vec<&Record> = window.iter().collect();
            format!("{:?}", quantile(&refs, 0.99))
        })
        .collect();
    println!(
        "soak {length:?}: {} requests ({:.0}/s), outcomes {:?}; p99 per 30 s window {windows:?}; RSS KiB warm {warm:?}, peak {peak:?}, end {end:?}",
        records.len(),
        rate(&records),
        tally(&records),
    );
    let failed: Vec<&Record> = records
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
        .collect();
    assert!(
        failed.is_empty(),
        "errors during the soak: {:?}\n{}",
        tally(failed.iter().copied()),
        stack.logs()
    );
    for ((name, warm), (_, end)) in warm.iter().zip(&end) {
        assert!(
            *end <= warm + warm / 10,
            "{name}'s memory grew from {warm} KiB to {end} KiB (more than 10 %)"
        );
    }
}
