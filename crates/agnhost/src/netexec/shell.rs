//! `/shell`: `/bin/sh -c <cmd>` with stdout and stderr combined, reported as
//! Go's exec.Cmd.CombinedOutput would be: {"output": ..., "error": ...}.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

const SHELL: &str = "/bin/sh";

pub async fn run(cmd: String) -> BTreeMap<&'static str, String> {
    let result = tokio::task::spawn_blocking(move || combined_output(&cmd)).await;
    let (out, err) = match result {
        Ok(r) => r,
        Err(e) => (Vec::new(), Some(format!("shell task failed: {e}"))),
    };
    let mut map = BTreeMap::new();
    if !out.is_empty() {
        map.insert("output", String::from_utf8_lossy(&out).into_owned());
    }
    if let Some(e) = err {
        map.insert("error", e);
    }
    map
}

/// Runs the command with one pipe for both stdout and stderr, so their
/// interleaving is kept; waits for the pipe to close and the shell to exit.
fn combined_output(cmd: &str) -> (Vec<u8>, Option<String>) {
    let (mut reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return (Vec::new(), Some(format!("pipe: {e}"))),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return (Vec::new(), Some(format!("pipe: {e}"))),
    };
    let mut command = Command::new(SHELL);
    command.arg("-c").arg(cmd).stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let spawned = command.spawn();
    // The Command holds the pipe's write ends; drop them or the read never ends.
    drop(command);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return (Vec::new(), Some(format!("fork/exec {SHELL}: {}", crate::go_errors::errno_text(&e)))),
    };
    let mut out = Vec::new();
    let read_err = reader.read_to_end(&mut out).err();
    let status = child.wait();
    let err = match (status, read_err) {
        (Ok(s), _) if !s.success() => Some(exit_text(s)),
        (Err(e), _) => Some(format!("wait: {e}")),
        (Ok(_), Some(e)) => Some(format!("read |0: {e}")),
        _ => None,
    };
    (out, err)
}

/// Go's os.ProcessState.String: "exit status 3", "signal: killed".
fn exit_text(s: ExitStatus) -> String {
    if let Some(code) = s.code() {
        return format!("exit status {code}");
    }
    let sig = s.signal().unwrap_or(0);
    let name = match sig {
        1 => "hangup".to_string(),
        2 => "interrupt".to_string(),
        3 => "quit".to_string(),
        6 => "aborted".to_string(),
        9 => "killed".to_string(),
        11 => "segmentation fault".to_string(),
        13 => "broken pipe".to_string(),
        15 => "terminated".to_string(),
        n => format!("signal {n}"),
    };
    let core = if s.core_dumped() { " (core dumped)" } else { "" };
    format!("signal: {name}{core}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_failure_are_reported_like_go() {
        let (out, err) = combined_output("echo out; echo err >&2; exit 3");
        assert_eq!(String::from_utf8_lossy(&out), "out\nerr\n");
        assert_eq!(err.as_deref(), Some("exit status 3"));
        let (_, err) = combined_output("kill -9 $$");
        assert_eq!(err.as_deref(), Some("signal: killed"));
        let (out, err) = combined_output("true");
        assert!(out.is_empty() && err.is_none());
    }
}
