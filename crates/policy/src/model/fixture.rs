//! Test fixtures: the upstream e2e model (namespaces x, y, z; pods a, b, c with the
//! label `pod`, serving TCP, UDP and SCTP on 80 and 81 through named containerPorts
//! `serve-<port>-<proto>`), and helpers to state expectations over its matrix.

use super::{Cluster, Labels, NamedPort, PodInfo, PodKey, Protocol};
use crate::evaluate::{Query, Verdict};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use std::net::IpAddr;

pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const PODS: [&str; 3] = ["a", "b", "c"];

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn key(s: &str) -> PodKey {
    let (namespace, name) = s.split_once('/').expect("ns/name");
    PodKey { namespace: namespace.into(), name: name.into() }
}

pub fn serve_ports() -> Vec<NamedPort> {
    let mut out = Vec::new();
    for port in [80, 81] {
        for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            out.push(NamedPort { name: format!("serve-{port}-{}", protocol.as_str().to_lowercase()), port, protocol });
        }
    }
    out
}

/// `x/a` is 10.0.1.1 and fd00::1:1, `z/c` is 10.0.3.3 and fd00::3:3; x on node n1, y
/// and z on node n2.
pub fn pod(s: &str, pod_labels: Labels, ports: Vec<NamedPort>) -> PodInfo {
    let k = key(s);
    let ns = NAMESPACES.iter().position(|n| *n == k.namespace).map(|i| i + 1).unwrap_or(9);
    let n = PODS.iter().position(|n| *n == k.name).map(|i| i + 1).unwrap_or(9);
    PodInfo {
        labels: pod_labels,
        ips: vec![format!("10.0.{ns}.{n}").parse().unwrap(), format!("fd00::{ns}:{n}").parse().unwrap()],
        host_network: false,
        node: Some(if ns == 1 { "n1" } else { "n2" }.to_string()),
        ports,
        key: k,
    }
}

pub fn xyz() -> Cluster {
    let mut c = Cluster::new();
    for ns in NAMESPACES {
        c.set_namespace(ns, labels(&[("ns", ns)]));
        for p in PODS {
            c.set_pod(pod(&format!("{ns}/{p}"), labels(&[("pod", p)]), serve_ports()));
        }
    }
    c
}

pub fn all_pods(c: &Cluster) -> Vec<String> {
    c.pods().filter(|p| !p.host_network).map(|p| p.key.to_string()).collect()
}

/// The pod's first (IPv4) address.
pub fn ip(c: &Cluster, pod: &str) -> IpAddr {
    c.pod(&key(pod)).unwrap_or_else(|| panic!("no pod {pod}")).ips[0]
}

pub fn np(v: serde_json::Value) -> NetworkPolicy {
    serde_json::from_value(v).expect("a NetworkPolicy")
}

pub fn apply(c: &mut Cluster, v: serde_json::Value) {
    c.apply_policy(&np(v)).expect("valid policy");
}

pub fn query(c: &Cluster, from: &str, to: &str, protocol: Protocol, port: u16) -> Query {
    Query { src: ip(c, from), dst: ip(c, to), protocol, port }
}

pub fn verdict(c: &Cluster, from: &str, to: &str, protocol: Protocol, port: u16) -> Verdict {
    c.evaluate(&query(c, from, to, protocol, port))
}

/// Asserts every cell of the matrix (every pod to every pod, diagonal included) on
/// `protocol`/`port` against `want(from, to)`, listing all the wrong cells.
pub fn expect_matrix(c: &Cluster, protocol: Protocol, port: u16, want: impl Fn(&str, &str) -> bool) {
    let pods = all_pods(c);
    let mut wrong = Vec::new();
    for from in &pods {
        for to in &pods {
            let got = verdict(c, from, to, protocol, port).allowed();
            if got != want(from, to) {
                wrong.push(format!("{from} -> {to}: got {}", if got { "allowed" } else { "denied" }));
            }
        }
    }
    assert!(wrong.is_empty(), "{} {port}: wrong cells:\n{}", protocol.as_str(), wrong.join("\n"));
}

pub fn ns_of(pod: &str) -> &str {
    pod.split_once('/').unwrap().0
}
