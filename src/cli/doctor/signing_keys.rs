//! Signing keys as auth's database holds them: each key's state (standby, active, retired) and
//! when it changes next, under the configured rotation policy; a ✘ when no key signs.

use super::check::Check;
use latchkey_common::clock::{Clock, SystemClock};

/// One "signing keys" line: every key with its state and next change.
pub(super) async fn check_signing_keys(
    db: &sea_orm::DatabaseConnection,
    auth: &latchkey_auth::AuthConfig,
    checks: &mut Vec<Check>,
) {
    let name = "signing keys";
    let lines =
        match latchkey_auth::life_cycle::describe(db, &auth.key_policy, SystemClock.now()).await {
            Ok(lines) => lines,
            Err(error) => {
                checks.push(Check::fail(
                    name,
                    error.to_string(),
                    "check auth's database (`latchkey keys status`)",
                ));
                return;
            }
        };
    if lines.is_empty() {
        checks.push(Check::pass(
            name,
            "none yet: auth creates the first one when it starts",
        ));
        return;
    }
    if !lines
        .iter()
        .any(|line| line.key.state == latchkey_auth::store::signing_keys::ACTIVE)
    {
        checks.push(Check::fail(
            name,
            "no key is active: auth cannot sign tokens",
            "run `latchkey keys rotate-signing` (or restart auth, which creates one)",
        ));
        return;
    }
    let described: Vec<String> = lines
        .iter()
        .map(|line| {
            let next = line
                .next
                .as_deref()
                .map(|next| format!("; next: {next}"))
                .unwrap_or_default();
            format!(
                "{} ({}) {}{next}",
                line.key.kid, line.key.algorithm, line.state
            )
        })
        .collect();
    checks.push(Check::pass(name, described.join(" · ")));
}
