//! The web app's secret as a team hands it to Latchkey — `latchkey auth` run as a process with
//! `AUTH_SECRET` (or a `_FILE`) in its environment, on SQLite and PostgreSQL — and every refusal
//! of the web app's tokens saying which secret: a legacy token signed with another secret and an
//! Auth.js v5 token encrypted with another one name the variable Latchkey read and its
//! fingerprint; an invite link signed with the right secret but no `aud` is not a session.

use crate::support::process::{latchkey, start_auth, text};
use crate::support::{Backend, SYNC_SECRET, TestDb, with_sync_secret};
use latchkey_auth::authjs::{V5_COOKIE_NAMES, encrypt_v4, encrypt_v5};
use latchkey_auth::tokens::sign_hs256;
use latchkey_common::SecretString;
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::{ApiError, Reason};
use serde_json::json;

const WEB_SECRET: &str = "web-app-auth-secret-9e8d7c6b5a4f3e2d1c0b";
const OTHER_SECRET: &str = "some-other-secret-0a1b2c3d4e5f6a7b8c9d";
const SEAL: &str = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

async fn authenticate(
    client: &mut AuthServiceClient<tonic::transport::Channel>,
    token: &str,
) -> Result<pb::AuthenticateResponse, ApiError> {
    client
        .authenticate(pb::AuthenticateRequest {
            token: token.to_owned(),
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| ApiError::from_status(&s))
}

fn assert_names(refused: &ApiError, variable: &str) {
    let fingerprint = latchkey_common::secret::fingerprint(WEB_SECRET.as_bytes());
    for expected in [variable, fingerprint.as_str(), "latchkey fingerprint"] {
        assert!(
            refused.detail.contains(expected),
            "{expected:?} in {}",
            refused.detail
        );
    }
}

async fn refusals_name_the_variable_the_secret_came_from(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("web-secret");
    std::fs::write(&secret_file, format!("{WEB_SECRET}\n")).unwrap();
    let common = [
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_SYNC_SECRET", SYNC_SECRET),
        ("LATCHKEY_SEAL_KEY", SEAL),
        ("LATCHKEY_LEGACY_HS256_ENABLED", "true"),
        ("LATCHKEY_AUTHJS_TOKENS", "both"),
    ];
    let file = secret_file.to_str().unwrap();
    for (variable, value) in [
        ("AUTH_SECRET", WEB_SECRET),
        ("LATCHKEY_LEGACY_HS256_SECRET_FILE", file),
    ] {
        let mut env = common.to_vec();
        env.push((variable, value));
        let auth = start_auth(latchkey(dir.path(), &[], &env)).expect("auth starts");
        let mut client = AuthServiceClient::connect(auth.url()).await.unwrap();
        client
            .sync_user(with_sync_secret(
                pb::SyncUserRequest {
                    provider: "github".into(),
                    subject: "ada".into(),
                    email: "ada@example.com".into(),
                    ..Default::default()
                },
                SYNC_SECRET,
            ))
            .await
            .expect("sync");
        let (now, web, other) = (now(), secret(WEB_SECRET), secret(OTHER_SECRET));
        let session =
            json!({"sub": "ada@example.com", "aud": "latchkey", "iat": now, "exp": now + 600});

        let ok = authenticate(&mut client, &sign_hs256(&web, &session))
            .await
            .expect("a legacy token with the web app's secret and aud");
        assert!(!ok.exchanged_token.is_empty());
        let refused = authenticate(&mut client, &sign_hs256(&other, &session))
            .await
            .unwrap_err();
        assert_eq!(refused.reason, Reason::TokenSignatureInvalid);
        assert_names(&refused, variable);

        let invite =
            json!({"email": "ada@example.com", "purpose": "invite", "iat": now, "exp": now + 600});
        let refused = authenticate(&mut client, &sign_hs256(&web, &invite))
            .await
            .unwrap_err();
        assert_eq!(refused.reason, Reason::TokenAudienceMismatch);

        let authjs = json!({"name": "Ada", "email": "ada@example.com", "sub": "42", "iat": now, "exp": now + 600});
        authenticate(&mut client, &encrypt_v4(&web, &authjs))
            .await
            .expect("a next-auth v4 session token");
        let v5 = encrypt_v5(&other, V5_COOKIE_NAMES[1], &authjs);
        let refused = authenticate(&mut client, &v5).await.unwrap_err();
        assert_eq!(refused.reason, Reason::TokenSecretMismatch);
        assert_names(&refused, variable);
    }

    // Configuration mistakes are refused before anything starts.
    let base = &common[..3];
    for (authjs, expected) in [
        (
            "v6",
            "LATCHKEY_AUTHJS_TOKENS: `v6` is not off, v4, v5 or both",
        ),
        ("v5", "LATCHKEY_LEGACY_HS256_SECRET: is not set"),
    ] {
        let mut env = base.to_vec();
        env.push(("LATCHKEY_AUTHJS_TOKENS", authjs));
        let output = latchkey(dir.path(), &["auth"], &env).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(expected), "{}", text(&output));
    }
}

backend_tests!(refusals_name_the_variable_the_secret_came_from);
