//! Object lifecycles through the real kubectl: namespace deletion, finalizers,
//! cascading deletion, generations, bookmarks, and `weft down --purge`.

mod common;
use common::Cluster;
use std::process::Command;

#[test]
fn deleting_a_namespace_removes_everything_in_it() {
    let c = Cluster::start();
    c.ok(&["create", "namespace", "doomed"]);
    c.ok(&["-n", "doomed", "create", "configmap", "settings", "--from-literal=a=b"]);
    c.ok(&["-n", "doomed", "create", "deployment", "web", "--image=nginx", "--replicas=2"]);
    c.ok(&["-n", "doomed", "create", "service", "clusterip", "web", "--tcp=80:8080"]);
    c.eventually(20, "the deployment's pods", || c.ok(&["-n", "doomed", "get", "pods", "-o", "name"]).lines().count() == 2);
    c.ok(&["delete", "namespace", "doomed", "--wait=true", "--timeout=60s"]);
    let out = c.kubectl(&["get", "namespace", "doomed"]);
    assert!(!out.status.success(), "namespace still there");
    for kind in ["configmaps", "deployments", "replicasets", "pods", "services", "endpointslices"] {
        let left = c.ok(&["get", kind, "-n", "doomed", "-o", "name"]);
        assert!(left.trim().is_empty(), "{kind} left behind: {left}");
    }
}

#[test]
fn a_finalizer_holds_deletion_until_it_is_removed() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\ndata: {a: b}\n");
    c.ok(&["delete", "configmap", "held", "--wait=false"]);
    let ts = c.ok(&["get", "configmap", "held", "-o", "jsonpath={.metadata.deletionTimestamp}"]);
    assert!(!ts.is_empty(), "a finalized object is marked, not removed");
    c.ok(&["patch", "configmap", "held", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    c.eventually(10, "the configmap to go", || !c.kubectl(&["get", "configmap", "held"]).status.success());
}

#[test]
fn foreground_deletion_removes_dependents_before_the_owner() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "fg", "--image=nginx", "--replicas=2"]);
    c.eventually(20, "two pods", || c.ok(&["get", "pods", "-l", "app=fg", "-o", "name"]).lines().count() == 2);
    c.ok(&["delete", "deployment", "fg", "--cascade=foreground", "--timeout=60s"]);
    assert!(!c.kubectl(&["get", "deployment", "fg"]).status.success());
    assert!(c.ok(&["get", "replicasets", "-l", "app=fg", "-o", "name"]).trim().is_empty());
    c.eventually(30, "the pods to go", || c.ok(&["get", "pods", "-l", "app=fg", "-o", "name"]).trim().is_empty());
}

#[test]
fn orphan_deletion_keeps_the_dependents() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "orph", "--image=nginx", "--replicas=1"]);
    c.eventually(20, "a replicaset", || !c.ok(&["get", "replicasets", "-l", "app=orph", "-o", "name"]).trim().is_empty());
    c.ok(&["delete", "deployment", "orph", "--cascade=orphan"]);
    c.eventually(10, "the owner reference to go", || {
        c.ok(&["get", "replicasets", "-l", "app=orph", "-o", "jsonpath={.items[0].metadata.ownerReferences}"]).trim().is_empty()
    });
}

#[test]
fn a_metadata_change_keeps_the_generation_and_a_spec_change_bumps_it() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "gen", "--image=nginx"]);
    let generation = |c: &Cluster| c.ok(&["get", "deployment", "gen", "-o", "jsonpath={.metadata.generation}"]);
    assert_eq!(generation(&c), "1");
    c.ok(&["label", "deployment", "gen", "tier=web"]);
    c.ok(&["annotate", "deployment", "gen", "note=hello"]);
    assert_eq!(generation(&c), "1");
    c.ok(&["scale", "deployment", "gen", "--replicas=3"]);
    assert_eq!(generation(&c), "2");
}

#[test]
fn scale_makes_and_removes_pods() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "sc", "--image=nginx", "--replicas=1"]);
    c.eventually(20, "one pod", || c.ok(&["get", "pods", "-l", "app=sc", "-o", "name"]).lines().count() == 1);
    c.ok(&["scale", "deployment", "sc", "--replicas=4"]);
    c.eventually(20, "four pods", || c.ok(&["get", "pods", "-l", "app=sc", "-o", "name"]).lines().count() == 4);
    c.ok(&["scale", "deployment", "sc", "--replicas=0"]);
    c.eventually(30, "no pods", || c.ok(&["get", "pods", "-l", "app=sc", "-o", "name"]).trim().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_receive_bookmarks_when_asked() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, WatchEvent, WatchParams};
    let c = Cluster::start();
    let cms: Api<ConfigMap> = Api::namespaced(c.client().await, "default");
    let rv = cms.list_metadata(&Default::default()).await.unwrap().metadata.resource_version.unwrap();
    let mut s = cms.watch(&WatchParams::default().timeout(20), &rv).await.unwrap().boxed();
    // The harness runs weft with --bookmark-interval 1.
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(ev) = s.next().await {
            if let Ok(WatchEvent::Bookmark(b)) = ev {
                return b.metadata.resource_version;
            }
        }
        String::new()
    })
    .await
    .expect("a bookmark within 10s");
    assert!(got.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap());
}

#[test]
fn weft_down_purge_stops_the_instance_and_removes_its_state() {
    let mut c = Cluster::start();
    c.ok(&["create", "configmap", "x"]);
    let mut down = Command::new(env!("CARGO_BIN_EXE_weft"));
    down.args(["down", "--purge", "--state-dir"]).arg(c.state_dir());
    let out = c.inside(&mut down).output().unwrap();
    assert!(!c.sh("ip link | grep -q wft").status.success(), "the host side's veth is still there");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!c.state_dir().exists(), "state dir still there");
    assert!(c.exited_within(10), "weft up still running after weft down");
}

#[test]
fn rollout_status_waits_for_available_replicas_and_follows_a_template_change() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "ro", "--image=registry.k8s.io/e2e-test-images/agnhost:2.52", "--replicas=2", "--", "/agnhost", "netexec", "--http-port=8080"]);
    let out = c.ok(&["rollout", "status", "deployment/ro", "--timeout=120s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(c.ok(&["get", "deployment", "ro", "-o", "jsonpath={.status.availableReplicas}/{.status.readyReplicas}/{.status.updatedReplicas}"]), "2/2/2");
    let first_rs = c.ok(&["get", "rs", "-l", "app=ro", "-o", "jsonpath={.items[0].metadata.name}"]);

    // A template change makes a new ReplicaSet; rollout status follows it to the end.
    c.ok(&["set", "env", "deployment/ro", "ROLLOUT=2"]);
    let out = c.ok(&["rollout", "status", "deployment/ro", "--timeout=120s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    c.eventually(60, "the old ReplicaSet scaled to zero and its pods gone", || {
        c.ok(&["get", "rs", &first_rs, "-o", "jsonpath={.status.replicas}"]) == "0" && c.ok(&["get", "pods", "-l", "app=ro", "-o", "jsonpath={.items[*].spec.containers[0].env[0].value}"]) == "2 2"
    });
    let history = c.ok(&["rollout", "history", "deployment/ro"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
}
