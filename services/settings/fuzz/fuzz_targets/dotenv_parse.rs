//! Fuzzes the .env parser: it must never panic, and whatever it accepts must survive
//! write → parse unchanged. Run: `cargo +nightly fuzz run dotenv_parse` in services/settings.
#![no_main]

use latchkey_settings::dotenv::{parse, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse(text) else { return };
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
