//! A DNS client for tests: one question over UDP or TCP, bounded waits.
#![allow(dead_code)]

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(p) = edns {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.edns = Some(e);
    }
    m
}

/// Sends raw bytes over UDP; the reply, or `None` after `wait`.
pub async fn udp_raw(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(wait, s.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// One question over UDP, sent up to three times (bounded).
pub async fn udp(server: SocketAddr, m: &Message) -> Message {
    for _ in 0..3 {
        if let Some(b) = udp_raw(server, &m.to_vec().unwrap(), Duration::from_secs(3)).await {
            let r = Message::from_vec(&b).unwrap();
            assert_eq!(r.id, m.id);
            return r;
        }
    }
    panic!("no UDP answer from {server} to {:?}", m.queries);
}

pub async fn tcp(server: SocketAddr, m: &Message) -> Message {
    let fut = async {
        let mut c = tokio::net::TcpStream::connect(server).await.unwrap();
        let b = m.to_vec().unwrap();
        let mut out = (b.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&b);
        c.write_all(&out).await.unwrap();
        let n = c.read_u16().await.unwrap();
        let mut r = vec![0u8; n as usize];
        c.read_exact(&mut r).await.unwrap();
        Message::from_vec(&r).unwrap()
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("TCP answer in 10s")
}

/// GET over plain HTTP/1.1: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let fut = async {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).await.unwrap();
        let status = s.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, s.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.expect("HTTP answer in 10s")
}
