//! One forwarded connection: a TCP connection to the pod's port on localhost inside
//! its network namespace, carried by one SPDY data stream. A failure to connect is
//! written on the request's error stream, as kubectl prints it. When the pod closes
//! its side, the data stream and then the error stream end (kubectl waits for the
//! error stream's end before it closes the local connection).

use super::session::Target;
use crate::kubelet::spdy::frame::{self, MAX_DATA};
use crate::probe_net;
use bytes::Bytes;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The SPDY streams of one request.
#[derive(Clone, Copy, Debug)]
pub struct Streams {
    pub error: u32,
    pub data: u32,
}

/// The port named by the stream's `port` header.
pub fn parse_port(header: Option<&str>) -> Result<u16, String> {
    let Some(h) = header else {
        return Err("the port header is missing from the request's streams".to_string());
    };
    match h.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "invalid port header {h:?}: a port is a number from 1 to 65535"
        )),
    }
}

/// Connects to localhost:port in the target's namespace, IPv4 first, then IPv6.
async fn connect(target: &Target, port: u16) -> Result<TcpStream, String> {
    let ns = match &target.netns {
        Some(path) => Some(weft_kernel::Netns::open(path).map_err(|e| {
            format!(
                "opening the pod's network namespace {}: {e}",
                path.display()
            )
        })?),
        None => None,
    };
    let mut errors = vec![];
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        let addr = SocketAddr::new(ip, port);
        match tokio::time::timeout(
            std::time::Duration::from_secs(10),
            probe_net::connect(ns.as_ref(), addr),
        )
        .await
        {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => errors.push(probe_net::dial_error(addr, &e)),
            Err(_) => errors.push(format!("dial tcp {addr}: i/o timeout")),
        }
    }
    Err(format!(
        "failed to connect to localhost:{port} inside the pod's network namespace: {}",
        errors.join("; ")
    ))
}

/// Runs one request to its end; returns its streams so the session can forget them.
pub async fn run(
    target: Arc<Target>,
    port: Option<String>,
    ids: Streams,
    mut from_client: mpsc::Receiver<Option<Bytes>>,
    out: mpsc::Sender<Vec<u8>>,
) -> (u32, u32) {
    let done = (ids.error, ids.data);
    let conn = match parse_port(port.as_deref()) {
        Ok(port) => connect(&target, port)
            .await
            .map(|c| (port, c))
            .map_err(|e| {
                format!(
                    "error forwarding port {port} to pod {}, uid {}: {e}",
                    target.pod, target.uid
                )
            }),
        Err(e) => Err(e),
    };
    let (port, tcp) = match conn {
        Ok(c) => c,
        Err(msg) => {
            tracing::info!(pod = %target.pod, %msg, "port-forward");
            let mut msg = msg.into_bytes();
            msg.truncate(MAX_DATA);
            let _ = out.send(frame::data(ids.error, false, &msg)).await;
            let _ = out.send(frame::data(ids.error, true, &[])).await;
            let _ = out.send(frame::data(ids.data, true, &[])).await;
            return done;
        }
    };
    tracing::debug!(pod = %target.pod, port, "port-forward: connected");
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let up = async move {
        while let Some(Some(chunk)) = from_client.recv().await {
            if to_pod.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to_pod.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; MAX_DATA];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out
                        .send(frame::data(ids.data, false, &buf[..n]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = out.send(frame::data(ids.data, true, &[])).await;
        let _ = out.send(frame::data(ids.error, true, &[])).await;
    };
    tokio::join!(up, down);
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_header_must_name_a_port() {
        assert_eq!(parse_port(Some("8080")), Ok(8080));
        assert!(parse_port(None).unwrap_err().contains("missing"));
        assert!(parse_port(Some("0"))
            .unwrap_err()
            .contains("invalid port header"));
        assert!(parse_port(Some("http")).unwrap_err().contains("1 to 65535"));
    }
}
