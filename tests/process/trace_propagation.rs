//! Trace propagation with an in-process exporter: a caller's W3C `traceparent` becomes the parent
//! of the server's spans, and one trace spans gateway → auth → settings.

use crate::support::gateway::TestGateway;
use crate::support::settings::TestSettings;
use crate::support::*;
use latchkey_proto::auth::v1 as pb;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

/// The binary's global subscriber, exporting into memory; tests tell their spans apart by
/// trace id.
fn exporter() -> &'static (InMemorySpanExporter, SdkTracerProvider) {
    &crate::support::logs::capture().traces
}

fn spans_of(trace_id: &str) -> Vec<SpanData> {
    let (exporter, provider) = exporter();
    provider.force_flush().unwrap();
    exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect()
}

fn has_span(spans: &[SpanData], name: &str, attribute_contains: &str) -> bool {
    spans.iter().any(|s| {
        s.name == name
            && s.attributes
                .iter()
                .any(|a| a.value.as_str().contains(attribute_contains))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_traceparent_parents_the_rpc_span() {
    exporter();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = TestAuth::spawn(&db).await;
    let mut request = tonic::Request::new(pb::GetJwksRequest {});
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    auth.client().await.get_jwks(request).await.unwrap();
    auth.stop().await;

    let spans = spans_of(trace_id);
    let rpc = spans
        .iter()
        .find(|s| s.name == "rpc")
        .expect("the GetJwks span joined the caller's trace");
    assert_eq!(rpc.parent_span_id.to_string(), "00f067aa0ba902b7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_gateway_auth_and_settings() {
    exporter();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = TestAuth::spawn(&db).await;
    let settings = TestSettings::spawn(&db, &auth).await;
    let gateway = TestGateway::spawn(&auth.url(), &settings.url()).await;
    let (_, token) = gateway.sync_user("traced").await;

    let response = reqwest::Client::new()
        .get(gateway.url("/api/settings"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    gateway.stop().await;
    settings.stop().await;
    auth.stop().await;

    let spans = spans_of(trace_id);
    let names: Vec<String> = spans
        .iter()
        .map(|s| format!("{} {:?}", s.name, s.attributes))
        .collect();
    assert!(
        has_span(&spans, "http", "/api/settings"),
        "gateway span missing: {names:#?}"
    );
    assert!(
        has_span(&spans, "rpc", "AuthService/Authenticate"),
        "auth span missing: {names:#?}"
    );
    assert!(
        has_span(&spans, "rpc", "SettingsService/ListSettings"),
        "settings span missing: {names:#?}"
    );
    let gateway_span = spans.iter().find(|s| s.name == "http").unwrap();
    assert_eq!(gateway_span.parent_span_id.to_string(), "b7ad6b7169203331");
    let settings_span = spans
        .iter()
        .find(|s| {
            s.name == "rpc"
                && s.attributes
                    .iter()
                    .any(|a| a.value.as_str().contains("ListSettings"))
        })
        .unwrap();
    assert_ne!(
        settings_span.parent_span_id.to_string(),
        "b7ad6b7169203331",
        "settings is a child of the gateway's span, not of the browser's"
    );
}
