//! Validators several services share: listen addresses, lists of upstream URLs and database
//! URLs, each recording one problem per mistake under the setting's variable.

use super::loader::Config;
use super::problems::Problems;
use super::table::{DATABASE_URL, Setting};
use crate::db::DbKind;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;

/// The address a server binds, e.g. `LATCHKEY_AUTH_LISTEN`.
pub fn listen_address(
    config: &Config,
    setting: Setting<SocketAddr>,
    problems: &mut Problems,
) -> Option<SocketAddr> {
    let example = setting.spec().default.unwrap_or("127.0.0.1:8080");
    let expected = format!("a socket address like {example}");
    config.parsed(setting, &expected, problems)
}

/// A comma-separated list of `http(s)://HOST:PORT` addresses of one upstream (several are
/// balanced); `example` shows the form in the fix.
pub fn upstream_urls(
    config: &Config,
    setting: Setting<String>,
    example: &str,
    problems: &mut Problems,
) -> Vec<String> {
    let env = setting.env();
    let Some(text) = config.get(setting) else {
        problems.push(
            &env,
            "is not set",
            format!("set {env} to the service's gRPC address, e.g. {example}"),
        );
        return Vec::new();
    };
    let list: Vec<String> = text
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    if list.is_empty() {
        problems.push(&env, "is empty", format!("set {env} to http://HOST:PORT"));
    }
    for url in list.iter().filter(|url| !is_http_url(url)) {
        problems.push(
            &env,
            format!("`{url}` is not an http(s)://HOST:PORT address"),
            format!("set {env} to addresses like {example}, comma-separated"),
        );
    }
    list
}

/// Whether `url` is an absolute `http://` or `https://` URI.
fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.parse::<http::Uri>().is_ok()
}

/// `LATCHKEY_DATABASE_URL`: SQLite or PostgreSQL, and not SQLite in production.
pub fn database_url(config: &Config, problems: &mut Problems) -> SecretString {
    let url = config
        .secret(DATABASE_URL)
        .unwrap_or_else(|| SecretString::from(String::new()));
    let env = DATABASE_URL.env();
    match DbKind::of(url.expose_secret()) {
        None => problems.push(
            env,
            "is neither sqlite:// nor postgres://",
            "set sqlite://PATH?mode=rwc or postgres://USER@HOST/DB",
        ),
        Some(DbKind::Sqlite) if config.is_production() => problems.push(
            env,
            "points at SQLite, which production refuses (one file, one machine)",
            format!(
                "set postgres://USER:PASS@HOST/DB, or {}=development",
                super::table::ENV.env()
            ),
        ),
        Some(_) => {}
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AUTH_URL, GATEWAY_LISTEN};
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_env_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn upstream_urls_are_trimmed_and_each_bad_one_named() {
        let mut problems = Problems::default();
        let config = config(&[("LATCHKEY_AUTH_URL", "http://a:1/, https://b:2 ,grpc://c:3")]);
        let urls = upstream_urls(&config, AUTH_URL, "http://127.0.0.1:50051", &mut problems);
        assert_eq!(urls, ["http://a:1", "https://b:2", "grpc://c:3"]);
        let [problem] = problems.0.as_slice() else {
            panic!("one problem: {problems}");
        };
        assert_eq!(problem.variable, "LATCHKEY_AUTH_URL");
        assert!(problem.what.contains("`grpc://c:3`"), "{problem}");
    }

    #[test]
    fn a_listen_address_shows_the_tables_default_as_the_example() {
        let mut problems = Problems::default();
        let config = config(&[("LATCHKEY_GATEWAY_LISTEN", "everywhere")]);
        assert_eq!(listen_address(&config, GATEWAY_LISTEN, &mut problems), None);
        assert!(
            problems.to_string().contains(
                "LATCHKEY_GATEWAY_LISTEN: `everywhere` is not a socket address like 127.0.0.1:8080"
            ),
            "{problems}"
        );
    }

    #[test]
    fn production_refuses_a_sqlite_database_url() {
        let mut problems = Problems::default();
        database_url(&config(&[("LATCHKEY_ENV", "production")]), &mut problems);
        assert!(
            problems
                .to_string()
                .contains("LATCHKEY_DATABASE_URL: points at SQLite"),
            "{problems}"
        );
        let mut problems = Problems::default();
        database_url(
            &config(&[("LATCHKEY_DATABASE_URL", "mysql://x")]),
            &mut problems,
        );
        assert!(
            problems
                .to_string()
                .contains("is neither sqlite:// nor postgres://")
        );
    }
}
