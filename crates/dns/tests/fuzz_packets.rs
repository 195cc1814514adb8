//! A bounded fuzz of the packet path, part of the normal test run: random datagrams and
//! mutations of valid queries (fixed seed, fixed count) through decoding, the answer
//! function and encoding. Nothing may panic; every reply is a well-formed response with
//! the request's id. (`crates/dns/fuzz` runs the same path under libFuzzer.)

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use std::time::Instant;
use weft_dns::forward::Transport;
use weft_dns::resolve::Handled;
use weft_dns::{fixture, Config, Dns};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const LABELS: &[&str] = &["svc1", "testns", "svc", "pod", "cluster", "local", "hdls1", "_http", "_tcp", "dup-name", "172-0-0-2", "10-240-0-1", "podns", "in-addr", "arpa", "ip6", "0", "10", "external", "dns-version", "dns", "ns", "SVC1", "x"];
const TYPES: &[RecordType] = &[RecordType::A, RecordType::AAAA, RecordType::SRV, RecordType::PTR, RecordType::CNAME, RecordType::TXT, RecordType::SOA, RecordType::NS, RecordType::ANY, RecordType::MX, RecordType::AXFR, RecordType::HINFO];

fn seeds(rng: &mut Rng) -> Vec<u8> {
    let n = 1 + rng.below(7);
    let name: Vec<&str> = (0..n).map(|_| LABELS[rng.below(LABELS.len())]).collect();
    let mut name = name.join(".");
    if rng.below(2) == 0 {
        name.push_str(".cluster.local");
    }
    name.push('.');
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(&name).unwrap(), TYPES[rng.below(TYPES.len())]));
    if rng.below(2) == 0 {
        let mut e = Edns::new();
        e.set_max_payload(rng.below(5000) as u16);
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

fn mutate(rng: &mut Rng, mut p: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(6) {
        match rng.below(5) {
            0 if !p.is_empty() => {
                let i = rng.below(p.len());
                p[i] = rng.next() as u8;
            }
            1 if !p.is_empty() => {
                let i = rng.below(p.len());
                p[i] ^= 1 << rng.below(8);
            }
            2 => p.truncate(rng.below(p.len() + 1)),
            3 => p.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
            _ if p.len() > 12 => {
                // Counts and compression pointers are where parsers break.
                let i = 4 + rng.below(8);
                p[i] = 0xff;
            }
            _ => {}
        }
    }
    p
}

#[test]
fn random_and_mutated_packets_never_panic_and_replies_are_responses() {
    let dns = Dns::new(Config::new("cluster.local", vec![]));
    dns.update_zone(|z| *z = fixture::synced_zone(&fixture::conformance()));
    let mut rng = Rng(0x00c0_ffee_d00d_f00d);
    let (mut replies, mut upstream, mut dropped) = (0, 0, 0);
    for i in 0..60_000 {
        let p = match i % 4 {
            0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            1 => seeds(&mut rng),
            _ => {
                let s = seeds(&mut rng);
                mutate(&mut rng, s)
            }
        };
        let t = if i % 2 == 0 { Transport::Udp } else { Transport::Tcp };
        match dns.handle_bytes(&p, t, Instant::now()) {
            Handled::Reply(b) => {
                let m = Message::from_vec(&b).unwrap_or_else(|e| panic!("packet {i}: our reply does not decode: {e}"));
                assert_eq!(m.id, u16::from_be_bytes([p[0], p[1]]), "packet {i}");
                assert!(b[2] & 0x80 != 0, "packet {i}: reply without QR");
                if t == Transport::Udp {
                    let limit = Message::from_vec(&p).ok().and_then(|q| q.edns.map(|e| e.max_payload().max(512) as usize)).unwrap_or(512);
                    assert!(b.len() <= limit.max(512), "packet {i}: {} bytes over the {limit} limit", b.len());
                }
                replies += 1;
            }
            Handled::Upstream { .. } => upstream += 1,
            Handled::Drop => dropped += 1,
        }
    }
    assert!(replies > 10_000 && upstream > 100 && dropped > 100, "replies {replies}, upstream {upstream}, dropped {dropped}");
}
