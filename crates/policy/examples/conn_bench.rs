//! What NetworkPolicy costs each connection: TCP connection set-up latency and request
//! rate between two pods on one node's bridge, with 0, 10 and 1,000 policies in force,
//! as ratios to the 0-policy case, in one run (needs root; everything happens in network
//! namespaces of its own).
//!
//! ```text
//! cargo run --release -p weft-policy --example conn_bench -- [rounds] [connections] [requests]
//! ```
//! Each policy count is compiled from a real model (10,000 pods over 100 nodes, the
//! client and the server among this node's, every policy selecting the server and
//! allowing one team on the server's port, plus egress policies on the client) and
//! applied by the enforcer, with the flow recorder's NFLOG group being read, as on a
//! weft node. Rounds alternate the policy counts so that drift hits all of them alike.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_kernel::{run_in, sysctl, Handle, Netns, Route, VethSpec};
use weft_policy::apply::PolicyApplier;
use weft_policy::{Cluster, NamedPort, PodInfo, PodKey, Protocol};

const PORT: u16 = 8080;
const CLIENT: &str = "10.244.0.2";
const SERVER: &str = "10.244.0.3";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn pod(name: &str, ip: IpAddr, node: &str, l: &[(&str, &str)]) -> PodInfo {
    PodInfo {
        key: PodKey { namespace: "bench".into(), name: name.into() },
        labels: labels(l),
        ips: vec![ip],
        host_network: false,
        node: Some(node.into()),
        ports: vec![NamedPort { name: "http".into(), port: PORT, protocol: Protocol::Tcp }],
    }
}

/// The model with `n` policies: 10,000 pods in teams over 100 nodes, the client (team
/// t1) and the server on node-0; policy i admits team t<i> to the server's http port;
/// every tenth policy also limits the client's egress to the cluster on that port.
fn model(n: usize) -> Cluster {
    let mut c = Cluster::new();
    c.set_namespace("bench", labels(&[("kubernetes.io/metadata.name", "bench")]));
    c.set_pod(pod("client", CLIENT.parse().unwrap(), "node-0", &[("team", "t1"), ("role", "client")]));
    c.set_pod(pod("server", SERVER.parse().unwrap(), "node-0", &[("tier", "backend")]));
    for i in 0..10_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 245, 0, 0)) + i));
        let team = format!("t{}", i % 1000);
        c.set_pod(pod(&format!("p{i}"), ip, &format!("node-{}", 1 + i % 99), &[("team", &team)]));
    }
    for i in 0..n {
        let mut spec = serde_json::json!({
            "podSelector": {"matchLabels": {"tier": "backend"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"team": format!("t{i}")}}}], "ports": [{"protocol": "TCP", "port": "http"}]}],
        });
        if i % 10 == 0 {
            spec = serde_json::json!({
                "podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["client"]}]},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/15", "except": [format!("10.245.{}.0/24", i % 200)]}}], "ports": [{"protocol": "TCP", "port": PORT, "endPort": PORT + i as u16 % 5}]}],
            });
        }
        let np = serde_json::from_value(serde_json::json!({"metadata": {"namespace": "bench", "name": format!("np{i}"), "uid": format!("uid-{i}")}, "spec": spec})).unwrap();
        c.apply_policy(&np).unwrap();
    }
    c
}

async fn lab(dir: &std::path::Path) -> (Netns, Netns, Netns) {
    let node = Netns::create(&dir.join("node")).unwrap();
    let n = Handle::open(&node).unwrap();
    let lo = n.link("lo").await.unwrap().index;
    n.set_link_up(lo).await.unwrap();
    n.create_bridge("br0", None, None, true).await.unwrap();
    let br = n.link("br0").await.unwrap().index;
    n.add_address(br, "10.244.0.1/24".parse().unwrap()).await.unwrap();
    n.set_link_up(br).await.unwrap();
    sysctl::enable_ip_forward(Some(&node)).unwrap();
    let mut pods = Vec::new();
    for (i, ip) in [CLIENT, SERVER].into_iter().enumerate() {
        let ns = Netns::create(&dir.join(format!("p{i}"))).unwrap();
        n.create_veth(&VethSpec { name: &format!("veth{i}"), peer_name: "eth0", peer_ns: Some(&ns), up: true, master: Some(br), ..Default::default() }).await.unwrap();
        let p = Handle::open(&ns).unwrap();
        for name in ["lo", "eth0"] {
            let l = p.link(name).await.unwrap().index;
            p.set_link_up(l).await.unwrap();
        }
        let eth0 = p.link("eth0").await.unwrap().index;
        p.add_address(eth0, format!("{ip}/24").parse().unwrap()).await.unwrap();
        p.add_route(&Route::via("0.0.0.0/0".parse().unwrap(), "10.244.0.1".parse().unwrap())).await.unwrap();
        pods.push(ns);
    }
    let server = pods.pop().unwrap();
    let client = pods.pop().unwrap();
    (node, client, server)
}

/// Answers each 1-byte request with 1 byte, on every connection, until `stop`.
fn serve(ns: &Netns, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let l = run_in(ns, || TcpListener::bind((SERVER, PORT))).unwrap().unwrap();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_nodelay(true).unwrap();
                    std::thread::spawn(move || {
                        let mut b = [0u8; 1];
                        while s.read_exact(&mut b).is_ok() && s.write_all(&b).is_ok() {}
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    })
}

/// Median connection set-up (connect + one exchange) in µs over `count` connections.
fn setup_us(client: &Netns, count: usize) -> f64 {
    let to: SocketAddr = (SERVER.parse::<IpAddr>().unwrap(), PORT).into();
    run_in(client, || {
        let mut t: Vec<f64> = (0..count)
            .map(|_| {
                let start = Instant::now();
                let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2)).expect("the client reaches the server (policy allows it)");
                s.set_nodelay(true).unwrap();
                let mut b = [7u8; 1];
                s.write_all(&b).unwrap();
                s.read_exact(&mut b).unwrap();
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    })
    .unwrap()
}

/// Requests per second over one kept-alive connection.
fn rate(client: &Netns, count: usize) -> f64 {
    let to: SocketAddr = (SERVER.parse::<IpAddr>().unwrap(), PORT).into();
    run_in(client, || {
        let mut s = TcpStream::connect(to).unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [7u8; 1];
        let start = Instant::now();
        for _ in 0..count {
            s.write_all(&b).unwrap();
            s.read_exact(&mut b).unwrap();
        }
        count as f64 / start.elapsed().as_secs_f64()
    })
    .unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (rounds, conns, requests) = (arg(1, 5), arg(2, 2000), arg(3, 20000));
    let counts = [0usize, 10, 1000];
    let plans: Vec<_> = counts
        .iter()
        .map(|&n| {
            let t = Instant::now();
            let plan = model(n).compile_node("node-0");
            println!("{n:>5} policies: compiled in {:>7.1} ms; server ingress isolated: {}, client egress isolated: {}, groups {}", t.elapsed().as_secs_f64() * 1e3, plan.ingress.contains_key(&SERVER.parse::<IpAddr>().unwrap()), plan.egress.contains_key(&CLIENT.parse::<IpAddr>().unwrap()), plan.groups.len());
            plan
        })
        .collect();
    weft_testns::run_async("policy_conn_bench", |t| async move {
        let (node, client, server) = lab(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let srv = serve(&server, stop.clone());
        // The flow recorder's group is read, as on a node.
        let mut log = weft_kernel::nflog::Nflog::open(Some(&node), weft_policy::plan::FLOW_LOG_GROUP, 128).unwrap();
        let reading = stop.clone();
        let logged = std::thread::spawn(move || {
            let mut n = 0usize;
            while !reading.load(Ordering::Relaxed) {
                n += log.recv(Some(Duration::from_millis(100))).map(|v| v.len()).unwrap_or(0);
            }
            n
        });
        let mut ap = PolicyApplier::open(&node).unwrap();
        let mut setup: Vec<Vec<f64>> = vec![vec![]; counts.len()];
        let mut rates: Vec<Vec<f64>> = vec![vec![]; counts.len()];
        for r in 0..rounds {
            for (i, plan) in plans.iter().enumerate() {
                let t = Instant::now();
                ap.apply(plan).unwrap();
                let applied = t.elapsed();
                setup[i].push(setup_us(&client, conns));
                rates[i].push(rate(&client, requests));
                if r == 0 {
                    println!("{:>5} policies: applied in {:>7.1} ms", counts[i], applied.as_secs_f64() * 1e3);
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        srv.join().unwrap();
        let logged = logged.join().unwrap();
        let base = (median(&mut setup[0].clone()), median(&mut rates[0].clone()));
        println!("\n{rounds} rounds; {conns} connections and {requests} requests per round and count; {logged} new connections logged to the flow recorder");
        println!("{:>9} {:>16} {:>10} {:>14} {:>10}", "policies", "set-up p50 (µs)", "ratio", "requests/s", "ratio");
        for (i, n) in counts.iter().enumerate() {
            let (s, q) = (median(&mut setup[i]), median(&mut rates[i]));
            // Set-up as a speed ratio (higher is better), like the request rate.
            println!("{n:>9} {s:>16.1} {:>10.3} {q:>14.0} {:>10.3}", base.0 / s, q / base.1);
        }
        drop(ap);
        drop((node, client, server));
        for name in ["node", "p0", "p1"] {
            Netns::remove(&t.dir().join(name)).unwrap();
        }
    });
}
