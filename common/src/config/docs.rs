//! What the table renders for people: the lines `latchkey config` prints and the README's
//! configuration table (a test keeps the README in step).

use super::table::{SETTINGS, SettingSpec};

/// One setting as `latchkey config` lists it: variable, file key, default, flags (secret, which
/// services refuse to start without it), the services reading it, and help on a second line.
pub fn describe(spec: &SettingSpec) -> String {
    let services: Vec<&str> = spec.services.iter().map(|s| s.as_str()).collect();
    let required_by: Vec<&str> = spec.required_by.iter().map(|s| s.as_str()).collect();
    format!(
        "{:<34} file key {:<26} default {:<40} {}{} [{}]\n    {}",
        spec.env(),
        spec.key,
        spec.default.unwrap_or("-"),
        if spec.secret {
            "secret (…_FILE accepted)"
        } else {
            ""
        },
        if required_by.is_empty() {
            String::new()
        } else {
            format!(" required by {}", required_by.join(","))
        },
        services.join(","),
        spec.help
    )
}

/// The README's configuration table, generated from [`SETTINGS`] (a test keeps them in step).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| variable | file key | default | secret | services (required by) | what it is |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for spec in SETTINGS {
        let services: Vec<String> = spec
            .services
            .iter()
            .map(|s| {
                if spec.required_by.contains(s) {
                    format!("**{}**", s.as_str())
                } else {
                    s.as_str().to_owned()
                }
            })
            .collect();
        let aliases = if spec.aliases.is_empty() {
            String::new()
        } else {
            format!(" Also read from `{}`.", spec.aliases.join("`, `"))
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} | {}{} |\n",
            spec.env(),
            spec.key,
            spec.default
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "—".into()),
            if spec.secret {
                "yes (`_FILE` too)"
            } else {
                "no"
            },
            services.join(", "),
            spec.help.replace('|', "\\|"),
            aliases
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::{SEAL_KEY, SETTINGS_URL};

    #[test]
    fn describe_names_only_the_services_that_require_a_setting() {
        let line = super::describe(SETTINGS_URL.spec());
        assert!(
            line.contains(" required by gateway [auth,gateway]"),
            "{line}"
        );
        let line = super::describe(SEAL_KEY.spec());
        assert!(line.contains(" required by auth [auth]"), "{line}");
    }

    #[test]
    fn readme_configuration_table_matches_the_settings_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let start = readme
            .find("<!-- config-table:start -->\n")
            .expect("start marker")
            + "<!-- config-table:start -->\n".len();
        let end = readme
            .find("<!-- config-table:end -->")
            .expect("end marker");
        assert_eq!(
            &readme[start..end],
            super::markdown_table(),
            "README's configuration table is stale: run `cargo run -- config --markdown` and paste it between the markers"
        );
    }
}
