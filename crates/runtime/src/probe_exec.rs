//! exec probes and exec lifecycle hooks: a command inside the running container's
//! namespaces (`process::command_in`), its own process group so that a timeout kills
//! everything it started; exit 0 is success. Output (stdout and stderr together, the
//! first 10 KiB) is the failure message, as upstream.

use crate::probe::Outcome;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const MAX_OUTPUT: usize = 10 * 1024;

/// Runs `command` in the container whose main process is `pid`. `timeout` None waits
/// as long as it takes (lifecycle hooks are bounded by their caller).
pub async fn exec(pid: u32, command: &[String], timeout: Option<Duration>) -> Outcome {
    let Some((program, args)) = command.split_first() else { return Outcome::Error("exec: empty command".into()) };
    let quoted = command.join(" ");
    let mut cmd = match crate::process::command_in(pid, program, args) {
        Ok(c) => c,
        Err(e) => return Outcome::Error(format!("exec {quoted:?} in the container: {e}")),
    };
    let (reader, writer) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => return Outcome::Error(format!("exec {quoted:?}: pipe: {e}")),
    };
    let stdio = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
    let (Ok(out), Ok(err)) = (stdio(&writer), stdio(&writer)) else { return Outcome::Error(format!("exec {quoted:?}: dup")) };
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Error(format!("exec {quoted:?} in the container: {e}")),
    };
    drop(cmd);
    drop(writer);
    let pgid = child.id().map(|p| p as i32);
    let read = async {
        let mut buf = Vec::new();
        if let Ok(mut r) = tokio::net::unix::pipe::Receiver::from_file(std::fs::File::from(reader)) {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                if buf.len() < MAX_OUTPUT {
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        buf.truncate(MAX_OUTPUT);
        let status = child.wait().await;
        (status, buf)
    };
    let outcome = match timeout {
        Some(t) => tokio::time::timeout(t, read).await.ok(),
        None => Some(read.await),
    };
    // The group goes in every case: whatever the command left running, or all of it
    // on a timeout.
    if let Some(pg) = pgid {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pg), nix::sys::signal::Signal::SIGKILL);
    }
    match outcome {
        None => Outcome::Failure(format!("command {quoted:?} timed out")),
        Some((Ok(status), out)) if status.success() => {
            let _ = out;
            Outcome::Success
        }
        Some((Ok(status), out)) => {
            let text = String::from_utf8_lossy(&out).trim_end().to_string();
            if text.is_empty() {
                use std::os::unix::process::ExitStatusExt;
                let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(-1);
                Outcome::Failure(format!("command {quoted:?} exited with code {code}"))
            } else {
                Outcome::Failure(text)
            }
        }
        Some((Err(e), _)) => Outcome::Error(format!("exec {quoted:?}: {e}")),
    }
}
