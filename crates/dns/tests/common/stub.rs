//! A stub upstream resolver for tests, on loopback inside the test's namespace: fixed
//! answers, a count of questions per name. Never a real resolver.
#![allow(dead_code)]

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone)]
pub struct Stub {
    pub addr: SocketAddr,
    asked: Arc<Mutex<HashMap<String, usize>>>,
}

/// What the stub answers: `name` → (address, ttl, truncated over UDP).
pub type Table = Vec<(&'static str, Ipv4Addr, u32, bool)>;

impl Stub {
    /// Starts on 127.0.0.1, UDP and TCP on one port. Unknown names: NXDOMAIN with an
    /// SOA whose minimum is 60.
    pub async fn start(table: Table) -> Stub {
        let asked = Arc::new(Mutex::new(HashMap::new()));
        let (udp, tcp) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            if let Ok(tcp) = tokio::net::TcpListener::bind(udp.local_addr().unwrap()).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let table = Arc::new(table);
        let (t, a) = (table.clone(), asked.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else { continue };
                if let Some(r) = answer(&buf[..n], &t, &a, true) {
                    let _ = udp.send_to(&r, peer).await;
                }
            }
        });
        let (t, a) = (table, asked.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut c, _)) = tcp.accept().await else { continue };
                let (t, a) = (t.clone(), a.clone());
                tokio::spawn(async move {
                    let Ok(n) = c.read_u16().await else { return };
                    let mut b = vec![0u8; n as usize];
                    if c.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    if let Some(r) = answer(&b, &t, &a, false) {
                        let mut out = (r.len() as u16).to_be_bytes().to_vec();
                        out.extend_from_slice(&r);
                        let _ = c.write_all(&out).await;
                    }
                });
            }
        });
        Stub { addr, asked }
    }

    /// How many times `name` (lowercase, fully qualified) was asked.
    pub fn asked(&self, name: &str) -> usize {
        self.asked.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

fn answer(b: &[u8], table: &Table, asked: &Mutex<HashMap<String, usize>>, udp: bool) -> Option<Vec<u8>> {
    let req = Message::from_vec(b).ok()?;
    let q = req.queries.first()?.clone();
    let name = q.name().to_lowercase().to_string();
    *asked.lock().unwrap().entry(name.clone()).or_default() += 1;
    let mut m = Message::response(req.id, req.op_code);
    m.metadata.recursion_available = true;
    m.add_query(q.clone());
    match table.iter().find(|(n, ..)| *n == name) {
        Some((_, ip, ttl, tc)) => {
            if q.query_type() == RecordType::A {
                m.answers.push(Record::from_rdata(q.name().clone(), *ttl, RData::A((*ip).into())));
            }
            m.metadata.truncation = *tc && udp;
        }
        None => {
            m.metadata.response_code = ResponseCode::NXDomain;
            let zone = Name::from_ascii("example.test.").unwrap();
            let soa = SOA::new(Name::from_ascii("ns.example.test.").unwrap(), Name::from_ascii("h.example.test.").unwrap(), 1, 7200, 1800, 86400, 60);
            m.authorities.push(Record::from_rdata(zone, 300, RData::SOA(soa)));
        }
    }
    m.to_vec().ok()
}
