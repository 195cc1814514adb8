//! One port-forward session: SPDY frames in, SPDY frames out. Streams come in pairs
//! (`streamtype` error and data, one `requestid`); when both are open, a forwarder
//! connects to the pod and carries the data stream. The session answers every
//! SYN_STREAM, echoes PINGs, and reads every header block in order, since they share
//! one compression stream.

use super::forward;
use crate::kubelet::spdy::frame::{self, status, Frame, FLAG_FIN};
use crate::kubelet::spdy::header_block::{Decoder, Encoder, Headers};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

/// The pod a session forwards to.
#[derive(Debug)]
pub struct Target {
    /// `namespace/name`, for messages.
    pub pod: String,
    pub uid: String,
    /// Where its ports are: the pod's network namespace (None: the agent's own).
    pub netns: Option<PathBuf>,
}

/// A request's streams as they open.
#[derive(Default)]
struct Pending {
    port: Option<String>,
    error: Option<u32>,
    data: Option<u32>,
}

/// What the client writes on a data stream: bytes, or None for its end (FIN).
pub type FromClient = mpsc::Sender<Option<Bytes>>;

struct Session {
    out: mpsc::Sender<Vec<u8>>,
    target: Arc<Target>,
    headers: Decoder,
    replies: Encoder,
    pending: HashMap<String, Pending>,
    to_pod: HashMap<u32, FromClient>,
    running: HashMap<u32, AbortHandle>,
    forwarders: JoinSet<(u32, u32)>,
}

fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Runs until `input` ends (the client went away) or the client breaks the protocol;
/// then every connection to the pod is closed.
pub async fn run(
    mut input: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Vec<u8>>,
    target: Arc<Target>,
) {
    let mut s = Session {
        out,
        target,
        headers: Decoder::new(),
        replies: Encoder::default(),
        pending: HashMap::new(),
        to_pod: HashMap::new(),
        running: HashMap::new(),
        forwarders: JoinSet::new(),
    };
    tracing::info!(pod = %s.target.pod, "port-forward session");
    let mut buf = BytesMut::new();
    'session: loop {
        loop {
            match frame::parse(&mut buf) {
                Ok(Some(f)) => {
                    if let Err(why) = s.handle(f).await {
                        tracing::warn!(pod = %s.target.pod, %why, "port-forward: ending the session");
                        let _ = s.out.send(frame::goaway(0, 1)).await;
                        break 'session;
                    }
                }
                Ok(None) => break,
                Err(why) => {
                    tracing::warn!(pod = %s.target.pod, %why, "port-forward: ending the session");
                    let _ = s.out.send(frame::goaway(0, 1)).await;
                    break 'session;
                }
            }
        }
        while let Some(Ok((error, data))) = s.forwarders.try_join_next() {
            s.running.remove(&error);
            s.running.remove(&data);
            s.to_pod.remove(&data);
        }
        match input.recv().await {
            Some(bytes) => buf.extend_from_slice(&bytes),
            None => break,
        }
    }
    s.forwarders.abort_all();
    tracing::debug!(pod = %s.target.pod, "port-forward session ended");
}

impl Session {
    async fn send(&self, frame: Vec<u8>) -> Result<(), String> {
        self.out
            .send(frame)
            .await
            .map_err(|_| "the client connection is gone".to_string())
    }

    async fn handle(&mut self, f: Frame) -> Result<(), String> {
        match f {
            Frame::SynStream {
                stream_id,
                header_block,
                ..
            } => {
                let h = self
                    .headers
                    .decode(&header_block)
                    .map_err(|e| e.to_string())?;
                let reply = frame::syn_reply(stream_id, &self.replies.encode(&[]));
                self.send(reply).await?;
                self.open(stream_id, &h).await?;
            }
            Frame::Data {
                stream_id,
                flags,
                payload,
            } => {
                if let Some(tx) = self.to_pod.get(&stream_id) {
                    if !payload.is_empty() && tx.send(Some(payload)).await.is_err() {
                        self.to_pod.remove(&stream_id);
                    }
                }
                if flags & FLAG_FIN != 0 {
                    if let Some(tx) = self.to_pod.remove(&stream_id) {
                        let _ = tx.send(None).await;
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                self.to_pod.remove(&stream_id);
                if let Some(task) = self.running.remove(&stream_id) {
                    task.abort();
                }
                self.pending
                    .retain(|_, p| p.error != Some(stream_id) && p.data != Some(stream_id));
            }
            Frame::Ping { id } => self.send(frame::ping(id)).await?,
            // Later header blocks continue the compression stream: read, then ignore.
            Frame::Headers { header_block, .. } | Frame::SynReply { header_block, .. } => {
                self.headers
                    .inflate(&header_block)
                    .map_err(|e| e.to_string())?;
            }
            Frame::GoAway { .. }
            | Frame::Settings
            | Frame::WindowUpdate { .. }
            | Frame::Unknown { .. } => {}
        }
        Ok(())
    }

    /// A stream the client opened: file it under its request; start forwarding once
    /// the request has both of its streams.
    async fn open(&mut self, stream_id: u32, h: &Headers) -> Result<(), String> {
        let (Some(kind), Some(request)) = (header(h, "streamtype"), header(h, "requestid")) else {
            tracing::debug!(pod = %self.target.pod, stream_id, ?h, "port-forward: a stream without streamtype and requestid headers");
            return self
                .send(frame::rst_stream(stream_id, status::PROTOCOL_ERROR))
                .await;
        };
        let p = self.pending.entry(request.to_string()).or_default();
        match kind {
            "error" => p.error = Some(stream_id),
            "data" => p.data = Some(stream_id),
            other => {
                tracing::debug!(pod = %self.target.pod, stream_id, other, "port-forward: unknown streamtype");
                return self
                    .send(frame::rst_stream(stream_id, status::INVALID_STREAM))
                    .await;
            }
        }
        if let Some(port) = header(h, "port") {
            p.port = Some(port.to_string());
        }
        if let (Some(error), Some(data)) = (p.error, p.data) {
            let p = self.pending.remove(request).expect("just seen");
            let (tx, rx) = mpsc::channel(16);
            self.to_pod.insert(data, tx);
            let task = self.forwarders.spawn(forward::run(
                self.target.clone(),
                p.port,
                forward::Streams { error, data },
                rx,
                self.out.clone(),
            ));
            self.running.insert(error, task.clone());
            self.running.insert(data, task);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::spdy::header_block::Encoder as ClientHeaders;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn syn_stream(stream_id: u32, headers: &mut ClientHeaders, pairs: &[(&str, &str)]) -> Bytes {
        let block = headers.encode(pairs);
        let mut f = (0x8003_0001u32).to_be_bytes().to_vec();
        f.extend_from_slice(&((10 + block.len()) as u32).to_be_bytes());
        f.extend_from_slice(&stream_id.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&block);
        Bytes::from(f)
    }

    /// A session for pod default/web in the test's own namespace: its input, its
    /// output, its task, and the client's header compression.
    fn start() -> (mpsc::Sender<Bytes>, mpsc::Receiver<Vec<u8>>, tokio::task::JoinHandle<()>, ClientHeaders) {
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, out) = mpsc::channel(64);
        let target = Arc::new(Target { pod: "default/web".into(), uid: "u".into(), netns: None });
        (in_tx, out, tokio::spawn(run(in_rx, out_tx, target)), ClientHeaders::default())
    }

    /// Frames the session sent, read until `n` of them have come.
    async fn take(out: &mut mpsc::Receiver<Vec<u8>>, n: usize) -> Vec<Frame> {
        let mut buf = BytesMut::new();
        let mut got = vec![];
        while got.len() < n {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), out.recv())
                .await
                .expect("a frame in time")
                .expect("the session is running");
            buf.extend_from_slice(&chunk);
            while let Some(f) = frame::parse(&mut buf).unwrap() {
                got.push(f);
            }
        }
        got
    }

    #[tokio::test]
    async fn a_request_is_forwarded_to_the_port_and_ends_with_both_streams() {
        // A server on loopback (the test's own namespace) that answers in upper case.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = vec![];
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got.to_ascii_uppercase()).await.unwrap();
        });
        let (in_tx, mut out, session, mut h) = start();
        in_tx.send(Bytes::from(frame::ping(1))).await.unwrap();
        in_tx
            .send(syn_stream(
                1,
                &mut h,
                &[("streamtype", "error"), ("port", &port), ("requestid", "0")],
            ))
            .await
            .unwrap();
        in_tx
            .send(syn_stream(
                3,
                &mut h,
                &[("streamtype", "data"), ("port", &port), ("requestid", "0")],
            ))
            .await
            .unwrap();
        // No requestid: refused, and the session goes on.
        in_tx
            .send(syn_stream(5, &mut h, &[("streamtype", "data")]))
            .await
            .unwrap();
        in_tx
            .send(Bytes::from(frame::data(3, false, b"hello ")))
            .await
            .unwrap();
        in_tx
            .send(Bytes::from(frame::data(3, true, b"pod")))
            .await
            .unwrap();
        let got = take(&mut out, 8).await;
        assert_eq!(got[0], Frame::Ping { id: 1 });
        assert!(matches!(got[1], Frame::SynReply { stream_id: 1, .. }));
        assert!(matches!(got[2], Frame::SynReply { stream_id: 3, .. }));
        assert!(matches!(got[3], Frame::SynReply { stream_id: 5, .. }));
        assert_eq!(
            got[4],
            Frame::RstStream {
                stream_id: 5,
                status: status::PROTOCOL_ERROR
            }
        );
        assert_eq!(
            got[5],
            Frame::Data {
                stream_id: 3,
                flags: 0,
                payload: Bytes::from_static(b"HELLO POD")
            }
        );
        assert_eq!(
            got[6],
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                payload: Bytes::new()
            }
        );
        assert_eq!(
            got[7],
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                payload: Bytes::new()
            },
            "the error stream ends empty"
        );
        server.await.unwrap();
        drop(in_tx);
        session.await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_on_the_error_stream() {
        // A port that was just free: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let (in_tx, mut out, session, mut h) = start();
        in_tx
            .send(syn_stream(
                1,
                &mut h,
                &[("streamtype", "error"), ("port", &port), ("requestid", "7")],
            ))
            .await
            .unwrap();
        in_tx
            .send(syn_stream(
                3,
                &mut h,
                &[("streamtype", "data"), ("port", &port), ("requestid", "7")],
            ))
            .await
            .unwrap();
        let got = take(&mut out, 5).await;
        let Frame::Data {
            stream_id: 1,
            flags: 0,
            payload,
        } = &got[2]
        else {
            panic!("{got:?}")
        };
        let msg = String::from_utf8_lossy(payload);
        assert!(msg.starts_with(&format!("error forwarding port {port} to pod default/web, uid u: failed to connect to localhost:{port}")), "{msg}");
        assert!(msg.contains("connect: connection refused"), "{msg}");
        assert_eq!(
            got[3],
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                payload: Bytes::new()
            }
        );
        assert_eq!(
            got[4],
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                payload: Bytes::new()
            }
        );
        drop(in_tx);
        session.await.unwrap();
    }
}
