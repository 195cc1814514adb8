//! evaluate and compile_node agree: for seeded random small clusters and random
//! changes to them, every (source, destination, protocol, port) that evaluate allows is
//! exactly what the node plans admit (the source pod's egress set on its node and the
//! destination pod's ingress set on its node), and a plan compiled with the cache equals
//! one compiled from scratch.

use crate::evaluate::Query;
use crate::model::{Cluster, NamedPort, PodInfo, PodKey, Protocol};
use crate::plan::NodePlan;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// xorshift64*: small, seeded, reproducible.
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
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const NODES: [&str; 2] = ["n1", "n2"];

fn random_labels(r: &mut Rng, keys: &[(&str, &[&str])]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, values) in keys {
        if r.chance(60) {
            out.insert(k.to_string(), r.pick(values).to_string());
        }
    }
    out
}

fn random_pod(r: &mut Rng, ns_index: usize, i: usize) -> PodInfo {
    let ns = NAMESPACES[ns_index];
    let mut ips: Vec<IpAddr> = Vec::new();
    let host_network = r.chance(10);
    if host_network {
        ips.push(format!("192.168.0.{}", r.below(3) + 1).parse().unwrap());
    } else if !r.chance(8) {
        ips.push(format!("10.0.{}.{}", ns_index + 1, i + 1).parse().unwrap());
        if r.chance(40) {
            ips.push(format!("fd00::{}:{}", ns_index + 1, i + 1).parse().unwrap());
        }
    }
    let mut ports = Vec::new();
    for (name, numbers, protocols) in [
        ("http", &[80u16, 8080][..], &[Protocol::Tcp][..]),
        ("dns", &[53], &[Protocol::Udp, Protocol::Tcp]),
        ("serve-80-tcp", &[80, 81], &[Protocol::Tcp, Protocol::Udp]),
    ] {
        if r.chance(50) {
            ports.push(NamedPort { name: name.into(), port: r.pick(numbers), protocol: r.pick(protocols) });
        }
    }
    ports.sort();
    PodInfo {
        key: PodKey { namespace: ns.into(), name: format!("p{i}") },
        labels: random_labels(r, &[("app", &["web", "db", "api"]), ("tier", &["front", "back"])]),
        ips,
        host_network,
        node: Some(r.pick(&NODES).to_string()),
        ports,
    }
}

fn random_selector(r: &mut Rng) -> Value {
    match r.below(4) {
        0 => json!({}),
        1 => json!({"matchLabels": {"app": r.pick(&["web", "db", "api"])}}),
        2 => json!({"matchLabels": {"team": r.pick(&["red", "blue"])}}),
        _ => {
            let key = r.pick(&["app", "tier", "team", "env"]);
            let op = r.pick(&["In", "NotIn", "Exists", "DoesNotExist"]);
            let values = if op == "In" || op == "NotIn" { json!([r.pick(&["web", "front", "red", "prod"]), r.pick(&["db", "back", "blue", "dev"])]) } else { json!(null) };
            json!({"matchExpressions": [{"key": key, "operator": op, "values": values}]})
        }
    }
}

fn random_peer(r: &mut Rng) -> Value {
    match r.below(5) {
        0 => json!({"podSelector": random_selector(r)}),
        1 => json!({"namespaceSelector": random_selector(r)}),
        2 => json!({"namespaceSelector": random_selector(r), "podSelector": random_selector(r)}),
        _ => {
            let (cidr, excepts): (&str, &[&str]) = r.pick(&[
                ("10.0.0.0/16", &["10.0.1.0/24", "10.0.2.0/30"][..]),
                ("10.0.1.0/24", &["10.0.1.2/32"]),
                ("10.0.2.1/32", &[]),
                ("0.0.0.0/0", &["10.0.0.0/16"]),
                ("fd00::/64", &["fd00::1:0/112"]),
                ("::/0", &["fd00::2:0/112"]),
                ("192.168.0.0/24", &[]),
            ]);
            let except: Vec<&str> = excepts.iter().copied().filter(|_| r.chance(50)).collect();
            json!({"ipBlock": {"cidr": cidr, "except": except}})
        }
    }
}

fn random_port(r: &mut Rng) -> Value {
    let mut p = serde_json::Map::new();
    if r.chance(50) {
        p.insert("protocol".into(), json!(r.pick(&["TCP", "UDP", "SCTP"])));
    }
    match r.below(5) {
        0 => {}
        1 => {
            p.insert("port".into(), json!(r.pick(&[53, 80, 81, 8080])));
        }
        2 => {
            let (a, b) = r.pick(&[(80, 81), (50, 90), (81, 8080)]);
            p.insert("port".into(), json!(a));
            p.insert("endPort".into(), json!(b));
        }
        _ => {
            p.remove("protocol");
            if r.chance(30) {
                p.insert("protocol".into(), json!(r.pick(&["TCP", "UDP"])));
            }
            p.insert("port".into(), json!(r.pick(&["http", "http", "dns", "serve-80-tcp", "nope"])));
        }
    }
    Value::Object(p)
}

fn random_rules(r: &mut Rng, peers_field: &str) -> Value {
    let rules: Vec<Value> = (0..r.below(3) + usize::from(r.chance(60)))
        .map(|_| {
            let mut rule = serde_json::Map::new();
            if r.chance(75) {
                rule.insert(peers_field.into(), Value::Array((0..r.below(3)).map(|_| random_peer(r)).collect()));
            }
            if r.chance(75) {
                rule.insert("ports".into(), Value::Array((0..r.below(3)).map(|_| random_port(r)).collect()));
            }
            Value::Object(rule)
        })
        .collect();
    Value::Array(rules)
}

fn random_policy(r: &mut Rng, name: &str) -> Value {
    let mut spec = serde_json::Map::new();
    spec.insert("podSelector".into(), random_selector(r));
    match r.below(4) {
        0 => {}
        1 => {
            spec.insert("policyTypes".into(), json!(["Ingress"]));
        }
        2 => {
            spec.insert("policyTypes".into(), json!(["Egress"]));
        }
        _ => {
            spec.insert("policyTypes".into(), json!(["Ingress", "Egress"]));
        }
    }
    if r.chance(80) {
        spec.insert("ingress".into(), random_rules(r, "from"));
    }
    if r.chance(70) {
        spec.insert("egress".into(), random_rules(r, "to"));
    }
    json!({"metadata": {"namespace": r.pick(&NAMESPACES), "name": name}, "spec": spec})
}

fn apply_random_policy(r: &mut Rng, c: &mut Cluster, name: &str) {
    let p = random_policy(r, name);
    c.apply_policy(&serde_json::from_value(p.clone()).unwrap()).unwrap_or_else(|e| panic!("generated an invalid policy {p}: {e}"));
}

fn random_cluster(r: &mut Rng) -> Cluster {
    let mut c = Cluster::new();
    let namespaces = 2 + r.below(2);
    for (n, ns) in NAMESPACES.iter().enumerate().take(namespaces) {
        c.set_namespace(ns, random_labels(r, &[("team", &["red", "blue"]), ("env", &["prod", "dev"])]));
        for i in 0..1 + r.below(3) {
            c.set_pod(random_pod(r, n, i));
        }
    }
    for i in 0..1 + r.below(5) {
        apply_random_policy(r, &mut c, &format!("np{i}"));
    }
    c
}

fn mutate(r: &mut Rng, c: &mut Cluster) {
    let pods: Vec<PodInfo> = c.pods().cloned().collect();
    match r.below(6) {
        0 if !pods.is_empty() => {
            let mut p = r.pick(&pods);
            p.labels = random_labels(r, &[("app", &["web", "db", "api"]), ("tier", &["front", "back"])]);
            c.set_pod(p);
        }
        1 => {
            let ns = r.pick(&NAMESPACES);
            c.set_namespace(ns, random_labels(r, &[("team", &["red", "blue"]), ("env", &["prod", "dev"])]));
        }
        2 => {
            let name = format!("np{}", r.below(5));
            apply_random_policy(r, c, &name);
        }
        3 => {
            let p = c.policies().map(|p| (p.namespace.clone(), p.name.clone())).collect::<Vec<_>>();
            if !p.is_empty() {
                let (ns, name) = r.pick(&p);
                c.delete_policy(&ns, &name);
            }
        }
        4 if !pods.is_empty() => c.delete_pod(&r.pick(&pods).key),
        _ => {
            let (n, i) = (r.below(3), r.below(4));
            c.set_pod(random_pod(r, n, i));
        }
    }
}

/// What the plans admit: the source's egress set (if its address is egress-isolated on
/// some node) and the destination's ingress set (likewise).
fn plan_admits(plans: &BTreeMap<&str, NodePlan>, q: &Query) -> bool {
    let egress = plans.values().find_map(|p| p.egress.get(&q.src).map(|g| &p.groups[g]));
    let ingress = plans.values().find_map(|p| p.ingress.get(&q.dst).map(|g| &p.groups[g]));
    egress.is_none_or(|s| s.admits(q.dst, q.protocol, q.port)) && ingress.is_none_or(|s| s.admits(q.src, q.protocol, q.port))
}

/// How often the random cases exercised what the test is about.
#[derive(Default, Debug)]
struct Coverage {
    allowed: usize,
    denied: usize,
    named_ingress: usize,
    named_egress: usize,
    ip_block: usize,
}

/// Counts the cells allowed through a named port or an ipBlock.
fn observe(c: &Cluster, q: &Query, v: &crate::evaluate::Verdict, cov: &mut Coverage) {
    if v.allowed() { cov.allowed += 1 } else { cov.denied += 1 }
    for side in [&v.egress, &v.ingress] {
        let crate::evaluate::Side::Allowed { by } = side else { continue };
        for b in by {
            let rule = &c.policy(&b.namespace, &b.policy).unwrap().rules(b.egress).unwrap()[b.index];
            let serving = c.pod_by_ip(q.dst);
            let named = rule.ports.iter().any(|p| {
                matches!(p.port, crate::model::policy::PortMatch::Named(_)) && crate::evaluate::port_matches(p, serving, q.protocol, q.port)
            });
            match (named, b.egress) {
                (true, true) => cov.named_egress += 1,
                (true, false) => cov.named_ingress += 1,
                _ => {}
            }
            if rule.peers.iter().any(|p| matches!(p, crate::model::policy::Peer::IpBlock { .. })) {
                cov.ip_block += 1;
            }
        }
    }
}

fn check(c: &Cluster, seed: u64, round: usize, cov: &mut Coverage) {
    let plans: BTreeMap<&str, NodePlan> = NODES.iter().map(|n| (*n, c.compile_node(n))).collect();
    let fresh = c.clone();
    for n in NODES {
        assert_eq!(plans[n], fresh.compile_node(n), "seed {seed} round {round}: cached plan of {n} differs from a fresh compile");
        let plan = &plans[n];
        let named: std::collections::BTreeSet<_> = plan.ingress.values().chain(plan.egress.values()).collect();
        assert_eq!(named.len(), plan.groups.len(), "seed {seed}: groups the maps do not name");
    }
    let mut addrs: Vec<IpAddr> = c.pods().flat_map(|p| p.ips.clone()).collect();
    addrs.extend(["203.0.113.5", "10.0.9.9", "10.0.1.2", "fd00::9:9"].iter().map(|a| a.parse::<IpAddr>().unwrap()));
    addrs.sort();
    addrs.dedup();
    let probes = [
        (Protocol::Tcp, 80),
        (Protocol::Tcp, 81),
        (Protocol::Tcp, 8080),
        (Protocol::Tcp, 53),
        (Protocol::Udp, 53),
        (Protocol::Udp, 80),
        (Protocol::Sctp, 80),
        (Protocol::Tcp, 85),
    ];
    for &src in &addrs {
        for &dst in &addrs {
            for (protocol, port) in probes {
                let q = Query { src, dst, protocol, port };
                let v = c.evaluate(&q);
                observe(c, &q, &v, cov);
                assert_eq!(
                    v.allowed(),
                    plan_admits(&plans, &q),
                    "seed {seed} round {round}: {q:?}: evaluate says {v:?}\npolicies: {:#?}\npods: {:#?}",
                    c.policies().collect::<Vec<_>>(),
                    c.pods().collect::<Vec<_>>()
                );
            }
        }
    }
}

#[test]
fn evaluate_and_compiled_plans_agree_on_random_clusters_and_changes() {
    let mut cov = Coverage::default();
    for seed in 1..=80u64 {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut c = random_cluster(&mut r);
        check(&c, seed, 0, &mut cov);
        for round in 1..=6 {
            mutate(&mut r, &mut c);
            check(&c, seed, round, &mut cov);
        }
    }
    // The generator must reach the interesting cases, or the agreement proves little.
    assert!(cov.denied > 1000 && cov.allowed > 1000 && cov.named_ingress > 50 && cov.named_egress > 50 && cov.ip_block > 50, "{cov:?}");
}
