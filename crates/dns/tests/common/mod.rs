//! The conformance vectors (shared/conformance/dns/vectors.md) and weft's own table of
//! the specification's rules, as data: the pure tests and the packet tests both run it.
#![allow(dead_code)]

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use weft_dns::{Config, PodRecords};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fx {
    /// 7.1's objects.
    Forward,
    /// reverse_test.go's objects, with its reverse zones.
    Reverse,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setup {
    Default,
    IgnoreEmpty,
    Pods(PodRecords),
    /// Before the first sync.
    Unsynced,
}

#[derive(Clone)]
pub struct Vector {
    pub id: &'static str,
    pub fx: Fx,
    pub setup: Setup,
    pub name: &'static str,
    pub qtype: RecordType,
    pub rcode: ResponseCode,
    /// `owner ttl TYPE rdata`; compared as a set unless `ordered`.
    pub answers: &'static [&'static str],
    pub additionals: &'static [&'static str],
    /// The owner of the SOA expected in Authority (NXDOMAIN, NODATA), if any.
    pub soa: Option<&'static str>,
    /// Answers must come in this order (a CNAME precedes its target).
    pub ordered: bool,
    /// The answer needs the upstream stub: ext.interwebs.test. A 1.2.3.4, truncated.
    pub upstream: bool,
    pub tc: bool,
}

const V: Vector = Vector {
    id: "",
    fx: Fx::Forward,
    setup: Setup::Default,
    name: "",
    qtype: RecordType::A,
    rcode: ResponseCode::NoError,
    answers: &[],
    additionals: &[],
    soa: None,
    ordered: false,
    upstream: false,
    tc: false,
};

const Z: Option<&str> = Some("cluster.local.");
const NX: ResponseCode = ResponseCode::NXDomain;
use RecordType::*;

pub fn vectors() -> Vec<Vector> {
    let s1 = "svc1.testns.svc.cluster.local.";
    let h = "hdls1.testns.svc.cluster.local.";
    vec![
        // 7.2 forward lookups.
        Vector { id: "F1", name: "svc1.testns.svc.cluster.local.", answers: &["svc1.testns.svc.cluster.local. 5 A 10.0.0.1"], ..V },
        Vector { id: "F2", name: "svcempty.testns.svc.cluster.local.", answers: &["svcempty.testns.svc.cluster.local. 5 A 10.0.0.1"], ..V },
        Vector { id: "F3", setup: Setup::IgnoreEmpty, name: "svcempty.testns.svc.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "F4", name: s1, qtype: AAAA, soa: Z, ..V },
        Vector { id: "F5a", name: "svc0.testns.svc.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "F5b", name: "svc0.testns.svc.cluster.local.", qtype: AAAA, rcode: NX, soa: Z, ..V },
        Vector { id: "F6a", name: "svc0.svc-nons.svc.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "F6b", name: "svc0.svc-nons.svc.cluster.local.", qtype: TXT, rcode: NX, soa: Z, ..V },
        Vector { id: "F7", name: "svc6.testns.svc.cluster.local.", qtype: AAAA, answers: &["svc6.testns.svc.cluster.local. 5 AAAA 1234:abcd::1"], ..V },
        Vector { id: "F8a", name: "svc-dual-stack.testns.svc.cluster.local.", answers: &["svc-dual-stack.testns.svc.cluster.local. 5 A 10.0.0.3"], ..V },
        Vector { id: "F8b", name: "svc-dual-stack.testns.svc.cluster.local.", qtype: AAAA, answers: &["svc-dual-stack.testns.svc.cluster.local. 5 AAAA 10::3"], ..V },
        Vector {
            id: "F10",
            name: "_http._tcp.svc1.testns.svc.cluster.local.",
            qtype: SRV,
            answers: &["_http._tcp.svc1.testns.svc.cluster.local. 5 SRV 0 100 80 svc1.testns.svc.cluster.local."],
            additionals: &["svc1.testns.svc.cluster.local. 5 A 10.0.0.1"],
            ..V
        },
        Vector { id: "F11", name: s1, qtype: SRV, answers: &["svc1.testns.svc.cluster.local. 5 SRV 0 100 80 svc1.testns.svc.cluster.local."], additionals: &["svc1.testns.svc.cluster.local. 5 A 10.0.0.1"], ..V },
        Vector {
            id: "F12",
            name: h,
            answers: &["hdls1.testns.svc.cluster.local. 5 A 172.0.0.2", "hdls1.testns.svc.cluster.local. 5 A 172.0.0.3", "hdls1.testns.svc.cluster.local. 5 A 172.0.0.4", "hdls1.testns.svc.cluster.local. 5 A 172.0.0.5"],
            ..V
        },
        Vector { id: "F13", name: h, qtype: AAAA, answers: &["hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::1", "hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::2"], ..V },
        Vector { id: "F14", name: "hdlsprtls.testns.svc.cluster.local.", answers: &["hdlsprtls.testns.svc.cluster.local. 5 A 172.0.0.20"], ..V },
        Vector {
            id: "F15",
            name: "_http._tcp.hdls1.testns.svc.cluster.local.",
            qtype: SRV,
            answers: &[
                "_http._tcp.hdls1.testns.svc.cluster.local. 5 SRV 0 16 80 172-0-0-2.hdls1.testns.svc.cluster.local.",
                "_http._tcp.hdls1.testns.svc.cluster.local. 5 SRV 0 16 80 172-0-0-3.hdls1.testns.svc.cluster.local.",
                "_http._tcp.hdls1.testns.svc.cluster.local. 5 SRV 0 16 80 5678-abcd--1.hdls1.testns.svc.cluster.local.",
                "_http._tcp.hdls1.testns.svc.cluster.local. 5 SRV 0 16 80 5678-abcd--2.hdls1.testns.svc.cluster.local.",
                "_http._tcp.hdls1.testns.svc.cluster.local. 5 SRV 0 16 80 dup-name.hdls1.testns.svc.cluster.local.",
            ],
            additionals: &[
                "172-0-0-2.hdls1.testns.svc.cluster.local. 5 A 172.0.0.2",
                "172-0-0-3.hdls1.testns.svc.cluster.local. 5 A 172.0.0.3",
                "dup-name.hdls1.testns.svc.cluster.local. 5 A 172.0.0.4",
                "dup-name.hdls1.testns.svc.cluster.local. 5 A 172.0.0.5",
                "5678-abcd--1.hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::1",
                "5678-abcd--2.hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::2",
            ],
            ..V
        },
        Vector { id: "F16", name: "172-0-0-2.hdls1.testns.svc.cluster.local.", answers: &["172-0-0-2.hdls1.testns.svc.cluster.local. 5 A 172.0.0.2"], ..V },
        Vector { id: "F17", name: "5678-abcd--1.hdls1.testns.svc.cluster.local.", qtype: AAAA, answers: &["5678-abcd--1.hdls1.testns.svc.cluster.local. 5 AAAA 5678:abcd::1"], ..V },
        Vector { id: "F19", name: "172-0-0-20.hdlsprtls.testns.svc.cluster.local.", answers: &["172-0-0-20.hdlsprtls.testns.svc.cluster.local. 5 A 172.0.0.20"], ..V },
        Vector { id: "F20", name: "bogusendpoint.hdls1.testns.svc.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "F21", name: "bogusendpoint.svc0.testns.svc.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "F22", name: "external.testns.svc.cluster.local.", qtype: CNAME, answers: &["external.testns.svc.cluster.local. 5 CNAME ext.interwebs.test."], ..V },
        Vector {
            id: "F23",
            name: "external.testns.svc.cluster.local.",
            answers: &["external.testns.svc.cluster.local. 5 CNAME ext.interwebs.test.", "ext.interwebs.test. 5 A 1.2.3.4"],
            ordered: true,
            upstream: true,
            tc: true,
            ..V
        },
        Vector { id: "F25a", name: "endpoint.external.testns.svc.cluster.local.", qtype: CNAME, rcode: NX, soa: Z, ..V },
        Vector { id: "F25b", name: "subdomain.subdomain.external.testns.svc.cluster.local.", qtype: CNAME, rcode: NX, soa: Z, ..V },
        Vector { id: "F26", name: "dns-version.cluster.local.", qtype: TXT, answers: &["dns-version.cluster.local. 28800 TXT 1.1.0"], ..V },
        Vector { id: "F28", name: s1, qtype: SOA, soa: Z, ..V },
        Vector { id: "F29a", name: "svc.cluster.local.", soa: Z, ..V },
        Vector { id: "F29b", name: "pod.cluster.local.", soa: Z, ..V },
        Vector { id: "F29c", name: "testns.svc.cluster.local.", soa: Z, ..V },
        Vector { id: "F30a", name: "svc.cluster.local.", qtype: NS, soa: Z, ..V },
        Vector { id: "F30b", name: "testns.svc.cluster.local.", qtype: NS, soa: Z, ..V },
        Vector { id: "F32", name: "cluster.local.", qtype: SOA, answers: &["cluster.local. 5 SOA ns.dns.cluster.local. hostmaster.cluster.local. * 7200 1800 86400 5"], ..V },
        Vector { id: "F33", name: "cluster.local.", qtype: NS, answers: &["cluster.local. 5 NS ns.dns.cluster.local."], additionals: &["ns.dns.cluster.local. 5 A 10.0.0.10"], ..V },
        Vector { id: "F34a", name: "cluster.local.", soa: Z, ..V },
        Vector { id: "F34b", name: "cluster.local.", qtype: AAAA, soa: Z, ..V },
        Vector { id: "F34c", name: "cluster.local.", qtype: SRV, soa: Z, ..V },
        Vector { id: "F34d", name: "cluster.local.", qtype: HINFO, soa: Z, ..V },
        Vector { id: "F37", setup: Setup::Unsynced, name: "svc0.testns.svc.cluster.local.", rcode: ResponseCode::ServFail, soa: Z, ..V },
        // 7.3 pod records.
        Vector { id: "P1", setup: Setup::Pods(PodRecords::Disabled), name: "10-240-0-1.podns.pod.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "P2", setup: Setup::Pods(PodRecords::Insecure), name: "10-240-0-1.podns.pod.cluster.local.", answers: &["10-240-0-1.podns.pod.cluster.local. 5 A 10.240.0.1"], ..V },
        Vector { id: "P4a", setup: Setup::Pods(PodRecords::Insecure), name: "blah.podns.pod.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "P4b", setup: Setup::Pods(PodRecords::Insecure), name: "blah.podns.pod.cluster.local.", qtype: AAAA, rcode: NX, soa: Z, ..V },
        Vector { id: "P4c", setup: Setup::Pods(PodRecords::Insecure), name: "blah.podns.pod.cluster.local.", qtype: HINFO, rcode: NX, soa: Z, ..V },
        Vector { id: "P5a", setup: Setup::Pods(PodRecords::Insecure), name: "podns.pod.cluster.local.", soa: Z, ..V },
        Vector { id: "P5b", setup: Setup::Pods(PodRecords::Verified), name: "podns.pod.cluster.local.", soa: Z, ..V },
        Vector { id: "P6", setup: Setup::Pods(PodRecords::Verified), name: "10-240-0-1.podns.pod.cluster.local.", answers: &["10-240-0-1.podns.pod.cluster.local. 5 A 10.240.0.1"], ..V },
        Vector { id: "P7", setup: Setup::Pods(PodRecords::Verified), name: "172-0-0-2.podns.pod.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "P8", setup: Setup::Pods(PodRecords::Verified), name: "pod-nons.pod.cluster.local.", rcode: NX, soa: Z, ..V },
        // 7.4 reverse lookups.
        Vector { id: "R1", fx: Fx::Reverse, name: "100.0.0.10.in-addr.arpa.", qtype: PTR, answers: &["100.0.0.10.in-addr.arpa. 5 PTR ep1a.svc1.testns.svc.cluster.local."], ..V },
        Vector { id: "R2", fx: Fx::Reverse, name: "100.1.168.192.in-addr.arpa.", qtype: PTR, answers: &["100.1.168.192.in-addr.arpa. 5 PTR svc1.testns.svc.cluster.local."], ..V },
        Vector {
            id: "R3",
            fx: Fx::Reverse,
            name: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.4.3.2.1.ip6.arpa.",
            qtype: PTR,
            answers: &["1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.c.b.a.4.3.2.1.ip6.arpa. 5 PTR ep1b.svc1.testns.svc.cluster.local."],
            ..V
        },
        Vector {
            id: "R4a",
            fx: Fx::Reverse,
            name: "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa.",
            qtype: PTR,
            answers: &["a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa. 5 PTR ip6svc1ex.svc1.testns.svc.cluster.local."],
            ..V
        },
        Vector {
            id: "R4b",
            fx: Fx::Reverse,
            name: "6.a.b.9.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa.",
            qtype: PTR,
            answers: &["6.a.b.9.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.7.7.0.0.0.0.d.f.ip6.arpa. 5 PTR ip6svc1in.svc1.testns.svc.cluster.local."],
            ..V
        },
        Vector { id: "R5", fx: Fx::Reverse, name: "101.0.0.10.in-addr.arpa.", qtype: PTR, rcode: NX, soa: Some("0.10.in-addr.arpa."), ..V },
        Vector { id: "R8", fx: Fx::Reverse, name: s1, qtype: PTR, soa: Z, ..V },
        Vector { id: "R9a", fx: Fx::Reverse, name: "example.org.cluster.local.", qtype: PTR, rcode: NX, soa: Z, ..V },
        Vector { id: "R9b", fx: Fx::Reverse, name: "100.0.0.10.cluster.local.", qtype: PTR, rcode: NX, soa: Z, ..V },
        Vector { id: "R10", fx: Fx::Reverse, name: "svc1.testns.svc.0.10.in-addr.arpa.", rcode: NX, soa: Some("0.10.in-addr.arpa."), ..V },
        // weft's own table: every rule of the specification not covered above.
        Vector { id: "W1 case is preserved", name: "SVC1.TestNS.svc.Cluster.Local.", answers: &["SVC1.TestNS.svc.Cluster.Local. 5 A 10.0.0.1"], ..V },
        Vector { id: "W2 ns.dns is the DNS service", name: "ns.dns.cluster.local.", answers: &["ns.dns.cluster.local. 5 A 10.0.0.10"], ..V },
        Vector { id: "W3 named port, other type: NODATA", name: "_http._tcp.svc1.testns.svc.cluster.local.", soa: Z, ..V },
        Vector { id: "W4 unknown port name: NXDOMAIN", name: "_https._tcp.svc1.testns.svc.cluster.local.", qtype: SRV, rcode: NX, soa: Z, ..V },
        Vector { id: "W5 wrong protocol: NXDOMAIN", name: "_http._udp.svc1.testns.svc.cluster.local.", qtype: SRV, rcode: NX, soa: Z, ..V },
        Vector { id: "W6 endpoint hostname of a ClusterIP service", name: "ep1a.svc1.testns.svc.cluster.local.", answers: &["ep1a.svc1.testns.svc.cluster.local. 5 A 172.0.0.1"], ..V },
        Vector {
            id: "W7 hostname.subdomain with two pods",
            name: "dup-name.hdls1.testns.svc.cluster.local.",
            answers: &["dup-name.hdls1.testns.svc.cluster.local. 5 A 172.0.0.4", "dup-name.hdls1.testns.svc.cluster.local. 5 A 172.0.0.5"],
            ..V
        },
        Vector {
            id: "W8 ExternalName to a cluster service is followed",
            name: "external-to-service.testns.svc.cluster.local.",
            answers: &["external-to-service.testns.svc.cluster.local. 5 CNAME svc1.testns.svc.cluster.local.", "svc1.testns.svc.cluster.local. 5 A 10.0.0.1"],
            ordered: true,
            ..V
        },
        Vector { id: "W9 headless, no ready endpoints: NXDOMAIN", name: "hdlsnotready.testns.svc.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "W10 other type on a service: NODATA", name: s1, qtype: MX, soa: Z, ..V },
        Vector { id: "W11 other type on a headless service: NODATA", name: h, qtype: TXT, soa: Z, ..V },
        Vector { id: "W12 dns-version, other type: NODATA", name: "dns-version.cluster.local.", soa: Z, ..V },
        Vector { id: "W13 zone transfer refused", name: "cluster.local.", qtype: AXFR, rcode: ResponseCode::Refused, ..V },
        Vector { id: "W14 pod record, IPv6", setup: Setup::Pods(PodRecords::Insecure), name: "1234-abcd--1.podns.pod.cluster.local.", qtype: AAAA, answers: &["1234-abcd--1.podns.pod.cluster.local. 5 AAAA 1234:abcd::1"], ..V },
        Vector { id: "W15 pod record, address of the other family: NODATA", setup: Setup::Pods(PodRecords::Insecure), name: "10-240-0-1.podns.pod.cluster.local.", qtype: AAAA, soa: Z, ..V },
        Vector {
            id: "W16 PTR of a cluster IP shared by two services",
            name: "1.0.0.10.in-addr.arpa.",
            qtype: PTR,
            answers: &["1.0.0.10.in-addr.arpa. 5 PTR svc1.testns.svc.cluster.local.", "1.0.0.10.in-addr.arpa. 5 PTR svcempty.testns.svc.cluster.local."],
            ..V
        },
        Vector { id: "W17 PTR of a headless endpoint", name: "2.0.0.172.in-addr.arpa.", qtype: PTR, answers: &["2.0.0.172.in-addr.arpa. 5 PTR 172-0-0-2.hdls1.testns.svc.cluster.local."], ..V },
        Vector { id: "W18 PTR, other type: NODATA", name: "2.0.0.172.in-addr.arpa.", soa: Some("in-addr.arpa."), ..V },
        Vector { id: "W19 existing namespace under pod, pods disabled: NXDOMAIN", setup: Setup::Pods(PodRecords::Disabled), name: "podns.pod.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "W20 ExternalName, SRV on a port: NXDOMAIN", name: "_http._tcp.external.testns.svc.cluster.local.", qtype: SRV, rcode: NX, soa: Z, ..V },
        Vector { id: "W21 unknown namespace: NXDOMAIN", name: "nsnoexist.svc.cluster.local.", rcode: NX, soa: Z, ..V },
        Vector { id: "W22 empty non-terminal dns: NODATA", name: "dns.cluster.local.", soa: Z, ..V },
    ]
}

/// The configuration a vector runs under.
pub fn config(v: &Vector) -> Config {
    let mut c = Config::new("cluster.local", vec![]);
    c.dns_service = ("kube-system".into(), "kubedns".into());
    match v.setup {
        Setup::IgnoreEmpty => c.ignore_empty_service = true,
        Setup::Pods(p) => c.pod_records = p,
        Setup::Default | Setup::Unsynced => {}
    }
    if v.fx == Fx::Reverse {
        let data = [("reverseZones".to_string(), weft_dns::fixture::REVERSE_ZONES.to_string())].into_iter().collect();
        c = Config::with_configmap(&c, &data).unwrap();
    }
    c
}

pub fn objects(v: &Vector) -> Vec<serde_json::Value> {
    match v.fx {
        Fx::Forward => weft_dns::fixture::conformance(),
        Fx::Reverse => weft_dns::fixture::reverse(),
    }
}

/// `owner ttl TYPE rdata`, with the SOA serial as `*`.
pub fn show(r: &Record) -> String {
    let data = match &r.data {
        hickory_proto::rr::RData::SOA(s) => format!("{} {} * {} {} {} {}", s.mname, s.rname, s.refresh, s.retry, s.expire, s.minimum),
        hickory_proto::rr::RData::TXT(t) => t.txt_data.iter().map(|d| String::from_utf8_lossy(d).to_string()).collect::<Vec<_>>().join(" "),
        d => d.to_string(),
    };
    format!("{} {} {} {}", r.name, r.ttl, r.record_type(), data)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Checks a response against a vector; the error says what differs.
pub fn check(v: &Vector, m: &Message) -> Result<(), String> {
    let mut errs = vec![];
    if m.response_code != v.rcode {
        errs.push(format!("rcode {:?}, want {:?}", m.response_code, v.rcode));
    }
    let got: Vec<String> = m.answers.iter().map(show).collect();
    let want: Vec<String> = v.answers.iter().map(|s| s.to_string()).collect();
    if v.ordered {
        if got != want {
            errs.push(format!("answers {got:#?}, want in this order {want:#?}"));
        }
    } else if sorted(got.clone()) != sorted(want.clone()) {
        errs.push(format!("answers {got:#?}, want {want:#?}"));
    }
    let add: Vec<String> = m.additionals.iter().map(show).collect();
    if sorted(add.clone()) != sorted(v.additionals.iter().map(|s| s.to_string()).collect()) {
        errs.push(format!("additionals {add:#?}, want {:#?}", v.additionals));
    }
    let soa: Vec<String> = m.authorities.iter().filter(|r| r.record_type() == RecordType::SOA).map(|r| r.name.to_string()).collect();
    match v.soa {
        Some(z) if soa != [z.to_string()] => errs.push(format!("authority SOA owners {soa:?}, want [{z}]")),
        None if !soa.is_empty() => errs.push(format!("authority SOA {soa:?}, want none")),
        _ => {}
    }
    if m.truncation != v.tc {
        errs.push(format!("TC {}, want {}", m.truncation, v.tc));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("{} ({} {}): {}", v.id, v.name, v.qtype, errs.join("; ")))
    }
}

pub mod client;
pub mod stub;

/// Starts a server for `dns` on 127.0.0.1 (a free port), two UDP sockets, metrics on.
pub fn serve(dns: &std::sync::Arc<weft_dns::Dns>) -> weft_dns::Running {
    let spec = weft_dns::ServerSpec {
        netns: None,
        listen: vec![weft_dns::Listen { dns: "127.0.0.1:0".parse().unwrap(), http: Some("127.0.0.1:0".parse().unwrap()) }],
        udp_sockets: 2,
    };
    weft_dns::server::start(dns.clone(), &spec).expect("DNS server starts")
}

/// The stub upstream's table for the vectors: F23's truncated answer.
pub fn upstream_table() -> stub::Table {
    vec![("ext.interwebs.test.", std::net::Ipv4Addr::new(1, 2, 3, 4), 5, true)]
}
