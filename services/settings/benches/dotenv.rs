//! .env parse cost: a generated 200-line file (plain, quoted, commented, multi-line), and the
//! pathological inputs an outside probe sent (`A="` then newlines up to the 256 KiB body limit;
//! 30,000 lines setting one name; 15,000 names set twice), which must cost time linear in their
//! size.
//! Run: `cargo bench -p latchkey-settings --bench dotenv`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latchkey_settings::dotenv::parse;
use std::hint::black_box;

const BODY_LIMIT: usize = 256 * 1024;

fn sample_file() -> String {
    let mut text = String::new();
    for i in 0..200 {
        match i % 5 {
            0 => text.push_str(&format!("# section {i}\n")),
            1 => text.push_str(&format!("export API_KEY_{i}=sk-live-{i:040}\n")),
            2 => text.push_str(&format!(
                "QUOTED_{i}=\"value with spaces and \\n escapes {i}\" # note\n"
            )),
            3 => text.push_str(&format!("SINGLE_{i}='literal $NOT_EXPANDED {i}'\n")),
            _ => text.push_str(&format!(
                "PEM_{i}=\"-----BEGIN KEY-----\nMIIB{i:060}\n-----END KEY-----\"\n"
            )),
        }
    }
    text
}

/// `A="` and then line breaks up to the body limit: the quote is never closed.
fn unterminated_quote() -> String {
    format!("A=\"{}", "\n".repeat(BODY_LIMIT - 3))
}

/// One name set 30,000 times.
fn duplicates() -> String {
    (0..30_000).map(|i| format!("A={i}\n")).collect()
}

/// 15,000 names, each set twice: every second line is a duplicate of an entry far back.
fn names_set_twice() -> String {
    let names: String = (0..15_000).map(|i| format!("K{i}=v\n")).collect();
    format!("{names}{names}")
}

/// Bare lines up to the body limit: every one is an error (an unquoted certificate, pasted).
fn all_bad_lines() -> String {
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n".repeat(BODY_LIMIT / 33)
}

/// A 16 KiB quoted value closed on the last line, many times.
fn long_quoted_values() -> String {
    let value = "x".repeat(63);
    let one = format!("K=\"{}\"\n", format!("{value}\n").repeat(255));
    one.repeat(BODY_LIMIT / one.len())
}

fn dotenv(c: &mut Criterion) {
    let mut group = c.benchmark_group("dotenv");
    let cases: [(&str, String, bool); 6] = [
        ("parse_200_lines", sample_file(), true),
        (
            "unterminated_quote_256k_newlines",
            unterminated_quote(),
            false,
        ),
        ("duplicates_30k_lines", duplicates(), true),
        ("names_15k_set_twice", names_set_twice(), true),
        ("bad_lines_256k", all_bad_lines(), false),
        ("quoted_16k_values_256k", long_quoted_values(), true),
    ];
    for (name, text, parses) in cases {
        assert_eq!(parse(&text).is_ok(), parses, "{name}");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse(black_box(&text)).is_ok()));
    }
    group.finish();
}

criterion_group!(benches, dotenv);
criterion_main!(benches);
