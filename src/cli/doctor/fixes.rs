//! The fix doctor offers for each answer the gateway gives instead of the expected one, matched
//! on the catalogue's [`Reason`] rather than on its spelling.

use latchkey_common::config::{
    AUDIENCE, AUTH_URL, DATABASE_URL, ENCRYPTION_KEYS, ISSUER, LEEWAY_SECS, SETTINGS_URL,
    SYNC_RATE_PER_MINUTE, SYNC_SECRET,
};
use latchkey_proto::Reason;

/// Why the gateway's answer was not the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A problem+json `code` from the catalogue.
    Reason(Reason),
    /// A `code` this doctor's catalogue does not know (a newer gateway).
    Code(String),
    /// No problem+json: only the HTTP status.
    Status(u16),
    /// The gateway did not answer at all.
    Unreachable,
}

impl Cause {
    /// Reads a problem+json `code`, or the bare status when there is none.
    pub fn of(code: Option<&str>, status: u16) -> Cause {
        match code {
            Some(code) => {
                Reason::parse(code).map_or_else(|| Cause::Code(code.to_owned()), Cause::Reason)
            }
            None => Cause::Status(status),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Reason(reason) => write!(f, "{reason}"),
            Cause::Code(code) => f.write_str(code),
            Cause::Status(status) => write!(f, "HTTP {status}"),
            Cause::Unreachable => f.write_str("UNREACHABLE"),
        }
    }
}

/// The command or change that fixes `cause`; `detail` names the upstream when one is down.
pub fn fix_for(cause: &Cause, detail: &str) -> String {
    match cause {
        Cause::Reason(reason) => fix_for_reason(*reason, detail),
        Cause::Unreachable => {
            "start `latchkey gateway`, or point --gateway-url / LATCHKEY_GATEWAY_URL at it".into()
        }
        other => format!("see docs/TROUBLESHOOTING.md for {other} and the gateway's log"),
    }
}

fn fix_for_reason(reason: Reason, detail: &str) -> String {
    let (sync_secret, auth_url) = (SYNC_SECRET.env(), AUTH_URL.env());
    match reason {
        Reason::SyncSecretInvalid => format!(
            "the gateway's auth holds a different sync secret than this environment: run `latchkey fingerprint` here and where auth runs, and set the same {sync_secret} on both"
        ),
        Reason::SyncSecretMissing => format!(
            "set {sync_secret} here to the value auth holds (compare with `latchkey fingerprint`)"
        ),
        Reason::UpstreamUnavailable | Reason::DeadlineExceeded => upstream_fix(detail),
        Reason::UserNotSynced => format!(
            "the probe user auth just synced is unknown to the auth that checked its token: every auth instance must share one database ({}), and the gateway's and settings' {auth_url} must reach that auth",
            DATABASE_URL.env()
        ),
        Reason::TokenKeyUnknown | Reason::TokenSignatureInvalid => format!(
            "the token was checked against another auth's keys: point the gateway's and settings' {auth_url} at the auth that signs tokens"
        ),
        Reason::TokenIssuerUntrusted | Reason::TokenAudienceMismatch => format!(
            "set the same {} and {} on auth and settings",
            ISSUER.env(),
            AUDIENCE.env()
        ),
        Reason::TokenExpired | Reason::TokenNotYetValid => format!(
            "the machines' clocks disagree: sync them (NTP) or raise {}",
            LEEWAY_SECS.env()
        ),
        Reason::RateLimited => format!(
            "wait a minute and rerun, or raise the gateway's {}",
            SYNC_RATE_PER_MINUTE.env()
        ),
        Reason::DataIntegrity => format!(
            "a stored value does not open with the configured master keys: compare {} (`latchkey fingerprint`) and run `latchkey keys status`",
            ENCRYPTION_KEYS.env()
        ),
        other => format!("see docs/TROUBLESHOOTING.md for {other} and the gateway's log"),
    }
}

/// Which upstream to start or point the gateway at, from the detail naming it.
fn upstream_fix(detail: &str) -> String {
    let (auth_url, settings_url) = (AUTH_URL.env(), SETTINGS_URL.env());
    if detail.contains("settings") {
        format!("start `latchkey settings`, or point the gateway's {settings_url} at it")
    } else if detail.contains("auth") {
        format!("start `latchkey auth`, or point the gateway's {auth_url} at it")
    } else {
        format!(
            "start the upstream the detail names (`latchkey auth` / `latchkey settings`), or correct the gateway's {auth_url} / {settings_url}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_from_the_catalogue_get_their_fix_and_others_the_troubleshooting_guide() {
        let cause = Cause::of(Some("SYNC_SECRET_INVALID"), 401);
        assert_eq!(cause, Cause::Reason(Reason::SyncSecretInvalid));
        assert!(fix_for(&cause, "").contains("LATCHKEY_SYNC_SECRET on both"));
        let down = Cause::of(Some("UPSTREAM_UNAVAILABLE"), 503);
        assert!(
            fix_for(&down, "the settings service is unavailable").contains("LATCHKEY_SETTINGS_URL")
        );
        let newer = Cause::of(Some("SOMETHING_NEW"), 400);
        assert_eq!(newer.to_string(), "SOMETHING_NEW");
        assert!(fix_for(&newer, "").contains("docs/TROUBLESHOOTING.md for SOMETHING_NEW"));
        assert_eq!(Cause::of(None, 502).to_string(), "HTTP 502");
    }
}
