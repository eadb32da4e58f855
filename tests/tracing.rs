//! Trace propagation with an in-process exporter: a caller's W3C `traceparent` becomes the parent
//! of the server's spans, and auth's call to settings (user deletion) carries the trace onward.

mod support;

use latchkey_proto::auth::v1 as pb;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use support::*;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_traceparent_parents_the_rpc_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .init();

    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = TestAuth::spawn(&db).await;
    let mut request = tonic::Request::new(pb::GetJwksRequest {});
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    auth.client().await.get_jwks(request).await.unwrap();
    auth.stop().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let rpc = spans
        .iter()
        .find(|s| {
            s.name == "rpc"
                && s.attributes
                    .iter()
                    .any(|a| a.value.as_str().contains("GetJwks"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no rpc span for GetJwks in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(rpc.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(rpc.parent_span_id.to_string(), "00f067aa0ba902b7");
}
