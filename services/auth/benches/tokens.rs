//! Token sign and verify throughput: EdDSA and ES256 (Latchkey's own tokens), HS256 (legacy mode) and
//! Auth.js session tokens (next-auth v4's A256GCM, Auth.js v5's A256CBC-HS512).
//! Run: `cargo bench -p latchkey-auth --bench tokens`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latchkey_auth::authjs::{AuthJsRules, AuthJsVersions, V5_COOKIE_NAMES, encrypt_v4, encrypt_v5};
use latchkey_auth::keys::{ActiveKey, KeySet, SigningAlg};
use latchkey_auth::tokens::{LegacyRules, SecretHint, TokenRules, sign, sign_hs256};
use latchkey_common::SecretString;
use std::hint::black_box;
use std::sync::Arc;

/// An EdDSA key (active) and an ES256 key, both published, as during a switch of algorithm.
fn keyset() -> (KeySet, Arc<ActiveKey>) {
    let (eddsa, eddsa_public) = ActiveKey::generate("bench", SigningAlg::EdDSA);
    let (es256, es256_public) = ActiveKey::generate("bench-es256", SigningAlg::Es256);
    let mut set = KeySet {
        active: Some(Arc::new(eddsa)),
        ..Default::default()
    };
    set.published.insert("bench".into(), eddsa_public);
    set.published.insert("bench-es256".into(), es256_public);
    (set, Arc::new(es256))
}

fn tokens(c: &mut Criterion) {
    let (keys, es256_key) = keyset();
    let secret = SecretString::from("bench-legacy-secret-0123456789abcdef".to_owned());
    let rules = TokenRules {
        issuer: "latchkey".into(),
        audience: "latchkey".into(),
        ttl: 900,
        leeway: 30,
        legacy: Some(LegacyRules {
            secret: secret.clone(),
            issuer: None,
            audience: "latchkey".into(),
            secret_variable: "NEXTAUTH_SECRET".into(),
        }),
        authjs: Some(AuthJsRules::new(
            &secret,
            AuthJsVersions::Both,
            &V5_COOKIE_NAMES.map(str::to_owned),
            SecretHint::new(&secret, "AUTH_SECRET"),
        )),
    };
    let now = 1_800_000_000;
    let claims = rules.claims(
        "0b6f3c1e-5d6a-4f7e-9a8b-1c2d3e4f5a6b".into(),
        String::new(),
        None,
        now,
    );
    let active = keys.active.clone().unwrap();
    let eddsa = sign(&active, &claims);
    let es256 = sign(&es256_key, &claims);
    let hs256 = sign_hs256(
        &secret,
        &serde_json::json!({"sub": "ada@example.com", "aud": "latchkey", "iat": now, "exp": now + 900}),
    );
    let session = serde_json::json!({"name": "Ada", "email": "ada@example.com", "sub": "42", "iat": now, "exp": now + 900});
    let authjs_v4 = encrypt_v4(&secret, &session);
    let authjs_v5 = encrypt_v5(&secret, V5_COOKIE_NAMES[1], &session);

    let mut group = c.benchmark_group("tokens");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign_eddsa", |b| {
        b.iter(|| sign(&active, black_box(&claims)))
    });
    group.bench_function("verify_eddsa", |b| {
        b.iter(|| rules.verify(black_box(&eddsa), &keys, now).unwrap())
    });
    group.bench_function("sign_es256", |b| {
        b.iter(|| sign(&es256_key, black_box(&claims)))
    });
    group.bench_function("verify_es256", |b| {
        b.iter(|| rules.verify(black_box(&es256), &keys, now).unwrap())
    });
    group.bench_function("sign_hs256", |b| {
        b.iter(|| {
            sign_hs256(
                &secret,
                black_box(&serde_json::json!({"sub": "ada@example.com", "exp": now + 900})),
            )
        })
    });
    group.bench_function("verify_hs256", |b| {
        b.iter(|| rules.verify(black_box(&hs256), &keys, now).unwrap())
    });
    group.bench_function("verify_authjs_v4", |b| {
        b.iter(|| rules.verify(black_box(&authjs_v4), &keys, now).unwrap())
    });
    group.bench_function("verify_authjs_v5", |b| {
        b.iter(|| rules.verify(black_box(&authjs_v5), &keys, now).unwrap())
    });
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
