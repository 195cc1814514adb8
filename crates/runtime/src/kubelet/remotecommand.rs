//! The Kubernetes remote command protocol over WebSocket (`v5.channel.k8s.io`, and
//! `v4.channel.k8s.io` for older clients), the server side: each binary message is a
//! channel byte and data. 0 stdin, 1 stdout, 2 stderr, 3 the final `Status`, 4 terminal
//! resize (`{"Width":80,"Height":24}`), and in v5 `[255, n]` closes the client's
//! channel n (stdin's end of file). The session knows nothing of how the process runs.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V4,
    V5,
}

impl super::upgrade::Subprotocol for Protocol {
    fn supported() -> Vec<Protocol> {
        vec![Protocol::V5, Protocol::V4]
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V5 => "v5.channel.k8s.io",
        }
    }
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Exited(i32),
    /// It could not run (e.g. no such program).
    Failed(String),
}

/// The final `Status` on the error channel, as the kubelet's streaming server writes
/// it: kubectl exits with the code in `details.causes[ExitCode]`.
pub fn status(outcome: &Outcome, command: &[String]) -> Value {
    match outcome {
        Outcome::Exited(0) => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => json!({
            "metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", command.join(" ")),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(why) => {
            let msg = format!("error executing command in container: {why}");
            json!({
                "metadata": {}, "status": "Failure",
                "message": format!("Internal error occurred: {msg}"),
                "reason": "InternalError",
                "details": {"causes": [{"message": msg}]},
                "code": 500,
            })
        }
    }
}

/// A running command's side of the session.
pub struct Process {
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pub stdout: Option<Pin<Box<dyn AsyncRead + Send>>>,
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// Applies a terminal size (columns, rows).
    pub resize: Option<Box<dyn Fn(u16, u16) + Send + Sync>>,
    /// Resolves when the command exits; dropping it before kills the command.
    pub exit: Pin<Box<dyn Future<Output = Outcome> + Send>>,
}

/// What the client asked to get: the first of these channels gets an empty message
/// at once, which tells the client that the streams are up.
pub struct Wanted {
    pub stdout: bool,
    pub stderr: bool,
}

/// How long output may still drain after the command exited (a background process
/// can hold the stream open forever).
const DRAIN: Duration = Duration::from_secs(2);

/// Runs the session until the command exits (then sends its status and closes) or the
/// client goes away (then the command is killed).
pub async fn run<S>(ws: WebSocketStream<S>, protocol: Protocol, wanted: Wanted, p: Process, command: Vec<String>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let first = if wanted.stdout { STDOUT } else if wanted.stderr { STDERR } else { ERROR };
    let writer = tokio::spawn(async move {
        let frame = |ch: u8, data: &[u8]| {
            let mut m = Vec::with_capacity(data.len() + 1);
            m.push(ch);
            m.extend_from_slice(data);
            Message::Binary(m.into())
        };
        if sink.send(frame(first, &[])).await.is_err() {
            return;
        }
        while let Some((ch, data)) = out_rx.recv().await {
            if sink.send(frame(ch, &data)).await.is_err() {
                return;
            }
        }
        // A normal closure (1000): clients read it as the end of every stream; a close
        // without a code is an error to them.
        let normal = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        let _ = sink.send(Message::Close(Some(normal))).await;
        let _ = sink.close().await;
    });

    let mut pumps = Vec::new();
    for (ch, r) in [(STDOUT, p.stdout), (STDERR, p.stderr)] {
        if let Some(r) = r {
            pumps.push(tokio::spawn(pump(r, ch, out_tx.clone())));
        }
    }

    // stdin goes through a task of its own and a short queue: the socket keeps being
    // read (pings, resizes) while the command takes its input; a full queue pushes
    // back on the client.
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(16);
    let stdin_task = p.stdin.map(|w| tokio::spawn(feed(w, in_rx)));
    let resize = p.resize;
    let client = async move {
        let mut in_tx = Some(in_tx);
        while let Some(msg) = source.next().await {
            let data = match msg {
                Ok(Message::Binary(d)) => d,
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(_) => continue,
            };
            match data.first().copied() {
                Some(STDIN) => {
                    if let Some(tx) = &in_tx {
                        let _ = tx.send(data.slice(1..)).await;
                    }
                }
                Some(RESIZE) => {
                    if let (Some(f), Ok(size)) = (&resize, serde_json::from_slice::<Value>(&data[1..])) {
                        let w = size["Width"].as_u64().unwrap_or(0).min(u16::MAX as u64) as u16;
                        let h = size["Height"].as_u64().unwrap_or(0).min(u16::MAX as u64) as u16;
                        f(w, h);
                    }
                }
                Some(CLOSE) if protocol == Protocol::V5 && data.get(1) == Some(&STDIN) => in_tx = None,
                _ => {}
            }
        }
    };

    let outcome = tokio::select! {
        outcome = p.exit => outcome,
        () = client => {
            tracing::debug!(command = ?command, "exec client went away; the command is killed");
            for t in pumps {
                t.abort();
            }
            if let Some(t) = stdin_task {
                t.abort();
            }
            writer.abort();
            return;
        }
    };
    if let Some(t) = stdin_task {
        t.abort();
    }
    for t in pumps {
        let _ = tokio::time::timeout(DRAIN, t).await;
    }
    let status = serde_json::to_vec(&status(&outcome, &command)).expect("JSON serializes");
    let _ = out_tx.send((ERROR, status.into())).await;
    drop(out_tx);
    let _ = writer.await;
}

async fn pump(mut r: Pin<Box<dyn AsyncRead + Send>>, ch: u8, tx: mpsc::Sender<(u8, Bytes)>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send((ch, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn feed(mut w: Pin<Box<dyn AsyncWrite + Send>>, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(data) = rx.recv().await {
        if w.write_all(&data).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
    // The client closed stdin: the command sees end of file.
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::super::upgrade::Subprotocol;
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[test]
    fn v5_is_preferred_and_unknown_protocols_are_refused() {
        assert_eq!(Protocol::negotiate(["v4.channel.k8s.io, v5.channel.k8s.io"]), Some(Protocol::V5));
        assert_eq!(Protocol::negotiate(["v4.channel.k8s.io", "channel.k8s.io"]), Some(Protocol::V4));
        assert_eq!(Protocol::negotiate(["base64.channel.k8s.io"]), None);
    }

    #[test]
    fn a_non_zero_exit_is_reported_with_its_code_as_kubectl_reads_it() {
        let cmd = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        let s = status(&Outcome::Exited(3), &cmd);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0], json!({"reason": "ExitCode", "message": "3"}));
        assert_eq!(status(&Outcome::Exited(0), &cmd), json!({"metadata": {}, "status": "Success"}));
        let f = status(&Outcome::Failed("exec: \"nope\": executable file not found in $PATH".into()), &cmd);
        assert_eq!((f["reason"].as_str(), f["code"].as_i64()), (Some("InternalError"), Some(500)));
    }

    /// A real command behind a real WebSocket (in memory): stdin with its v5 close,
    /// stdout, stderr and the exit status arrive on their channels.
    #[tokio::test]
    async fn a_session_carries_stdin_stdout_stderr_and_the_exit_status() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "cat; echo err >&2; exit 7"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let p = Process {
            stdin: Some(Box::pin(child.stdin.take().unwrap())),
            stdout: Some(Box::pin(child.stdout.take().unwrap())),
            stderr: Some(Box::pin(child.stderr.take().unwrap())),
            resize: None,
            exit: Box::pin(async move { Outcome::Exited(child.wait().await.unwrap().code().unwrap()) }),
        };
        let server = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
        let session = tokio::spawn(run(server, Protocol::V5, Wanted { stdout: true, stderr: true }, p, vec!["sh".into()]));
        let mut client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        client.send(Message::Binary(Bytes::from_static(b"\x00hello\n"))).await.unwrap();
        client.send(Message::Binary(Bytes::from_static(&[CLOSE, STDIN]))).await.unwrap();
        let mut got: [Vec<u8>; 4] = Default::default();
        while let Some(Ok(m)) = client.next().await {
            if let Message::Binary(d) = m {
                got[d[0] as usize].extend_from_slice(&d[1..]);
            }
        }
        session.await.unwrap();
        assert_eq!(got[1], b"hello\n");
        assert_eq!(got[2], b"err\n");
        let st: Value = serde_json::from_slice(&got[3]).unwrap();
        assert_eq!(st["details"]["causes"][0]["message"], "7");
    }
}
