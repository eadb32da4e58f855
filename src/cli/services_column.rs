//! Holds the settings table's services column to the code: what each service command reads,
//! through the same calls it makes at start, is exactly what the table says it reads.

use super::{json_logs, metrics_address, shutdown_for};
use latchkey_common::config::{Config, SETTINGS, Service};
use std::collections::{BTreeSet, HashMap};

/// An environment that takes every branch a service's validation has (legacy and Auth.js
/// tokens on, service clients set), so conditional reads are seen too.
fn everything_on() -> Config {
    let secret = "c2VydmljZS1jb2x1bW4tdGVzdC1zZWNyZXQtMDEyMzQ=";
    let env: HashMap<String, String> = [
        (
            "LATCHKEY_SYNC_SECRET",
            "sync-secret-0123456789abcdef0123456789",
        ),
        ("LATCHKEY_SEAL_KEY", secret),
        ("LATCHKEY_ENCRYPTION_KEYS", &format!("k1:{secret}")),
        ("LATCHKEY_SETTINGS_URL", "http://127.0.0.1:50052"),
        (
            "LATCHKEY_SERVICE_CLIENTS",
            "deployer:client-secret:settings:reveal",
        ),
        ("LATCHKEY_LEGACY_HS256_ENABLED", "true"),
        ("LATCHKEY_AUTHJS_TOKENS", "both"),
        (
            "LATCHKEY_LEGACY_HS256_SECRET",
            "web-app-secret-0123456789abcdef",
        ),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    Config::from_env_map(env)
}

/// The keys `latchkey <service>` reads before it serves.
fn read_by(service: Service) -> BTreeSet<&'static str> {
    let config = everything_on();
    json_logs(&config);
    metrics_address(&config);
    assert!(shutdown_for(&config).is_ok());
    let valid = match service {
        Service::Auth => latchkey_auth::AuthConfig::from_config(&config).is_ok(),
        Service::Settings => latchkey_settings::SettingsConfig::from_config(&config).is_ok(),
        Service::Gateway => latchkey_gateway::GatewayConfig::from_config(&config).is_ok(),
    };
    assert!(valid, "{} accepts the test environment", service.as_str());
    config.read_keys()
}

#[test]
fn each_service_reads_exactly_the_settings_the_table_lists_for_it() {
    for service in Service::ALL {
        let listed: BTreeSet<&str> = SETTINGS
            .iter()
            .filter(|spec| spec.services.contains(&service))
            .map(|spec| spec.key)
            .collect();
        assert_eq!(
            read_by(service),
            listed,
            "the services column of `{}` is wrong (left: read, right: listed)",
            service.as_str()
        );
    }
}
