//! The `latchkey` binary as an operator runs it: a command with nothing inherited but `PATH`,
//! and `latchkey auth` started on a free port, waited for until it accepts connections.

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `latchkey ARGS` in `dir` with only `PATH` and `env` set, stdin closed.
pub fn latchkey(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Everything a finished command printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A running `latchkey auth`, killed when dropped.
pub struct RunningAuth {
    child: Child,
    pub addr: SocketAddr,
}

impl RunningAuth {
    /// `http://ADDR`, for a gRPC client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningAuth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Adds `auth` to `command` and starts it on a free port: Ok once it accepts connections (its
/// keys loaded), or Err with what it printed when it exits first.
pub fn start_auth(mut command: Command) -> Result<RunningAuth, String> {
    let addr = super::gateway::unused_addr();
    let mut child = command
        .arg("auth")
        .env("LATCHKEY_AUTH_LISTEN", addr.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start latchkey auth");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(RunningAuth { child, addr });
        }
        if child.try_wait().expect("poll auth").is_some() {
            return Err(text(&child.wait_with_output().expect("auth's output")));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("auth neither served nor exited within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
