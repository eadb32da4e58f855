//! A tiny deployer service, the worked example of `latchkey-client`: `POST /deploy`, asked with
//! a signed-in user's access token, reveals that user's `FLY_API_TOKEN` from settings with the
//! deployer's own service token (scope `settings:reveal`) and hands it to the deploy step.
//!
//! - [`DeployerConfig`]: where auth and settings are, the token rules, the client credentials.
//! - [`router`]: the HTTP routes behind [`latchkey_client::AuthLayer`], so the handler receives
//!   the authenticated [`Caller`].
//! - [`serve`]: serving on a listener the caller bound (port 0 in tests).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use latchkey_client::layer::problem;
use latchkey_client::{
    ApiError, AuthLayer, Authenticator, Caller, ClientCredentials, Reason, SecretString,
    ServiceTokenSource, SettingsClient, SharedClock, VerifyRules, channel,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The setting the deployer reveals.
pub const FLY_API_TOKEN: &str = "FLY_API_TOKEN";

/// How long auth's "still allowed" answer is reused: a revoked user can still deploy for at
/// most this long.
pub const REVOCATION_BOUND: Duration = Duration::from_secs(4);

/// What the deploy step does with the user's Fly token: given the user id and the token,
/// answers a deployment id. The token is the user's secret: never log or return it.
pub type Launch = Arc<dyn Fn(&str, &SecretString) -> String + Send + Sync>;

/// Where the deployer finds Latchkey, and who it is there.
#[derive(Debug, Clone)]
pub struct DeployerConfig {
    /// Auth's gRPC URL (`http://127.0.0.1:50051`).
    pub auth_url: String,
    /// Settings' gRPC URL (`http://127.0.0.1:50052`).
    pub settings_url: String,
    /// The rules user tokens are held to (auth's issuer and audience).
    pub rules: VerifyRules,
    /// The deployer's client in auth's `LATCHKEY_SERVICE_CLIENTS` (needs `settings:reveal`).
    pub credentials: ClientCredentials,
}

/// What `POST /deploy` answers.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Deployed {
    pub user_id: String,
    pub deployment: String,
}

#[derive(Clone)]
struct Deployer {
    settings: SettingsClient,
    launch: Launch,
}

/// The deployer's routes, every one authenticated.
pub fn router(
    config: &DeployerConfig,
    clock: SharedClock,
    launch: Launch,
) -> anyhow::Result<Router> {
    let auth = channel::lazy(&config.auth_url)?;
    let settings = channel::lazy(&config.settings_url)?;
    let authn = Authenticator::new(
        auth.clone(),
        config.rules.clone(),
        REVOCATION_BOUND,
        clock.clone(),
    );
    let tokens = ServiceTokenSource::new(auth, config.credentials.clone(), clock);
    let deployer = Deployer {
        settings: SettingsClient::new(settings, tokens),
        launch,
    };
    Ok(Router::new()
        .route("/deploy", post(deploy))
        .layer(AuthLayer::new(authn))
        .with_state(deployer))
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

/// `POST /deploy`: the signed-in user's Fly token, revealed and handed to the deploy step.
async fn deploy(State(deployer): State<Deployer>, caller: Caller) -> Response {
    let Some(user_id) = caller.user_id() else {
        return problem(ApiError::new(
            Reason::ScopeMissing,
            "Deploys are asked for with a signed-in user's access token, not a service token.",
        ));
    };
    match deployer.settings.reveal(user_id, FLY_API_TOKEN).await {
        Ok(token) => Json(Deployed {
            user_id: user_id.to_owned(),
            deployment: (deployer.launch)(user_id, &token),
        })
        .into_response(),
        Err(error) => problem(error),
    }
}
