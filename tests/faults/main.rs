//! The fault suite: the three services as real processes on PostgreSQL behind a TCP proxy the
//! test owns, under load, while the database refuses or hangs, processes are killed or restarted
//! and keys rotate. Each scenario asserts its expected outcome and prints what it measured
//! (`cargo test --test faults -- --nocapture` shows the figures).
//!
//! Scenarios run one at a time. Without PostgreSQL they are skipped, unless `CI=true`.
//! `LATCHKEY_FAULTS_SOAK_SECS` sets the soak's length (default 180 s with `CI=true`, 20 s
//! otherwise).

#[path = "../e2e/support/mod.rs"]
mod support;

mod database;
mod load;
mod proxy;
mod restarts;
mod rotation;
mod soak;
mod stack;

/// One scenario at a time: each measures a whole system on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! scenarios {
    ($($name:ident => $path:path),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let _one_at_a_time = SERIAL.lock().await;
                $path().await
            }
        )+
    };
}

scenarios! {
    database_refused_under_load => database::refused_under_load,
    database_hung_under_load => database::hung_under_load,
    settings_killed_mid_import => restarts::settings_killed_mid_import,
    signing_key_rotation_under_load => rotation::signing_under_load,
    encryption_key_rotation_under_load => rotation::encryption_under_load,
    auth_restart_under_load => restarts::auth_restart_under_load,
    settings_sigterm_under_load => restarts::settings_sigterm_under_load,
    gateway_sigterm_under_load => restarts::gateway_sigterm_under_load,
    soak => soak::soak,
}
