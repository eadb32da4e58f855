//! Test configs as the services read them: the real loader over an environment that holds only
//! a test's overrides, so every other value is the settings table's default, then each service's
//! own `from_config`. A default changed in the table reaches the tests with no copy to update.

use latchkey_common::config::Config;

/// The loader's view of an environment holding only `overrides` (`LATCHKEY_*` name, value).
pub fn loaded<const N: usize>(overrides: [(String, String); N]) -> Config {
    Config::from_env_map(overrides.into_iter().collect())
}

/// A service config's `from_config` answer, or a panic naming every problem.
pub fn valid<T, E: std::fmt::Display>(service: &str, built: Result<T, E>) -> T {
    built.unwrap_or_else(|problems| panic!("the test {service} config is refused: {problems}"))
}
