//! Debug for the generated messages that carry secrets (tokens, client secrets, plaintext
//! values): every field but the secret one is shown, the secret as `<redacted>`, so a stray
//! `{:?}` in a log line cannot leak it.

use crate::auth::v1 as auth;
use crate::settings::v1 as settings;
use std::fmt;

const REDACTED: &str = "<redacted>";

impl fmt::Debug for auth::AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl fmt::Debug for auth::IssueServiceTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssueServiceTokenRequest")
            .field("client_id", &self.client_id)
            .field("client_secret", &REDACTED)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl fmt::Debug for auth::AuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateRequest")
            .field("token", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for auth::AuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateResponse")
            .field("kind", &self.kind)
            .field("user", &self.user)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("token_id", &self.token_id)
            .field("expires_at", &self.expires_at)
            .field("algorithm", &self.algorithm)
            .field(
                "exchanged_token",
                &if self.exchanged_token.is_empty() {
                    ""
                } else {
                    REDACTED
                },
            )
            .finish()
    }
}

impl fmt::Debug for auth::RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("refresh_token", &REDACTED)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

impl fmt::Debug for auth::RefreshAccessTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshAccessTokenRequest")
            .field("refresh_token", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for settings::SettingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value.as_ref().map(|_| REDACTED);
        f.debug_struct("SettingChange")
            .field("name", &self.name)
            .field("value", &value)
            .finish()
    }
}

impl fmt::Debug for settings::ImportDotenvRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportDotenvRequest")
            .field(
                "dotenv",
                &format_args!("<{} bytes redacted>", self.dotenv.len()),
            )
            .field("mode", &self.mode)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl fmt::Debug for settings::RevealSettingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevealSettingResponse")
            .field("name", &self.name)
            .field("value", &REDACTED)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bearing_messages_never_print_their_secret() {
        let printed = [
            format!(
                "{:?}",
                auth::AccessToken {
                    access_token: "eyJSECRET".into(),
                    token_type: "Bearer".into(),
                    expires_in: 900
                }
            ),
            format!(
                "{:?}",
                auth::IssueServiceTokenRequest {
                    client_id: "deployer".into(),
                    client_secret: "SECRET".into(),
                    scopes: vec![]
                }
            ),
            format!(
                "{:?}",
                auth::AuthenticateRequest {
                    token: "eyJSECRET".into()
                }
            ),
            format!(
                "{:?}",
                settings::PatchSettingsRequest {
                    settings: vec![settings::SettingChange {
                        name: "K".into(),
                        value: Some("SECRET".into())
                    }]
                }
            ),
            format!(
                "{:?}",
                settings::ImportDotenvRequest {
                    dotenv: "K=SECRET".into(),
                    mode: 1,
                    dry_run: false
                }
            ),
            format!(
                "{:?}",
                settings::RevealSettingResponse {
                    name: "K".into(),
                    value: "SECRET".into()
                }
            ),
            format!(
                "{:?}",
                auth::RefreshAccessTokenResponse {
                    token: None,
                    refresh: Some(auth::RefreshToken {
                        refresh_token: "lkr_SECRET".into(),
                        refresh_expires_in: 60
                    })
                }
            ),
            format!(
                "{:?}",
                auth::RefreshAccessTokenRequest {
                    refresh_token: "lkr_SECRET".into()
                }
            ),
        ];
        for text in printed {
            assert!(!text.contains("SECRET"), "{text}");
            assert!(
                text.contains(REDACTED) || text.contains("redacted"),
                "{text}"
            );
        }
    }
}
