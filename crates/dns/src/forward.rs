//! Asking upstream resolvers: one question, over UDP (or TCP when the client asked over
//! TCP), each upstream in turn until one answers. Replies must match our random id and
//! the question, or they are ignored.

use crate::wire::OUR_PAYLOAD;
use hickory_proto::op::{Edns, Message, Query};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets to answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Asks `q` of `upstreams` in order; the first matching reply wins.
pub async fn ask(q: &Query, upstreams: &[SocketAddr], transport: Transport) -> anyhow::Result<Message> {
    anyhow::ensure!(!upstreams.is_empty(), "no upstream resolvers are configured: set data.upstreams in ConfigMap kube-system/weft-dns");
    let mut last = None;
    for up in upstreams {
        let r = match transport {
            Transport::Udp => tokio::time::timeout(TIMEOUT, udp(q, *up)).await,
            Transport::Tcp => tokio::time::timeout(TIMEOUT, tcp(q, *up)).await,
        };
        match r {
            Ok(Ok(m)) => return Ok(m),
            Ok(Err(e)) => last = Some(e.context(format!("upstream {up}"))),
            Err(_) => last = Some(anyhow::anyhow!("upstream {up} did not answer within {TIMEOUT:?}")),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no upstream answered")))
}

fn request(q: &Query) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(q.clone());
    let mut e = Edns::new();
    e.set_max_payload(OUR_PAYLOAD);
    m.edns = Some(e);
    m
}

fn matches(req: &Message, resp: &Message) -> bool {
    resp.id == req.id
        && resp.queries.len() == 1
        // Name equality ignores case (0x20 randomising upstreams may echo it changed).
        && resp.queries[0].name() == req.queries[0].name()
        && resp.queries[0].query_type() == req.queries[0].query_type()
}

async fn udp(q: &Query, up: SocketAddr) -> anyhow::Result<Message> {
    let req = request(q);
    let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0".parse()? } else { "[::]:0".parse()? };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(up).await?;
    sock.send(&req.to_vec()?).await?;
    let mut buf = vec![0u8; 65_535];
    // Stray or spoofed datagrams are skipped; the caller's timeout bounds the loop.
    loop {
        let n = sock.recv(&mut buf).await?;
        if let Ok(resp) = Message::from_vec(&buf[..n]) {
            if matches(&req, &resp) {
                return Ok(resp);
            }
        }
    }
}

async fn tcp(q: &Query, up: SocketAddr) -> anyhow::Result<Message> {
    let req = request(q);
    let mut s = TcpStream::connect(up).await?;
    let b = req.to_vec()?;
    let mut out = Vec::with_capacity(b.len() + 2);
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(&b);
    s.write_all(&out).await?;
    let n = s.read_u16().await? as usize;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await?;
    let resp = Message::from_vec(&buf)?;
    anyhow::ensure!(matches(&req, &resp), "the reply does not match the question");
    Ok(resp)
}
