//! Fuzzes the .env parser: it must never panic, and whatever it accepts (within the value limit)
//! must survive write → parse unchanged. Run in services/settings with a per-input time budget:
//! `cargo +nightly fuzz run dotenv_parse -- -timeout=1 -max_total_time=120`.
#![no_main]

use latchkey_settings::dotenv::{DEFAULT_MAX_VALUE_BYTES, parse, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse(text) else { return };
    // An unquoted value may exceed the limit (the service refuses it after parsing); written
    // back, it would be quoted, and a quoted value stops at the limit.
    if parsed
        .entries
        .iter()
        .any(|e| e.value.len() > DEFAULT_MAX_VALUE_BYTES)
    {
        return;
    }
    let written = write(
        parsed
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str())),
    );
    let again = parse(&written).expect("what write produces parses");
    let before: Vec<(&str, &str)> = parsed
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    let after: Vec<(&str, &str)> = again
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(before, after);
});
