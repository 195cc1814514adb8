//! Times CNI ADDs on one node: N (default 100) `weft-cni` processes started at
//! once, dual-stack, each timed from its spawn to its exit; then the same
//! number one after another for the uncontended figure; then in-process
//! `weft_cni::attach_on` calls (no process per ADD), as weft's kubelet makes them.
//!
//!   cargo build --release -p weft-cni --bin weft-cni
//!   cargo run --release -p weft-cni --example add_bench -- [N]
//!
//! WEFT_CNI=<path> times another build of the plugin (A/B runs on a busy
//! machine). Plugin phases also print the CPU time (user + system) the plugin
//! processes used per ADD, which a loaded machine disturbs less than latency.
//!
//! Needs root; runs inside a throwaway netns (weft-testns), so nothing stays.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};
use weft_kernel::Netns;

fn plugin() -> PathBuf {
    if let Some(p) = std::env::var_os("WEFT_CNI") {
        return p.into();
    }
    // The example lives in target/<profile>/examples; the plugin one level up.
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target dir").join("weft-cni")
}

fn add(bin: &Path, id: &str, netns: &Path, conf: &str) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", id)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", netns)
        .env("CNI_PATH", "/opt/cni/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn weft-cni (build it first: cargo build --release -p weft-cni)");
    child.stdin.take().unwrap().write_all(conf.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    assert!(out.status.success(), "ADD {id} failed: {}", String::from_utf8_lossy(&out.stdout));
    took
}

/// CPU time (user + system) of this process's reaped children, in ms.
fn children_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the ")" that closes the command name; cutime and cstime are
    // fields 16 and 17 of the whole line, in clock ticks (USER_HZ, 100 on Linux).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[13].parse::<f64>().unwrap() + f[14].parse::<f64>().unwrap();
    ticks * 10.0
}

fn report_cpu(n: usize, since: f64) {
    println!("  plugin CPU per ADD (user+sys, process context): {:.2} ms", (children_cpu_ms() - since) / n as f64);
}

fn report(label: &str, mut ms: Vec<f64>, wall: Duration) {
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{label}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms (wall {:.0} ms)",
        ms.len(),
        pct(0.50),
        pct(0.99),
        ms[ms.len() - 1],
        wall.as_secs_f64() * 1e3
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let bin = plugin();
    weft_testns::run("add_bench", |t| {
        let conf = serde_json::json!({
            "cniVersion": "1.1.0", "name": "weft", "type": "weft-cni",
            "ipam": {"subnets": ["10.244.0.0/16", "fd00:10:244::/64"], "dataDir": t.dir().join("data")}
        })
        .to_string();
        let pods: Vec<PathBuf> = (0..3 * n)
            .map(|i| {
                let p = t.dir().join(format!("pod{i}"));
                Netns::create(&p).expect("netns");
                p
            })
            .collect();

        let barrier = Barrier::new(n);
        let cpu = children_cpu_ms();
        let wall = Instant::now();
        let times: Vec<f64> = std::thread::scope(|s| {
            let hs: Vec<_> = pods[..n]
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (bin, conf, barrier) = (&bin, &conf, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        add(bin, &format!("burst{i}"), p, conf).as_secs_f64() * 1e3
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        report(&format!("{n} ADDs at once"), times, wall.elapsed());
        report_cpu(n, cpu);

        let cpu = children_cpu_ms();
        let wall = Instant::now();
        let times: Vec<f64> = pods[n..2 * n]
            .iter()
            .enumerate()
            .map(|(i, p)| add(&bin, &format!("seq{i}"), p, &conf).as_secs_f64() * 1e3)
            .collect();
        report(&format!("{n} ADDs one by one"), times, wall.elapsed());
        report_cpu(n, cpu);

        // The same work without a process per ADD, as weft's kubelet makes it: on a
        // current-thread runtime, over one connection to the node netns.
        let net = weft_cni::config::parse(conf.as_bytes()).unwrap().net;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let wall = Instant::now();
        let times: Vec<f64> = rt.block_on(async {
            let node = weft_cni::Node::open(None).unwrap();
            let mut out = Vec::new();
            for (i, p) in pods[2 * n..].iter().enumerate() {
                let req = weft_cni::AttachRequest::new(&format!("lib{i}"), "eth0", Some(p.clone()));
                let s = Instant::now();
                weft_cni::attach_on(&node, &req, &net).await.unwrap();
                out.push(s.elapsed().as_secs_f64() * 1e3);
            }
            out
        });
        report(&format!("{n} in-process attach_on() one by one"), times, wall.elapsed());
        rt.shutdown_timeout(Duration::from_secs(5));
    });
}
