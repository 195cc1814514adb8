//! `kill -9` during a stream of writes, then `weft up` again: every acknowledged write
//! is there, allocations are unchanged, and watches resume from their resourceVersion.

mod common;
use common::Cluster;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_and_watches_resume() {
    let mut c = Cluster::start();
    let client = c.client().await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let mut before = Vec::new();
    for i in 0..5 {
        let s: Service = serde_json::from_value(json!({
            "metadata": {"name": format!("svc-{i}")},
            "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]},
        }))
        .unwrap();
        let s = svcs.create(&PostParams::default(), &s).await.unwrap();
        let spec = s.spec.unwrap();
        before.push((spec.cluster_ip.unwrap(), spec.ports.unwrap()[0].node_port.unwrap()));
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let watch_from = cms.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();

    // Writers run until the process dies under them; only acknowledged writes count.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let cms = cms.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("cm-{w}-{i}");
                let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}, "data": {"i": i.to_string()}})).unwrap();
                match cms.create(&PostParams::default(), &cm).await {
                    Ok(_) => acked.lock().unwrap().push(name),
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    c.kill9();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "only {} writes were acknowledged", acked.len());

    c.up();
    let client = c.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let names: std::collections::HashSet<String> = cms.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|c| c.metadata.name).collect();
    for n in &acked {
        assert!(names.contains(n), "acknowledged write {n} lost");
    }
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    for (i, (ip, np)) in before.iter().enumerate() {
        let s = svcs.get(&format!("svc-{i}")).await.unwrap().spec.unwrap();
        assert_eq!(s.cluster_ip.as_ref(), Some(ip));
        assert_eq!(s.ports.unwrap()[0].node_port, Some(*np));
    }
    // A watch from before the crash replays what happened since.
    let mut stream = cms.watch(&WatchParams::default().timeout(10), &watch_from).await.unwrap().boxed();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < acked.len() {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(cm))) => {
                seen.insert(cm.metadata.name.unwrap());
            }
            Some(Ok(_)) => {}
            other => panic!("watch ended early after {} of {} events: {other:?}", seen.len(), acked.len()),
        }
    }
}
