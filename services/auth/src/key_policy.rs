//! How signing keys are made and rotated: the algorithm of new keys (`LATCHKEY_SIGNING_ALG`),
//! the automatic rotation period (`LATCHKEY_SIGNING_ROTATE_EVERY`) and the standby lead, one
//! JWKS cache lifetime (`LATCHKEY_JWKS_CACHE_SECS`), for which a new key is published before it
//! signs, so no verifier holding a cached JWKS meets a token with a `kid` it does not know.

/// The JWS algorithm of a signing key; stored per key, so keys of both kinds verify side by side
/// while the configured one changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// Ed25519 (RFC 8037), the default.
    EdDSA,
    /// ECDSA over P-256 with SHA-256 (RFC 7518), for Web Crypto runtimes without Ed25519.
    Es256,
}

impl SigningAlg {
    /// The JWS `alg` name, as stored in `signing_keys.algorithm` and published in the JWKS.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::Es256 => "ES256",
        }
    }

    /// Reads a JWS `alg` name (exactly as JOSE spells it).
    pub fn parse(text: &str) -> Option<SigningAlg> {
        match text {
            "EdDSA" => Some(SigningAlg::EdDSA),
            "ES256" => Some(SigningAlg::Es256),
            _ => None,
        }
    }

    /// The jsonwebtoken algorithm that verifies it.
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signing-key policy auth runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Algorithm of keys created from now on.
    pub algorithm: SigningAlg,
    /// Seconds between automatic rotations; None: only the CLI rotates.
    pub rotate_every: Option<i64>,
    /// Seconds a new key is published before it signs: the JWKS cache lifetime.
    pub standby_lead: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            algorithm: SigningAlg::EdDSA,
            rotate_every: None,
            standby_lead: 600,
        }
    }
}

/// Reads a period such as `30d`, `12h`, `15m`, `90s` (or plain seconds) into seconds; None when
/// it is not one, or not positive.
pub fn parse_period(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.len() > 12 {
        return None;
    }
    let number: i64 = number.parse().ok()?;
    let unit = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    Some(number * unit).filter(|seconds| *seconds > 0)
}

/// A period in seconds as [`parse_period`] reads it, largest whole unit first (`30d`, `90s`).
pub fn format_period(seconds: i64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= size && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_in_each_unit_and_refuse_the_rest() {
        assert_eq!(parse_period("30d"), Some(30 * 86_400));
        assert_eq!(parse_period("1m"), Some(60));
        assert_eq!(parse_period("12h"), Some(43_200));
        assert_eq!(parse_period("90"), Some(90));
        assert_eq!(parse_period(" 2w "), Some(14 * 86_400));
        for bad in ["", "d", "0d", "-1d", "1y", "1.5h", "99999999999999d"] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
        assert_eq!(format_period(30 * 86_400), "30d");
        assert_eq!(format_period(90), "90s");
        assert_eq!(format_period(600), "10m");
    }

    #[test]
    fn algorithms_read_as_jose_spells_them() {
        assert_eq!(SigningAlg::parse("ES256"), Some(SigningAlg::Es256));
        assert_eq!(SigningAlg::parse("EdDSA"), Some(SigningAlg::EdDSA));
        assert_eq!(SigningAlg::parse("es256"), None);
        assert_eq!(SigningAlg::Es256.to_string(), "ES256");
    }
}
