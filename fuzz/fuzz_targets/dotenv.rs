//! The settings `.env` parser, as an import runs it and on its own: it must never panic, each
//! input must be handled within the time budget (`latchkey_fuzz::budget`), the service's checks
//! must answer only "imported" or "invalid", and whatever the parser accepts (within the value
//! limit) must survive write → parse unchanged.
#![no_main]

use latchkey_fuzz::budget;
use latchkey_settings::dotenv::{DEFAULT_MAX_VALUE_BYTES, parse, write};
use latchkey_settings::error::SettingsError;
use latchkey_settings::import::parse_checked;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    budget::timed("dotenv", data, check);
});

fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match parse_checked(&text, &|| false) {
        Ok(_) | Err(SettingsError::Invalid(..)) => {}
        Err(other) => panic!("an import's parse answered neither ok nor invalid: {other}"),
    }
    round_trip(&text);
}

/// What parses is written back and parsed again to the same entries.
fn round_trip(text: &str) {
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
    let pairs: Vec<(&str, &str)> = parsed
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    let written = write(pairs.iter().copied());
    let again = parse(&written).expect("what write produces parses");
    let after: Vec<(&str, &str)> = again
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(pairs, after);
}
