//! The `latchkey` binary: loads configuration, starts telemetry and hands over to the service
//! crates. Nothing of a service's domain lives here.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(cli::run(args))
}
