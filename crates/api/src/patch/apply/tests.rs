use super::*;
use serde_json::json;

const T0: &str = "2025-01-01T00:00:00Z";
const T1: &str = "2025-01-01T00:01:00Z";

fn deploy() -> GroupKind {
    GroupKind::new("apps", "Deployment")
}

fn svc() -> GroupKind {
    GroupKind::new("", "Service")
}

fn entry<'a>(obj: &'a Value, manager: &str, op: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"].as_array()?.iter().find(|e| e["manager"] == manager && e["operation"] == op)
}

fn applied_deploy(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]}]}}}
    })
}

#[test]
fn first_apply_creates_object_and_apply_entry_in_fields_v1() {
    let out = server_side_apply(&deploy(), None, &applied_deploy(2, "app:1"), "kubectl", false, T0).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    let e = entry(&out, "kubectl", "Apply").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T0);
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}
        })
    );
}

#[test]
fn reapplying_without_a_field_removes_it() {
    let live = server_side_apply(&deploy(), None, &applied_deploy(2, "app:1"), "kubectl", false, T0).unwrap();
    let mut cfg = applied_deploy(2, "app:1");
    cfg["metadata"]["labels"] = json!({});
    cfg["metadata"].as_object_mut().unwrap().remove("labels");
    let out = server_side_apply(&deploy(), Some(&live), &cfg, "kubectl", false, T1).unwrap();
    assert!(out["metadata"].get("labels").is_none(), "{}", out["metadata"]);
    assert_eq!(entry(&out, "kubectl", "Apply").unwrap()["time"], T1);
}

#[test]
fn dropped_field_owned_by_another_manager_stays() {
    let live = server_side_apply(&deploy(), None, &applied_deploy(2, "app:1"), "a", false, T0).unwrap();
    let live = server_side_apply(&deploy(), Some(&live), &applied_deploy(2, "app:1"), "b", false, T0).unwrap();
    let mut cfg = applied_deploy(2, "app:1");
    cfg["spec"].as_object_mut().unwrap().remove("replicas");
    let out = server_side_apply(&deploy(), Some(&live), &cfg, "a", false, T1).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
}

#[test]
fn changing_a_field_owned_by_an_updater_conflicts_like_kube() {
    let mut live = applied_deploy(2, "app:1");
    record_update(&deploy(), None, &mut live, "kubectl-client-side-apply", T0);
    let e = server_side_apply(&deploy(), Some(&live), &applied_deploy(5, "app:1"), "kubectl", false, T1).unwrap_err();
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(e.message, "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas");
    assert_eq!(e.details.unwrap()["causes"][0], json!({"type": "FieldManagerConflict", "message": "conflict with \"kubectl-client-side-apply\" using apps/v1", "field": ".spec.replicas"}));
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let live = server_side_apply(&deploy(), None, &applied_deploy(2, "app:1"), "ci", false, T0).unwrap();
    let e = server_side_apply(&deploy(), Some(&live), &applied_deploy(3, "app:2"), "kubectl", false, T1).unwrap_err();
    assert_eq!(
        e.message,
        "Apply failed with 2 conflicts: conflicts with \"ci\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
    );
}

#[test]
fn same_value_is_shared_without_conflict() {
    let live = server_side_apply(&deploy(), None, &applied_deploy(2, "app:1"), "ci", false, T0).unwrap();
    let out = server_side_apply(&deploy(), Some(&live), &applied_deploy(2, "app:1"), "kubectl", false, T1).unwrap();
    assert!(entry(&out, "ci", "Apply").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_some());
    assert!(entry(&out, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_some());
}

#[test]
fn force_takes_ownership_from_the_other_manager() {
    let live = server_side_apply(&deploy(), None, &applied_deploy(2, "app:1"), "ci", false, T0).unwrap();
    let out = server_side_apply(&deploy(), Some(&live), &applied_deploy(7, "app:1"), "kubectl", true, T1).unwrap();
    assert_eq!(out["spec"]["replicas"], 7);
    assert!(entry(&out, "ci", "Apply").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert!(entry(&out, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_some());
}

#[test]
fn applying_one_container_keeps_containers_of_other_managers() {
    let live = server_side_apply(&deploy(), None, &applied_deploy(2, "app:1"), "a", false, T0).unwrap();
    let sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "proxy:1"}]}}}});
    let out = server_side_apply(&deploy(), Some(&live), &sidecar, "mesh", false, T1).unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["app", "proxy"]);
}

#[test]
fn service_ports_keyed_by_port_and_protocol() {
    let cfg = |ports: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": ports}});
    let live = server_side_apply(&svc(), None, &cfg(json!([{"port": 80}, {"port": 53, "protocol": "UDP"}])), "kubectl", false, T0).unwrap();
    let fv1 = &entry(&live, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:ports"];
    assert!(fv1.get("k:{\"port\":53,\"protocol\":\"UDP\"}").is_some());
    assert!(fv1.get("k:{\"port\":80,\"protocol\":\"TCP\"}").is_some());
    let out = server_side_apply(&svc(), Some(&live), &cfg(json!([{"port": 80}])), "kubectl", false, T1).unwrap();
    assert_eq!(out["spec"]["ports"], json!([{"port": 80}]));
}

#[test]
fn set_lists_union_across_managers() {
    let cm = GroupKind::new("", "ConfigMap");
    let cfg = |f: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": [f]}});
    let live = server_side_apply(&cm, None, &cfg("a/x"), "one", false, T0).unwrap();
    let out = server_side_apply(&cm, Some(&live), &cfg("b/y"), "two", false, T1).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["a/x", "b/y"]));
    assert!(entry(&out, "two", "Apply").unwrap()["fieldsV1"]["f:metadata"]["f:finalizers"].get("v:\"b/y\"").is_some());
}

#[test]
fn atomic_lists_are_replaced_whole() {
    let pod = GroupKind::new("", "Pod");
    let cfg = |t: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"tolerations": t}});
    let live = server_side_apply(&pod, None, &cfg(json!([{"key": "a"}, {"key": "b"}])), "k", false, T0).unwrap();
    let out = server_side_apply(&pod, Some(&live), &cfg(json!([{"key": "c"}])), "k", false, T1).unwrap();
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "c"}]));
    assert_eq!(entry(&out, "k", "Apply").unwrap()["fieldsV1"]["f:spec"], json!({"f:tolerations": {}}));
}

#[test]
fn status_and_server_metadata_are_not_owned() {
    let mut cfg = applied_deploy(1, "app:1");
    cfg["metadata"]["uid"] = json!("u");
    cfg["status"] = json!({"replicas": 1});
    let out = server_side_apply(&deploy(), None, &cfg, "k", false, T0).unwrap();
    let fv1 = &entry(&out, "k", "Apply").unwrap()["fieldsV1"];
    assert!(fv1.get("f:status").is_none());
    assert!(fv1["f:metadata"].get("f:uid").is_none());
    assert!(fv1["f:metadata"].get("f:name").is_none());
}

#[test]
fn unchanged_reapply_keeps_the_timestamp() {
    let live = server_side_apply(&deploy(), None, &applied_deploy(2, "app:1"), "k", false, T0).unwrap();
    let out = server_side_apply(&deploy(), Some(&live), &applied_deploy(2, "app:1"), "k", false, T1).unwrap();
    assert_eq!(entry(&out, "k", "Apply").unwrap()["time"], T0);
}

#[test]
fn create_by_update_records_fields_like_kube() {
    let mut obj = applied_deploy(2, "app:1");
    obj["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"});
    obj["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}});
    record_update(&deploy(), None, &mut obj, "kubectl-client-side-apply", T0);
    let e = entry(&obj, "kubectl-client-side-apply", "Update").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");
    let fv1 = &e["fieldsV1"];
    assert_eq!(fv1["f:metadata"]["f:annotations"], json!({".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}));
    assert_eq!(fv1["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
    assert!(fv1["f:spec"].get(".").is_none());
    assert_eq!(fv1["f:spec"]["f:selector"], json!({}));
    assert_eq!(fv1["f:spec"]["f:strategy"], json!({"f:rollingUpdate": {".": {}, "f:maxSurge": {}}, "f:type": {}}));
    assert!(fv1["f:spec"]["f:template"]["f:spec"]["f:containers"].get(".").is_none());
}

#[test]
fn update_moves_changed_fields_to_the_writer() {
    let mut live = applied_deploy(2, "app:1");
    record_update(&deploy(), None, &mut live, "kubectl-create", T0);
    let mut new = live.clone();
    new["spec"]["replicas"] = json!(4);
    record_update(&deploy(), Some(&live), &mut new, "kubectl-scale", T1);
    let create = entry(&new, "kubectl-create", "Update").unwrap();
    assert!(create["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert_eq!(create["time"], T0);
    let scale = entry(&new, "kubectl-scale", "Update").unwrap();
    assert_eq!(scale["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert_eq!(scale["time"], T1);
}

#[test]
fn update_without_changes_adds_no_entry() {
    let mut live = applied_deploy(2, "app:1");
    record_update(&deploy(), None, &mut live, "a", T0);
    let mut new = live.clone();
    record_update(&deploy(), Some(&live), &mut new, "b", T1);
    assert!(entry(&new, "b", "Update").is_none());
    assert_eq!(new["metadata"]["managedFields"].as_array().unwrap().len(), 1);
}

#[test]
fn removed_fields_leave_every_owner_and_empty_entries_go() {
    let mut live = applied_deploy(2, "app:1");
    record_update(&deploy(), None, &mut live, "a", T0);
    let mut step = live.clone();
    step["metadata"]["labels"]["tier"] = json!("fe");
    record_update(&deploy(), Some(&live), &mut step, "b", T1);
    let mut new = step.clone();
    new["metadata"]["labels"].as_object_mut().unwrap().remove("tier");
    record_update(&deploy(), Some(&step), &mut new, "c", T1);
    assert!(entry(&new, "b", "Update").is_none());
}

#[test]
fn status_writes_on_main_resource_are_not_recorded() {
    let mut live = applied_deploy(2, "app:1");
    record_update(&deploy(), None, &mut live, "a", T0);
    let mut new = live.clone();
    new["status"] = json!({"replicas": 2});
    record_update(&deploy(), Some(&live), &mut new, "controller", T1);
    assert!(entry(&new, "controller", "Update").is_none());
}

#[test]
fn managed_fields_reset_by_request() {
    let mut live = applied_deploy(2, "app:1");
    record_update(&deploy(), None, &mut live, "a", T0);
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([{}]);
    new["spec"]["replicas"] = json!(3);
    record_update(&deploy(), Some(&live), &mut new, "b", T1);
    let mf = new["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0]["manager"], "b");
}

#[test]
fn entries_sort_apply_before_update() {
    let mut live = applied_deploy(2, "app:1");
    record_update(&deploy(), None, &mut live, "zz", T0);
    let mut cfg = applied_deploy(2, "app:1");
    cfg["metadata"]["labels"]["extra"] = json!("x");
    let out = server_side_apply(&deploy(), Some(&live), &cfg, "aa", false, T1).unwrap();
    let ops: Vec<&str> = out["metadata"]["managedFields"].as_array().unwrap().iter().map(|e| e["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, vec!["Apply", "Update"]);
}

#[test]
fn merge_list_keeps_live_only_items_in_place() {
    let gk = svc();
    let live = json!([{"port": 1}, {"port": 2}, {"port": 3}]);
    let applied = json!([{"port": 3, "name": "c"}, {"port": 4}]);
    let out = merge_value(&gk, &mut vec!["spec".into(), "ports".into()], Some(live), &applied);
    let ports: Vec<i64> = out.as_array().unwrap().iter().map(|p| p["port"].as_i64().unwrap()).collect();
    assert_eq!(ports, vec![1, 2, 3, 4]);
}

#[test]
fn container_dropped_from_applied_config_is_removed() {
    let mut two = applied_deploy(1, "app:1");
    two["spec"]["template"]["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "debug", "image": "busybox"}));
    let live = server_side_apply(&deploy(), None, &two, "k", false, T0).unwrap();
    let out = server_side_apply(&deploy(), Some(&live), &applied_deploy(1, "app:1"), "k", false, T1).unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["app"]);
}

#[test]
fn defaulted_fields_nobody_applied_survive_reapply() {
    let mut live = server_side_apply(&deploy(), None, &applied_deploy(1, "app:1"), "k", false, T0).unwrap();
    // Set by defaulting after the first apply; owned by no one.
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    let out = server_side_apply(&deploy(), Some(&live), &applied_deploy(1, "app:2"), "k", false, T1).unwrap();
    assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["image"], "app:2");
}
