//! Auth.js session tokens as the web app's Auth.js makes them by default: a compact JWE with
//! `alg: dir`, encrypted under a key derived from the web app's secret (`AUTH_SECRET` /
//! `NEXTAUTH_SECRET`) with HKDF-SHA256.
//!
//! | made by | `enc` | HKDF salt | HKDF info | bytes | `kid` |
//! | --- | --- | --- | --- | --- | --- |
//! | next-auth v4 | `A256GCM` | empty | `NextAuth.js Generated Encryption Key` | 32 | none |
//! | Auth.js v5 (`@auth/core`) | `A256CBC-HS512` | the session cookie's name | `Auth.js Generated Encryption Key (<salt>)` | 64 | RFC 7638 thumbprint of the key as an `oct` JWK (SHA-512) |
//!
//! `@auth/core` also decodes `A256GCM` (32 bytes, SHA-256 thumbprint), so that is accepted for
//! v5 too. Keys are derived once, when the rules are built. A v5 `kid` that is none of our
//! thumbprints proves the web app holds another secret, and is refused as such before any
//! decryption. Reading a token is linear in its length, capped at [`MAX_TOKEN_LEN`], and never
//! panics on input.

use crate::tokens::{SecretHint, TokenError};
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hkdf, hmac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::IgnoredAny;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The longest token read (Auth.js splits cookies past 4 KB; a joined one stays far below this).
pub const MAX_TOKEN_LEN: usize = latchkey_client::verify::MAX_TOKEN_LEN;

/// The session cookie names Auth.js v5 uses by default (plain and HTTPS); each salts a key.
pub const V5_COOKIE_NAMES: [&str; 2] = ["authjs.session-token", "__Secure-authjs.session-token"];

const V4_INFO: &str = "NextAuth.js Generated Encryption Key";

/// Which Auth.js majors' tokens are accepted (`LATCHKEY_AUTHJS_TOKENS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthJsVersions {
    V4,
    V5,
    Both,
}

impl AuthJsVersions {
    /// Parses `off` (None), `v4`, `v5` or `both`; Err says what was wrong.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "no" | "" => Ok(None),
            "v4" => Ok(Some(AuthJsVersions::V4)),
            "v5" => Ok(Some(AuthJsVersions::V5)),
            "both" => Ok(Some(AuthJsVersions::Both)),
            _ => Err(format!("`{}` is not off, v4, v5 or both", text.trim())),
        }
    }

    fn v4(self) -> bool {
        matches!(self, AuthJsVersions::V4 | AuthJsVersions::Both)
    }

    fn v5(self) -> bool {
        matches!(self, AuthJsVersions::V5 | AuthJsVersions::Both)
    }
}

/// A JWE content encryption this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enc {
    A256Gcm,
    A256CbcHs512,
}

impl Enc {
    fn name(self) -> &'static str {
        match self {
            Enc::A256Gcm => "A256GCM",
            Enc::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    fn key_len(self) -> usize {
        match self {
            Enc::A256Gcm => 32,
            Enc::A256CbcHs512 => 64,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Enc::A256Gcm => 12,
            Enc::A256CbcHs512 => 16,
        }
    }

    fn tag_len(self) -> usize {
        match self {
            Enc::A256Gcm => 16,
            Enc::A256CbcHs512 => 32,
        }
    }
}

/// One key the web app may have encrypted with.
#[derive(Clone)]
struct DerivedKey {
    enc: Enc,
    /// The thumbprint Auth.js v5 writes as `kid`; None for next-auth v4.
    kid: Option<String>,
    bytes: Zeroizing<Vec<u8>>,
}

/// Accepting Auth.js session tokens: the derived keys and the secret they came from.
#[derive(Clone)]
pub struct AuthJsRules {
    keys: Vec<DerivedKey>,
    versions: AuthJsVersions,
    secret: SecretHint,
}

/// A decrypted token: the claims' JSON and the `enc` that protected it.
pub struct Opened {
    pub payload: Zeroizing<Vec<u8>>,
    pub enc: &'static str,
}

impl AuthJsRules {
    /// Derives every key `versions` needs from the web app's secret; v5 keys for each of
    /// `cookie_names` (the HKDF salts).
    pub fn new(
        secret: &SecretString,
        versions: AuthJsVersions,
        cookie_names: &[String],
        hint: SecretHint,
    ) -> Self {
        let ikm = secret.expose_secret().as_bytes();
        let mut keys = Vec::new();
        if versions.v4() {
            keys.push(DerivedKey {
                enc: Enc::A256Gcm,
                kid: None,
                bytes: hkdf_sha256(ikm, b"", V4_INFO.as_bytes(), 32),
            });
        }
        if versions.v5() {
            for salt in cookie_names {
                let info = format!("Auth.js Generated Encryption Key ({salt})");
                for enc in [Enc::A256CbcHs512, Enc::A256Gcm] {
                    let bytes = hkdf_sha256(ikm, salt.as_bytes(), info.as_bytes(), enc.key_len());
                    keys.push(DerivedKey {
                        enc,
                        kid: Some(thumbprint(&bytes)),
                        bytes,
                    });
                }
            }
        }
        AuthJsRules {
            keys,
            versions,
            secret: hint,
        }
    }

    /// The secret's variable and fingerprint.
    pub fn secret(&self) -> &SecretHint {
        &self.secret
    }

    /// Which majors are accepted.
    pub fn versions(&self) -> AuthJsVersions {
        self.versions
    }

    /// Decrypts a compact JWE made by Auth.js with our secret, or says precisely why not.
    pub fn open(&self, token: &str) -> Result<Opened, TokenError> {
        let compact = Compact::parse(token)?;
        let enc = compact.enc;
        let kid = compact.header.kid.as_deref();
        if kid.is_some() && !self.versions.v5() {
            return Err(TokenError::AuthJsOff("an Auth.js v5 session token"));
        }
        let candidates: Vec<&DerivedKey> = self
            .keys
            .iter()
            .filter(|key| key.enc == enc && (kid.is_none() || key.kid.as_deref() == kid))
            .collect();
        if candidates.is_empty() {
            return Err(match (kid, enc) {
                (Some(_), _) => TokenError::SecretMismatch(self.secret.clone()),
                (None, Enc::A256Gcm) => TokenError::AuthJsOff("a next-auth v4 session token"),
                (None, Enc::A256CbcHs512) => TokenError::AuthJsOff("an Auth.js v5 session token"),
            });
        }
        if let Some(payload) = candidates.iter().find_map(|key| key.decrypt(&compact)) {
            return Ok(Opened {
                payload,
                enc: enc.name(),
            });
        }
        Err(match (kid, enc) {
            // The kid says our key made it, so the ciphertext or tag was changed afterwards.
            (Some(_), _) => TokenError::AuthJsTampered,
            (None, Enc::A256Gcm) if !self.versions.v4() => {
                TokenError::AuthJsOff("a next-auth v4 session token")
            }
            (None, Enc::A256Gcm) => {
                TokenError::WebAppSecretRejected("next-auth v4 session token", self.secret.clone())
            }
            (None, Enc::A256CbcHs512) => {
                TokenError::WebAppSecretRejected("Auth.js v5 session token", self.secret.clone())
            }
        })
    }
}

/// The header fields read; `zip` and `crit` only to refuse them.
#[derive(Deserialize)]
struct Header {
    alg: String,
    enc: String,
    kid: Option<String>,
    zip: Option<IgnoredAny>,
    crit: Option<IgnoredAny>,
}

/// A compact JWE split and decoded (RFC 7516 §7.1), before decryption.
struct Compact<'a> {
    /// The protected header as sent: it is the additional authenticated data.
    protected: &'a str,
    header: Header,
    enc: Enc,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

impl<'a> Compact<'a> {
    fn parse(token: &'a str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("the token is longer than 32 KiB"));
        }
        let mut parts = token.split('.');
        let (Some(protected), Some(key), Some(iv), Some(ciphertext), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed(
                "an encrypted token (JWE) has exactly five dot-separated parts",
            ));
        };
        let header: Header = serde_json::from_slice(&b64(protected)?).map_err(|_| {
            TokenError::Malformed("the JWE header is not a JSON object with alg and enc")
        })?;
        if header.alg != "dir" {
            return Err(TokenError::AlgorithmRejected(format!(
                "{} (Auth.js session tokens use dir)",
                printable(&header.alg)
            )));
        }
        let enc = match header.enc.as_str() {
            "A256GCM" => Enc::A256Gcm,
            "A256CBC-HS512" => Enc::A256CbcHs512,
            other => {
                return Err(TokenError::AlgorithmRejected(format!(
                    "enc {} (Auth.js session tokens use A256GCM or A256CBC-HS512)",
                    printable(other)
                )));
            }
        };
        if header.zip.is_some() || header.crit.is_some() {
            return Err(TokenError::Malformed(
                "the JWE header asks for compression or critical extensions, which Auth.js never uses",
            ));
        }
        if !key.is_empty() {
            return Err(TokenError::Malformed(
                "a `dir` JWE carries no encrypted key, but this one does",
            ));
        }
        let (iv, ciphertext, tag) = (b64(iv)?, b64(ciphertext)?, b64(tag)?);
        if iv.len() != enc.iv_len() || tag.len() != enc.tag_len() || ciphertext.is_empty() {
            return Err(TokenError::Malformed(
                "the JWE's iv, ciphertext or tag has the wrong length for its enc",
            ));
        }
        Ok(Compact {
            protected,
            header,
            enc,
            iv,
            ciphertext,
            tag,
        })
    }
}

impl DerivedKey {
    /// The plaintext, or None when the tag does not verify under this key.
    fn decrypt(&self, jwe: &Compact<'_>) -> Option<Zeroizing<Vec<u8>>> {
        let aad = jwe.protected.as_bytes();
        match self.enc {
            Enc::A256Gcm => open_gcm(&self.bytes, &jwe.iv, aad, &jwe.ciphertext, &jwe.tag),
            Enc::A256CbcHs512 => {
                open_cbc_hs512(&self.bytes, &jwe.iv, aad, &jwe.ciphertext, &jwe.tag)
            }
        }
    }

    fn encrypt(&self, payload: &[u8]) -> String {
        let mut header = serde_json::json!({"alg": "dir", "enc": self.enc.name()});
        if let Some(kid) = &self.kid {
            header["kid"] = kid.clone().into();
        }
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let mut iv = vec![0u8; self.enc.iv_len()];
        SystemRandom::new()
            .fill(&mut iv)
            .expect("the OS random source failed");
        let (ciphertext, tag) = match self.enc {
            Enc::A256Gcm => seal_gcm(&self.bytes, &iv, protected.as_bytes(), payload),
            Enc::A256CbcHs512 => seal_cbc_hs512(&self.bytes, &iv, protected.as_bytes(), payload),
        };
        format!(
            "{protected}..{}.{}.{}",
            URL_SAFE_NO_PAD.encode(&iv),
            URL_SAFE_NO_PAD.encode(&ciphertext),
            URL_SAFE_NO_PAD.encode(&tag)
        )
    }
}

/// Checks that `token` is shaped like an Auth.js session token (a compact `dir` JWE with an `enc`
/// Auth.js uses), without any key: for saying "Auth.js tokens are off" only to tokens that are.
pub fn check_shape(token: &str) -> Result<(), TokenError> {
    Compact::parse(token).map(drop)
}

/// Encrypts `claims` as next-auth v4's `encode` does (used by tests and benchmarks).
pub fn encrypt_v4(secret: &SecretString, claims: &serde_json::Value) -> String {
    rules(secret, AuthJsVersions::V4, &[]).keys[0].encrypt(claims.to_string().as_bytes())
}

/// Encrypts `claims` as `@auth/core`'s `encode` does with `salt = cookie_name` (used by tests
/// and benchmarks).
pub fn encrypt_v5(secret: &SecretString, cookie_name: &str, claims: &serde_json::Value) -> String {
    rules(secret, AuthJsVersions::V5, &[cookie_name.to_owned()]).keys[0]
        .encrypt(claims.to_string().as_bytes())
}

fn rules(secret: &SecretString, versions: AuthJsVersions, cookies: &[String]) -> AuthJsRules {
    let hint = SecretHint::new(secret, "");
    AuthJsRules::new(secret, versions, cookies, hint)
}

fn b64(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed("a part of the JWE is not base64url"))
}

/// Caller-supplied text in messages: short and printable only.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(32).collect()
}

fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let info = [info];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let okm = prk
        .expand(&info, Len(len))
        .expect("at most 64 bytes, far below HKDF's limit");
    let mut out = Zeroizing::new(vec![0u8; len]);
    okm.fill(&mut out)
        .expect("the buffer has the requested length");
    out
}

/// RFC 7638 thumbprint of a symmetric key, as `jose`'s `calculateJwkThumbprint` computes it
/// with `sha${bits}`: SHA-512 for a 64-byte key, SHA-256 for 32 bytes.
fn thumbprint(key: &[u8]) -> String {
    let jwk = Zeroizing::new(format!(
        r#"{{"k":"{}","kty":"oct"}}"#,
        URL_SAFE_NO_PAD.encode(key)
    ));
    let algorithm = if key.len() == 64 {
        &digest::SHA512
    } else {
        &digest::SHA256
    };
    URL_SAFE_NO_PAD.encode(digest::digest(algorithm, jwk.as_bytes()))
}

fn gcm_key(key: &[u8]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"))
}

fn open_gcm(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
    let mut buf = Zeroizing::new(Vec::with_capacity(ciphertext.len() + tag.len()));
    buf.extend_from_slice(ciphertext);
    buf.extend_from_slice(tag);
    let len = gcm_key(key)
        .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

fn seal_gcm(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let nonce = Nonce::try_assume_unique_for_key(iv).expect("a 12-byte iv");
    let mut buf = plaintext.to_vec();
    let tag = gcm_key(key)
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut buf)
        .expect("aes-gcm seal cannot fail for in-range lengths");
    (buf, tag.as_ref().to_vec())
}

/// RFC 7518 §5.2.2.1: the first 32 bytes of HMAC-SHA-512(MAC_KEY, A || IV || E || AL).
fn cbc_hs512_tag(mac_key: &[u8], iv: &[u8], aad: &[u8], ciphertext: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA512, mac_key);
    let mut context = hmac::Context::with_key(&key);
    context.update(aad);
    context.update(iv);
    context.update(ciphertext);
    context.update(&((aad.len() as u64) * 8).to_be_bytes());
    let mut tag = [0u8; 32];
    tag.copy_from_slice(&context.sign().as_ref()[..32]);
    tag
}

type CbcDecryptor = cbc::Decryptor<aes::Aes256>;
type CbcEncryptor = cbc::Encryptor<aes::Aes256>;

fn open_cbc_hs512(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let (mac_key, enc_key) = key.split_at(32);
    let expected = cbc_hs512_tag(mac_key, iv, aad, ciphertext);
    if !bool::from(expected.as_slice().ct_eq(tag)) {
        return None;
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = CbcDecryptor::new_from_slices(enc_key, iv)
        .ok()?
        .decrypt_padded_mut::<Pkcs7>(buf.as_mut_slice())
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

fn seal_cbc_hs512(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mac_key, enc_key) = key.split_at(32);
    let padded_len = (plaintext.len() / 16 + 1) * 16;
    let mut buf = vec![0u8; padded_len];
    buf[..plaintext.len()].copy_from_slice(plaintext);
    let len = CbcEncryptor::new_from_slices(enc_key, iv)
        .expect("32-byte key and 16-byte iv")
        .encrypt_padded_mut::<Pkcs7>(&mut buf, plaintext.len())
        .expect("the buffer has room for the padding")
        .len();
    buf.truncate(len);
    let tag = cbc_hs512_tag(mac_key, iv, aad, &buf);
    (buf, tag.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    fn both(secret: &SecretString) -> AuthJsRules {
        let cookies: Vec<String> = V5_COOKIE_NAMES.iter().map(|c| (*c).to_owned()).collect();
        AuthJsRules::new(
            secret,
            AuthJsVersions::Both,
            &cookies,
            SecretHint::new(secret, "AUTH_SECRET"),
        )
    }

    fn claims(opened: Opened) -> serde_json::Value {
        serde_json::from_slice(&opened.payload).unwrap()
    }

    #[test]
    fn v4_and_v5_tokens_round_trip() {
        let s = secret("web-app-secret-0123456789abcdef0123");
        let rules = both(&s);
        let body = json!({"email": "ada@example.com", "exp": 2_000});
        let v4 = encrypt_v4(&s, &body);
        assert_eq!(v4.split('.').nth(1), Some(""), "dir: no encrypted key");
        let opened = rules.open(&v4).unwrap();
        assert_eq!(opened.enc, "A256GCM");
        assert_eq!(claims(opened), body);
        for cookie in V5_COOKIE_NAMES {
            let v5 = encrypt_v5(&s, cookie, &body);
            let opened = rules.open(&v5).unwrap();
            assert_eq!(opened.enc, "A256CBC-HS512");
            assert_eq!(claims(opened), body);
        }
    }

    #[test]
    fn another_secret_is_named_for_what_it_is() {
        let ours = secret("web-app-secret-0123456789abcdef0123");
        let theirs = secret("another-secret-0123456789abcdef0123");
        let rules = both(&ours);
        let body = json!({"email": "ada@example.com", "exp": 2_000});
        assert_eq!(
            rules
                .open(&encrypt_v5(&theirs, V5_COOKIE_NAMES[0], &body))
                .err(),
            Some(TokenError::SecretMismatch(SecretHint::new(
                &ours,
                "AUTH_SECRET"
            )))
        );
        assert_eq!(
            rules.open(&encrypt_v4(&theirs, &body)).err(),
            Some(TokenError::WebAppSecretRejected(
                "next-auth v4 session token",
                SecretHint::new(&ours, "AUTH_SECRET")
            ))
        );
    }

    #[test]
    fn a_tampered_v5_token_with_our_kid_is_altered_not_another_secret() {
        let s = secret("web-app-secret-0123456789abcdef0123");
        let token = encrypt_v5(&s, V5_COOKIE_NAMES[1], &json!({"exp": 2_000}));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut ciphertext = URL_SAFE_NO_PAD.decode(&parts[3]).unwrap();
        ciphertext[0] ^= 1;
        parts[3] = URL_SAFE_NO_PAD.encode(ciphertext);
        assert_eq!(
            both(&s).open(&parts.join(".")).err(),
            Some(TokenError::AuthJsTampered)
        );
    }

    #[test]
    fn versions_turned_off_say_so() {
        let s = secret("web-app-secret-0123456789abcdef0123");
        let body = json!({"exp": 2_000});
        let cookies = vec![V5_COOKIE_NAMES[0].to_owned()];
        let v4_only = AuthJsRules::new(&s, AuthJsVersions::V4, &cookies, SecretHint::new(&s, "X"));
        let v5_only = AuthJsRules::new(&s, AuthJsVersions::V5, &cookies, SecretHint::new(&s, "X"));
        assert_eq!(
            v4_only
                .open(&encrypt_v5(&s, V5_COOKIE_NAMES[0], &body))
                .err(),
            Some(TokenError::AuthJsOff("an Auth.js v5 session token"))
        );
        assert_eq!(
            v5_only.open(&encrypt_v4(&s, &body)).err(),
            Some(TokenError::AuthJsOff("a next-auth v4 session token"))
        );
    }

    #[test]
    fn malformed_input_is_refused_without_panicking() {
        let s = secret("web-app-secret-0123456789abcdef0123");
        let rules = both(&s);
        let header = |h: &str| URL_SAFE_NO_PAD.encode(h);
        let cases = [
            String::from("...."),
            format!("{}....", header(r#"{"alg":"dir","enc":"A256GCM"}"#)),
            format!(
                "{}..AAAA.AAAA.AAAA",
                header(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#)
            ),
            format!(
                "{}..AAAA.AAAA.AAAA",
                header(r#"{"alg":"dir","enc":"A128GCM"}"#)
            ),
            format!(
                "{}.AAAA.AAAA.AAAA.AAAA",
                header(r#"{"alg":"dir","enc":"A256GCM"}"#)
            ),
            format!(
                "{}..AAAA.AAAA.AAAA",
                header(r#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#)
            ),
            format!(
                "{}..AAAA.AAAA.AAAA",
                header(r#"{"alg":"dir","enc":"A256GCM"}"#)
            ),
            format!(
                "{}..!!.AAAA.AAAA",
                header(r#"{"alg":"dir","enc":"A256GCM"}"#)
            ),
            format!(
                "{}..AAAA.AAAA.AAAA.x",
                header(r#"{"alg":"dir","enc":"A256GCM"}"#)
            ),
            "a".repeat(MAX_TOKEN_LEN + 1),
        ];
        for case in cases {
            let error = rules.open(&case).err().expect("refused");
            assert!(
                matches!(
                    error,
                    TokenError::Malformed(_) | TokenError::AlgorithmRejected(_)
                ),
                "{case:.60}: {error:?}"
            );
        }
    }

    #[test]
    fn derivations_match_the_published_algorithms() {
        // HKDF-SHA256 (RFC 5869, test case 3: empty salt and info).
        let ikm = [0x0bu8; 22];
        let okm = hkdf_sha256(&ikm, b"", b"", 42);
        assert_eq!(
            okm.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
        // A thumbprint is the whole digest, base64url: 86 characters for SHA-512.
        assert_eq!(thumbprint(&[7u8; 64]).len(), 86);
        assert_eq!(thumbprint(&[7u8; 32]).len(), 43);
    }
}
