//! What the table renders for people: the lines `latchkey config` prints and the README's
//! configuration table (a test keeps the README in step).

use super::table::{SETTINGS, SettingSpec};

/// One setting as `latchkey config` lists it: variable, file key, default, flags, services and
/// help on a second line.
pub fn describe(spec: &SettingSpec) -> String {
    let services: Vec<&str> = spec.services.iter().map(|s| s.as_str()).collect();
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
        if spec.required_by.is_empty() {
            ""
        } else {
            " required"
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
