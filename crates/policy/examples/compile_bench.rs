//! Compile time of the NetworkPolicy model at the scale: 10,000 pods and 1,000
//! policies of realistic shapes, all on one node, then spread over 100 nodes (compiling
//! one of them). Prints the time of a full compile and of the recompile after one
//! policy change, one pod label change and one namespace label change.
//!
//!     cargo run --release -p weft-policy --example compile_bench

use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use weft_policy::{Cluster, NamedPort, PodInfo, PodKey, Protocol};

const NAMESPACES: usize = 100;
const PODS_PER_NAMESPACE: usize = 100;
const APPS: usize = 10;

fn labels(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn pod(ns: usize, j: usize, nodes: usize) -> PodInfo {
    let n = ns * PODS_PER_NAMESPACE + j + 1;
    let app = j % APPS;
    PodInfo {
        key: PodKey { namespace: format!("ns-{ns}"), name: format!("app-{app}-{j}") },
        labels: labels(&[("app", format!("app-{app}")), ("tier", if app < 3 { "front" } else { "back" }.to_string())]),
        ips: vec![format!("10.{}.{}.{}", 244 + n / 65536, (n / 256) % 256, n % 256).parse().unwrap()],
        host_network: false,
        node: Some(format!("n{}", (ns + j) % nodes)),
        ports: vec![
            NamedPort { name: "http".into(), port: if app % 2 == 0 { 8080 } else { 9090 }, protocol: Protocol::Tcp },
            NamedPort { name: "metrics".into(), port: 9100, protocol: Protocol::Tcp },
        ],
    }
}

/// Ten shapes per namespace: a default deny, app-to-app allows, namespace selectors,
/// named ports in both directions, an ipBlock with except, endPort ranges.
fn policy(ns: usize, k: usize, variant: u16) -> NetworkPolicy {
    let name = format!("np-{k}");
    let meta = json!({"namespace": format!("ns-{ns}"), "name": name});
    let app = |a: usize| json!({"matchLabels": {"app": format!("app-{}", a % APPS)}});
    let spec = match k {
        0 => json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        1..=5 => json!({"podSelector": app(k), "ingress": [{"from": [{"podSelector": app(k + 1)}], "ports": [{"port": 8080 + variant}]}]}),
        6 => json!({"podSelector": app(6), "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": format!("t{}", ns % 10)}}}], "ports": [{"port": "http"}]}]}),
        7 => json!({"podSelector": app(7), "policyTypes": ["Egress"], "egress": [
            {"to": [{"podSelector": app(8)}], "ports": [{"port": "http"}]},
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ns-0"}}}], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}),
        8 => json!({"podSelector": app(8), "ingress": [{"from": [{"ipBlock": {"cidr": "172.16.0.0/12", "except": ["172.16.5.0/24"]}}], "ports": [{"port": 443}]}]}),
        _ => json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}, "podSelector": app(2)}], "ports": [{"port": 8080, "endPort": 8090}, {"port": "metrics"}]}]}),
    };
    serde_json::from_value(json!({"metadata": meta, "spec": spec})).unwrap()
}

/// Wall time and this thread's CPU time (from /proc/thread-self/schedstat), which is
/// less disturbed when other work shares the machine.
#[derive(Clone, Copy)]
struct Took {
    wall: Duration,
    cpu: Option<Duration>,
}

impl std::fmt::Display for Took {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        match self.cpu {
            Some(cpu) => write!(f, "{:8.2} ms cpu ({:8.2} ms wall)", ms(cpu), ms(self.wall)),
            None => write!(f, "{:8.2} ms wall", ms(self.wall)),
        }
    }
}

fn cpu_now() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(s.split_whitespace().next()?.parse().ok()?))
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Took) {
    let (c0, t) = (cpu_now(), Instant::now());
    let out = f();
    let wall = t.elapsed();
    let cpu = cpu_now().zip(c0).map(|(b, a)| b.saturating_sub(a));
    (out, Took { wall, cpu })
}

fn run(nodes: usize) {
    let (mut c, load) = timed(|| {
        let mut c = Cluster::new();
        for ns in 0..NAMESPACES {
            c.set_namespace(&format!("ns-{ns}"), labels(&[("team", format!("t{}", ns % 10)), ("env", if ns % 2 == 0 { "prod" } else { "dev" }.into())]));
            for j in 0..PODS_PER_NAMESPACE {
                c.set_pod(pod(ns, j, nodes));
            }
            for k in 0..10 {
                c.apply_policy(&policy(ns, k, 0)).unwrap();
            }
        }
        c
    });
    let node = "n0";
    let (plan, full) = timed(|| c.compile_node(node));
    let entries: usize = plan.groups.values().map(|g| g.any.len() + g.ports.len()).sum();
    println!(
        "{} pods on {nodes} node(s), {} policies; compiling {node}: {} local pods isolated for ingress, {} for egress, {} groups, {entries} entries",
        NAMESPACES * PODS_PER_NAMESPACE,
        NAMESPACES * 10,
        plan.ingress.len(),
        plan.egress.len(),
        plan.groups.len()
    );
    println!("  load the model (namespaces, pods, policies): {load}");
    println!("  full compile:                                {full}");
    let (_, again) = timed(|| c.compile_node(node));
    println!("  recompile, nothing changed:                  {again}");
    let (_, apply) = timed(|| c.apply_policy(&policy(42, 3, 1)).unwrap());
    let (after, t) = timed(|| c.compile_node(node));
    println!("  one policy changed: apply {apply}, recompile {t}");
    let moved = after.groups.len();
    let mut p = pod(17, 2, nodes);
    p.labels.insert("app".into(), "app-5".into());
    let (_, apply) = timed(|| c.set_pod(p));
    let (_, t) = timed(|| c.compile_node(node));
    println!("  one pod's labels changed: apply {apply}, recompile {t}");
    let (_, apply) = timed(|| c.set_namespace("ns-3", labels(&[("team", "t4".into()), ("env", "prod".into())])));
    let (_, t) = timed(|| c.compile_node(node));
    println!("  one namespace's labels changed: apply {apply}, recompile {t}");
    let (_, t) = timed(|| Cluster::clone(&c).compile_node(node));
    println!("  clone + full compile from scratch:           {t} ({moved} groups after the policy change)");
}

fn main() {
    run(1);
    run(100);
}
