//! Configuration checks: each service's settings validated as the service would at start, and
//! one line for settings given under several names.

use super::check::Check;
use latchkey_common::config::{Config, ConfigProblem, Problems, SETTINGS, Source};

/// One ✘ per setting given under several names with different values (production refuses to
/// start on it, development warns), else one ✔ naming the aliases in use.
pub(super) fn check_names(config: &Config, checks: &mut Vec<Check>) {
    for conflict in config.conflicts() {
        checks.push(Check::fail(
            format!("config: names: {}", conflict.setting),
            conflict.what(),
            conflict.fix(),
        ));
    }
    if !config.conflicts().is_empty() {
        return;
    }
    let aliases: Vec<String> = SETTINGS
        .iter()
        .filter_map(|&spec| match config.source(spec) {
            Some(source @ Source::Alias(_)) => Some(format!("{source} read as {}", spec.env())),
            _ => None,
        })
        .collect();
    let detail = if aliases.is_empty() {
        "no setting is set under two names with different values".to_owned()
    } else {
        format!(
            "no setting is set under two names with different values; {}",
            aliases.join(", ")
        )
    };
    checks.push(Check::pass("config: names", detail));
}

/// Whether a configuration problem is a [`Conflict`](latchkey_common::aliases::Conflict),
/// already shown once by [`check_names`].
pub(super) fn is_conflict(config: &Config, problem: &ConfigProblem) -> bool {
    config
        .conflicts()
        .iter()
        .any(|c| c.setting == problem.variable && c.what() == problem.what)
}

pub(super) fn check_auth_config(
    config: &Config,
    checks: &mut Vec<Check>,
) -> Option<latchkey_auth::AuthConfig> {
    match latchkey_auth::AuthConfig::from_config(config) {
        Ok(auth) => {
            checks.push(Check::pass(
                "config: auth",
                format!(
                    "valid; sync secret fingerprint {}",
                    latchkey_common::secret::fingerprint_str(&auth.sync_secret)
                ),
            ));
            Some(auth)
        }
        Err(problems) => {
            push_problems(checks, config, "auth", problems);
            None
        }
    }
}

pub(super) fn check_settings_config(
    config: &Config,
    checks: &mut Vec<Check>,
) -> Option<latchkey_settings::SettingsConfig> {
    match latchkey_settings::SettingsConfig::from_config(config) {
        Ok(settings) => {
            let ids: Vec<&str> = settings.keys.ids().collect();
            checks.push(Check::pass(
                "config: settings",
                format!(
                    "valid; master keys {} (active {})",
                    ids.join(", "),
                    settings.keys.active().id
                ),
            ));
            checks.push(schema_check(&settings));
            Some(settings)
        }
        Err(problems) => {
            push_problems(checks, config, "settings", problems);
            None
        }
    }
}

/// The declared settings, valid (a broken schema is among the settings problems above).
fn schema_check(settings: &latchkey_settings::SettingsConfig) -> Check {
    let schema = &settings.schema;
    let count = |f: fn(&latchkey_settings::schema::Declared) -> bool| {
        schema.settings.values().filter(|d| f(d)).count()
    };
    let source = match &settings.schema_file {
        Some(path) => format!("; re-read from {} while settings runs", path.display()),
        None => String::new(),
    };
    Check::pass(
        "config: settings schema",
        format!(
            "valid; {} declared ({} required, {} generated), undeclared names {}{source}",
            schema.settings.len(),
            count(|d| d.required),
            count(|d| d.generate.is_some()),
            if schema.allow_undeclared {
                "allowed"
            } else {
                "refused"
            },
        ),
    )
}

pub(super) fn check_gateway_config(config: &Config, checks: &mut Vec<Check>) {
    match latchkey_gateway::GatewayConfig::from_config(config) {
        Ok(gateway) => checks.push(Check::pass(
            "config: gateway",
            format!(
                "valid; listens on {}, auth at {}, settings at {}",
                gateway.listen,
                gateway.auth_urls.join(","),
                gateway.settings_urls.join(",")
            ),
        )),
        Err(problems) => push_problems(checks, config, "gateway", problems),
    }
}

pub(super) fn push_problems(
    checks: &mut Vec<Check>,
    config: &Config,
    service: &str,
    problems: Problems,
) {
    for problem in problems.0.into_iter().filter(|p| !is_conflict(config, p)) {
        checks.push(Check::fail(
            format!("config: {service}: {}", problem.variable),
            problem.what,
            problem.fix,
        ));
    }
}
