//! The running server with real packets, inside a network namespace of the test's own:
//! every conformance vector over UDP and TCP, `dig` over UDP and TCP with truncation and
//! TCP retry, forwarding and caching against a stub upstream on loopback, live
//! configuration, readiness, and a flood of malformed packets.

mod common;

use common::client::{http_get, query, tcp, udp, udp_raw};
use common::stub::Stub;
use common::{check, config, objects, serve, upstream_table, vectors, Setup};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;
use weft_dns::{fixture, Dns};

fn synced(dns: &Dns, objects: &[serde_json::Value]) {
    dns.update_zone(|z| *z = fixture::synced_zone(objects));
}

#[test]
fn every_conformance_vector_over_udp_and_tcp() {
    weft_testns::run_async("dns_vectors_packets", |_| async {
        let stub = Stub::start(upstream_table()).await;
        let all = vectors();
        // One server per configuration the vectors need.
        let mut groups: Vec<(common::Fx, Setup)> = vec![];
        for v in &all {
            if !groups.contains(&(v.fx, v.setup)) {
                groups.push((v.fx, v.setup));
            }
        }
        let mut failures = vec![];
        for (fx, setup) in groups {
            let vs: Vec<&common::Vector> = all.iter().filter(|v| v.fx == fx && v.setup == setup).collect();
            let mut cfg = config(vs[0]);
            cfg.upstreams = vec![stub.addr];
            let dns = Dns::new(cfg);
            if setup != Setup::Unsynced {
                synced(&dns, &objects(vs[0]));
            }
            let server = serve(&dns);
            let at = server.dns_addrs[0];
            for v in vs {
                let m = udp(at, &query(v.name, v.qtype, Some(1232))).await;
                if let Err(e) = check(v, &m) {
                    failures.push(format!("UDP {e}"));
                }
                // Over TCP, the upstream's answer is whole: no TC.
                let mut vt = v.clone();
                vt.tc = false;
                let m = tcp(at, &query(v.name, v.qtype, None)).await;
                if let Err(e) = check(&vt, &m) {
                    failures.push(format!("TCP {e}"));
                }
            }
            server.stop();
        }
        assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    });
}

fn dig(args: &[&str]) -> String {
    let out = Command::new("dig").args(["+time=3", "+tries=2"]).args(args).output().expect("dig (apt-get install dnsutils)");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// A headless service with `n` ready endpoints, 172.1.x.y.
fn big_headless(n: usize) -> Vec<serde_json::Value> {
    let ips: Vec<String> = (0..n).map(|i| format!("172.1.{}.{}", i / 250, i % 250 + 1)).collect();
    let eps: Vec<(&str, Option<&str>)> = ips.iter().map(|i| (i.as_str(), None)).collect();
    vec![fixture::service("testns", "big", &["None"], serde_json::json!([])), fixture::slice("testns", "big", "big-x", "IPv4", &eps, serde_json::json!([]))]
}

#[test]
fn dig_gets_answers_over_udp_and_tcp_and_retries_truncated_answers_over_tcp() {
    weft_testns::run_async("dns_dig", |_| async {
        let dns = Dns::new(Config::new("cluster.local", vec![]));
        let mut objs = fixture::conformance();
        objs.extend(big_headless(120));
        synced(&dns, &objs);
        let server = serve(&dns);
        let (ip, port) = (server.dns_addrs[0].ip(), server.dns_addrs[0].port().to_string());
        let base = [format!("@{ip}"), "-p".to_string(), port];
        let run = |extra: &[&str]| {
            let mut a: Vec<&str> = base.iter().map(|s| s.as_str()).collect();
            a.extend_from_slice(extra);
            dig(&a)
        };
        let o = run(&["svc1.testns.svc.cluster.local", "+short"]);
        assert_eq!(o.trim(), "10.0.0.1", "{o}");
        let o = run(&["svc1.testns.svc.cluster.local", "+tcp", "+short"]);
        assert_eq!(o.trim(), "10.0.0.1", "{o}");
        let o = run(&["_http._tcp.svc1.testns.svc.cluster.local", "SRV", "+short"]);
        assert_eq!(o.trim(), "0 100 80 svc1.testns.svc.cluster.local.", "{o}");
        let o = run(&["-x", "172.0.0.2", "+short"]);
        assert_eq!(o.trim(), "172-0-0-2.hdls1.testns.svc.cluster.local.", "{o}");
        let o = run(&["nope.testns.svc.cluster.local"]);
        assert!(o.contains("status: NXDOMAIN") && o.contains("flags: qr aa rd ra"), "{o}");
        // 120 A records (about 2 KB) do not fit in dig's 1232-byte EDNS buffer.
        let o = run(&["big.testns.svc.cluster.local"]);
        assert!(o.contains("Truncated, retrying in TCP mode"), "dig did not see TC:\n{o}");
        assert!(o.contains("ANSWER: 120,"), "the TCP retry did not get every record:\n{o}");
        // Without EDNS the limit is 512 bytes.
        let o = run(&["big.testns.svc.cluster.local", "+noedns", "+ignore"]);
        assert!(o.contains(" tc ") || o.contains("flags: qr tc") || o.contains(" tc;"), "no TC without EDNS:\n{o}");
        let m = udp(server.dns_addrs[0], &query("big.testns.svc.cluster.local.", RecordType::A, Some(4096))).await;
        assert_eq!((m.truncation, m.answers.len()), (false, 120), "a 4096-byte EDNS buffer holds all 120");
        server.stop();
    });
}

use weft_dns::Config;

#[test]
fn forwarded_answers_are_cached_positively_and_negatively() {
    weft_testns::run_async("dns_forward_cache", |_| async {
        let stub = Stub::start(vec![("www.example.test.", Ipv4Addr::new(192, 0, 2, 10), 60, false)]).await;
        let dns = Dns::new(Config::new("cluster.local", vec![stub.addr]));
        synced(&dns, &fixture::conformance());
        let server = serve(&dns);
        let at = server.dns_addrs[0];
        for round in 0..3 {
            let m = udp(at, &query("WWW.example.test.", RecordType::A, None)).await;
            assert_eq!(m.response_code, ResponseCode::NoError);
            assert_eq!(m.answers.len(), 1, "round {round}");
            assert_eq!(m.answers[0].name.to_string(), "WWW.example.test.", "the question's case is kept");
            assert!(matches!(m.answers[0].data, RData::A(a) if a.0 == Ipv4Addr::new(192, 0, 2, 10)));
            assert!(m.answers[0].ttl <= 60);
            let m = udp(at, &query("nx.example.test.", RecordType::A, None)).await;
            assert_eq!(m.response_code, ResponseCode::NXDomain);
            assert_eq!(m.authorities.len(), 1, "the SOA comes back with a cached NXDOMAIN");
        }
        assert_eq!(stub.asked("www.example.test."), 1, "positive answers are cached");
        assert_eq!(stub.asked("nx.example.test."), 1, "negative answers are cached");
        // Over TCP too, from the same cache.
        let m = tcp(at, &query("www.example.test.", RecordType::A, None)).await;
        assert_eq!(m.answers.len(), 1);
        assert_eq!(stub.asked("www.example.test."), 1);
        let (status, metrics) = http_get(server.http_addrs[0], "/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.contains("weft_dns_cache_hits_total 5"), "{metrics}");
        assert!(metrics.contains("weft_dns_cache_misses_total 2"), "{metrics}");
        assert!(metrics.contains(r#"weft_dns_responses_total{rcode="NXDOMAIN"} 3"#), "{metrics}");
        assert!(metrics.contains(r#"weft_dns_requests_total{proto="tcp",type="A"} 1"#), "{metrics}");
        assert!(metrics.contains("weft_dns_request_duration_seconds_count 7"), "{metrics}");
        server.stop();
    });
}

#[test]
fn stub_domains_and_upstreams_follow_configmap_changes_live() {
    weft_testns::run_async("dns_config_live", |_| async {
        let default = Stub::start(vec![("a.example.test.", Ipv4Addr::new(192, 0, 2, 1), 60, false)]).await;
        let corp = Stub::start(vec![("db.corp.test.", Ipv4Addr::new(192, 0, 2, 99), 60, false), ("a.example.test.", Ipv4Addr::new(192, 0, 2, 2), 60, false)]).await;
        let dns = Dns::new(Config::new("cluster.local", vec![default.addr]));
        synced(&dns, &fixture::conformance());
        let server = serve(&dns);
        let at = server.dns_addrs[0];
        let a = |m: &hickory_proto::op::Message| m.answers.iter().find_map(|r| if let RData::A(a) = r.data { Some(a.0) } else { None });
        assert_eq!(udp(at, &query("db.corp.test.", RecordType::A, None)).await.response_code, ResponseCode::NXDomain, "before: the default upstream knows no corp.test");
        let data: BTreeMap<String, String> = [("stubDomains".to_string(), format!(r#"{{"corp.test": ["{}"]}}"#, corp.addr))].into();
        dns.apply_configmap(Some(&data)).unwrap();
        assert_eq!(a(&udp(at, &query("db.corp.test.", RecordType::A, None)).await), Some(Ipv4Addr::new(192, 0, 2, 99)));
        assert_eq!(corp.asked("db.corp.test."), 1);
        assert_eq!(a(&udp(at, &query("a.example.test.", RecordType::A, None)).await), Some(Ipv4Addr::new(192, 0, 2, 1)));
        // New upstreams: the cache starts over, answers come from the new resolver.
        let data: BTreeMap<String, String> = [("upstreams".to_string(), corp.addr.to_string()), ("ttl".to_string(), "30".to_string())].into();
        dns.apply_configmap(Some(&data)).unwrap();
        assert_eq!(a(&udp(at, &query("a.example.test.", RecordType::A, None)).await), Some(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(udp(at, &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await.answers[0].ttl, 30, "cluster TTL follows the ConfigMap");
        // A bad ConfigMap changes nothing.
        let bad: BTreeMap<String, String> = [("podRecords".to_string(), "sometimes".to_string())].into();
        assert!(dns.apply_configmap(Some(&bad)).unwrap_err().contains("podRecords"));
        assert_eq!(udp(at, &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await.answers[0].ttl, 30);
        // The ConfigMap deleted: back to the defaults.
        dns.apply_configmap(None).unwrap();
        assert_eq!(udp(at, &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await.answers[0].ttl, 5);
        server.stop();
    });
}

#[test]
fn an_unreachable_upstream_gives_servfail() {
    weft_testns::run_async("dns_upstream_down", |_| async {
        // A port on loopback with nothing listening: refused at once.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let dns = Dns::new(Config::new("cluster.local", vec![closed]));
        synced(&dns, &fixture::conformance());
        let server = serve(&dns);
        let m = udp(server.dns_addrs[0], &query("x.example.test.", RecordType::A, None)).await;
        assert_eq!(m.response_code, ResponseCode::ServFail);
        let m = udp(server.dns_addrs[0], &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await;
        assert_eq!(m.response_code, ResponseCode::NoError, "cluster names do not depend on upstreams");
        server.stop();
    });
}

#[test]
fn cluster_names_get_servfail_and_readyz_503_until_the_first_sync() {
    weft_testns::run_async("dns_readiness", |_| async {
        let dns = Dns::new(Config::new("cluster.local", vec![]));
        let server = serve(&dns);
        let at = server.dns_addrs[0];
        assert_eq!(http_get(server.http_addrs[0], "/readyz").await.0, 503);
        assert_eq!(http_get(server.http_addrs[0], "/healthz").await.0, 200);
        let m = udp(at, &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await;
        assert_eq!(m.response_code, ResponseCode::ServFail);
        synced(&dns, &fixture::conformance());
        assert_eq!(http_get(server.http_addrs[0], "/readyz").await.0, 200);
        assert_eq!(udp(at, &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await.answers.len(), 1);
        // Repeats come from the encoded-answer table, each with its own id (checked by udp()).
        for _ in 0..3 {
            assert_eq!(udp(at, &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await.answers.len(), 1);
        }
        // Answers follow zone changes at once: a new service, then its removal.
        dns.update_zone(|z| fixture::load(z, &[fixture::service("testns", "fresh", &["10.0.0.77"], serde_json::json!([]))]).unwrap());
        assert_eq!(udp(at, &query("fresh.testns.svc.cluster.local.", RecordType::A, None)).await.answers.len(), 1);
        assert_eq!(udp(at, &query("fresh.testns.svc.cluster.local.", RecordType::A, None)).await.answers.len(), 1);
        dns.update_zone(|z| z.remove_service("testns", "fresh"));
        assert_eq!(udp(at, &query("fresh.testns.svc.cluster.local.", RecordType::A, None)).await.response_code, ResponseCode::NXDomain);
        server.stop();
    });
}

/// xorshift64*: a fixed-seed generator, so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn malformed_and_oversized_packets_get_formerr_or_nothing_and_the_server_keeps_serving() {
    weft_testns::run_async("dns_flood", |_| async {
        let dns = Dns::new(Config::new("cluster.local", vec![]));
        synced(&dns, &fixture::conformance());
        let server = serve(&dns);
        let at = server.dns_addrs[0];
        let valid = query("svc1.testns.svc.cluster.local.", RecordType::A, Some(1232)).to_vec().unwrap();
        let mut rng = Rng(0x5eed_d15c_0ffe_e000);
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..3000 {
            let pkt = match i % 3 {
                0 => (0..rng.below(600)).map(|_| rng.next() as u8).collect::<Vec<u8>>(),
                1 => {
                    let mut p = valid.clone();
                    for _ in 0..1 + rng.below(4) {
                        let j = rng.below(p.len());
                        p[j] = rng.next() as u8;
                    }
                    p.truncate(1 + rng.below(p.len()));
                    p
                }
                _ => {
                    // Oversized: a valid query followed by junk to 60 KB.
                    let mut p = valid.clone();
                    p.resize(60_000, 0xab);
                    p
                }
            };
            let _ = sock.send_to(&pkt, at).await;
        }
        // Every reply to garbage is a response (QR set), never an echo.
        let mut buf = vec![0u8; 65_535];
        let mut replies = 0;
        while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await {
            assert!(n >= 12 && buf[2] & 0x80 != 0, "a reply without QR");
            replies += 1;
        }
        assert!(replies > 0, "garbage with a header gets FORMERR");
        let form = udp_raw(at, &[0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0xc0], Duration::from_secs(3)).await.expect("FORMERR");
        let form = hickory_proto::op::Message::from_vec(&form).unwrap();
        assert_eq!((form.id, form.response_code), (0x1234, ResponseCode::FormErr));
        // TCP: a length prefix promising more than arrives, then garbage: closed, no panic.
        {
            use tokio::io::AsyncWriteExt;
            let mut c = tokio::net::TcpStream::connect(at).await.unwrap();
            let _ = c.write_all(&[0xff, 0xff, 1, 2, 3]).await;
        }
        let m = udp(at, &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await;
        assert_eq!(m.answers.len(), 1, "still serving after the flood");
        let m = tcp(at, &query("svc1.testns.svc.cluster.local.", RecordType::A, None)).await;
        assert_eq!(m.answers.len(), 1);
        server.stop();
    });
}

#[test]
fn datagrams_spread_over_the_reuseport_sockets_and_each_is_counted_and_timed() {
    weft_testns::run_async("dns_socket_spread", |_| async {
        let dns = Dns::new(Config::new("cluster.local", vec![]));
        synced(&dns, &fixture::conformance());
        let server = serve(&dns);
        // Each query from a socket of its own: 64 flows, hashed over the server's two sockets.
        for _ in 0..64 {
            udp(server.dns_addrs[0], &query("nope.testns.svc.cluster.local.", RecordType::A, None)).await;
        }
        let (_, metrics) = http_get(server.http_addrs[0], "/metrics").await;
        let per_socket: Vec<u64> = metrics
            .lines()
            .filter(|l| l.starts_with("weft_dns_udp_socket_requests_total{socket="))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(per_socket.len(), 2, "one counter per socket:\n{metrics}");
        assert_eq!(per_socket.iter().sum::<u64>(), 64, "{metrics}");
        assert!(per_socket.iter().all(|n| *n > 0), "the kernel spreads flows over both sockets: {per_socket:?}");
        assert!(metrics.contains("weft_dns_request_duration_seconds_count 64"), "{metrics}");
        // Timed from the kernel's receive stamp (real-time clock) onto the monotonic one:
        // a conversion gone wrong would show as years, not the microseconds of an answer.
        assert!(metrics.contains(r#"weft_dns_request_duration_seconds_bucket{le="1.0"} 64"#), "{metrics}");
        server.stop();
    });
}
