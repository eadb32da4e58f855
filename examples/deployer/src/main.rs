//! Runs the deployer: `DEPLOYER_CLIENT_ID` / `DEPLOYER_CLIENT_SECRET` name its client in auth's
//! `LATCHKEY_SERVICE_CLIENTS` (without a secret, that client's is read from
//! `LATCHKEY_SERVICE_CLIENTS` itself, as `latchkey dev` writes it); `LATCHKEY_AUTH_URL`,
//! `LATCHKEY_SETTINGS_URL`, `LATCHKEY_ISSUER`, `LATCHKEY_AUDIENCE` and `DEPLOYER_LISTEN` default
//! to `latchkey dev`'s.
//!
//! ```sh
//! set -a; . .latchkey/dev-secrets.env; set +a
//! cargo run -p latchkey-example-deployer
//! curl -X POST localhost:8090/deploy -H "Authorization: Bearer $USER_TOKEN"
//! ```

use latchkey_client::{
    ClientCredentials, ExposeSecret, SecretString, SystemClock, VerifyRules, scopes,
};
use latchkey_example_deployer::{DeployerConfig, router, serve};
use std::sync::Arc;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `DEPLOYER_CLIENT_SECRET`, else `client_id`'s secret in `LATCHKEY_SERVICE_CLIENTS`
/// (`id:secret:scopes;…`).
fn client_secret(client_id: &str) -> anyhow::Result<SecretString> {
    if let Ok(secret) = std::env::var("DEPLOYER_CLIENT_SECRET") {
        return Ok(SecretString::from(secret));
    }
    let clients = std::env::var("LATCHKEY_SERVICE_CLIENTS").unwrap_or_default();
    clients
        .split(';')
        .find_map(|entry| {
            let mut parts = entry.trim().splitn(3, ':');
            (parts.next() == Some(client_id)).then(|| parts.next())?
        })
        .map(|secret| SecretString::from(secret.to_owned()))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "set DEPLOYER_CLIENT_SECRET, or LATCHKEY_SERVICE_CLIENTS with client {client_id}"
            )
        })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = DeployerConfig {
        auth_url: env("LATCHKEY_AUTH_URL", "http://127.0.0.1:50051"),
        settings_url: env("LATCHKEY_SETTINGS_URL", "http://127.0.0.1:50052"),
        rules: VerifyRules {
            issuer: env("LATCHKEY_ISSUER", "latchkey"),
            audience: env("LATCHKEY_AUDIENCE", "latchkey"),
            leeway: 30,
        },
        credentials: ClientCredentials {
            client_id: env("DEPLOYER_CLIENT_ID", "dev-service"),
            client_secret: client_secret(&env("DEPLOYER_CLIENT_ID", "dev-service"))?,
            scopes: vec![scopes::SETTINGS_REVEAL.to_owned()],
        },
    };
    let launch = Arc::new(|user_id: &str, token: &SecretString| {
        let length = token.expose_secret().len();
        println!("deploying for user {user_id} with a Fly token of {length} characters");
        format!("deploy-{user_id}")
    });
    let app = router(&config, Arc::new(SystemClock), launch)?;
    let listener = tokio::net::TcpListener::bind(env("DEPLOYER_LISTEN", "127.0.0.1:8090")).await?;
    println!("deployer listening on http://{}", listener.local_addr()?);
    serve(listener, app).await?;
    Ok(())
}
