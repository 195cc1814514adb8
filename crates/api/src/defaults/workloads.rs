//! apps/v1 Deployment and ReplicaSet defaulting (`SetDefaults_Deployment`,
//! `SetDefaults_ReplicaSet`), with their pod templates defaulted as pod specs. Admission
//! defaults (service account, tolerations, priority) belong to pods, not templates.

use super::pod::default_pod_spec;
use serde_json::{json, Map, Value};

pub fn default_deployment(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    spec.entry("replicas").or_insert(json!(1));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if let Some(st) = strategy.as_object_mut() {
        if st.get("type").and_then(Value::as_str).unwrap_or("").is_empty() {
            st.insert("type".into(), json!("RollingUpdate"));
        }
        if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
            if ru.is_null() {
                *ru = json!({});
            }
            if let Some(ru) = ru.as_object_mut() {
                for field in ["maxUnavailable", "maxSurge"] {
                    if ru.get(field).map(Value::is_null).unwrap_or(true) {
                        ru.insert(field.into(), json!("25%"));
                    }
                }
            }
        }
    }
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    spec.entry("progressDeadlineSeconds").or_insert(json!(600));
    default_template(spec);
}

pub fn default_replica_set(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };
    spec.entry("replicas").or_insert(json!(1));
    default_template(spec);
}

fn spec_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let o = obj.as_object_mut()?;
    o.entry("spec").or_insert_with(|| json!({})).as_object_mut()
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(pod_spec) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(pod_spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}
                }
            }
        })
    }

    #[test]
    fn docs_nginx_deployment_gets_apps_v1_defaults() {
        let mut d = nginx_deployment();
        default_deployment(&mut d);
        let s = &d["spec"];
        assert_eq!(s["replicas"], 3);
        assert_eq!(s["strategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(s["progressDeadlineSeconds"], 600);
        let ps = &s["template"]["spec"];
        assert_eq!(ps["restartPolicy"], "Always");
        assert_eq!(ps["dnsPolicy"], "ClusterFirst");
        assert_eq!(ps["terminationGracePeriodSeconds"], 30);
        assert_eq!(ps["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(ps["containers"][0]["imagePullPolicy"], "IfNotPresent");
    }

    #[test]
    fn templates_get_no_admission_defaults() {
        let mut d = nginx_deployment();
        default_deployment(&mut d);
        let ps = d["spec"]["template"]["spec"].as_object().unwrap();
        for field in ["serviceAccountName", "tolerations", "priority", "enableServiceLinks"] {
            assert!(!ps.contains_key(field), "{field}");
        }
    }

    #[test]
    fn missing_replicas_default_to_one_and_recreate_gets_no_rolling_update() {
        let mut d = nginx_deployment();
        d["spec"].as_object_mut().unwrap().remove("replicas");
        d["spec"]["strategy"] = json!({"type": "Recreate"});
        default_deployment(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn partial_rolling_update_keeps_given_values() {
        let mut d = nginx_deployment();
        d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 1}});
        default_deployment(&mut d);
        assert_eq!(d["spec"]["strategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}));
    }

    #[test]
    fn replica_set_gets_one_replica_and_template_defaults() {
        let mut rs = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "busybox"}]}}}});
        default_replica_set(&mut rs);
        assert_eq!(rs["spec"]["replicas"], 1);
        assert_eq!(rs["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert!(rs["spec"].get("revisionHistoryLimit").is_none());
    }
}
