//! `latchkey doctor --web-app-env PATH`: the web app's own env file (e.g. `../web/.env.local`),
//! read with Latchkey's `.env` parser and never printed, checked against the Latchkey doctor
//! reaches — its sync secret is the one auth holds (auth is asked, as for doctor's own secret),
//! its `AUTH_SECRET`/`NEXTAUTH_SECRET` agree with each other and with auth's legacy secret (auth
//! is handed an expired token signed with each: only a wrong secret fails the signature), and
//! the Latchkey URL it calls answers `/healthz`. The names looked for are the lists below
//! (README.md, "Operating it").

use super::check::Check;
use super::grpc::{SyncProbe, check_sync_secret};
use latchkey_common::SecretString;
use latchkey_common::aliases::{list, readers_of};
use latchkey_common::config::{
    AUTH_URL, Config, Key, LEGACY_HS256_ENABLED, LEGACY_HS256_SECRET, SYNC_SECRET, Setting, Source,
};
use latchkey_common::secret::fingerprint;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::{ApiError, Reason};
use std::path::Path;
use zeroize::Zeroizing;

/// Names a web app keeps its Latchkey sync secret under, in the order doctor reads them.
pub const SYNC_SECRET_NAMES: &[&str] = &["LATCHKEY_SYNC_SECRET", "AUTH_SYNC_SECRET", "SYNC_SECRET"];
/// NextAuth's secret: Auth.js v5 reads `AUTH_SECRET` first, next-auth v4 `NEXTAUTH_SECRET`.
pub const NEXTAUTH_NAMES: &[&str] = &["AUTH_SECRET", "NEXTAUTH_SECRET"];
/// Names a web app keeps Latchkey's address under.
pub const URL_NAMES: &[&str] = &[
    "LATCHKEY_URL",
    "LATCHKEY_GATEWAY_URL",
    "NEXT_PUBLIC_LATCHKEY_URL",
];
/// The backend address a web app moving to Latchkey repointed; read only when none of
/// [`URL_NAMES`] is set (otherwise they may name the app's other backend).
pub const BACKEND_URL_NAMES: &[&str] = &[
    "BACKEND_URL",
    "API_URL",
    "NEXT_PUBLIC_BACKEND_URL",
    "NEXT_PUBLIC_API_URL",
];

/// How doctor reaches this Latchkey.
pub struct Reach<'a> {
    /// Auth's channel, when auth answered its health check.
    pub auth: Option<tonic::transport::Channel>,
    pub http: &'a reqwest::Client,
    /// The gateway doctor checks, e.g. `http://127.0.0.1:8080`.
    pub gateway: &'a str,
}

/// The web app's variables (values zeroized on drop, never printed).
struct WebApp {
    shown: String,
    values: Vec<(String, Zeroizing<String>)>,
}

impl WebApp {
    /// `(name, value)` for each of `names` set to a non-empty value, in that order.
    fn present<'a>(&'a self, names: &[&'a str]) -> Vec<(&'a str, &'a str)> {
        names
            .iter()
            .filter_map(|name| {
                self.values
                    .iter()
                    .find(|(n, v)| n == name && !v.trim().is_empty())
                    .map(|(_, v)| (*name, v.as_str()))
            })
            .collect()
    }
}

/// Every web-app check, each ✘ with its fix.
pub async fn check(checks: &mut Vec<Check>, path: &Path, config: &Config, reach: Reach<'_>) {
    let Some(app) = read(checks, path) else {
        return;
    };
    sync_secret(checks, &app, config, &reach).await;
    nextauth_secrets(checks, &app, config, &reach).await;
    latchkey_url(checks, &app, &reach).await;
}

fn read(checks: &mut Vec<Check>, path: &Path) -> Option<WebApp> {
    let shown = path.display().to_string();
    let name = format!("web app env: {shown}");
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(error) => {
            checks.push(Check::fail(
                name,
                format!("cannot be read: {}", error.kind()),
                "pass the web app's env file, e.g. --web-app-env ../web/.env.local",
            ));
            return None;
        }
    };
    match latchkey_settings::dotenv::parse(&text) {
        Ok(parsed) => {
            checks.push(Check::pass(
                name,
                format!(
                    "{} variable(s) read with Latchkey's .env parser (values are never shown)",
                    parsed.entries.len()
                ),
            ));
            let values = parsed
                .entries
                .into_iter()
                .map(|e| (e.name, Zeroizing::new(e.value)))
                .collect();
            Some(WebApp { shown, values })
        }
        Err(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("line {}: {}", e.line, e.message))
                .collect();
            checks.push(Check::fail(
                name,
                lines.join("; "),
                "fix those lines (README.md, \"The .env grammar\"), then rerun doctor",
            ));
            None
        }
    }
}

/// The web app's sync secret is one value, and the one auth holds.
async fn sync_secret(checks: &mut Vec<Check>, app: &WebApp, config: &Config, reach: &Reach<'_>) {
    let name = "web app: sync secret as auth sees it";
    let present = app.present(SYNC_SECRET_NAMES);
    let Some(&(variable, secret)) = present.first() else {
        let hint = match config.source(SYNC_SECRET) {
            Some(Source::Underlay(origin)) => {
                format!(
                    " (`latchkey dev` keeps it as {sync_secret} in {origin})",
                    sync_secret = SYNC_SECRET.env()
                )
            }
            _ => String::new(),
        };
        checks.push(Check::fail(
            name,
            format!(
                "{} sets none of {}",
                app.shown,
                SYNC_SECRET_NAMES.join(", ")
            ),
            format!(
                "add {sync_secret}=<the value auth holds>{hint} to {} and send it as X-Latchkey-Sync-Secret from the web app's server",
                app.shown,
                sync_secret = SYNC_SECRET.env()
            ),
        ));
        return;
    };
    if present.iter().any(|(_, v)| !same(v, secret)) {
        checks.push(Check::fail(
            "web app: sync secret names",
            format!(
                "in {}, {} hold different values",
                app.shown,
                fingerprints(&present)
            ),
            format!(
                "keep one value (the one auth holds) under every name in {}",
                app.shown
            ),
        ));
    }
    let fix = format!(
        "set {variable} in {} to the sync secret auth holds ({sync_secret} where auth runs; compare `latchkey fingerprint` on both machines)",
        app.shown,
        sync_secret = SYNC_SECRET.env()
    );
    match &reach.auth {
        Some(channel) => {
            let probe = SyncProbe {
                name: name.to_owned(),
                whose: format!("the web app's {variable} ({})", app.shown),
                fix,
            };
            check_sync_secret(checks, channel.clone(), secret, &probe).await;
        }
        None => compare_locally(checks, name, (variable, secret), config, SYNC_SECRET, &fix),
    }
}

/// AUTH_SECRET and NEXTAUTH_SECRET agree with each other and with auth's legacy secret.
async fn nextauth_secrets(
    checks: &mut Vec<Check>,
    app: &WebApp,
    config: &Config,
    reach: &Reach<'_>,
) {
    let present = app.present(NEXTAUTH_NAMES);
    if present.is_empty() {
        no_nextauth_secret(checks, app, config);
        return;
    }
    if let [(a, first), (b, second)] = present[..] {
        let name = format!("web app: {a} and {b}");
        if same(first, second) {
            checks.push(Check::pass(
                name,
                format!(
                    "the same value (fingerprint {})",
                    fingerprint(first.as_bytes())
                ),
            ));
        } else {
            checks.push(Check::fail(
                name,
                format!(
                    "in {}, {} differ: {}; the web app signs with the one its major reads, and a token signed with the other fails",
                    app.shown,
                    fingerprints(&present),
                    readers_of([a, b]).join("; ")
                ),
                format!(
                    "give {a} and {b} the same value in {} (or remove the one your NextAuth major does not read), and the same as Latchkey's {legacy_secret}",
                    app.shown,
                    legacy_secret = LEGACY_HS256_SECRET.env()
                ),
            ));
        }
    }
    for &(variable, secret) in &present {
        legacy_secret_as_auth_sees_it(checks, app, config, reach, variable, secret).await;
    }
}

/// Neither NextAuth name: fine unless Latchkey holds a secret to verify the web app's tokens.
fn no_nextauth_secret(checks: &mut Vec<Check>, app: &WebApp, config: &Config) {
    let name = "web app: AUTH_SECRET / NEXTAUTH_SECRET";
    match config.secret(LEGACY_HS256_SECRET) {
        Some(secret) => checks.push(Check::fail(
            name,
            format!(
                "{} sets neither, but Latchkey holds {legacy_secret} (fingerprint {}, from {}) to verify the web app's own tokens",
                app.shown,
                latchkey_common::secret::fingerprint_str(&secret),
                source_of(config, LEGACY_HS256_SECRET),
                legacy_secret = LEGACY_HS256_SECRET.env()
            ),
            format!(
                "add the web app's secret to {} (AUTH_SECRET for Auth.js v5, NEXTAUTH_SECRET for next-auth v4) with that value, or unset {legacy_secret} if the web app sends only Latchkey's tokens",
                app.shown,
                legacy_secret = LEGACY_HS256_SECRET.env()
            ),
        )),
        None => checks.push(Check::pass(
            name,
            "neither is set and Latchkey holds no legacy secret: the web app sends only Latchkey's tokens",
        )),
    }
}

/// Hands auth an expired HS256 token signed with the web app's secret: auth checks the
/// signature before anything else, so only another secret answers TOKEN_SIGNATURE_INVALID (or
/// TOKEN_SECRET_MISMATCH); the probe can never sign anybody in.
async fn legacy_secret_as_auth_sees_it(
    checks: &mut Vec<Check>,
    app: &WebApp,
    config: &Config,
    reach: &Reach<'_>,
    variable: &str,
    secret: &str,
) {
    let name = format!("web app: {variable} as auth sees it");
    let fp = fingerprint(secret.as_bytes());
    let fix = format!(
        "set {legacy_secret} where auth runs to the value of {variable} in {} (compare `latchkey fingerprint` on both machines) and restart auth",
        app.shown,
        legacy_secret = LEGACY_HS256_SECRET.env()
    );
    let Some(channel) = &reach.auth else {
        compare_locally(
            checks,
            &name,
            (variable, secret),
            config,
            LEGACY_HS256_SECRET,
            &fix,
        );
        return;
    };
    let reason = authenticate_probe(channel.clone(), secret).await;
    match reason {
        Some(Reason::TokenSignatureInvalid | Reason::TokenSecretMismatch) => {
            let here = match config.secret(LEGACY_HS256_SECRET) {
                Some(ours) => format!(
                    " (this environment's {legacy_secret}: fingerprint {}, from {})",
                    latchkey_common::secret::fingerprint_str(&ours),
                    source_of(config, LEGACY_HS256_SECRET),
                    legacy_secret = LEGACY_HS256_SECRET.env()
                ),
                None => String::new(),
            };
            checks.push(Check::fail(
                name,
                format!(
                    "auth refuses a token signed with the web app's {variable} (fingerprint {fp}): auth holds another legacy secret{here}"
                ),
                fix,
            ));
        }
        Some(Reason::TokenAlgorithmRejected) => match config.secret(LEGACY_HS256_SECRET) {
            Some(_) => compare_locally(
                checks,
                &name,
                (variable, secret),
                config,
                LEGACY_HS256_SECRET,
                &fix,
            ),
            None => checks.push(Check::pass(
                name,
                format!(
                    "auth accepts no HS256 token from the web app ({legacy_enabled} is off) and this environment holds no {legacy_secret}, so {variable} (fingerprint {fp}) has nothing to match: the web app sends the tokens Latchkey issues",
                    legacy_enabled = LEGACY_HS256_ENABLED.env(),
                    legacy_secret = LEGACY_HS256_SECRET.env()
                ),
            )),
        },
        Some(
            reason @ (Reason::UpstreamUnavailable
            | Reason::DeadlineExceeded
            | Reason::Internal
            | Reason::RateLimited),
        ) => checks.push(Check::fail(
            name,
            format!("auth answered {reason}"),
            "see docs/TROUBLESHOOTING.md for that code and auth's log, then rerun doctor",
        )),
        Some(reason) => checks.push(Check::pass(
            name,
            format!(
                "auth verifies a token signed with {variable} (fingerprint {fp}); it then refused doctor's expired probe as {reason}, as intended"
            ),
        )),
        None => checks.push(Check::pass(
            name,
            format!("auth verifies a token signed with {variable} (fingerprint {fp})"),
        )),
    }
}

/// Auth's refusal of an expired HS256 probe token signed with `secret` (None if it accepted).
async fn authenticate_probe(channel: tonic::transport::Channel, secret: &str) -> Option<Reason> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let email = format!(
        "doctor-probe-{}@latchkey-doctor.invalid",
        uuid::Uuid::new_v4().simple()
    );
    let token = latchkey_auth::tokens::sign_hs256(
        &latchkey_common::SecretString::from(secret.to_owned()),
        &serde_json::json!({
            "sub": email,
            "email": email,
            "iat": now - 7200,
            "exp": now - 3600,
        }),
    );
    auth_pb::auth_service_client::AuthServiceClient::new(channel)
        .authenticate(auth_pb::AuthenticateRequest { token })
        .await
        .err()
        .map(|status| ApiError::from_status(&status).reason)
}

/// Without auth to ask: the web app's value against the one this environment holds.
fn compare_locally(
    checks: &mut Vec<Check>,
    name: &str,
    (variable, secret): (&str, &str),
    config: &Config,
    key: Setting<SecretString>,
    fix: &str,
) {
    let ours = key.env();
    let fp = fingerprint(secret.as_bytes());
    match config.secret(key) {
        Some(held) if latchkey_common::secret::secrets_match(secret.as_bytes(), &held) => checks.push(Check::pass(
            name,
            format!(
                "{variable} (fingerprint {fp}) is this environment's {ours} (from {})",
                source_of(config, key)
            ),
        )),
        Some(held) => checks.push(Check::fail(
            name,
            format!(
                "{variable} (fingerprint {fp}) differs from this environment's {ours} (fingerprint {}, from {})",
                latchkey_common::secret::fingerprint_str(&held),
                source_of(config, key)
            ),
            fix,
        )),
        None => checks.push(Check::fail(
            name,
            format!(
                "auth is not reachable to ask and this environment holds no {ours} to compare {variable} (fingerprint {fp}) with"
            ),
            format!("start auth (or point {} at it) and rerun doctor", AUTH_URL.env()),
        )),
    }
}

/// The Latchkey URL the web app calls answers `/healthz` as a Latchkey gateway.
async fn latchkey_url(checks: &mut Vec<Check>, app: &WebApp, reach: &Reach<'_>) {
    let mut present = app.present(URL_NAMES);
    if present.is_empty() {
        present = app.present(BACKEND_URL_NAMES);
    }
    if present.is_empty() {
        checks.push(Check::fail(
            "web app: Latchkey URL",
            format!(
                "{} sets none of {} (nor {})",
                app.shown,
                URL_NAMES.join(", "),
                BACKEND_URL_NAMES.join(", ")
            ),
            format!(
                "add LATCHKEY_URL={} to {} and have the web app's server call Latchkey there",
                reach.gateway, app.shown
            ),
        ));
        return;
    }
    for (variable, url) in present {
        url_answers(checks, app, reach, variable, url).await;
    }
}

async fn url_answers(
    checks: &mut Vec<Check>,
    app: &WebApp,
    reach: &Reach<'_>,
    variable: &str,
    url: &str,
) {
    let shown = latchkey_common::db::redact_url(url.trim());
    let name = format!("web app: {variable} ({shown})");
    let fix = format!(
        "start Latchkey there, or set {variable} in {} to the gateway's address (doctor reached it at {})",
        app.shown, reach.gateway
    );
    let origin = match reqwest::Url::parse(url.trim()) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
            parsed.origin().ascii_serialization()
        }
        _ => {
            checks.push(Check::fail(
                name,
                format!("{variable} is not an http(s) URL"),
                fix,
            ));
            return;
        }
    };
    let answer = reach.http.get(format!("{origin}/healthz")).send().await;
    let response = match answer {
        Ok(response) => response,
        Err(error) => {
            checks.push(Check::fail(
                name,
                format!("GET {origin}/healthz: cannot connect: {error}"),
                fix,
            ));
            return;
        }
    };
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    match body["version"].as_str() {
        Some(version) if status.is_success() => checks.push(Check::pass(
            name,
            format!("GET {origin}/healthz: a Latchkey gateway, version {version}"),
        )),
        _ => checks.push(Check::fail(
            name,
            format!(
                "GET {origin}/healthz answered HTTP {}, not a Latchkey gateway",
                status.as_u16()
            ),
            fix,
        )),
    }
}

/// `A (fingerprint x) and B (fingerprint y)`.
fn fingerprints(present: &[(&str, &str)]) -> String {
    list(
        present
            .iter()
            .map(|(name, value)| format!("{name} (fingerprint {})", fingerprint(value.as_bytes()))),
    )
}

/// Two secrets compared in constant time.
fn same(a: &str, b: &str) -> bool {
    latchkey_common::secret::secrets_match(
        a.as_bytes(),
        &latchkey_common::SecretString::from(b.to_owned()),
    )
}

fn source_of(config: &Config, key: impl Key) -> String {
    config
        .source(key)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "nowhere".to_owned())
}
