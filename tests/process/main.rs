//! Tests that need a process of their own: they install the one global tracing subscriber
//! (`support::logs`) to read every log line at DEBUG and every span. In the e2e binary that
//! subscriber would capture, and slow, every other test; here its three users share it: the
//! log tests read all lines (a secret must appear in none), the trace tests pick their spans by
//! trace id.

#[macro_use]
#[path = "../e2e/support/mod.rs"]
mod support;

mod auth_logs;
mod declared_logs;
mod settings_logs;
mod trace_propagation;
