//! .env parse throughput on a generated 200-line file (plain, quoted, commented, multi-line).
//! Run: `cargo bench -p latchkey-settings --bench dotenv`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use latchkey_settings::dotenv::parse;
use std::hint::black_box;

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

fn dotenv(c: &mut Criterion) {
    let text = sample_file();
    assert!(parse(&text).is_ok());
    let mut group = c.benchmark_group("dotenv");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("parse_200_lines", |b| {
        b.iter(|| parse(black_box(&text)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, dotenv);
criterion_main!(benches);
