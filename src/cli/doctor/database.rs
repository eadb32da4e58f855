//! Database checks: reachable, migrated, every master key id the stored rows name is
//! configured, and the signing keys' states.

use super::check::Check;
use super::{DoctorArgs, ServiceArg};
use latchkey_common::ExposeSecret;
use latchkey_common::config::{Config, DATABASE_URL, ENCRYPTION_KEYS};

pub(super) async fn check_database(
    args: &DoctorArgs,
    config: &Config,
    auth: Option<&latchkey_auth::AuthConfig>,
    settings: Option<&latchkey_settings::SettingsConfig>,
    checks: &mut Vec<Check>,
) {
    let Some(url) = config.secret(DATABASE_URL) else {
        return;
    };
    let shown = latchkey_common::db::redact_url(url.expose_secret());
    let db = match latchkey_common::db::connect(url.expose_secret()).await {
        Ok(db) => db,
        Err(error) => {
            checks.push(Check::fail(
                format!("database reachable ({shown})"),
                error.to_string(),
                format!("start the database or correct {}", DATABASE_URL.env()),
            ));
            return;
        }
    };
    checks.push(Check::pass("database reachable", shown));
    if args.checks(ServiceArg::Auth) {
        let up_to_date = migrated(
            checks,
            "auth",
            latchkey_auth::store::pending_migrations(&db).await,
        );
        if let (true, Some(auth)) = (up_to_date, auth) {
            super::signing_keys::check_signing_keys(&db, auth, checks).await;
        }
    }
    if args.checks(ServiceArg::Settings) {
        let up_to_date = migrated(
            checks,
            "settings",
            latchkey_settings::store::pending_migrations(&db).await,
        );
        if let (true, Some(settings)) = (up_to_date, settings) {
            let rows = latchkey_settings::rotation::rows_per_key(&db).await;
            check_key_ids(checks, rows, &settings.keys);
        }
    }
}

/// One "database migrated" line; answers whether the schema is up to date.
pub(super) fn migrated(
    checks: &mut Vec<Check>,
    service: &str,
    pending: Result<usize, impl std::fmt::Display>,
) -> bool {
    let name = format!("database migrated: {service}");
    match pending {
        Ok(0) => {
            checks.push(Check::pass(name, "schema up to date"));
            true
        }
        Ok(n) => {
            checks.push(Check::fail(
                name,
                format!("{n} {service} migration(s) not applied"),
                "run `latchkey migrate`",
            ));
            false
        }
        Err(error) => {
            checks.push(Check::fail(
                name,
                error.to_string(),
                "run `latchkey migrate`",
            ));
            false
        }
    }
}

/// Every key id the stored settings rows were sealed with must be configured here.
pub(super) fn check_key_ids(
    checks: &mut Vec<Check>,
    rows: Result<std::collections::BTreeMap<String, i64>, impl std::fmt::Display>,
    keys: &latchkey_settings::config::MasterKeys,
) {
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            checks.push(Check::fail(
                "database key ids: settings",
                error.to_string(),
                "check the database; `latchkey keys status` shows rows per key",
            ));
            return;
        }
    };
    let mut missing = false;
    for (id, count) in rows.iter().filter(|(id, _)| keys.get(id).is_none()) {
        missing = true;
        checks.push(Check::fail(
            format!("database key ids: settings: key `{id}`"),
            format!(
                "{count} stored setting(s) are sealed with master key `{id}`, which {} does not configure (configured: {})",
                ENCRYPTION_KEYS.env(),
                keys.ids().collect::<Vec<_>>().join(", ")
            ),
            format!(
                "add `{id}:<key>` to {} (after the active key) with the key that sealed them; `latchkey keys status` lists rows per key",
                ENCRYPTION_KEYS.env()
            ),
        ));
    }
    if !missing {
        let used: Vec<String> = rows.iter().map(|(id, n)| format!("{id}={n}")).collect();
        checks.push(Check::pass(
            "database key ids: settings",
            if used.is_empty() {
                "no stored settings yet".to_owned()
            } else {
                format!(
                    "every stored row's key is configured (rows per key: {})",
                    used.join(", ")
                )
            },
        ));
    }
}
