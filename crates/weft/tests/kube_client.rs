//! The API driven through kube-rs, as the agents and controllers drive it.

mod common;
use common::Cluster;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53", "args": ["pause"]}], "nodeSelector": {"no-such": "node"}},
    }))
    .unwrap()
}

#[tokio::test]
async fn list_filters_by_labels_and_fields_and_pages_with_continue() {
    let c = Cluster::start();
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    for i in 0..7 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), if i % 2 == 0 { "even" } else { "odd" })).await.unwrap();
    }
    let even = pods.list(&ListParams::default().labels("app=even")).await.unwrap();
    assert_eq!(even.items.len(), 4);
    let notodd = pods.list(&ListParams::default().labels("app!=odd")).await.unwrap();
    assert_eq!(notodd.items.len(), 4);
    let one = pods.list(&ListParams::default().fields("metadata.name=p3")).await.unwrap();
    assert_eq!(one.items.len(), 1);
    let bad = pods.list(&ListParams::default().fields("spec.bogus=1")).await.unwrap_err();
    assert!(matches!(bad, kube::Error::Api(ref e) if e.code == 400), "{bad:?}");
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(3);
    loop {
        let page = pods.list(&lp).await.unwrap();
        assert!(page.items.len() <= 3);
        names.extend(page.items.into_iter().map(|p| p.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => lp = lp.continue_token(&t),
            _ => break,
        }
    }
    assert_eq!(names, vec!["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
}

#[tokio::test]
async fn updates_with_a_stale_resource_version_conflict() {
    let c = Cluster::start();
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut newer = created.clone();
    newer.data = Some([("a".to_string(), "2".to_string())].into());
    cms.replace("cfg", &PostParams::default(), &newer).await.unwrap();
    let mut stale = created;
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let err = cms.replace("cfg", &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref e) if e.code == 409), "{err:?}");
    // Patches apply to the current state.
    cms.patch("cfg", &PatchParams::default(), &Patch::Merge(json!({"data": {"b": "x"}}))).await.unwrap();
    let ssa = PatchParams::apply("test-manager");
    let applied = cms.patch("cfg", &ssa, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"c": "y"}}))).await.unwrap();
    let data = applied.data.unwrap();
    assert_eq!((data["a"].as_str(), data["b"].as_str(), data["c"].as_str()), ("2", "x", "y"));
    assert!(applied.metadata.managed_fields.unwrap().iter().any(|m| m.manager.as_deref() == Some("test-manager")));
}

#[tokio::test]
async fn watch_delivers_changes_from_a_resource_version_with_selector_transitions() {
    let c = Cluster::start();
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let rv = pods.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut stream = pods.watch(&WatchParams::default().labels("app=web").timeout(20), &rv).await.unwrap().boxed();
    pods.create(&PostParams::default(), &pod("w1", "web")).await.unwrap();
    pods.create(&PostParams::default(), &pod("other", "db")).await.unwrap();
    // Relabelling out of the selection reads as DELETED for this watcher.
    pods.patch("w1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}}))).await.unwrap();
    let mut got = Vec::new();
    // (The scheduler's status writes arrive as MODIFIED in between; they are not counted.)
    while got.len() < 2 {
        match stream.try_next().await.unwrap() {
            Some(WatchEvent::Added(p)) => got.push(format!("ADDED {}", p.metadata.name.unwrap())),
            Some(WatchEvent::Deleted(p)) => got.push(format!("DELETED {}", p.metadata.name.unwrap())),
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(got, vec!["ADDED w1", "DELETED w1"]);
    // An unscheduled pod goes at once; deletion of a missing one is 404.
    pods.delete("other", &DeleteParams::default()).await.unwrap();
    let err = pods.delete("other", &DeleteParams::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref e) if e.code == 404));
}

#[test]
fn kubectl_watch_prints_new_objects() {
    let c = Cluster::start();
    let mut child = std::process::Command::new("kubectl")
        .args(["get", "configmaps", "-w", "--request-timeout=8s"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    c.ok(&["create", "configmap", "watched", "--from-literal=a=b"]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("watched"), "kubectl get -w printed: {s}");
}
