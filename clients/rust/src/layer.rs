//! Authenticating HTTP requests in an axum (or any tower) service: [`AuthLayer`] reads the
//! bearer token, turns it into a [`Caller`] with an [`Authenticator`] and hands it to the
//! handler, which takes it as an extractor argument. A refused request never reaches the
//! handler: it is answered with `application/problem+json` carrying the catalogue reason.
//!
//! ```no_run
//! # async fn example(authn: latchkey_client::Authenticator) {
//! use axum::{Router, routing::get};
//! use latchkey_client::{AuthLayer, Caller};
//!
//! async fn whoami(caller: Caller) -> String {
//!     format!("{caller:?}")
//! }
//!
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .layer(AuthLayer::new(authn));
//! # }
//! ```

use crate::authenticator::Authenticator;
use crate::bearer::bearer_header;
use crate::caller::Caller;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header, request::Parts};
use latchkey_proto::ApiError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A tower layer authenticating every request it wraps.
#[derive(Clone)]
pub struct AuthLayer {
    authn: Authenticator,
}

impl AuthLayer {
    /// Authenticates with `authn`.
    pub fn new(authn: Authenticator) -> Self {
        AuthLayer { authn }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            authn: self.authn.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around another: the request reaches it only authenticated,
/// with its [`Caller`] in the extensions.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authn: Authenticator,
}

impl<S> tower::Service<http::Request<Body>> for AuthService<S>
where
    S: tower::Service<http::Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request; the fresh one waits for the next.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let authn = self.authn.clone();
        Box::pin(async move {
            let token = bearer_header(request.headers()).to_owned();
            match authn.caller(&token).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(error) => Ok(problem(error.into())),
            }
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    /// The caller [`AuthLayer`] authenticated; a route without the layer is a server error,
    /// never an anonymous caller.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!("a handler asked for the caller on a route without AuthLayer");
            problem(ApiError::internal())
        })
    }
}

/// A refusal as `application/problem+json` (RFC 9457) with the catalogue reason as `code`.
pub fn problem(error: ApiError) -> Response {
    let status = StatusCode::from_u16(error.reason.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "type": "about:blank",
        "code": error.reason.as_str(),
        "title": error.reason.title(),
        "status": status.as_u16(),
        "detail": error.detail,
    });
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    response
}
