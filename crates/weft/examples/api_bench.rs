//! API benchmark: N pods created by concurrent kube-rs clients, a full list, and
//! delivery to 10 watchers, against a `weft up` started on a temp dir.
//! Run with `bench/api.sh` (release build). Prints figures; asserts nothing.
//! The pods are bound to a node that does not exist, so that the figures are the API's
//! own: no scheduler write or FailedScheduling event rides on each create.

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(serde::Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: Named,
}

#[derive(serde::Deserialize)]
struct Named {
    metadata: Name,
}

#[derive(serde::Deserialize)]
struct Name {
    name: String,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("PODS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let conc: usize = std::env::var("CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    let weft = std::env::var("WEFT_BIN").unwrap_or_else(|_| "target/release/weft".into());
    let dir = tempfile::tempdir()?;
    let mut child = std::process::Command::new(&weft)
        .args(["up", "--nodes", "1", "--api-port", "0", "--state-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let kc_path = dir.path().join("kubeconfig");
    let t0 = Instant::now();
    while !kc_path.exists() {
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(30), "weft did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kc = kube::config::Kubeconfig::read_from(&kc_path)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(cfg)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rv = pods.list(&ListParams::default()).await?.metadata.resource_version.unwrap();

    // Ack times by name, for watch delivery latency.
    let acks: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut watchers = Vec::new();
    for _ in 0..10 {
        let pods = pods.clone();
        let rv = rv.clone();
        let acks = acks.clone();
        let client = client.clone();
        watchers.push(tokio::spawn(async move {
            // A raw watch stream, decoded only as far as the name: the figure is the
            // server's delivery, not the client's cost of building a Pod per event.
            let mut lat = Vec::with_capacity(n);
            let req = http::Request::get(format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&timeoutSeconds=600")).body(Vec::new()).unwrap();
            let mut lines = client.request_stream(req).await.unwrap().lines();
            let mut got = 0;
            while got < n {
                let Some(Ok(line)) = lines.next().await else { break };
                let now = Instant::now();
                let Ok(ev) = serde_json::from_str::<Event>(&line) else { continue };
                if ev.kind != "ADDED" {
                    continue;
                }
                got += 1;
                // Delivery can beat the ack (the store publishes before replying): 0 then.
                let ack = acks.lock().unwrap().get(&ev.object.metadata.name).copied();
                lat.push(ack.map(|a| now.saturating_duration_since(a).as_secs_f64() * 1000.0).unwrap_or(0.0));
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        // Spread n over the clients exactly: the first n % conc take one more.
        let per = n / conc + usize::from(w < n % conc);
        let pods = pods.clone();
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let name = format!("bench-{w}-{i}");
                let p: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"app": "bench", "w": w.to_string()}},
                    "spec": {"nodeName": "bench-absent-node", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
                }))
                .unwrap();
                let t = Instant::now();
                pods.create(&PostParams::default(), &p).await.unwrap();
                let done = Instant::now();
                acks.lock().unwrap().insert(name, done);
                lat.push((done - t).as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut create_lat = Vec::new();
    for t in tasks {
        create_lat.extend(t.await?);
    }
    let elapsed = start.elapsed();
    let created = create_lat.len();
    println!("creates: {created} pods, {conc} concurrent clients, {:.0} creates/s (durable: fsync per batch)", created as f64 / elapsed.as_secs_f64());
    println!("create latency ms: p50 {:.2}  p99 {:.2}  max {:.2}", pct(&mut create_lat, 0.5), pct(&mut create_lat, 0.99), pct(&mut create_lat, 1.0));

    let mut watch_lat = Vec::new();
    for w in watchers {
        let mut l = tokio::time::timeout(Duration::from_secs(120), w).await??;
        l.truncate(created);
        watch_lat.extend(l);
    }
    println!("watch delivery (10 watchers, ms after ack): p50 {:.2}  p99 {:.2}  max {:.2}", pct(&mut watch_lat, 0.5), pct(&mut watch_lat, 0.99), pct(&mut watch_lat, 1.0));

    let mut list_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let req = http::Request::get("/api/v1/namespaces/default/pods").body(Vec::new())?;
        let body = client.request_text(req).await?;
        list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(body.len() > created * 100, "list too short");
    }
    println!("full list of {created} pods (JSON over HTTPS, 5 runs) ms: min {:.1}  p50 {:.1}", pct(&mut list_ms, 0.0), pct(&mut list_ms, 0.5));

    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    let rss = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: ?");
    println!("weft resident memory with {created} pods stored: {}", rss.trim_start_matches("VmRSS:").trim());
    // `weft down` stops it and removes what it made (node namespaces, links).
    let _ = std::process::Command::new(&weft).args(["down", "--state-dir"]).arg(dir.path()).status();
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
