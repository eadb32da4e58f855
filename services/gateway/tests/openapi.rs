//! The OpenAPI document matches the router: the router mounts only through the document's
//! operations, every described method answers (not 404/405) with a status the document lists
//! and every undescribed one is 405; every `$ref` resolves; every example request body and a
//! rendered problem validate against their schemas.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use latchkey_gateway::{GatewayConfig, GatewayState, openapi, router};
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

fn config() -> GatewayConfig {
    let unused = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        auth_urls: vec![unused()],
        settings_urls: vec![unused()],
        cors_origins: vec![],
        sync_rate_per_minute: 0,
        auth_failure_rate_per_minute: 0,
        client_ip_header: None,
        trusted_proxies: vec![],
        dev_hosts: vec![],
        http: Default::default(),
        auth_cache: Duration::from_secs(5),
        dev_session: Some(
            "dev-sync-secret-for-tests-only-0123456789"
                .to_owned()
                .into(),
        ),
    }
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

#[tokio::test]
async fn every_route_is_described_and_every_described_route_answers() {
    let doc = openapi::document();
    let paths = doc["paths"].as_object().unwrap();
    // The router registers each handler with its operation (`.routes(routes!(…))`), so what is
    // mounted is what is described; a bare `.route(` would mount a path the document misses.
    let source = include_str!("../src/router.rs");
    assert!(
        !source.contains(".route("),
        "router.rs mounts a route outside the document"
    );
    let mounted = source.matches("routes!(").count();
    assert!(mounted >= 13, "{mounted} registrations");
    assert!(paths.len() >= 14, "{:?}", paths.keys());
    let app = router(
        GatewayState::new(
            &config(),
            std::sync::Arc::new(latchkey_common::clock::SystemClock),
        )
        .unwrap(),
    );
    let mut answers_checked = 0;
    for (path, item) in paths {
        let concrete = path.replace("{name}", "SOME_NAME");
        for method in METHODS {
            let described = item.get(method.as_str().to_ascii_lowercase()).is_some();
            let request = Request::builder()
                .method(method.clone())
                .uri(&concrete)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            if described {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let text = String::from_utf8_lossy(&body);
                assert!(
                    !text.contains("There is no route"),
                    "{method} {path}: {text}"
                );
                let documented = item[method.as_str().to_ascii_lowercase()]["responses"]
                    .get(status.as_str())
                    .unwrap_or_else(|| {
                        panic!(
                            "{method} {path} answered {status}, which openapi.json does not list"
                        )
                    });
                // A JSON answer matches the schema documented for its status.
                for kind in ["application/json", "application/problem+json"] {
                    if let Some(schema) =
                        documented.pointer(&format!("/content/{}/schema", kind.replace('/', "~1")))
                        && let Ok(answer) = serde_json::from_slice::<Value>(&body)
                    {
                        let errors = validate(&doc, schema, &answer, "$");
                        assert!(errors.is_empty(), "{method} {path} {status}: {errors:?}");
                        answers_checked += 1;
                    }
                }
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                let allow = response.headers()["allow"].to_str().unwrap().to_owned();
                for documented in item.as_object().unwrap().keys() {
                    assert!(
                        allow.contains(&documented.to_ascii_uppercase()),
                        "{path}: Allow {allow}"
                    );
                }
            }
        }
    }
    assert!(answers_checked >= 14, "{answers_checked} answers checked");
}

#[tokio::test]
async fn every_example_validates_and_problems_match_their_schema() {
    let doc = openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut references = Vec::new();
    collect_refs(&doc, &mut references);
    assert!(references.len() >= 20, "{references:?}");
    for reference in references {
        let pointer = reference.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling {reference}");
    }
    let mut examples = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(content) = operation.pointer("/requestBody/content/application~1json") else {
                continue;
            };
            let example = content
                .get("example")
                .unwrap_or_else(|| panic!("{method} {path} has no example"));
            let errors = validate(&doc, &content["schema"], example, "$");
            assert!(errors.is_empty(), "{method} {path}: {errors:?}");
            examples += 1;
        }
    }
    assert!(examples >= 5, "{examples}");

    // The validator is not a rubber stamp.
    let sync = json!({ "$ref": "#/components/schemas/SyncUserRequest" });
    assert!(
        !validate(
            &doc,
            &sync,
            &json!({"provider": "github", "subject": "1"}),
            "$"
        )
        .is_empty()
    );
    assert!(
        !validate(
            &doc,
            &sync,
            &json!({"provider": "github", "subject": "1", "email": "a@b.c", "admin": true}),
            "$"
        )
        .is_empty()
    );
    // The bare `{email, name}` a hand-rolled backend sends is a sync; half an identity is not.
    assert_eq!(
        validate(&doc, &sync, &json!({"email": "a@b.c", "name": "A"}), "$"),
        Vec::<String>::new()
    );
    assert_eq!(
        validate(
            &doc,
            &sync,
            &json!({"provider": "google", "subject": "1", "email": "a@b.c", "email_verified": true}),
            "$"
        ),
        Vec::<String>::new()
    );
    assert!(
        !validate(
            &doc,
            &sync,
            &json!({"provider": "github", "email": "a@b.c"}),
            "$"
        )
        .is_empty()
    );
    assert!(!validate(&doc, &sync, &json!({"subject": "1", "email": "a@b.c"}), "$").is_empty());
    assert!(
        !validate(
            &doc,
            &sync,
            &json!({"email": "a@b.c", "email_verified": "yes"}),
            "$"
        )
        .is_empty()
    );
    let token = json!({ "$ref": "#/components/schemas/TokenRequest" });
    assert!(
        !validate(
            &doc,
            &token,
            &json!({"user_id": "x", "email": "a@b.c"}),
            "$"
        )
        .is_empty()
    );
    let change = json!({ "$ref": "#/components/schemas/SettingsChange" });
    assert!(!validate(&doc, &change, &json!({"settings": {"A": 1}}), "$").is_empty());

    let problem_schema = json!({ "$ref": "#/components/schemas/Problem" });
    for &reason in latchkey_proto::Reason::ALL {
        let error = latchkey_proto::ApiError::invalid(
            "Fix it.",
            vec![latchkey_proto::Violation {
                field: "line 3".into(),
                description: "no `=`".into(),
            }],
        );
        let error = latchkey_proto::ApiError { reason, ..error };
        let response = latchkey_gateway::problem::render(&error, "req-1");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        let errors = validate(&doc, &problem_schema, &body, "$");
        assert!(errors.is_empty(), "{reason}: {errors:?}");
        assert_eq!(body["errors"][0]["line"], 3);
    }
}

/// Every `$ref` in `value`.
fn collect_refs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                into.push(reference.clone());
            }
            object.values().for_each(|v| collect_refs(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, into)),
        _ => {}
    }
}

/// A small JSON Schema (2020-12 subset) validator: $ref, type, required, dependentRequired,
/// properties, additionalProperties, items, enum, const, maxLength, maxProperties, propertyNames,
/// oneOf.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.trim_start_matches('#');
        let target = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling {reference}"));
        return validate(doc, target, value, at);
    }
    let mut errors = Vec::new();
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = allowed.contains(&actual) || (actual == "integer" && allowed.contains(&"number"));
        if !ok {
            errors.push(format!("{at}: {actual} is not {allowed:?}"));
            return errors;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        errors.push(format!("{at}: {value} not in enum"));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        errors.push(format!("{at}: {value} != {constant}"));
    }
    if let (Some(max), Some(text)) = (
        schema.get("maxLength").and_then(Value::as_u64),
        value.as_str(),
    ) && text.chars().count() as u64 > max
    {
        errors.push(format!("{at}: longer than {max}"));
    }
    if let Some(object) = value.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !object.contains_key(name.as_str().unwrap()) {
                errors.push(format!("{at}: missing {name}"));
            }
        }
        for (name, needs) in schema
            .get("dependentRequired")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for needed in needs.as_array().into_iter().flatten() {
                let needed = needed.as_str().unwrap();
                if object.contains_key(name) && !object.contains_key(needed) {
                    errors.push(format!("{at}: {name} without {needed}"));
                }
            }
        }
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
            && object.len() as u64 > max
        {
            errors.push(format!("{at}: more than {max} properties"));
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            if let Some(names) = schema.get("propertyNames") {
                errors.extend(validate(
                    doc,
                    names,
                    &Value::String(key.clone()),
                    &format!("{at}.{key} (name)"),
                ));
            }
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(sub), _) => errors.extend(validate(doc, sub, item, &format!("{at}.{key}"))),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{at}: unknown property {key}"))
                }
                (None, Some(sub @ Value::Object(_))) => {
                    errors.extend(validate(doc, sub, item, &format!("{at}.{key}")))
                }
                _ => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            errors.extend(validate(doc, items, item, &format!("{at}[{index}]")));
        }
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|o| validate(doc, o, value, at).is_empty())
            .count();
        if matching != 1 {
            errors.push(format!("{at}: matches {matching} of oneOf"));
        }
    }
    errors
}
