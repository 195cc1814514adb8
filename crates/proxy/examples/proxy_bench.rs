//! The service proxy at scale, in a throwaway netns of its own (needs root):
//!
//!   cargo run --release -p weft-proxy --example proxy_bench -- sync 10000 10
//!   cargo run --release -p weft-proxy --example proxy_bench -- sync 5000 50
//!   cargo run --release -p weft-proxy --example proxy_bench -- latency
//!
//! `sync S E`: S services × E endpoints through ProxyState (compile) and the applier
//! (render, diff, commit) from an empty table, timed from the first object handed to
//! ProxyState to the last kernel commit; the process's resident memory after it (RSS from
//! /proc/self/status once the heap is trimmed as the node agent trims it, and the heap in
//! use, counted by this program's allocator); a restart's resync (read back, diff,
//! nothing to write); then a churn run at that scale, each event timed from the object
//! handed to ProxyState to the kernel commit: 200 endpoint changes, and 100 services
//! each added (without endpoints), given endpoints, changed (a second port) and removed.
//! `latency`: TCP connection set-up through a ClusterIP with 10 and with 10,000 services
//! loaded, and request rate through a ClusterIP against straight to the pod, in one run.

use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_kernel::{run_in, sysctl, Handle, Netns, Route, VethSpec};
use weft_proxy::apply::Applier;
use weft_proxy::{NodeContext, ProxyState};

/// Bytes the program holds on the heap right now (a counting allocator around the
/// system's), so the figures tell live data apart from what the allocator keeps.
struct Counting;
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
// SAFETY: forwards to the system allocator; only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n.wrapping_sub(l.size()), Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

fn service(i: u32) -> k8s_openapi::api::core::v1::Service {
    let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
    serde_json::from_value(json!({"metadata": {"namespace": "bench", "name": format!("s{i}")}, "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"port": 80, "targetPort": 8080}]}})).unwrap()
}

fn slice(i: u32, endpoints: u32, gen: u32) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let eps: Vec<_> = (0..endpoints)
        .map(|e| {
            let n = i * endpoints + e + gen;
            json!({"addresses": [format!("10.{}.{}.{}", 128 + n / 65536 % 64, n / 256 % 256, n % 256)], "conditions": {"ready": true}, "nodeName": "node-1"})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "bench", "name": format!("s{i}-1"), "labels": {"kubernetes.io/service-name": format!("s{i}")}},
        "addressType": "IPv4", "ports": [{"name": "", "port": 8080, "protocol": "TCP"}], "endpoints": eps
    }))
    .unwrap()
}

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

fn node_context() -> NodeContext {
    NodeContext { node_name: "node-0".into(), pod_cidrs: vec!["10.1.0.0/16".parse().unwrap()], masquerade_all: false }
}

fn percentiles(name: &str, lat: &mut [Duration]) {
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    println!("{name}, event -> kernel ({} events): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", lat.len(), p(0.5), p(0.99), p(1.0));
}

/// One event handed to ProxyState, flushed and applied: the time to the kernel commit.
fn event(st: &mut ProxyState, ap: &mut Applier, f: impl FnOnce(&mut ProxyState)) -> Duration {
    let t = Instant::now();
    f(st);
    let changes = st.flush();
    ap.apply(&changes).unwrap();
    t.elapsed()
}

fn sync(services: u32, endpoints: u32) {
    let ns = Netns::current().unwrap();
    let rss0 = rss_mib();
    let mut st = ProxyState::new(node_context());
    // The objects as the watch would deliver them, built before the clock starts.
    let objects: Vec<_> = (0..services).map(|i| (service(i), slice(i, endpoints, 0))).collect();
    let t = Instant::now();
    for (svc, sl) in &objects {
        st.apply_service(svc);
        st.apply_slice(sl);
    }
    let changes = st.flush();
    let compile = t.elapsed();
    let mut ap = Applier::open(&ns).unwrap();
    let r = ap.resync(&st).unwrap();
    let total = t.elapsed();
    drop(changes);
    drop(objects);
    println!(
        "full sync {services} services x {endpoints} endpoints: {:.0} ms (compile {:.0} ms, then render and commit {:.0} ms: {} objects, {} transactions, longest {:.0} ms)",
        total.as_secs_f64() * 1e3,
        compile.as_secs_f64() * 1e3,
        r.took.as_secs_f64() * 1e3,
        r.weight,
        r.transactions,
        r.longest_transaction.as_secs_f64() * 1e3
    );
    let peak = rss_mib();
    // As the node agent does after a full sync.
    weft_proxy::trim_heap();
    println!(
        "proxy memory after the full sync: RSS {:.1} MiB, of which heap in use {:.1} MiB (RSS {peak:.1} MiB before trimming the heap; {rss0:.1} MiB at start)",
        rss_mib(),
        live_mib()
    );
    drop(ap);
    let mut ap = Applier::open(&ns).unwrap();
    let r = ap.resync(&st).unwrap();
    println!("restart resync: {:.0} ms, {} objects written", r.took.as_secs_f64() * 1e3, r.weight);
    // Churn at that scale, each event timed from the object handed to ProxyState to the
    // kernel commit: endpoints of a service move; services are added, changed (a second
    // port) and removed.
    let mut endpoint_changes = Vec::new();
    let mut service_events = Vec::new();
    for k in 1..=200u32 {
        let i = (k * 7919) % services;
        endpoint_changes.push(event(&mut st, &mut ap, |st| st.apply_slice(&slice(i, endpoints, k))));
    }
    for k in 0..100u32 {
        let i = services + k;
        // As a Deployment's Service usually arrives: first alone, then its endpoints.
        service_events.push(event(&mut st, &mut ap, |st| st.apply_service(&service(i))));
        endpoint_changes.push(event(&mut st, &mut ap, |st| st.apply_slice(&slice(i, endpoints, 0))));
        let mut changed = service(i);
        let mut second = changed.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].clone();
        second.name = Some("b".into());
        second.port = 81;
        changed.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].name = Some("a".into());
        changed.spec.as_mut().unwrap().ports.as_mut().unwrap().push(second);
        service_events.push(event(&mut st, &mut ap, |st| st.apply_service(&changed)));
        service_events.push(event(&mut st, &mut ap, |st| st.delete_service(&changed)));
    }
    percentiles("one endpoint change (or first endpoints)", &mut endpoint_changes);
    percentiles("one service added, changed or removed", &mut service_events);
    let all: Vec<Duration> = endpoint_changes.iter().chain(&service_events).copied().collect();
    percentiles("all churn", &mut all.clone());
}

async fn topology(dir: &std::path::Path) -> (Netns, Netns) {
    let node = Netns::create(&dir.join("node")).unwrap();
    let pods = Netns::create(&dir.join("pods")).unwrap();
    let here = Handle::current().unwrap();
    let n = Handle::open(&node).unwrap();
    let p = Handle::open(&pods).unwrap();
    here.create_veth(&VethSpec { name: "c0", peer_name: "r0", peer_ns: Some(&node), up: true, ..Default::default() }).await.unwrap();
    n.create_veth(&VethSpec { name: "r1", peer_name: "p0", peer_ns: Some(&pods), up: true, ..Default::default() }).await.unwrap();
    let c0 = here.link("c0").await.unwrap().index;
    here.add_address(c0, "10.1.0.2/24".parse().unwrap()).await.unwrap();
    here.add_route(&Route::via("0.0.0.0/0".parse().unwrap(), "10.1.0.1".parse().unwrap())).await.unwrap();
    let r0 = n.link("r0").await.unwrap().index;
    let r1 = n.link("r1").await.unwrap().index;
    n.set_link_up(r0).await.unwrap();
    n.add_address(r0, "10.1.0.1/24".parse().unwrap()).await.unwrap();
    n.add_address(r1, "10.2.0.1/24".parse().unwrap()).await.unwrap();
    sysctl::enable_ip_forward(Some(&node)).unwrap();
    let p0 = p.link("p0").await.unwrap().index;
    p.set_link_up(p0).await.unwrap();
    p.add_address(p0, "10.2.0.2/24".parse().unwrap()).await.unwrap();
    // The pod answers the client directly (no masquerade needed for the direct path).
    p.add_route(&Route::via("10.1.0.0/24".parse().unwrap(), "10.2.0.1".parse().unwrap())).await.unwrap();
    (node, pods)
}

/// Connect + one byte each way, `n` times to each of `targets` in turn (interleaved, so
/// both see the same machine load); per-connection times in microseconds, per target.
fn measure(targets: &[&str], n: u32) -> Vec<Vec<f64>> {
    let addrs: Vec<SocketAddr> = targets.iter().map(|t| t.parse().unwrap()).collect();
    let mut out = vec![Vec::with_capacity(n as usize); addrs.len()];
    let mut buf = [0u8; 1];
    for _ in 0..n {
        for (i, a) in addrs.iter().enumerate() {
            let t = Instant::now();
            let mut s = TcpStream::connect_timeout(a, Duration::from_secs(2)).unwrap();
            s.write_all(b"x").unwrap();
            s.read_exact(&mut buf).unwrap();
            out[i].push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn latency() {
    weft_testns::run_async("proxy_bench_latency", |t| async move {
        let (node, pods) = topology(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let listener = run_in(&pods, || TcpListener::bind("10.2.0.2:8080")).unwrap().unwrap();
        let stop2 = stop.clone();
        let server = std::thread::spawn(move || {
            let mut buf = [0u8; 1];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((mut s, _)) = listener.accept() {
                    if s.read_exact(&mut buf).is_ok() {
                        let _ = s.write_all(&buf);
                    }
                }
            }
        });
        let mut st = ProxyState::new(node_context());
        let mut ap = Applier::open(&node).unwrap();
        let one = |i: u32, st: &mut ProxyState| {
            st.apply_service(&service(i));
            let mut s = slice(i, 1, 0);
            s.endpoints[0].addresses = vec!["10.2.0.2".into()];
            st.apply_slice(&s);
        };
        for i in 0..10 {
            one(i, &mut st);
        }
        st.flush();
        ap.resync(&st).unwrap();
        let out = tokio::task::spawn_blocking(move || {
            // Rounds alternate between 10 and 10,000 services (this machine is shared: a
            // single pass of each would measure the neighbours); each measurement goes to
            // fresh addresses, so TIME_WAIT sockets of earlier ones do not weigh on it.
            let (mut few, mut many, mut svc, mut direct) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for round in 0..6 {
                let loaded = round % 2 == 1;
                if loaded {
                    for i in 10..10_000 {
                        one(i, &mut st);
                    }
                } else {
                    for i in 10..10_000 {
                        st.delete_service(&service(i));
                    }
                }
                ap.apply(&st.flush()).unwrap();
                let target = if loaded { format!("10.96.{}.{}:80", 10 + round, 1) } else { format!("10.96.0.{}:80", round + 1) };
                let mut m = measure(&[&target, "10.2.0.2:8080"], 400);
                svc.extend(m[0].iter().copied());
                if loaded { many.append(&mut m[0]) } else { few.append(&mut m[0]) }
                direct.append(&mut m[1]);
            }
            (median(&mut few), median(&mut many), median(&mut svc), median(&mut direct))
        })
        .await
        .unwrap();
        let (few, many, svc, direct) = out;
        println!("connection set-up through a ClusterIP (median, 3 alternating rounds each): {few:.1} us with 10 services, {many:.1} us with 10,000: ratio {:.2}", many / few);
        println!("connections through a ClusterIP vs straight to the pod, interleaved (median): {svc:.1} us vs {direct:.1} us: rate ratio {:.2}", direct / svc);
        stop.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(|| TcpStream::connect_timeout(&"10.96.0.1:80".parse().unwrap(), Duration::from_secs(1))).await;
        server.join().unwrap();
        drop(node);
        drop(pods);
        Netns::remove(&t.dir().join("node")).unwrap();
        Netns::remove(&t.dir().join("pods")).unwrap();
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("latency") => latency(),
        _ => {
            let services = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let endpoints = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
            weft_testns::run("proxy_bench_sync", |_| sync(services, endpoints));
        }
    }
}
