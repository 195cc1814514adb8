//! `GET|POST /exec/{namespace}/{pod}/{container}?command=...&stdin=&stdout=&stderr=&tty=`:
//! runs a command inside a running container (its namespaces and environment, see
//! `process::command_in`) and streams it over a WebSocket with the remote command
//! protocol. The command starts once the upgrade is done and is killed if the client
//! goes away first.

use super::remotecommand::{self, Outcome, Process, Wanted};
use super::{logs::has_container, pty, text, Body, Kubelet};
use crate::exec_program;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::process::Stdio;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

#[derive(Debug, Default, PartialEq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// PodExecOptions from the query, checked as the kubelet checks them.
pub fn parse_query(pairs: &[(String, String)]) -> Result<ExecOptions, String> {
    let mut o = parse_streams(pairs)?;
    o.command = pairs.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
    if o.command.is_empty() {
        return Err("you must specify at least 1 command".into());
    }
    Ok(o)
}

/// The streams of an exec or attach (stdin, stdout, stderr, tty), checked as the
/// kubelet checks them; `command` is left empty.
pub fn parse_streams(pairs: &[(String, String)]) -> Result<ExecOptions, String> {
    let mut o = ExecOptions::default();
    let on = |v: &str| matches!(v, "1" | "true" | "True");
    for (k, v) in pairs {
        match k.as_str() {
            "input" | "stdin" => o.stdin = on(v),
            "output" | "stdout" => o.stdout = on(v),
            "error" | "stderr" => o.stderr = on(v),
            "tty" => o.tty = on(v),
            _ => {}
        }
    }
    if !o.stdin && !o.stdout && !o.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    // A terminal has one output stream.
    if o.tty {
        o.stderr = false;
    }
    Ok(o)
}

pub async fn handle(k: &Kubelet, ns: &str, name: &str, container: &str, mut req: Request<Incoming>) -> Response<Body> {
    let Some(pod) = k.pods.get(ns, name) else { return text(StatusCode::NOT_FOUND, "pod does not exist") };
    let opts = match parse_query(&super::query_pairs(req.uri().query())) {
        Ok(o) => o,
        Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
    };
    let not_found = || text(StatusCode::INTERNAL_SERVER_ERROR, format!("container not found ({container:?})"));
    if !has_container(&pod, container) {
        return not_found();
    }
    let cdir = crate::process::container_dir(&k.pod_dir(&pod), container);
    let Some(pid) = std::fs::read_to_string(cdir.join("pid")).ok().and_then(|s| s.trim().parse::<u32>().ok()) else { return not_found() };
    let image = pod.spec.iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten())).find(|c| c.name == container).and_then(|c| c.image.clone()).unwrap_or_default();
    // The program is found (or not) now; a missing one is reported after the upgrade,
    // on the error channel, as the container runtime does.
    let applets = tokio::task::spawn_blocking(exec_program::host_applets).await.unwrap_or_default();
    let program = exec_program::resolve(&image, &opts.command, &crate::image::RealHost, &|a| applets.iter().any(|x| x == a));
    let cmd = match &program {
        Ok(p) => match crate::process::command_in(pid, &p.path.to_string_lossy(), &p.args) {
            Ok(c) => Some(c),
            // The container's process is gone (it just exited).
            Err(_) => return not_found(),
        },
        Err(_) => None,
    };

    let up = match super::upgrade::accept(&mut req, "exec") {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let response = up.response();
    let (protocol, on_upgrade) = (up.protocol, up.on_upgrade);
    let command = opts.command.clone();
    let pod_name = format!("{ns}/{name}");
    let container = container.to_string();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(%e, "exec: the upgrade did not complete"),
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let wanted = Wanted { stdout: opts.stdout, stderr: opts.stderr };
        let process = match (cmd, program) {
            (Some(cmd), _) => start(cmd, &opts),
            (None, Err(why)) => Err(why),
            (None, Ok(_)) => unreachable!("a resolved program always has a command"),
        };
        let process = process.unwrap_or_else(failed);
        tracing::info!(pod = %pod_name, %container, command = ?command, tty = opts.tty, "exec");
        remotecommand::run(ws, protocol, wanted, process, command).await;
    });
    response
}

/// A process that could not start: the session reports why and ends.
fn failed(why: String) -> Process {
    Process { stdin: None, stdout: None, stderr: None, resize: None, exit: Box::pin(async move { Outcome::Failed(why) }) }
}

fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => Outcome::Exited(s.code().or_else(|| s.signal().map(|sig| 128 + sig)).unwrap_or(-1)),
        Err(e) => Outcome::Failed(format!("waiting for the command: {e}")),
    }
}

/// Starts the command with pipes, or on a terminal.
fn start(mut cmd: tokio::process::Command, o: &ExecOptions) -> Result<Process, String> {
    if o.tty {
        let (master, slave) = pty::open().map_err(|e| format!("allocating a terminal: {e}"))?;
        let dup = |fd: &std::os::fd::OwnedFd| fd.try_clone().map_err(|e| format!("allocating a terminal: {e}"));
        cmd.stdin(Stdio::from(dup(&slave)?)).stdout(Stdio::from(dup(&slave)?)).stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(pty::take_controlling_terminal);
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error(e, &o.command))?;
        // The Command (and its copies of the slave) is dropped here: once the command
        // and its children exit, the master reads end of file.
        drop(cmd);
        let resizer = master.clone();
        return Ok(Process {
            stdin: o.stdin.then(|| Box::pin(master.clone()) as _),
            stdout: Some(Box::pin(master)),
            stderr: None,
            resize: Some(Box::new(move |w, h| resizer.resize(w, h))),
            exit: Box::pin(async move { exit_code(child.wait().await) }),
        });
    }
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(pipe(o.stdin)).stdout(pipe(o.stdout)).stderr(pipe(o.stderr));
    let mut child = cmd.spawn().map_err(|e| spawn_error(e, &o.command))?;
    Ok(Process {
        stdin: child.stdin.take().map(|w| Box::pin(w) as _),
        stdout: child.stdout.take().map(|r| Box::pin(r) as _),
        stderr: child.stderr.take().map(|r| Box::pin(r) as _),
        resize: None,
        exit: Box::pin(async move { exit_code(child.wait().await) }),
    })
}

fn spawn_error(e: std::io::Error, command: &[String]) -> String {
    let first = command.first().map(String::as_str).unwrap_or_default();
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("exec: {first:?}: executable file not found in $PATH"),
        std::io::ErrorKind::PermissionDenied => format!("exec: {first:?}: permission denied"),
        _ => format!("exec: {first:?}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_options_keep_every_command_word_and_need_a_stream() {
        let q = super::super::query_pairs(Some("command=sh&command=-c&command=echo+%24HOSTNAME&stdout=true&stderr=true&tty=true"));
        let o = parse_query(&q).unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo $HOSTNAME"]);
        // A terminal merges stderr into stdout.
        assert!(o.stdout && o.tty && !o.stderr);
        assert!(parse_query(&super::super::query_pairs(Some("command=ls"))).unwrap_err().contains("at least 1 of stdin"));
        assert!(parse_query(&super::super::query_pairs(Some("stdout=1"))).unwrap_err().contains("at least 1 command"));
    }
}
