//! `GET|POST /attach/{namespace}/{pod}/{container}?stdin=&stdout=&stderr=&tty=`: the
//! running container's output, streamed over the remote command protocol until the
//! container exits, then its exit status (what `kubectl attach` and `kubectl run -it`
//! read).
//!
//! Output comes from the container's log, which the log shim writes whether anyone is
//! attached or not. `kubectl run -it` attaches a moment after the container starts; a
//! container runtime holds that first output in the terminal until the attach, so a
//! container that started less than [`REPLAY`] ago is streamed from its start, and an
//! older one from the moment of the attach. Local-mode containers have no stdin (it is
//! /dev/null, see `process::spawn`): input sent by the client is read and dropped.

use super::remotecommand::{self, Outcome, Process, Wanted};
use super::{logs::has_container, text, Body, Kubelet};
use crate::container_log::read::{self, LogOptions};
use chrono::{DateTime, Utc};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// Containers younger than this are streamed from their first line.
pub const REPLAY: Duration = Duration::from_secs(10);
/// How long the exit status may take to reach the pod's status after the output ends.
const STATUS_WAIT: Duration = Duration::from_secs(5);

fn container_status<'a>(pod: &'a Pod, container: &str) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    let st = pod.status.as_ref()?;
    st.container_statuses.iter().flatten().chain(st.init_container_statuses.iter().flatten()).find(|s| s.name == container)
}

/// When the running container started, from the pod's status.
fn started_at(pod: &Pod, container: &str) -> Option<DateTime<Utc>> {
    container_status(pod, container)?.state.as_ref()?.running.as_ref()?.started_at.as_ref().and_then(|t| to_chrono(t.0))
}

fn to_chrono(t: k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
}

/// The terminated state of the instance that started at `started` (or after it).
fn terminated(pod: &Pod, container: &str, started: Option<DateTime<Utc>>) -> Option<ContainerStateTerminated> {
    let s = container_status(pod, container)?;
    let t = s.state.as_ref()?.terminated.as_ref().or(s.last_state.as_ref()?.terminated.as_ref())?;
    let same = match (started, t.started_at.as_ref()) {
        (Some(a), Some(b)) => to_chrono(b.0).is_some_and(|b| b >= a),
        _ => true,
    };
    same.then(|| t.clone())
}

/// Where streaming starts: the container's start when it is young, else now.
pub fn replay_from(started: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match started {
        Some(s) if now.signed_duration_since(s).to_std().is_ok_and(|age| age < REPLAY) => s - chrono::Duration::seconds(1),
        _ => now,
    }
}

pub async fn handle(k: &Kubelet, ns: &str, name: &str, container: &str, mut req: Request<Incoming>) -> Response<Body> {
    let Some(pod) = k.pods.get(ns, name) else { return text(StatusCode::NOT_FOUND, "pod does not exist") };
    let opts = match super::exec::parse_streams(&super::query_pairs(req.uri().query())) {
        Ok(o) => o,
        Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
    };
    if !has_container(&pod, container) {
        return text(StatusCode::INTERNAL_SERVER_ERROR, format!("container not found ({container:?})"));
    }
    let Some(started) = started_at(&pod, container) else {
        return text(StatusCode::BAD_REQUEST, format!("container {container} in pod {ns}/{name} is not running: cannot attach to a container that is not running"));
    };
    let log = crate::process::container_dir(&k.pod_dir(&pod), container).join("log");
    let file = match std::fs::File::open(&log) {
        Ok(f) => f,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("opening the log of container {container} in pod {ns}/{name}: {e}")),
    };
    let up = match super::upgrade::accept(&mut req, "attach") {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let response = up.response();
    let (protocol, on_upgrade) = (up.protocol, up.on_upgrade);
    let since = replay_from(Some(started), Utc::now());
    let pods = k.pods.clone();
    let (ns, name, container) = (ns.to_string(), name.to_string(), container.to_string());
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(%e, "attach: the upgrade did not complete"),
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (reader, writer) = match tokio::net::UnixStream::pair() {
            Ok(p) => p,
            Err(e) => return tracing::warn!(%e, "attach: making a socket pair"),
        };
        let writer = match writer.into_std().and_then(|w| w.set_nonblocking(false).map(|()| w)) {
            Ok(w) => w,
            Err(e) => return tracing::warn!(%e, "attach: making a socket pair"),
        };
        // The log, followed until its writer (the shim) is gone, i.e. the container exited.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let follow = LogOptions { follow: true, since: Some(since), ..Default::default() };
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut w = writer;
            {
                let mut sink = |chunk: Vec<u8>| w.write_all(&chunk).is_ok();
                let mut idle = || {
                    std::thread::sleep(Duration::from_millis(50));
                    true
                };
                if let Err(e) = read::stream(file, &follow, &mut sink, &mut idle) {
                    tracing::warn!(%e, "attach: reading the container log");
                }
            }
            // The reader sees the end of the output before the exit status is looked up.
            drop(w);
            let _ = done_tx.send(());
        });
        let target = format!("{ns}/{name}/{container}");
        let exit = async move {
            let _ = done_rx.await;
            let deadline = tokio::time::Instant::now() + STATUS_WAIT;
            loop {
                if let Some(t) = pods.get(&ns, &name).and_then(|p| terminated(&p, &container, Some(started))) {
                    return Outcome::Exited(t.exit_code);
                }
                if tokio::time::Instant::now() >= deadline {
                    return Outcome::Failed(format!("container {container} in pod {ns}/{name}: its output ended but its exit status has not been reported"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        // stdin has nowhere to go: a sink that accepts and drops it keeps the client's
        // writes from blocking.
        let process = Process {
            stdin: opts.stdin.then(|| Box::pin(tokio::io::sink()) as _),
            stdout: (opts.stdout || opts.stderr).then(|| Box::pin(reader) as _),
            stderr: None,
            resize: None,
            exit: Box::pin(exit),
        };
        tracing::info!(container = %target, tty = opts.tty, "attach");
        remotecommand::run(ws, protocol, Wanted { stdout: opts.stdout || opts.stderr, stderr: false }, process, vec![]).await;
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn attach_options_need_a_stream_and_a_terminal_has_one_output() {
        let parse = |q| super::super::exec::parse_streams(&super::super::query_pairs(Some(q)));
        let o = parse("stdin=true&stdout=true&stderr=true&tty=true").unwrap();
        assert!(o.stdin && o.stdout && o.tty && !o.stderr);
        assert!(parse("tty=1").unwrap_err().contains("at least 1 of stdin"));
    }

    #[test]
    fn a_young_container_is_streamed_from_its_start_an_old_one_from_now() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let young = now - chrono::Duration::seconds(2);
        assert!(replay_from(Some(young), now) < young);
        let old = now - chrono::Duration::seconds(600);
        assert_eq!(replay_from(Some(old), now), now);
        assert_eq!(replay_from(None, now), now);
    }
}
