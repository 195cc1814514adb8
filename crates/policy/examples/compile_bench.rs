//! Compile time of the NetworkPolicy model at the scale: 10,000 pods and 1,000
//! policies of realistic shapes, all on one node, then spread over 100 nodes (compiling
//! one of them). Prints the time of a full compile and of the recompile after one
//! policy change, one pod label change and one namespace label change. Then, as root
//! (in a network namespace of its own), compile + apply into the kernel, with all 10,000
//! pods on one node and over 100 nodes: the first sync, and one policy or one pod label
//! change end to end.
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
            NamedPort { name: "http".into(), port: [8080, 9090][app % 2], protocol: Protocol::Tcp },
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

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

/// Runs `change` then a recompile `ROUNDS` times (changes alternate between two states,
/// so every round really changes something) and prints the median and the minimum: on a
/// shared machine the minimum is the closest to the cost of the work itself.
const ROUNDS: usize = 15;

fn rounds(label: &str, c: &mut Cluster, node: &str, mut change: impl FnMut(&mut Cluster, usize)) {
    let (mut applies, mut compiles) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let (_, a) = timed(|| change(c, i));
        let (plan, t) = timed(|| c.compile_node(node));
        std::hint::black_box(plan);
        applies.push(a);
        compiles.push(t);
    }
    applies.sort();
    compiles.sort();
    println!(
        "  {label:<34} recompile median {:>10}, min {:>10}   (model update median {})",
        ms(compiles[ROUNDS / 2]),
        ms(compiles[0]),
        ms(applies[ROUNDS / 2])
    );
}

fn build(nodes: usize) -> Cluster {
    let mut c = Cluster::new();
    for ns in 0..NAMESPACES {
        c.set_namespace(&format!("ns-{ns}"), ns_labels(ns, 0));
        for j in 0..PODS_PER_NAMESPACE {
            c.set_pod(pod(ns, j, nodes));
        }
        for k in 0..10 {
            c.apply_policy(&policy(ns, k, 0)).unwrap();
        }
    }
    c
}

/// Compile + apply into a node's netns (all 10,000 pods local when `nodes` is 1): the
/// first sync, then one policy change and one pod label change, each from the model
/// change to the kernel.
fn apply_at_scale(nodes: usize) {
    weft_testns::run("policy_compile_apply_bench", |t| {
        let ns = weft_kernel::Netns::create(&t.dir().join("node")).unwrap();
        let mut c = build(nodes);
        let mut ap = weft_policy::apply::PolicyApplier::open(&ns).unwrap();
        let (plan, compile) = timed(|| c.compile_node("n0"));
        let (r, apply) = timed(|| ap.apply(&plan).unwrap());
        println!("compile + apply into the kernel, 10,000 pods and 1,000 policies on {nodes} node(s), node n0:");
        println!("  first sync: compile {} + apply {} = {} (weight {}, {} transactions)", ms(compile), ms(apply), ms(compile + apply), r.weight, r.transactions);
        let mut end_to_end = |label: &str, change: &mut dyn FnMut(&mut Cluster, usize)| {
            let mut took: Vec<Duration> = (0..ROUNDS)
                .map(|i| {
                    let t = Instant::now();
                    change(&mut c, i);
                    let plan = c.compile_node("n0");
                    ap.apply(&plan).unwrap();
                    t.elapsed()
                })
                .collect();
            took.sort();
            println!("  {label:<34} model + compile + apply median {:>10}, min {:>10}", ms(took[ROUNDS / 2]), ms(took[0]));
        };
        end_to_end("one policy changed:", &mut |c, i| c.apply_policy(&policy(42, 3, (i % 2 + 1) as u16)).unwrap());
        end_to_end("one pod's labels changed:", &mut |c, i| {
            let mut p = pod(17, 2, nodes);
            if i % 2 == 0 {
                p.labels.insert("app".into(), "app-5".into());
            }
            c.set_pod(p);
        });
        drop(ap);
        drop(ns);
        weft_kernel::Netns::remove(&t.dir().join("node")).unwrap();
    });
}

fn run(nodes: usize) {
    let (mut c, load) = timed(|| build(nodes));
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
    println!("  load the model (namespaces, pods, policies): {}", ms(load));
    println!("  first full compile:                          {}", ms(full));
    let mut fresh: Vec<Duration> = (0..5).map(|_| timed(|| Cluster::clone(&c).compile_node(node)).1).collect();
    fresh.sort();
    println!("  clone + full compile from scratch:           min {}", ms(fresh[0]));
    rounds("nothing changed:", &mut c, node, |_, _| {});
    rounds("one policy changed:", &mut c, node, |c, i| c.apply_policy(&policy(42, 3, (i % 2 + 1) as u16)).unwrap());
    rounds("one pod's labels changed:", &mut c, node, |c, i| {
        let mut p = pod(17, 2, nodes);
        if i % 2 == 0 {
            p.labels.insert("app".into(), "app-5".into());
        }
        c.set_pod(p);
    });
    rounds("one namespace's labels changed:", &mut c, node, |c, i| c.set_namespace("ns-3", ns_labels(3, i % 2 + 1)));
}

/// Namespace `ns`'s labels; `variant` 1 moves it to another team and environment.
fn ns_labels(ns: usize, variant: usize) -> BTreeMap<String, String> {
    let ns = ns + variant % 2;
    labels(&[("team", format!("t{}", ns % 10)), ("env", ["prod", "dev"][ns % 2].into())])
}

fn main() {
    run(1);
    run(100);
    apply_at_scale(1);
    apply_at_scale(100);
}
