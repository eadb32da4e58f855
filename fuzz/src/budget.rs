//! The per-input time budget: every input must be handled in under [`BUDGET`] of CPU time.
//!
//! Time is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time, so other processes
//! on a loaded machine do not count against an input. An input over the budget is run twice more
//! and fails only when the fastest of the three runs is still over it, so one preemption or page
//! fault cannot fail a run, while anything super-linear (the O(n²) quoted-value rescan of issue
//! 10, F1) fails every time. The slowest input is printed whenever it changes and once more when
//! the process exits; with `LATCHKEY_FUZZ_SLOWEST=<file>` it is also kept there for replay.

use std::sync::{Mutex, Once};
use std::time::Duration;

/// The most CPU time one input may take.
pub const BUDGET: Duration = Duration::from_millis(10);

/// The slowest input seen so far by this process.
struct Slowest {
    target: &'static str,
    time: Duration,
    len: usize,
    inputs: u64,
}

static SLOWEST: Mutex<Slowest> = Mutex::new(Slowest {
    target: "",
    time: Duration::ZERO,
    len: 0,
    inputs: 0,
});

static AT_EXIT: Once = Once::new();

/// Runs `check` on `input` within the budget; panics (a libFuzzer crash, with the input saved)
/// when the fastest of three runs takes longer than [`BUDGET`].
pub fn timed(target: &'static str, input: &[u8], check: impl Fn(&[u8])) {
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` with no captured state.
        unsafe { libc::atexit(report_at_exit) };
    });
    let mut time = cpu_time(|| check(input));
    if time > BUDGET {
        for _ in 0..2 {
            time = time.min(cpu_time(|| check(input)));
        }
        assert!(
            time <= BUDGET,
            "{target}: an input of {} bytes took {} µs of CPU time, over the {} µs budget (fastest of 3 runs)",
            input.len(),
            time.as_micros(),
            BUDGET.as_micros()
        );
    }
    record(target, time, input);
}

/// Counts the input and keeps it when it is the slowest so far.
fn record(target: &'static str, time: Duration, input: &[u8]) {
    let mut slowest = SLOWEST
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    slowest.inputs += 1;
    if time <= slowest.time {
        return;
    }
    slowest.target = target;
    slowest.time = time;
    slowest.len = input.len();
    eprintln!(
        "#slowest {target}: {} µs CPU, {} bytes",
        time.as_micros(),
        input.len()
    );
    if let Some(path) = std::env::var_os("LATCHKEY_FUZZ_SLOWEST") {
        let _ = std::fs::write(path, input);
    }
}

extern "C" fn report_at_exit() {
    let slowest = SLOWEST
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    eprintln!(
        "#budget {}: {} inputs, slowest {} µs CPU ({} bytes), budget {} µs",
        slowest.target,
        slowest.inputs,
        slowest.time.as_micros(),
        slowest.len,
        BUDGET.as_micros()
    );
}

/// The CPU time this thread spends in `work`.
fn cpu_time(work: impl FnOnce()) -> Duration {
    let start = thread_cpu_time();
    work();
    thread_cpu_time().saturating_sub(start)
}

fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant Linux provides.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "CLOCK_THREAD_CPUTIME_ID is unavailable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
