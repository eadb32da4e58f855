//! The error catalogue: every reason Latchkey can answer, defined once with its gRPC code and
//! HTTP status, and the one conversion each way between [`ApiError`] and `tonic::Status`
//! (`google.rpc.Status` carrying `ErrorInfo`, `BadRequest` and `RetryInfo` via tonic-types).

use std::collections::HashMap;
use std::time::Duration;
use tonic::Code;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `ErrorInfo.domain` of every Latchkey error.
pub const ERROR_DOMAIN: &str = "latchkey";

macro_rules! catalogue {
    ($( $variant:ident = $wire:literal => ($code:ident, $http:literal, $title:literal, $advice:literal) ),+ $(,)?) => {
        /// A stable, UPPER_SNAKE_CASE reason: the same word in gRPC `ErrorInfo.reason`, in the
        /// REST problem+json `code`, in logs and in docs/TROUBLESHOOTING.md.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason { $( #[doc = $title] $variant ),+ }

        impl Reason {
            /// Every reason, in catalogue order (for tests and generated docs).
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant ),+ ];

            /// The wire name, e.g. `TOKEN_EXPIRED`.
            pub fn as_str(self) -> &'static str {
                match self { $( Reason::$variant => $wire ),+ }
            }

            /// The gRPC status code this reason travels with.
            pub fn grpc_code(self) -> Code {
                match self { $( Reason::$variant => Code::$code ),+ }
            }

            /// The HTTP status the gateway answers with.
            pub fn http_status(self) -> u16 {
                match self { $( Reason::$variant => $http ),+ }
            }

            /// A short human title (problem+json `title`).
            pub fn title(self) -> &'static str {
                match self { $( Reason::$variant => $title ),+ }
            }

            /// The default advice: a sentence saying what to do, for answers that have no
            /// more precise `detail` (a bare status, a refusal made before any domain code ran).
            pub fn advice(self) -> &'static str {
                match self { $( Reason::$variant => $advice ),+ }
            }
        }
    };
}

catalogue! {
    TokenMissing = "TOKEN_MISSING" => (Unauthenticated, 401, "No access token was sent", "Send the access token as `Authorization: Bearer <token>` (gRPC: `authorization` metadata)."),
    TokenMalformed = "TOKEN_MALFORMED" => (Unauthenticated, 401, "The access token is not a well-formed JWT", "Send the access token itself (a JWT from sync-user or the token route), not a cookie or another value."),
    TokenAlgorithmRejected = "TOKEN_ALGORITHM_REJECTED" => (Unauthenticated, 401, "The token's signing algorithm is not accepted", "Use a token Latchkey issued (EdDSA or ES256, as its key in the JWKS says); for the web app's own HS256 tokens turn legacy mode on."),
    TokenKeyUnknown = "TOKEN_KEY_UNKNOWN" => (Unauthenticated, 401, "The token was signed by a key Latchkey does not publish", "Get a new token from this Latchkey installation; its signing keys are listed at /.well-known/jwks.json."),
    TokenSignatureInvalid = "TOKEN_SIGNATURE_INVALID" => (Unauthenticated, 401, "The token's signature does not verify", "Get a new token; if the web app signs its own, check its secret with `latchkey fingerprint`."),
    TokenExpired = "TOKEN_EXPIRED" => (Unauthenticated, 401, "The access token has expired", "Get a new token (sign in again, or call the token route) and cache it no longer than `expires_in`."),
    TokenNotYetValid = "TOKEN_NOT_YET_VALID" => (Unauthenticated, 401, "The access token is not valid yet", "Check the clocks: this machine's clock is behind the issuer's."),
    TokenIssuerUntrusted = "TOKEN_ISSUER_UNTRUSTED" => (Unauthenticated, 401, "The token was issued by an untrusted issuer", "Set the same LATCHKEY_ISSUER on every Latchkey service, and use a token from this installation."),
    TokenAudienceMismatch = "TOKEN_AUDIENCE_MISMATCH" => (Unauthenticated, 401, "The token is meant for another audience", "Set the same LATCHKEY_AUDIENCE on every Latchkey service, and use a token meant for Latchkey."),
    TokenRevoked = "TOKEN_REVOKED" => (Unauthenticated, 401, "The token has been revoked", "Sign in again: the user's tokens were revoked after this one was issued."),
    TokenSecretMismatch = "TOKEN_SECRET_MISMATCH" => (Unauthenticated, 401, "The web app's token was made with another secret than Latchkey holds", "Give Latchkey the web app's secret (compare both with `latchkey fingerprint`)."),
    UserNotSynced = "USER_NOT_SYNCED" => (Unauthenticated, 401, "The token's user was never synced", "Call POST /api/auth/sync-user from the web app's sign-in callback, then sign in again."),
    UserDisabled = "USER_DISABLED" => (PermissionDenied, 403, "The user is disabled", "Ask an operator to enable the user (`latchkey users enable <id|email>`)."),
    UserAmbiguous = "USER_AMBIGUOUS" => (FailedPrecondition, 409, "Several users share this email", "Name the user by id instead of email; `latchkey users show <email>` lists the users holding it."),
    SyncSecretMissing = "SYNC_SECRET_MISSING" => (Unauthenticated, 401, "No sync secret was sent", "Send the sync secret as X-Latchkey-Sync-Secret from the web app's server, never from the browser."),
    SyncSecretInvalid = "SYNC_SECRET_INVALID" => (Unauthenticated, 401, "The sync secret does not match", "Set the same LATCHKEY_SYNC_SECRET in the web app and in Latchkey (compare with `latchkey fingerprint`)."),
    ClientCredentialsInvalid = "CLIENT_CREDENTIALS_INVALID" => (Unauthenticated, 401, "The service client id or secret is wrong", "Check the client id and secret against LATCHKEY_SERVICE_CLIENTS on auth."),
    ScopeMissing = "SCOPE_MISSING" => (PermissionDenied, 403, "The token lacks a required scope", "Use a service token whose client is allowed the scope (LATCHKEY_SERVICE_CLIENTS on auth)."),
    InvalidArgument = "INVALID_ARGUMENT" => (InvalidArgument, 400, "The request is invalid", "Fix the fields or lines listed and send the request again."),
    NotFound = "NOT_FOUND" => (NotFound, 404, "Not found", "Check the name; GET /api/settings lists the settings that exist."),
    MethodNotAllowed = "METHOD_NOT_ALLOWED" => (Unimplemented, 405, "Method not allowed", "Use a method the route takes; GET /openapi.json lists them."),
    PayloadTooLarge = "PAYLOAD_TOO_LARGE" => (ResourceExhausted, 413, "The request body is too large", "Send less: split the import (at most 256 KiB, 16 KiB per value)."),
    RateLimited = "RATE_LIMITED" => (ResourceExhausted, 429, "Too many requests", "Wait as long as Retry-After says, then try again."),
    DataIntegrity = "DATA_INTEGRITY" => (DataLoss, 500, "A stored value failed its integrity check", "Set the value again; if values keep failing, check that the master keys have not changed."),
    UpstreamUnavailable = "UPSTREAM_UNAVAILABLE" => (Unavailable, 503, "A service Latchkey depends on is unavailable", "Retry shortly, and run `latchkey doctor` if it persists."),
    DeadlineExceeded = "DEADLINE_EXCEEDED" => (DeadlineExceeded, 504, "The request ran out of time", "Retry, and run `latchkey doctor` if it persists."),
    Internal = "INTERNAL" => (Internal, 500, "Internal error", "An internal error occurred; the server log has the details under this request id."),
    SettingInvalid = "SETTING_INVALID" => (FailedPrecondition, 409, "The stored value does not fit the declared settings schema", "Ask the user to set the value again on the Settings page; GET /api/settings marks each setting's `valid`."),
    RefreshTokenInvalid = "REFRESH_TOKEN_INVALID" => (Unauthenticated, 401, "The refresh token is not one Latchkey issued", "Sign in again to get a new refresh token; send the `refresh_token` value exactly as it was answered."),
    RefreshTokenExpired = "REFRESH_TOKEN_EXPIRED" => (Unauthenticated, 401, "The refresh token has expired", "Sign in again: the refresh token was unused for too long or its family reached its absolute lifetime."),
    RefreshTokenReused = "REFRESH_TOKEN_REUSED" => (Unauthenticated, 401, "A refresh token was used twice, so its family was revoked", "Sign in again, and keep only the newest refresh token: each one works once, and an old one presented again revokes them all."),
    RefreshTokenRevoked = "REFRESH_TOKEN_REVOKED" => (Unauthenticated, 401, "The refresh token's family was revoked", "Sign in again: the family was revoked by sign-out everywhere, an administrator, or a reused token."),
}

impl Reason {
    /// Parses a wire name back into a reason.
    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == name)
    }

    /// The reason to assume for a status that carries no `ErrorInfo` (e.g. from a proxy). A
    /// bare UNAUTHENTICATED is a proxy or mesh refusing the call, not a verdict on a token.
    pub fn from_code(code: Code) -> Reason {
        match code {
            Code::Unauthenticated => Reason::UpstreamUnavailable,
            Code::PermissionDenied => Reason::ScopeMissing,
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                Reason::InvalidArgument
            }
            Code::NotFound => Reason::NotFound,
            Code::ResourceExhausted => Reason::RateLimited,
            Code::Unavailable => Reason::UpstreamUnavailable,
            Code::DeadlineExceeded | Code::Cancelled => Reason::DeadlineExceeded,
            Code::Unimplemented => Reason::MethodNotAllowed,
            Code::DataLoss => Reason::DataIntegrity,
            _ => Reason::Internal,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field or one line of the request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    /// The field (`settings.FLY_API_TOKEN`) or line (`line 7`) at fault.
    pub field: String,
    /// What is wrong, as a sentence.
    pub description: String,
}

impl Violation {
    /// What is wrong with one field or line.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Most violations one error lists; the rest are summed up in one last entry.
pub const MAX_VIOLATIONS: usize = 50;
/// Most bytes of violation text (fields and descriptions) one error carries. gRPC sends errors
/// in headers (the peer's limit is 16 KiB in all, base64 adds a third), so an error must stay
/// well under that or it arrives as a transport failure instead of itself.
pub const MAX_VIOLATION_BYTES: usize = 4 * 1024;
/// Longest field name and description kept in a violation, in characters.
const MAX_FIELD_CHARS: usize = 80;
const MAX_DESCRIPTION_CHARS: usize = 400;
/// Longest `detail` and metadata value a status carries, in characters.
const MAX_DETAIL_CHARS: usize = 1024;
const MAX_METADATA_CHARS: usize = 128;

/// Keeps the first violations that fit in an error (at most [`MAX_VIOLATIONS`] and
/// [`MAX_VIOLATION_BYTES`], each field and description shortened) and sums up the rest, plus
/// `unlisted` more the caller only counted, in one last entry under `field`:
/// "and N more `noun` not listed; fix the ones listed and try again to see the rest".
pub fn fit_violations(
    violations: Vec<Violation>,
    unlisted: usize,
    field: &str,
    noun: &str,
) -> Vec<Violation> {
    let total = violations.len() + unlisted;
    let mut kept = Vec::new();
    let mut bytes = 0;
    for violation in violations {
        let violation = Violation::new(
            truncated(&violation.field, MAX_FIELD_CHARS),
            truncated(&violation.description, MAX_DESCRIPTION_CHARS),
        );
        let size = violation.field.len() + violation.description.len();
        if kept.len() == MAX_VIOLATIONS || bytes + size > MAX_VIOLATION_BYTES {
            break;
        }
        bytes += size;
        kept.push(violation);
    }
    let more = total - kept.len();
    if more > 0 {
        kept.push(Violation::new(
            field,
            format!(
                "and {more} more {noun} not listed; fix the ones listed and try again to see the rest"
            ),
        ));
    }
    kept
}

/// True when a list already fits (as what [`fit_violations`] produces does): it is sent as it is.
fn fits(violations: &[Violation]) -> bool {
    let summary_allowance = 200;
    let bytes: usize = violations
        .iter()
        .map(|v| v.field.len() + v.description.len())
        .sum();
    violations.len() <= MAX_VIOLATIONS + 1 && bytes <= MAX_VIOLATION_BYTES + summary_allowance
}

/// At most `max` characters of `text`, with `…` when cut.
fn truncated(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// An error on its way to a client: a catalogue reason, a `detail` sentence saying what to do,
/// and optional metadata, violations and retry delay. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct ApiError {
    pub reason: Reason,
    pub detail: String,
    pub metadata: HashMap<String, String>,
    pub violations: Vec<Violation>,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with a reason and the sentence a caller reads.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        ApiError {
            reason,
            detail: detail.into(),
            metadata: HashMap::new(),
            violations: Vec::new(),
            retry_after: None,
        }
    }

    /// INVALID_ARGUMENT listing every violation.
    pub fn invalid(detail: impl Into<String>, violations: Vec<Violation>) -> Self {
        ApiError {
            violations,
            ..ApiError::new(Reason::InvalidArgument, detail)
        }
    }

    /// An error with its reason's default advice ([`Reason::advice`]) as the detail.
    pub fn of(reason: Reason) -> Self {
        ApiError::new(reason, reason.advice())
    }

    /// INTERNAL with a generic detail: internals never reach the client.
    pub fn internal() -> Self {
        ApiError::of(Reason::Internal)
    }

    /// UPSTREAM_UNAVAILABLE naming the dependency that is down.
    pub fn unavailable(what: &str) -> Self {
        ApiError::new(
            Reason::UpstreamUnavailable,
            format!(
                "{what} is unavailable; retry shortly, and run `latchkey doctor` if it persists."
            ),
        )
        .with_metadata("upstream", what)
    }

    /// Adds one `ErrorInfo.metadata` entry.
    pub fn with_metadata(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// Sets how long the client should wait before retrying.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// The `google.rpc.Status` form: code, detail as message, `ErrorInfo`, and `BadRequest` /
    /// `RetryInfo` when present. Kept well under the size a peer accepts in headers: the detail
    /// and metadata values shortened, violations fitted with [`fit_violations`].
    pub fn to_status(&self) -> tonic::Status {
        let metadata: HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), truncated(v, MAX_METADATA_CHARS)))
            .collect();
        let mut details =
            ErrorDetails::with_error_info(self.reason.as_str(), ERROR_DOMAIN, metadata);
        if !self.violations.is_empty() {
            let fitted;
            let violations = if fits(&self.violations) {
                &self.violations
            } else {
                fitted = fit_violations(self.violations.clone(), 0, "…", "problems");
                &fitted
            };
            let violations = violations
                .iter()
                .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                .collect::<Vec<_>>();
            details.set_bad_request(violations);
        }
        if let Some(delay) = self.retry_after {
            details.set_retry_info(Some(delay));
        }
        let detail = truncated(&self.detail, MAX_DETAIL_CHARS);
        tonic::Status::with_error_details(self.reason.grpc_code(), detail, details)
    }

    /// Reads an error back from a status; a status without `ErrorInfo` gets the reason its code
    /// implies, and transport failures become UPSTREAM_UNAVAILABLE.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = status.get_error_details();
        let info = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN);
        let reason = info
            .and_then(|info| Reason::parse(&info.reason))
            .unwrap_or_else(|| Reason::from_code(status.code()));
        let violations = details
            .bad_request()
            .map(|br| {
                br.field_violations
                    .iter()
                    .map(|v| Violation::new(v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default();
        ApiError {
            reason,
            detail: status.message().to_owned(),
            metadata: info.map(|i| i.metadata.clone()).unwrap_or_default(),
            violations,
            retry_after: details.retry_info().and_then(|r| r.retry_delay),
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(error: ApiError) -> Self {
        error.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_grpc_status() {
        for &reason in Reason::ALL {
            let error = ApiError::new(reason, "do the thing").with_metadata("k", "v");
            let back = ApiError::from_status(&error.to_status());
            assert_eq!(back, error, "{reason}");
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
    }

    #[test]
    fn every_reason_follows_the_canonical_code_to_http_table() {
        for &reason in Reason::ALL {
            let expected = match reason.grpc_code() {
                Code::Unauthenticated => 401,
                Code::PermissionDenied => 403,
                Code::InvalidArgument => 400,
                Code::FailedPrecondition => 409,
                Code::NotFound => 404,
                Code::ResourceExhausted if reason == Reason::PayloadTooLarge => 413,
                Code::ResourceExhausted => 429,
                Code::Unavailable => 503,
                Code::DeadlineExceeded => 504,
                Code::Unimplemented => 405,
                Code::Internal | Code::DataLoss => 500,
                other => panic!("{reason} uses a code outside the table: {other:?}"),
            };
            assert_eq!(reason.http_status(), expected, "{reason}");
            assert!(
                reason
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_'),
                "{reason} is not UPPER_SNAKE_CASE"
            );
            assert!(!reason.title().is_empty());
        }
    }

    #[test]
    fn every_reason_advises_with_a_sentence() {
        for &reason in Reason::ALL {
            let advice = reason.advice();
            assert!(
                advice.starts_with(|c: char| c.is_ascii_uppercase()) && advice.ends_with('.'),
                "{reason}: {advice:?}"
            );
            assert_eq!(ApiError::of(reason).detail, advice);
        }
    }

    #[test]
    fn design_catalogue_reasons_are_all_present() {
        let required = [
            "TOKEN_MISSING",
            "TOKEN_MALFORMED",
            "TOKEN_ALGORITHM_REJECTED",
            "TOKEN_KEY_UNKNOWN",
            "TOKEN_SIGNATURE_INVALID",
            "TOKEN_EXPIRED",
            "TOKEN_NOT_YET_VALID",
            "TOKEN_ISSUER_UNTRUSTED",
            "TOKEN_AUDIENCE_MISMATCH",
            "TOKEN_REVOKED",
            "TOKEN_SECRET_MISMATCH",
            "USER_NOT_SYNCED",
            "USER_AMBIGUOUS",
            "USER_DISABLED",
            "SYNC_SECRET_MISSING",
            "SYNC_SECRET_INVALID",
            "SCOPE_MISSING",
            "INVALID_ARGUMENT",
            "NOT_FOUND",
            "PAYLOAD_TOO_LARGE",
            "RATE_LIMITED",
            "UPSTREAM_UNAVAILABLE",
            "INTERNAL",
        ];
        for name in required {
            assert!(
                Reason::parse(name).is_some(),
                "{name} missing from the catalogue"
            );
        }
    }

    #[test]
    fn violations_and_retry_travel_in_the_status() {
        let error = ApiError::invalid(
            "Fix the lines listed.",
            vec![Violation {
                field: "line 3".into(),
                description: "no `=`".into(),
            }],
        )
        .with_retry_after(Duration::from_secs(2));
        let back = ApiError::from_status(&error.to_status());
        assert_eq!(back.violations, error.violations);
        assert_eq!(back.retry_after, Some(Duration::from_secs(2)));
    }

    #[test]
    fn oversized_errors_are_fitted_to_what_a_status_can_carry() {
        let long = "N".repeat(8 * 1024);
        let many: Vec<Violation> = (0..150)
            .map(|i| Violation {
                field: format!("line {i}"),
                description: format!("{long} is not a KEY=value line"),
            })
            .collect();
        let error = ApiError::invalid(format!("Setting {long} is bad."), many)
            .with_metadata("name", long.clone());
        let status = error.to_status();
        let mut headers = tonic::codegen::http::HeaderMap::new();
        status.add_header(&mut headers).unwrap();
        let size: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        assert!(
            size < 10 * 1024,
            "{size} bytes of headers; peers accept 16 KiB"
        );
        let back = ApiError::from_status(&status);
        assert!(back.violations.len() <= MAX_VIOLATIONS + 1);
        assert_eq!(back.violations[0].field, "line 0");
        let last = back.violations.last().unwrap();
        assert!(
            last.description.starts_with("and ") && last.description.contains("more problems"),
            "{last:?}"
        );
        assert!(back.metadata["name"].chars().count() <= MAX_METADATA_CHARS + 1);
    }

    #[test]
    fn fitted_violations_count_what_they_leave_out() {
        let lines: Vec<Violation> = (1..=60)
            .map(|i| Violation {
                field: format!("line {i}"),
                description: "is not a KEY=value line".into(),
            })
            .collect();
        let fitted = fit_violations(lines, 90, "dotenv", "lines");
        assert_eq!(fitted.len(), MAX_VIOLATIONS + 1);
        assert_eq!(
            fitted[MAX_VIOLATIONS].description,
            "and 100 more lines not listed; fix the ones listed and try again to see the rest"
        );
        // What fit_violations made travels unchanged.
        let error = ApiError::invalid("x", fitted.clone());
        assert_eq!(ApiError::from_status(&error.to_status()).violations, fitted);
    }

    #[test]
    fn a_status_without_error_info_maps_by_code() {
        for status in [
            tonic::Status::unavailable("connection refused"),
            tonic::Status::unauthenticated("a proxy wants credentials"),
        ] {
            assert_eq!(
                ApiError::from_status(&status).reason,
                Reason::UpstreamUnavailable
            );
        }
    }
}

#[cfg(test)]
mod docs_tests {
    use super::Reason;

    #[test]
    fn every_reason_is_documented_in_troubleshooting() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/TROUBLESHOOTING.md"
        ))
        .expect("docs/TROUBLESHOOTING.md");
        for reason in Reason::ALL {
            let heading = format!("### {}\n{} · ", reason.as_str(), reason.http_status());
            assert!(
                doc.contains(&heading),
                "docs/TROUBLESHOOTING.md has no entry `{heading}` for {reason}"
            );
        }
        let headings = doc.lines().filter(|l| l.starts_with("### ")).count();
        assert_eq!(
            headings,
            Reason::ALL.len(),
            "an entry documents a reason the catalogue no longer has"
        );
    }
}

/// The README's error table, generated from the catalogue (a test keeps them in step).
pub fn catalogue_markdown() -> String {
    let mut out = String::from("| code | HTTP | gRPC | meaning |\n| --- | --- | --- | --- |\n");
    for reason in Reason::ALL {
        let anchor = reason.as_str().to_ascii_lowercase();
        out.push_str(&format!(
            "| [`{}`](docs/TROUBLESHOOTING.md#{anchor}) | {} | {:?} | {} |\n",
            reason.as_str(),
            reason.http_status(),
            reason.grpc_code(),
            reason.title()
        ));
    }
    out
}

#[cfg(test)]
mod readme_tests {
    #[test]
    fn readme_error_table_matches_the_catalogue() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let (start_marker, end_marker) = (
            "<!-- troubleshooting:start -->\n",
            "<!-- troubleshooting:end -->",
        );
        let start = readme.find(start_marker).expect("start marker") + start_marker.len();
        let end = readme.find(end_marker).expect("end marker");
        let expected = super::catalogue_markdown();
        assert!(
            readme[start..end] == expected,
            "README's error table is stale; replace it with:\n{expected}"
        );
    }
}
