//! Pod start benchmark: N pods (default 100) created at once through the API on a
//! one-node `weft up`, each timed from its create request to the first watch event
//! that shows it Running with a pod IP; plus the CNI ADD time weft's kubelet saw per
//! pod (from its log: `cni_add_ms`, and `cni_wait_ms` spent waiting for an ADD
//! thread). Run with `bench/pod_start.sh` (release build, root, throwaway netns).
//! PODS=N overrides the count; WEFT_CNI_WORKERS passes through to weft (0: every
//! ADD at once on its pod's task). Prints figures; asserts nothing.

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(serde::Deserialize)]
struct Event {
    object: Pod,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

fn line(label: &str, v: &mut [f64]) {
    if v.is_empty() {
        println!("{label}: no samples");
        return;
    }
    println!("{label}: n={} p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms", v.len(), pct(v, 0.5), pct(v, 0.99), pct(v, 1.0));
}

fn running_with_ip(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| s.phase.as_deref() == Some("Running") && s.pod_ip.is_some())
}

/// `key=value` fields of the kubelet's "CNI ADD done" log lines, by pod name.
fn cni_times(log: &str, prefix: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for raw in log.lines().filter(|l| l.contains("CNI ADD done")) {
        // Strip ANSI colour codes the log may carry.
        let mut l = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                chars.by_ref().find(|c| c.is_ascii_alphabetic());
            } else {
                l.push(c);
            }
        }
        let field = |k: &str| l.split_whitespace().find_map(|f| f.strip_prefix(k)?.strip_prefix('=').map(str::to_string));
        let Some(pod) = field("pod") else { continue };
        if !pod.starts_with(&format!("default/{prefix}")) {
            continue;
        }
        if let (Some(w), Some(a)) = (field("cni_wait_ms"), field("cni_add_ms")) {
            out.push((w.parse().unwrap_or(f64::NAN), a.parse().unwrap_or(f64::NAN)));
        }
    }
    out
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "start-bench"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}], "terminationGracePeriodSeconds": 0},
    }))
    .unwrap()
}

async fn wait_running(pods: &Api<Pod>, name: &str, limit: Duration) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        if pods.get(name).await.is_ok_and(|p| running_with_ip(&p)) {
            return Ok(());
        }
        anyhow::ensure!(t.elapsed() < limit, "pod {name} was not Running with an IP after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("PODS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let weft = std::env::var("WEFT_BIN").unwrap_or_else(|_| "target/release/weft".into());
    let dir = tempfile::tempdir()?;
    let log_path = dir.path().join("weft.log");
    let mut child = std::process::Command::new(&weft)
        .args(["up", "--nodes", "1", "--api-port", "0", "--state-dir"])
        .arg(dir.path().join("state"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let kc_path = dir.path().join("state/kubeconfig");
    let t0 = Instant::now();
    while !kc_path.exists() {
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(30), "weft did not start (log: {})", log_path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kc = kube::config::Kubeconfig::read_from(&kc_path)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(cfg)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // One pod first: the node is up, its bridge made, the first ADD's work done.
    let t = Instant::now();
    loop {
        match pods.create(&PostParams::default(), &pod("warm")).await {
            Ok(_) => break,
            Err(e) => anyhow::ensure!(t.elapsed() < Duration::from_secs(30), "cannot create the warm-up pod: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_running(&pods, "warm", Duration::from_secs(60)).await?;

    let rv = pods.list(&ListParams::default()).await?.metadata.resource_version.unwrap();
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watcher = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut seen: HashMap<String, Instant> = HashMap::new();
            let req = http::Request::get(format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&timeoutSeconds=300")).body(Vec::new()).unwrap();
            let mut lines = client.request_stream(req).await.unwrap().lines();
            while seen.len() < n {
                let Some(Ok(line)) = lines.next().await else { break };
                let now = Instant::now();
                let Ok(ev) = serde_json::from_str::<Event>(&line) else { continue };
                let name = ev.object.metadata.name.clone().unwrap_or_default();
                if name.starts_with("p-") && running_with_ip(&ev.object) {
                    seen.entry(name).or_insert(now);
                }
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let pods = pods.clone();
            let created = created.clone();
            tokio::spawn(async move {
                let name = format!("p-{i}");
                let t = Instant::now();
                pods.create(&PostParams::default(), &pod(&name)).await.map(|_| created.lock().unwrap().insert(name, t))
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let seen = tokio::time::timeout(Duration::from_secs(300), watcher).await??;
    let wall = start.elapsed();
    let created = created.lock().unwrap().clone();
    let mut e2e: Vec<f64> = seen.iter().filter_map(|(name, at)| Some((*at - *created.get(name)?).as_secs_f64() * 1e3)).collect();

    let log = std::fs::read_to_string(&log_path)?;
    let times = cni_times(&log, "p-");
    let mut waits: Vec<f64> = times.iter().map(|t| t.0).collect();
    let mut adds: Vec<f64> = times.iter().map(|t| t.1).collect();
    let mut both: Vec<f64> = times.iter().map(|t| t.0 + t.1).collect();
    let workers = std::env::var("WEFT_CNI_WORKERS").unwrap_or_else(|_| "default (one per core)".into());
    println!("{n} pods created at once on one node, CNI ADD threads: {workers}; {} Running with an IP, last after {:.0} ms", seen.len(), wall.as_secs_f64() * 1e3);
    line("create -> Running with pod IP (client-side, watch)", &mut e2e);
    line("CNI ADD as the kubelet saw it (attach only)", &mut adds);
    line("waiting for a CNI ADD thread", &mut waits);
    line("CNI ADD incl. the wait", &mut both);

    let _ = std::process::Command::new(&weft).args(["down", "--state-dir"]).arg(dir.path().join("state")).status();
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
