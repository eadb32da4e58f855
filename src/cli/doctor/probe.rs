//! The live probe: a throwaway user signed in through the gateway, one setting written (or, when
//! the declared settings refuse undeclared names, a declared one generated), read back masked and
//! deleted with the user.

use super::check::Check;
use super::gateway::{Gateway, Unexpected};
use latchkey_common::config::DATABASE_URL;

pub(super) const PROBE_SETTING: &str = "DOCTOR_PROBE";

/// Signs a probe user in through the gateway, round-trips one setting, and deletes the user
/// (which deletes their settings too). Every step is its own line.
pub(super) async fn live_probe(checks: &mut Vec<Check>, gateway: &Gateway, secret: &str) {
    let subject = uuid::Uuid::new_v4().simple().to_string();
    let step = "live probe: sync probe user";
    let answer = gateway
        .http
        .post(gateway.url("/api/auth/sync-user"))
        .header("X-Latchkey-Sync-Secret", secret)
        .json(&serde_json::json!({
            "provider": "latchkey-doctor",
            "subject": subject,
            "email": format!("doctor-{subject}@latchkey-doctor.invalid"),
            "name": "latchkey doctor probe",
        }))
        .send()
        .await;
    let token = match answer {
        Ok(response) if response.status().is_success() => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            match body["access_token"].as_str() {
                Some(token) => {
                    checks.push(Check::pass(
                        step,
                        format!(
                            "POST /api/auth/sync-user: user {} (provider latchkey-doctor), token issued",
                            body["user"]["id"].as_str().unwrap_or("?")
                        ),
                    ));
                    token.to_owned()
                }
                None => {
                    checks.push(Check::fail(
                        step,
                        "POST /api/auth/sync-user answered without an access_token",
                        "check that --gateway-url points at a Latchkey gateway",
                    ));
                    return;
                }
            }
        }
        Ok(response) => {
            checks.push(Unexpected::of(response).await.check(step));
            return;
        }
        Err(error) => {
            checks.push(Unexpected::transport(&error).check(step));
            return;
        }
    };
    let value = format!("doctor-{}", uuid::Uuid::new_v4().simple());
    let _ = probe_settings(checks, gateway, &token, &value).await;
    // Clean up whatever happened above.
    let step = "live probe: delete probe user";
    match gateway
        .http
        .delete(gateway.url("/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => checks.push(Check::pass(
            step,
            "DELETE /api/auth/me: the probe user and their settings are gone",
        )),
        Ok(response) => checks.push(Unexpected::of(response).await.check(step)),
        Err(error) => checks.push(Unexpected::transport(&error).check(step)),
    }
}

/// Read, write, read back masked. Stops at the first failing step.
pub(super) async fn probe_settings(
    checks: &mut Vec<Check>,
    gateway: &Gateway,
    token: &str,
    value: &str,
) -> Option<()> {
    let step = "live probe: read settings";
    let before = list_settings(checks, gateway, token, step).await?;
    checks.push(Check::pass(
        step,
        format!(
            "GET /api/settings with the probe token: {} setting(s)",
            before.len()
        ),
    ));

    let step = "live probe: write a setting";
    let (name, value) = match probe_write(gateway, token).await {
        ProbeWrite::Undeclared => (PROBE_SETTING.to_owned(), Some(value)),
        ProbeWrite::Generate(name) => (name, None),
        ProbeWrite::Skip => {
            checks.push(Check::pass(
                step,
                "skipped: the declared settings refuse undeclared names and declare none to generate, so the probe writes nothing (reading was checked)",
            ));
            return Some(());
        }
    };
    let request = match value {
        Some(value) => gateway
            .http
            .patch(gateway.url("/api/settings"))
            .json(&serde_json::json!({ "settings": { PROBE_SETTING: value } })),
        None => gateway
            .http
            .post(gateway.url(&format!("/api/settings/{name}/generate"))),
    };
    let stored_length = match request.bearer_auth(token).send().await {
        Ok(response) if response.status().is_success() => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            checks.push(Check::pass(
                step,
                match value {
                    Some(_) => format!("PATCH /api/settings stored {PROBE_SETTING}"),
                    None => format!(
                        "POST /api/settings/{name}/generate stored a generated value (undeclared names are refused by the schema)"
                    ),
                },
            ));
            value
                .map(|v| v.len() as u64)
                .or_else(|| body["setting"]["length"].as_u64())
        }
        Ok(response) => {
            checks.push(Unexpected::of(response).await.check(step));
            return None;
        }
        Err(error) => {
            checks.push(Unexpected::transport(&error).check(step));
            return None;
        }
    };

    let step = "live probe: list shows it masked";
    let after = list_settings(checks, gateway, token, step).await?;
    let entry = after.iter().find(|s| s["name"].as_str() == Some(&name));
    let plaintext_absent = |masked: &str| value.is_none_or(|v| masked != v && !masked.contains(v));
    match entry {
        Some(entry)
            if entry["masked"].as_str().is_some_and(plaintext_absent)
                && entry["length"].as_u64() == stored_length =>
        {
            checks.push(Check::pass(
                step,
                format!(
                    "{name} listed as {} (length {})",
                    entry["masked"].as_str().unwrap_or_default(),
                    stored_length.unwrap_or_default()
                ),
            ));
            Some(())
        }
        Some(entry) => {
            checks.push(Check::fail(
                step,
                format!("{name} is listed but not masked as expected: {entry}"),
                "report this as a bug: the list must never carry plaintext",
            ));
            None
        }
        None => {
            checks.push(Check::fail(
                step,
                format!("{name} was stored but the list does not show it"),
                format!(
                    "the gateway may balance across settings instances on different databases: give every settings instance the same {}",
                    DATABASE_URL.env()
                ),
            ));
            None
        }
    }
}

/// How the probe can write under the declared settings (`GET /api/settings/schema`).
enum ProbeWrite {
    /// Undeclared names are allowed: write [`PROBE_SETTING`].
    Undeclared,
    /// Only declared names are: have this generated one made.
    Generate(String),
    /// Neither: nothing can be written without a value the probe does not have.
    Skip,
}

/// Reads the schema; a gateway without the route (or any failure) means no schema to respect.
async fn probe_write(gateway: &Gateway, token: &str) -> ProbeWrite {
    let answer = gateway
        .http
        .get(gateway.url("/api/settings/schema"))
        .bearer_auth(token)
        .send()
        .await;
    let Ok(response) = answer else {
        return ProbeWrite::Undeclared;
    };
    let schema: serde_json::Value = response.json().await.unwrap_or_default();
    if schema["allow_undeclared"].as_bool() != Some(false) {
        return ProbeWrite::Undeclared;
    }
    schema["settings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["generate"].is_object())
        .and_then(|s| s["name"].as_str())
        .map_or(ProbeWrite::Skip, |name| {
            ProbeWrite::Generate(name.to_owned())
        })
}

/// `GET /api/settings`; a failure is pushed as the step's ✘.
pub(super) async fn list_settings(
    checks: &mut Vec<Check>,
    gateway: &Gateway,
    token: &str,
    step: &str,
) -> Option<Vec<serde_json::Value>> {
    match gateway
        .http
        .get(gateway.url("/api/settings"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            Some(body["settings"].as_array().cloned().unwrap_or_default())
        }
        Ok(response) => {
            checks.push(Unexpected::of(response).await.check(step));
            None
        }
        Err(error) => {
            checks.push(Unexpected::transport(&error).check(step));
            None
        }
    }
}
