//! The checklist's model: one [`Check`] per line, ✔ with a detail or ✘ with a cause and a fix,
//! printed for people or serialised with `--json`.

use serde::Serialize;

/// One line of the checklist.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(super) fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            cause: None,
            fix: None,
        }
    }

    pub(super) fn fail(
        name: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: String::new(),
            cause: Some(cause.into()),
            fix: Some(fix.into()),
        }
    }
}

pub(super) fn print_checklist(checks: &[Check]) {
    for check in checks {
        if check.ok {
            println!("✔ {}: {}", check.name, check.detail);
        } else {
            println!("✘ {}", check.name);
            if let Some(cause) = &check.cause {
                println!("    cause: {cause}");
            }
            if let Some(fix) = &check.fix {
                println!("    fix:   {fix}");
            }
        }
    }
}

/// Every service reached runs this doctor's release; a mix means a rollout stopped halfway.
pub(super) fn check_versions(checks: &mut Vec<Check>, versions: &[(String, String)]) {
    let ours = latchkey_common::telemetry::VERSION;
    let listed = versions
        .iter()
        .map(|(name, version)| format!("{name} {version}"))
        .collect::<Vec<_>>()
        .join(", ");
    if versions.iter().all(|(_, version)| version == ours) {
        checks.push(Check::pass(
            "versions",
            format!("{listed} (this doctor {ours})"),
        ));
    } else {
        checks.push(Check::fail(
            "versions",
            format!("the services run different releases: {listed}; this doctor is {ours}"),
            "finish the rollout: run the same image (or binary) for every service",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_stopped_halfway_is_a_failed_versions_check() {
        let ours = latchkey_common::telemetry::VERSION.to_owned();
        let mut checks = Vec::new();
        check_versions(
            &mut checks,
            &[
                ("auth".into(), ours.clone()),
                ("settings".into(), "0.0.9".into()),
            ],
        );
        let json = serde_json::to_value(&checks[0]).unwrap();
        assert_eq!(json["ok"], false, "{json}");
        assert!(
            json["cause"].as_str().unwrap().contains("settings 0.0.9"),
            "{json}"
        );
        assert!(
            json["fix"].as_str().unwrap().contains("same image"),
            "{json}"
        );
        checks.clear();
        check_versions(&mut checks, &[("auth".into(), ours)]);
        assert_eq!(serde_json::to_value(&checks[0]).unwrap()["ok"], true);
    }
}
