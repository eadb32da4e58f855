//! The OpenAPI 3.1 description of every route, written by hand next to the handlers (a test
//! probes the router against it and validates every example against its schema).

use serde_json::{Value, json};

/// Every problem response a route can give, by status.
fn problems(statuses: &[u16]) -> Value {
    let mut out = serde_json::Map::new();
    for status in statuses {
        let description = match status {
            400 => "INVALID_ARGUMENT: the body or a field is invalid; `errors` lists each problem",
            401 => {
                "TOKEN_* / USER_NOT_SYNCED / SYNC_SECRET_*: see `code`; `WWW-Authenticate` says why"
            }
            403 => "USER_DISABLED or SCOPE_MISSING",
            404 => "NOT_FOUND",
            409 => {
                "USER_AMBIGUOUS: several users share the email this call names (a token by email, or a web app token carrying only an email); name the user by id"
            }
            413 => "PAYLOAD_TOO_LARGE: bodies are limited to 256 KiB",
            429 => "RATE_LIMITED: wait `Retry-After` seconds",
            503 => "UPSTREAM_UNAVAILABLE: auth or settings is down",
            504 => "DEADLINE_EXCEEDED: the route's time budget ran out",
            _ => "error",
        };
        let mut response = json!({
            "description": description,
            "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
        });
        if *status == 429 {
            response["headers"] = json!({ "Retry-After": { "schema": { "type": "integer" }, "description": "seconds to wait" } });
        }
        if *status == 401 {
            response["headers"] = json!({ "WWW-Authenticate": { "schema": { "type": "string" }, "description": "RFC 6750 challenge" } });
        }
        out.insert(status.to_string(), response);
    }
    out.insert(
        "500".into(),
        json!({ "description": "INTERNAL", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }),
    );
    Value::Object(out)
}

fn ok_json(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn with(mut responses: Value, status: &str, response: Value) -> Value {
    responses[status] = response;
    responses
}

fn json_body(schema: &str, example: Value) -> Value {
    json!({
        "required": true,
        "content": { "application/json": {
            "schema": { "$ref": format!("#/components/schemas/{schema}") },
            "example": example
        } }
    })
}

/// The methods the document lists for a concrete path (`/api/settings/X` matches
/// `/api/settings/{name}`), upper case, for the `Allow` header of a 405.
pub fn methods_of(path: &str) -> Vec<String> {
    let doc = document();
    let Some(paths) = doc["paths"].as_object() else {
        return Vec::new();
    };
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(t, s)| t.starts_with('{') || t == s)
    };
    let exact = paths.keys().find(|t| t.as_str() == path);
    let template = exact.or_else(|| paths.keys().find(|t| matches(t)));
    let Some(item) = template.and_then(|t| paths[t].as_object()) else {
        return Vec::new();
    };
    item.keys().map(|m| m.to_ascii_uppercase()).collect()
}

/// A web app's own (legacy) token names its user by email, so a bearer route can also answer 400
/// (the email is not acceptable) and 409 (several users hold it).
const BEARER_ERRORS: &[u16] = &[400, 401, 403, 409, 429, 503, 504];

/// The document served at `/openapi.json`.
pub fn document() -> Value {
    let bearer = json!([{ "bearer": [] }]);
    let sync = json!([{ "syncSecret": [] }, { "authSecret": [] }]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Latchkey gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST/JSON door to Latchkey auth and settings. Every error is application/problem+json with a stable `code` (see docs/TROUBLESHOOTING.md)."
        },
        "servers": [{ "url": "/" }],
        "paths": {
            "/api/auth/sync-user": { "post": {
                "operationId": "syncUser",
                "summary": "Upsert a user after sign-in and get an access token (web app server only)",
                "description": "Finds the user by identity (provider + subject). A new identity joins the one existing user with the same email when `email_verified` is true and LATCHKEY_LINK_VERIFIED_EMAILS is on (the default); otherwise it gets its own user. `{email, name}` alone is an email-only sync: identity provider `email`, subject the normalised email, not verified.",
                "security": sync,
                "requestBody": json_body("SyncUserRequest", json!({"provider": "github", "subject": "12345", "email": "ada@example.com", "name": "Ada Lovelace", "avatar_url": "https://avatars.example.com/ada.png"})),
                "responses": with(problems(&[400, 401, 403, 413, 429, 503, 504]), "200", ok_json("the user and a fresh token", "SyncUserResponse"))
            } },
            "/api/auth/token": { "post": {
                "operationId": "issueToken",
                "summary": "Mint a fresh access token for a synced user (web app server only)",
                "security": sync,
                "requestBody": json_body("TokenRequest", json!({"email": "ada@example.com"})),
                "responses": with(problems(&[400, 401, 403, 404, 409, 413, 429, 503, 504]), "200", ok_json("a fresh token", "TokenResponse"))
            } },
            "/api/auth/me": {
                "get": {
                    "operationId": "getMe", "summary": "The signed-in user", "security": bearer,
                    "responses": with(problems(BEARER_ERRORS), "200", ok_json("the user", "Me"))
                },
                "delete": {
                    "operationId": "deleteMe", "summary": "Delete the signed-in user and all their settings", "security": bearer,
                    "responses": with(problems(BEARER_ERRORS), "204", json!({ "description": "deleted" }))
                }
            },
            "/api/auth/me/revoke": { "post": {
                "operationId": "revokeMe",
                "summary": "Sign out everywhere: every token issued to the caller so far is refused (TOKEN_REVOKED)",
                "security": bearer,
                "responses": with(problems(BEARER_ERRORS), "200", ok_json("the revocation boundary", "Revoked"))
            } },
            "/.well-known/jwks.json": { "get": {
                "operationId": "getJwks", "summary": "Public signing keys (RFC 7517)", "security": [],
                "responses": with(problems(&[503, 504]), "200", json!({ "description": "the key set", "content": { "application/jwk-set+json": { "schema": { "$ref": "#/components/schemas/Jwks" } } } }))
            } },
            "/api/settings": {
                "get": {
                    "operationId": "listSettings", "summary": "The user's settings, masked", "security": bearer,
                    "responses": with(problems(BEARER_ERRORS), "200", ok_json("masked settings", "SettingsList"))
                },
                "patch": {
                    "operationId": "patchSettings", "summary": "Merge: a value sets, null deletes; atomic", "security": bearer,
                    "requestBody": json_body("SettingsChange", json!({"settings": {"FLY_API_TOKEN": "fo1_abcdefghijklmnop", "OLD_KEY": null}})),
                    "responses": with(problems(&[400, 401, 403, 409, 413, 429, 503, 504]), "200", ok_json("the new list", "SettingsList"))
                },
                "put": {
                    "operationId": "replaceSettings", "summary": "Replace the whole set; atomic", "security": bearer,
                    "requestBody": json_body("SettingsChange", json!({"settings": {"FLY_API_TOKEN": "fo1_abcdefghijklmnop"}})),
                    "responses": with(problems(&[400, 401, 403, 409, 413, 429, 503, 504]), "200", ok_json("the new list", "SettingsList"))
                }
            },
            "/api/settings/import": { "post": {
                "operationId": "importDotenv",
                "summary": "Import a pasted .env (merge or replace), or preview it with dry_run",
                "security": bearer,
                "parameters": [
                    { "name": "mode", "in": "query", "required": false, "description": "text/plain bodies only", "schema": { "type": "string", "enum": ["merge", "replace"] } },
                    { "name": "dry_run", "in": "query", "required": false, "description": "text/plain bodies only", "schema": { "type": "boolean" } }
                ],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": { "schema": { "$ref": "#/components/schemas/ImportRequest" }, "example": {"dotenv": "FLY_API_TOKEN=fo1_abcdefghijklmnop\nexport OPENROUTER_API_KEY=\"sk-or-v1-0123\"\n", "mode": "merge", "dry_run": true} },
                        "text/plain": { "schema": { "type": "string" }, "example": "FLY_API_TOKEN=fo1_abcdefghijklmnop\n" }
                    }
                },
                "responses": with(problems(&[400, 401, 403, 409, 413, 429, 503, 504]), "200", ok_json("what was (or would be) applied", "ImportResult"))
            } },
            "/api/settings/{name}": { "delete": {
                "operationId": "deleteSetting", "summary": "Delete one setting", "security": bearer,
                "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "$ref": "#/components/schemas/SettingName" } }],
                "responses": with(problems(&[400, 401, 403, 404, 409, 429, 503, 504]), "204", json!({ "description": "deleted" }))
            } },
            "/healthz": { "get": {
                "operationId": "healthz", "summary": "Liveness", "security": [],
                "responses": { "200": ok_json("alive", "Health") }
            } },
            "/readyz": { "get": {
                "operationId": "readyz", "summary": "Readiness: both upstreams serving", "security": [],
                "responses": with(problems(&[503]), "200", ok_json("ready", "Ready"))
            } },
            "/openapi.json": { "get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": { "schema": { "type": "object" } } } } }
            } },
            "/": { "get": {
                "operationId": "settingsPage", "summary": "The Settings page", "security": [],
                "responses": { "200": { "description": "HTML", "content": { "text/html": { "schema": { "type": "string" } } } } }
            } },
            "/assets/app.js": { "get": {
                "operationId": "settingsPageScript", "summary": "The Settings page's script", "security": [],
                "responses": { "200": { "description": "JavaScript", "content": { "text/javascript": { "schema": { "type": "string" } } } } }
            } },
            "/assets/app.css": { "get": {
                "operationId": "settingsPageStyle", "summary": "The Settings page's style sheet", "security": [],
                "responses": { "200": { "description": "CSS", "content": { "text/css": { "schema": { "type": "string" } } } } }
            } },
            "/api/dev/session": { "post": {
                "operationId": "devSession", "summary": "Dev mode only (`latchkey dev`): sign in a fixed dev user; 404 otherwise. Needs a loopback Host and a same-origin signal: an Origin equal to this page's origin, or (without Origin) `X-Latchkey-Dev: 1`; 400 otherwise", "security": [],
                "parameters": [{ "name": "X-Latchkey-Dev", "in": "header", "required": false, "schema": { "type": "string", "enum": ["1"] } }],
                "responses": with(problems(&[400, 404, 503]), "200", ok_json("the dev user and a token", "SyncUserResponse"))
            } }
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                "syncSecret": { "type": "apiKey", "in": "header", "name": "X-Latchkey-Sync-Secret" },
                "authSecret": { "type": "apiKey", "in": "header", "name": "X-Auth-Secret" }
            },
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
    json!({
        "SettingName": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 128 },
        "SyncUserRequest": {
            "type": "object", "additionalProperties": false,
            "description": "provider and subject together, or neither (an email-only sync: `{email, name}`)",
            "required": ["email"],
            "dependentRequired": { "provider": ["subject"], "subject": ["provider"] },
            "properties": {
                "provider": { "type": "string", "pattern": "^\\s*[A-Za-z0-9._-]{1,64}\\s*$", "examples": ["github"] },
                "subject": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "\\S", "description": "the provider's user id" },
                "email": { "type": "string", "format": "email", "maxLength": 320, "description": "normalised (Unicode NFKC, lower case); control, invisible and mixed-script look-alike characters are refused" },
                "email_verified": { "type": "boolean", "default": false, "description": "the provider vouches that the user owns `email`; only then may a new identity join the existing user with that email" },
                "name": { "type": ["string", "null"], "maxLength": 256 },
                "avatar_url": { "type": ["string", "null"], "maxLength": 2048, "pattern": "^\\s*(https?://[\\s\\S]*)?$" }
            }
        },
        "User": {
            "type": "object",
            "required": ["id", "provider", "subject", "email", "name", "created_at", "updated_at"],
            "properties": {
                "id": { "type": "string", "format": "uuid" },
                "provider": { "type": "string" },
                "subject": { "type": "string" },
                "email": { "type": "string" },
                "name": { "type": "string" },
                "avatar_url": { "type": "string" },
                "created_at": { "type": "string", "format": "date-time" },
                "updated_at": { "type": "string", "format": "date-time" }
            }
        },
        "Revoked": {
            "type": "object",
            "required": ["revoked_before"],
            "properties": {
                "revoked_before": { "type": "string", "format": "date-time", "description": "tokens issued before this instant are refused" }
            }
        },
        "Me": {
            "type": "object",
            "required": ["id", "email", "name", "provider", "created_at", "updated_at"],
            "properties": {
                "id": { "type": "string", "format": "uuid" },
                "email": { "type": "string" },
                "name": { "type": "string" },
                "provider": { "type": "string", "description": "the provider of the identity the user signed in with last (the earliest among equals): e.g. `github`, `email` for an email-only sync, `legacy` for a user created from a web app token" },
                "avatar_url": { "type": "string" },
                "created_at": { "type": "string", "format": "date-time" },
                "updated_at": { "type": "string", "format": "date-time", "description": "the last sign-in that reported a profile" }
            }
        },
        "SyncUserResponse": {
            "type": "object",
            "required": ["user", "access_token", "token_type", "expires_in"],
            "properties": {
                "user": { "$ref": "#/components/schemas/User" },
                "access_token": { "type": "string" },
                "token_type": { "type": "string", "const": "Bearer" },
                "expires_in": { "type": "integer" }
            }
        },
        "TokenRequest": {
            "type": "object", "additionalProperties": false,
            "description": "exactly one of user_id or email",
            "oneOf": [ { "required": ["user_id"] }, { "required": ["email"] } ],
            "properties": {
                "user_id": { "type": "string", "format": "uuid" },
                "email": { "type": "string", "format": "email" }
            }
        },
        "TokenResponse": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in"],
            "properties": {
                "access_token": { "type": "string" },
                "token_type": { "type": "string", "const": "Bearer" },
                "expires_in": { "type": "integer" }
            }
        },
        "Jwk": {
            "type": "object",
            "required": ["kty", "kid", "alg", "use"],
            "properties": {
                "kty": { "type": "string" }, "crv": { "type": "string" }, "x": { "type": "string" },
                "kid": { "type": "string" }, "alg": { "type": "string" }, "use": { "type": "string" }
            }
        },
        "Jwks": {
            "type": "object", "required": ["keys"],
            "properties": { "keys": { "type": "array", "items": { "$ref": "#/components/schemas/Jwk" } } }
        },
        "MaskedSetting": {
            "type": "object",
            "required": ["name", "masked", "length", "updated_at"],
            "properties": {
                "name": { "$ref": "#/components/schemas/SettingName" },
                "masked": { "type": "string", "description": "at most the last four characters; empty for values shorter than 12" },
                "length": { "type": "integer" },
                "updated_at": { "type": "string", "format": "date-time" }
            }
        },
        "SettingsList": {
            "type": "object", "required": ["settings"],
            "properties": { "settings": { "type": "array", "items": { "$ref": "#/components/schemas/MaskedSetting" } } }
        },
        "SettingsChange": {
            "type": "object", "additionalProperties": false, "required": ["settings"],
            "properties": { "settings": {
                "type": "object",
                "maxProperties": 200,
                "propertyNames": { "$ref": "#/components/schemas/SettingName" },
                "additionalProperties": { "type": ["string", "null"], "maxLength": 16384 }
            } }
        },
        "ImportRequest": {
            "type": "object", "additionalProperties": false, "required": ["dotenv"],
            "properties": {
                "dotenv": { "type": "string" },
                "mode": { "type": "string", "enum": ["merge", "replace"], "default": "merge" },
                "dry_run": { "type": "boolean", "default": false }
            }
        },
        "DotenvWarning": {
            "type": "object", "required": ["line", "name", "message"],
            "properties": { "line": { "type": "integer" }, "name": { "type": "string" }, "message": { "type": "string" } }
        },
        "ImportResult": {
            "type": "object",
            "required": ["applied", "added", "changed", "removed", "unchanged", "warnings", "settings"],
            "properties": {
                "applied": { "type": "boolean" },
                "added": { "type": "array", "items": { "type": "string" } },
                "changed": { "type": "array", "items": { "type": "string" }, "description": "stored names the file sets with another value; a dry run compares no values and lists every stored name the file sets (would be replaced)" },
                "removed": { "type": "array", "items": { "type": "string" } },
                "unchanged": { "type": "array", "items": { "type": "string" }, "description": "stored names whose value already equals the file's; always empty for a dry run" },
                "warnings": { "type": "array", "items": { "$ref": "#/components/schemas/DotenvWarning" } },
                "settings": { "type": "array", "items": { "$ref": "#/components/schemas/MaskedSetting" } }
            }
        },
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail", "code", "request_id"],
            "properties": {
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "code": { "type": "string", "enum": latchkey_proto::Reason::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>() },
                "request_id": { "type": "string" },
                "retry_after": { "type": "integer" },
                "count": { "type": "integer", "description": "USER_AMBIGUOUS: how many users share the email" },
                "errors": { "type": "array", "items": {
                    "type": "object", "required": ["field", "description"],
                    "properties": { "field": { "type": "string" }, "description": { "type": "string" }, "line": { "type": "integer" } }
                } }
            }
        },
        "Health": { "type": "object", "required": ["status", "version"], "properties": { "status": { "type": "string" }, "version": { "type": "string", "description": "the gateway's Latchkey version" } } },
        "Ready": {
            "type": "object", "required": ["status", "auth", "settings"],
            "properties": { "status": { "type": "string" }, "auth": { "type": "string" }, "settings": { "type": "string" } }
        }
    })
}
