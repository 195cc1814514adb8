//! The answer function: one question and the zone model in, what to answer out. Pure.
//!
//! Follows the Kubernetes DNS-Based Service Discovery specification 1.1.0 and CoreDNS's
//! kubernetes plugin where the specification leaves room (NXDOMAIN only for names that
//! do not exist at all; an existing name without the asked type is NODATA with the SOA).

use crate::config::{fqdn, Config, PodRecords};
use crate::names::{parse_dashed, parse_reverse};
use crate::zone::{Kind, Service, Zone};
use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::net::IpAddr;

/// The TTL of `dns-version.<zone>` (the specification's example).
const VERSION_TTL: u32 = 28800;
pub const SCHEMA_VERSION: &str = "1.1.0";
/// ExternalName chains inside the cluster are followed this deep.
const MAX_CNAME_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Reply {
    fn of(rcode: ResponseCode) -> Reply {
        Reply { rcode, authoritative: false, answers: vec![], authorities: vec![], additionals: vec![] }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answered from the zone.
    Reply(Reply),
    /// An ExternalName service: `cnames` (in order) lead to `target`, outside the
    /// cluster, to be resolved upstream for `qtype` and appended.
    Chase { cnames: Vec<Record>, target: Name, qtype: RecordType },
    /// Not ours: forward upstream.
    Forward,
    /// A name of the cluster before the first full sync: SERVFAIL, never a wrong NXDOMAIN.
    NotReady,
}

/// What a name holds for the asked type, before it becomes a message.
enum Found {
    NxDomain,
    NoData,
    Records { answers: Vec<Record>, additionals: Vec<Record> },
    /// An ExternalName: the target, lowercase, fully qualified without the trailing dot.
    Cname(String),
}

pub fn answer(zone: &Zone, cfg: &Config, q: &Query) -> Outcome {
    // One lowercase buffer, labels as slices of it: two allocations per question.
    let mut buf = String::with_capacity(q.name().len());
    let mut spans = Vec::with_capacity(q.name().num_labels() as usize);
    for l in q.name().iter() {
        let start = buf.len();
        buf.push_str(&String::from_utf8_lossy(l));
        spans.push((start, buf.len()));
    }
    buf.make_ascii_lowercase();
    let labels: Vec<&str> = spans.iter().map(|(a, b)| &buf[*a..*b]).collect();
    // Compared label by label: a label may itself hold a dot (`x\.cluster.local.`).
    if under(&labels, &cfg.domain) {
        if !zone.ready() {
            return Outcome::NotReady;
        }
        if let Some(r) = refuse(q) {
            return Outcome::Reply(r);
        }
        return cluster(zone, cfg, q.name(), q.query_type(), &labels, 0);
    }
    if under(&labels, "in-addr.arpa") || under(&labels, "ip6.arpa") {
        return reverse(zone, cfg, q, &labels, &labels.join("."));
    }
    Outcome::Forward
}

/// `labels` end with the labels of `domain`.
fn under(labels: &[&str], domain: &str) -> bool {
    let d: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    labels.len() >= d.len() && labels[labels.len() - d.len()..] == d[..]
}

/// Classes other than IN, and zone transfers, are not served.
fn refuse(q: &Query) -> Option<Reply> {
    if q.query_class() != DNSClass::IN {
        return Some(Reply::of(ResponseCode::NotImp));
    }
    matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR).then(|| Reply::of(ResponseCode::Refused))
}

fn cluster(zone: &Zone, cfg: &Config, qname: &Name, qtype: RecordType, labels: &[&str], depth: usize) -> Outcome {
    let rel = &labels[..labels.len() - cfg.domain.split('.').count()];
    let found = lookup(zone, cfg, qname, qtype, rel);
    match found {
        Found::Cname(target) => {
            let cname = Record::from_rdata(qname.clone(), cfg.ttl, RData::CNAME(CNAME(fqdn(&target))));
            if qtype == RecordType::CNAME {
                return Outcome::Reply(Reply { rcode: ResponseCode::NoError, authoritative: true, answers: vec![cname], authorities: vec![], additionals: vec![] });
            }
            let tname = fqdn(&target);
            let tl: Vec<&str> = target.split('.').collect();
            if under(&tl, &cfg.domain) && depth < MAX_CNAME_DEPTH {
                return match cluster(zone, cfg, &tname, qtype, &tl, depth + 1) {
                    Outcome::Reply(mut r) => {
                        r.answers.insert(0, cname);
                        Outcome::Reply(r)
                    }
                    Outcome::Chase { mut cnames, target, qtype } => {
                        cnames.insert(0, cname);
                        Outcome::Chase { cnames, target, qtype }
                    }
                    other => other,
                };
            }
            if under(&tl, &cfg.domain) {
                return Outcome::Reply(Reply::of(ResponseCode::ServFail));
            }
            Outcome::Chase { cnames: vec![cname], target: tname, qtype }
        }
        f => Outcome::Reply(reply(f, || soa(cfg, &cfg.zone_name(), zone.serial))),
    }
}

/// `soa` is only built for negative answers (it costs two name parses).
fn reply(f: Found, soa: impl FnOnce() -> Record) -> Reply {
    let (rcode, answers, authorities, additionals) = match f {
        Found::NxDomain => (ResponseCode::NXDomain, vec![], vec![soa()], vec![]),
        Found::NoData => (ResponseCode::NoError, vec![], vec![soa()], vec![]),
        Found::Records { answers, additionals } if answers.is_empty() => (ResponseCode::NoError, vec![], vec![soa()], additionals),
        Found::Records { answers, additionals } => (ResponseCode::NoError, answers, vec![], additionals),
        Found::Cname(_) => unreachable!("handled by the caller"),
    };
    Reply { rcode, authoritative: true, answers, authorities, additionals }
}

/// `zone. TTL IN SOA ns.dns.zone. hostmaster.zone. serial 7200 1800 86400 TTL`.
pub fn soa(cfg: &Config, zone: &Name, serial: u32) -> Record {
    let mname = fqdn(&format!("ns.dns.{}", zone.to_ascii().trim_end_matches('.')));
    let rname = fqdn(&format!("hostmaster.{}", zone.to_ascii().trim_end_matches('.')));
    Record::from_rdata(zone.clone(), cfg.ttl, RData::SOA(SOA::new(mname, rname, serial, 7200, 1800, 86400, cfg.ttl)))
}

fn lookup(zone: &Zone, cfg: &Config, qname: &Name, qtype: RecordType, rel: &[&str]) -> Found {
    match rel {
        [] => apex(zone, cfg, qname, qtype),
        ["dns-version"] => match qtype {
            RecordType::TXT | RecordType::ANY => records(vec![Record::from_rdata(qname.clone(), VERSION_TTL, RData::TXT(TXT::new(vec![SCHEMA_VERSION.into()])))], vec![]),
            _ => Found::NoData,
        },
        ["dns"] | ["svc"] | ["pod"] => Found::NoData,
        ["ns", "dns"] => {
            let ips = dns_service_ips(zone, cfg);
            records(addresses(qname, qtype, ips.iter().copied(), cfg.ttl), vec![])
        }
        [ns, "svc"] if zone.namespace_exists(ns) => Found::NoData,
        [name, ns, "svc"] => service(zone, cfg, qname, qtype, ns, name),
        [port, proto, name, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => named_port(zone, cfg, qname, qtype, ns, name, &port[1..], &proto[1..]),
        [ep, name, ns, "svc"] => endpoint(zone, cfg, qname, qtype, ns, name, ep),
        [ns, "pod"] if cfg.pod_records != PodRecords::Disabled && zone.namespace_exists(ns) => Found::NoData,
        [ip, ns, "pod"] => pod(zone, cfg, qname, qtype, ns, ip),
        _ => Found::NxDomain,
    }
}

fn records(answers: Vec<Record>, additionals: Vec<Record>) -> Found {
    Found::Records { answers, additionals }
}

fn apex(zone: &Zone, cfg: &Config, qname: &Name, qtype: RecordType) -> Found {
    let ns_name = fqdn(&format!("ns.dns.{}", cfg.domain));
    match qtype {
        RecordType::SOA => {
            let mut r = soa(cfg, &cfg.zone_name(), zone.serial);
            r.name = qname.clone();
            records(vec![r], vec![])
        }
        RecordType::NS => {
            let glue = addresses(&ns_name, RecordType::ANY, dns_service_ips(zone, cfg).into_iter(), cfg.ttl);
            records(vec![Record::from_rdata(qname.clone(), cfg.ttl, RData::NS(NS(ns_name)))], glue)
        }
        _ => Found::NoData,
    }
}

fn dns_service_ips(zone: &Zone, cfg: &Config) -> Vec<IpAddr> {
    match zone.service(&cfg.dns_service.0, &cfg.dns_service.1).map(|s| &s.kind) {
        Some(Kind::ClusterIp(ips)) => ips.clone(),
        _ => vec![],
    }
}

/// A and AAAA records of `owner` for the asked type (ANY takes both).
fn addresses(owner: &Name, qtype: RecordType, ips: impl Iterator<Item = IpAddr>, ttl: u32) -> Vec<Record> {
    ips.filter_map(|ip| match (ip, qtype) {
        (IpAddr::V4(a), RecordType::A | RecordType::ANY) => Some(Record::from_rdata(owner.clone(), ttl, RData::A(A(a)))),
        (IpAddr::V6(a), RecordType::AAAA | RecordType::ANY) => Some(Record::from_rdata(owner.clone(), ttl, RData::AAAA(AAAA(a)))),
        _ => None,
    })
    .collect()
}

fn svc_fqdn(cfg: &Config, ns: &str, name: &str) -> String {
    format!("{name}.{ns}.svc.{}", cfg.domain)
}

fn service(zone: &Zone, cfg: &Config, qname: &Name, qtype: RecordType, ns: &str, name: &str) -> Found {
    if !zone.namespace_exists(ns) {
        return Found::NxDomain;
    }
    let Some(svc) = zone.service(ns, name) else { return Found::NxDomain };
    match &svc.kind {
        Kind::External(target) => Found::Cname(target.to_string()),
        Kind::ClusterIp(ips) => {
            if cfg.ignore_empty_service && zone.ready_endpoints(ns, name).is_empty() {
                return Found::NxDomain;
            }
            match qtype {
                RecordType::SRV => cluster_ip_srv(cfg, qname, svc, ips, ns, name, None),
                _ => records(addresses(qname, qtype, ips.iter().copied(), cfg.ttl), vec![]),
            }
        }
        Kind::Headless => {
            let eps = zone.ready_endpoints(ns, name);
            if eps.is_empty() {
                return Found::NxDomain;
            }
            match qtype {
                RecordType::SRV => headless_srv(zone, cfg, qname, ns, name, None),
                _ => records(addresses(qname, qtype, eps.iter().map(|e| e.ip), cfg.ttl), vec![]),
            }
        }
    }
}

/// SRV records of a ClusterIP service: one per (matching) port, target the service.
fn cluster_ip_srv(cfg: &Config, qname: &Name, svc: &Service, ips: &[IpAddr], ns: &str, name: &str, filter: Option<(&str, &str)>) -> Found {
    let target = fqdn(&svc_fqdn(cfg, ns, name));
    // One record per port number: `dns/UDP/53` and `dns-tcp/TCP/53` make one SRV.
    let mut numbers: Vec<u16> = vec![];
    for p in svc.ports.iter().filter(|p| port_matches(&p.name, &p.protocol, filter)) {
        if !numbers.contains(&p.port) {
            numbers.push(p.port);
        }
    }
    let answers = numbers.iter().map(|p| Record::from_rdata(qname.clone(), cfg.ttl, RData::SRV(SRV::new(0, 100, *p, target.clone())))).collect::<Vec<_>>();
    let glue = if answers.is_empty() { vec![] } else { addresses(&target, RecordType::ANY, ips.iter().copied(), cfg.ttl) };
    records(answers, glue)
}

/// SRV records of a headless service: one per (port, endpoint name), weights sharing 100.
fn headless_srv(zone: &Zone, cfg: &Config, qname: &Name, ns: &str, name: &str, filter: Option<(&str, &str)>) -> Found {
    let svc = svc_fqdn(cfg, ns, name);
    let mut targets: Vec<(u16, String, IpAddr)> = vec![];
    for s in zone.slices(ns, name) {
        for p in s.ports.iter().filter(|p| port_matches(&p.name, &p.protocol, filter)) {
            for e in s.endpoints.iter().filter(|e| e.ready) {
                if !targets.iter().any(|(port, _, ip)| *port == p.port && *ip == e.ip) {
                    targets.push((p.port, format!("{}.{svc}", e.label()), e.ip));
                }
            }
        }
    }
    if targets.is_empty() {
        return Found::NoData;
    }
    let weight = (100 / targets.len()).max(1) as u16;
    let (mut answers, mut glue) = (vec![], vec![]);
    let mut seen: Vec<(u16, &str)> = vec![];
    for (port, t, ip) in &targets {
        let tname = fqdn(t);
        if !seen.contains(&(*port, t.as_str())) {
            seen.push((*port, t.as_str()));
            answers.push(Record::from_rdata(qname.clone(), cfg.ttl, RData::SRV(SRV::new(0, weight, *port, tname.clone()))));
        }
        let a = addresses(&tname, RecordType::ANY, std::iter::once(*ip), cfg.ttl);
        for r in a {
            if !glue.contains(&r) {
                glue.push(r);
            }
        }
    }
    records(answers, glue)
}

fn port_matches(name: &str, proto: &str, filter: Option<(&str, &str)>) -> bool {
    match filter {
        None => true,
        Some((n, p)) => !name.is_empty() && name.eq_ignore_ascii_case(n) && proto.eq_ignore_ascii_case(p),
    }
}

#[allow(clippy::too_many_arguments)]
fn named_port(zone: &Zone, cfg: &Config, qname: &Name, qtype: RecordType, ns: &str, name: &str, port: &str, proto: &str) -> Found {
    if !zone.namespace_exists(ns) {
        return Found::NxDomain;
    }
    let Some(svc) = zone.service(ns, name) else { return Found::NxDomain };
    let filter = Some((port, proto));
    let found = match &svc.kind {
        Kind::External(_) => return Found::NxDomain,
        Kind::ClusterIp(ips) => cluster_ip_srv(cfg, qname, svc, ips, ns, name, filter),
        Kind::Headless => headless_srv(zone, cfg, qname, ns, name, filter),
    };
    match found {
        Found::Records { answers, .. } if answers.is_empty() => Found::NxDomain,
        Found::NoData => Found::NxDomain,
        f if qtype == RecordType::SRV || qtype == RecordType::ANY => f,
        _ => Found::NoData,
    }
}

#[allow(clippy::too_many_arguments)]
fn endpoint(zone: &Zone, cfg: &Config, qname: &Name, qtype: RecordType, ns: &str, name: &str, ep: &str) -> Found {
    if !zone.namespace_exists(ns) {
        return Found::NxDomain;
    }
    match zone.service(ns, name).map(|s| &s.kind) {
        None | Some(Kind::External(_)) => return Found::NxDomain,
        Some(_) => {}
    }
    let ips: Vec<IpAddr> = zone.ready_endpoints(ns, name).into_iter().filter(|e| e.label() == ep).map(|e| e.ip).collect();
    if ips.is_empty() {
        return Found::NxDomain;
    }
    records(addresses(qname, qtype, ips.into_iter(), cfg.ttl), vec![])
}

fn pod(zone: &Zone, cfg: &Config, qname: &Name, qtype: RecordType, ns: &str, label: &str) -> Found {
    let Some(ip) = parse_dashed(label) else { return Found::NxDomain };
    match cfg.pod_records {
        PodRecords::Disabled => return Found::NxDomain,
        PodRecords::Insecure => {}
        PodRecords::Verified => {
            if !zone.namespace_exists(ns) || !zone.pod_namespaces(&ip).iter().any(|n| &**n == ns) {
                return Found::NxDomain;
            }
        }
    }
    records(addresses(qname, qtype, std::iter::once(ip), cfg.ttl), vec![])
}

fn reverse(zone: &Zone, cfg: &Config, q: &Query, labels: &[&str], flat: &str) -> Outcome {
    let rz = cfg.reverse_zone_of(flat);
    let ip = parse_reverse(labels);
    let targets = ip.and_then(|ip| zone.ptr(&ip));
    if targets.is_none() && rz.is_none() {
        return Outcome::Forward;
    }
    if !zone.ready() {
        return Outcome::NotReady;
    }
    if let Some(r) = refuse(q) {
        return Outcome::Reply(r);
    }
    let zone_name = fqdn(rz.unwrap_or(if flat.ends_with("ip6.arpa") { "ip6.arpa" } else { "in-addr.arpa" }));
    let soa = || soa(cfg, &zone_name, zone.serial);
    let qname = q.name().clone();
    let found = match targets {
        Some(ts) => match q.query_type() {
            RecordType::PTR | RecordType::ANY => {
                let answers = ts
                    .map(|t| {
                        let svc = svc_fqdn(cfg, &t.namespace, &t.service);
                        let name = match &t.endpoint {
                            Some(e) => format!("{e}.{svc}"),
                            None => svc,
                        };
                        Record::from_rdata(qname.clone(), cfg.ttl, RData::PTR(PTR(fqdn(&name))))
                    })
                    .collect();
                records(answers, vec![])
            }
            _ => Found::NoData,
        },
        None if rz == Some(flat) => match q.query_type() {
            RecordType::SOA => {
                let mut r = soa();
                r.name = qname.clone();
                records(vec![r], vec![])
            }
            _ => Found::NoData,
        },
        None => Found::NxDomain,
    };
    Outcome::Reply(reply(found, soa))
}
