//! Settings throughput: seal/open of a 64-byte value, and listing a user's 50 settings from
//! SQLite (masked: no decryption).
//! Run: `cargo bench -p latchkey-settings --bench settings`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latchkey_common::seal::SealKey;
use latchkey_settings::config::{MasterKey, MasterKeys};
use latchkey_settings::crypto;
use latchkey_settings::service::{Caller, Change, SettingsCore};
use std::hint::black_box;
use std::sync::Arc;
use zeroize::Zeroizing;

fn seal_open(c: &mut Criterion) {
    let key = MasterKey {
        id: "k1".into(),
        key: SealKey::generate(),
    };
    let value = "v".repeat(64);
    let sealed = crypto::seal(&key, "user-0123", "FLY_API_TOKEN", &value);
    let mut group = c.benchmark_group("value_64_bytes");
    group.throughput(Throughput::Elements(1));
    group.bench_function("seal", |b| {
        b.iter(|| crypto::seal(&key, black_box("user-0123"), "FLY_API_TOKEN", &value))
    });
    group.bench_function("open", |b| {
        b.iter(|| crypto::open(&key, black_box("user-0123"), "FLY_API_TOKEN", &sealed).unwrap())
    });
    group.finish();
}

fn list_50(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let caller = Caller::User("bench-user".into());
    let core = runtime.block_on(async {
        let db = latchkey_common::db::connect(&url).await.unwrap();
        latchkey_settings::store::migrate(&db).await.unwrap();
        let keys = MasterKeys::new(vec![MasterKey {
            id: "k1".into(),
            key: SealKey::generate(),
        }]);
        let core = SettingsCore::new(db, keys, Arc::new(latchkey_common::clock::SystemClock));
        let changes = (0..50)
            .map(|i| Change {
                name: format!("SETTING_{i:02}"),
                value: Some(Zeroizing::new(format!("value-{i}-0123456789abcdef"))),
            })
            .collect();
        core.patch(&caller, changes).await.unwrap();
        core
    });
    c.bench_function("list_50_settings_sqlite", |b| {
        b.iter(|| runtime.block_on(core.list(&caller)).unwrap())
    });
}

criterion_group!(benches, seal_open, list_50);
criterion_main!(benches);
