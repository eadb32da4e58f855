//! Keys rotate under load, each with the operator's own commands and no restart. Expected: not
//! one failed request.
//!
//! - signing: `latchkey keys rotate-signing`; auth picks the new key up within its refresh
//!   interval (1 s here), settings fetches the JWKS on the first token with the new `kid`;
//! - encryption: add a master key first in `LATCHKEY_ENCRYPTION_KEYS_FILE` → settings re-reads
//!   it → `latchkey keys rotate-encryption` → drop the old key → re-read again; reveals decrypt
//!   throughout.

use crate::load::{Load, Op, Outcome, Plan, Record, rate, tally};
use crate::stack::{Stack, master_key};
use base64::Engine;
use std::time::{Duration, Instant};

/// The `kid` in a JWT's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap_or_default();
    let header: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    header["kid"].as_str().unwrap_or_default().to_owned()
}

async fn fresh_token(stack: &Stack, user_id: &str) -> String {
    let response = stack
        .http
        .post(stack.url("/api/auth/token"))
        .header("X-Latchkey-Sync-Secret", crate::stack::SYNC_SECRET)
        .json(&serde_json::json!({ "user_id": user_id }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn failures(records: &[Record]) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
        .collect()
}

/// `latchkey keys rotate-signing` while workers renew tokens and use them on every route.
pub async fn signing_under_load() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let (user_id, token) = stack.sync_user("rotation-probe").await;
    let old_kid = kid(&token);
    let plan = Plan {
        workers: 10,
        ops: vec![Op::Renew, Op::List, Op::Write, Op::Me],
        pace: Some(Duration::from_millis(40)),
    };
    let load = Load::start(&stack, plan).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rotated = Instant::now();
    let (ok, output) = stack.cli(&["keys", "rotate-signing"]).await;
    assert!(ok, "rotate-signing failed:\n{output}");
    let mut new_kid_after = None;
    while rotated.elapsed() < Duration::from_secs(15) {
        if kid(&fresh_token(&stack, &user_id).await) != old_kid {
            new_kid_after = Some(rotated.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let records = load.stop().await;
    println!(
        "signing-key rotation: {} requests ({:.0}/s), outcomes {:?}; tokens carry the new kid {:?} after the command",
        records.len(),
        rate(&records),
        tally(&records),
        new_kid_after
    );
    assert!(
        new_kid_after.is_some(),
        "auth never signed with the new key"
    );
    let failed = failures(&records);
    assert!(
        failed.is_empty(),
        "requests failed during the rotation: {:?}\n{}",
        tally(failed.iter().copied()),
        stack.logs()
    );
}

/// Waits until settings has logged `count` key reloads.
async fn reloads(stack: &Stack, count: usize) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        let seen = stack
            .settings
            .log()
            .matches("settings master keys reloaded")
            .count();
        if seen >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "settings did not reload its master keys ({count})\n{}",
        stack.logs()
    );
}

/// A master-key rotation by file edits and `rotate-encryption` while values are written and
/// revealed.
pub async fn encryption_under_load() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let k1 = std::fs::read_to_string(&stack.keys_file).unwrap();
    let k2 = master_key("k2");
    // Rows to re-encrypt besides the workers' own.
    let (_, seed) = stack.sync_user("rotation-seed").await;
    let many: serde_json::Map<String, serde_json::Value> = (0..150)
        .map(|i| (format!("SEED_{i}"), format!("seed-value-{i:08}").into()))
        .collect();
    let response = stack
        .http
        .put(stack.url("/api/settings"))
        .bearer_auth(&seed)
        .json(&serde_json::json!({ "settings": many }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let plan = Plan {
        workers: 10,
        ops: vec![Op::Write, Op::Reveal, Op::List, Op::Reveal],
        pace: Some(Duration::from_millis(40)),
    };
    let load = Load::start(&stack, plan).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    std::fs::write(&stack.keys_file, format!("{k2},{k1}")).unwrap();
    reloads(&stack, 1).await;
    let started = Instant::now();
    let (ok, output) = stack.cli(&["keys", "rotate-encryption"]).await;
    let rotation_took = started.elapsed();
    assert!(ok, "rotate-encryption failed:\n{output}");
    std::fs::write(&stack.keys_file, &k2).unwrap();
    reloads(&stack, 2).await;
    let (ok, status) = stack.cli(&["keys", "status"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records = load.stop().await;
    let done = output
        .lines()
        .find(|l| l.starts_with("done:"))
        .unwrap_or_default();
    println!(
        "encryption-key rotation: {} requests ({:.0}/s), outcomes {:?}; rotate-encryption {rotation_took:?}: {done}",
        records.len(),
        rate(&records),
        tally(&records),
    );
    assert!(ok, "keys status failed:\n{status}");
    assert!(
        !status.contains("NOT CONFIGURED"),
        "after dropping a key guarding no rows:\n{status}"
    );
    let failed = failures(&records);
    assert!(
        failed.is_empty(),
        "requests failed during the rotation: {:?}\n{}",
        tally(failed.iter().copied()),
        stack.logs()
    );
    assert!(
        records
            .iter()
            .any(|r| r.op == Op::Reveal && r.outcome == Outcome::Ok),
        "values were revealed (decrypted) under load"
    );
}
