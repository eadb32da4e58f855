//! The clients written outside Rust, run by the README's one test command against this build's
//! `latchkey` binary: `@latchkey/client`'s node tests (SQLite and PostgreSQL), the Next.js
//! example's build and its browser test in Debian's Chromium, the Python interop check (a
//! stock gRPC client through reflection, PyJWT against the JWKS), and EdDSA and ES256 tokens
//! verified by jose (Web Crypto) and PyJWT against the gateway's JWKS.
//!
//! Each needs what `.ci/run` installs first (`npm ci` from the committed lockfiles, Chromium, the
//! Python packages). Without them a test is skipped with a message saying what to install —
//! except with `CI=true`, where it fails. They run one at a time: each starts its own services
//! and the browser test is heavy on a 2-core machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One outside suite at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a missing prerequisite must fail the run rather than skip it.
fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (or, on CI, fails) when `missing` names something that is not installed.
fn prerequisites_met(suite: &str, missing: Option<String>) -> bool {
    let Some(missing) = missing else { return true };
    assert!(!on_ci(), "CI=true but {suite} cannot run: {missing}");
    eprintln!("skipped {suite}: {missing}");
    false
}

fn command_exists(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// What is missing for an npm project at `dir` (node, npm, its `node_modules`), if anything.
fn npm_project_missing(dir: &Path) -> Option<String> {
    if !command_exists("npm") {
        return Some("npm is not installed (Node 20+)".to_owned());
    }
    (!dir.join("node_modules").is_dir()).then(|| format!("run `npm ci` in {} first", dir.display()))
}

/// Runs `program args` in `dir` with this build's binary as `LATCHKEY_BIN`; fails on a non-zero exit.
fn run(dir: &Path, program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LATCHKEY_BIN", env!("CARGO_BIN_EXE_latchkey"))
        .env("NEXT_TELEMETRY_DISABLED", "1")
        .status()
        .unwrap_or_else(|err| panic!("cannot start {program}: {err}"));
    assert!(
        status.success(),
        "`{program} {}` in {} failed: {status}",
        args.join(" "),
        dir.display()
    );
}

#[test]
fn javascript_client_passes_its_node_tests() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = root().join("clients/js");
    if prerequisites_met("the @latchkey/client tests", npm_project_missing(&dir)) {
        run(&dir, "npm", &["test"]);
    }
}

#[test]
fn nextjs_example_builds_and_passes_its_browser_test() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = root().join("examples/nextjs");
    let missing = npm_project_missing(&dir).or_else(|| {
        (!Path::new("/usr/bin/chromium").exists()).then(|| {
            "Chromium is missing: `apt-get install chromium` (or run .ci/install-browser)"
                .to_owned()
        })
    });
    if prerequisites_met("the Next.js browser test", missing) {
        run(&dir, "npm", &["run", "build"]);
        run(&dir, "npm", &["run", "test:browser"]);
    }
}

#[test]
fn stock_grpc_client_and_pyjwt_interoperate() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let modules = "import grpc, grpc_reflection, jwt, cryptography, google.protobuf";
    let installed = Command::new("python3")
        .args(["-c", modules])
        .output()
        .is_ok_and(|output| output.status.success());
    let missing = (!installed).then(|| {
        "the Python packages are missing: `python3 -m pip install -r tests/interop/requirements.txt`"
            .to_owned()
    });
    if prerequisites_met("the Python interop check", missing) {
        run(&root(), "tests/interop/run.sh", &[]);
    }
}

#[test]
fn jose_and_pyjwt_verify_eddsa_and_es256_tokens() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = root().join("tests/interop/jose");
    if prerequisites_met("the jose/PyJWT algorithm check", npm_project_missing(&dir)) {
        run(&dir, "npm", &["test"]);
    }
}
