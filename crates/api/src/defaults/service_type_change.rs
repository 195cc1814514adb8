//! What kube-apiserver clears when a Service changes type (`dropTypeDependentFields` in
//! its service strategy): fields that no longer apply and that the user left as they
//! were, so that `kubectl patch svc x -p '{"spec":{"type":"ClusterIP"}}'` just works,
//! while a user who also changed such a field still gets a validation error.

use serde_json::Value;

fn ty(svc: &Value) -> &str {
    svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP")
}

fn needs_cluster_ip(svc: &Value) -> bool {
    ty(svc) != "ExternalName"
}

fn needs_node_port(svc: &Value) -> bool {
    matches!(ty(svc), "NodePort" | "LoadBalancer")
}

fn externally_accessible(svc: &Value) -> bool {
    needs_node_port(svc) || (ty(svc) == "ClusterIP" && svc.pointer("/spec/externalIPs").and_then(Value::as_array).is_some_and(|a| !a.is_empty()))
}

fn same(new: &Value, old: &Value, field: &str) -> bool {
    new.pointer(&format!("/spec/{field}")) == old.pointer(&format!("/spec/{field}"))
}

fn node_ports(svc: &Value) -> Vec<Option<&Value>> {
    svc.pointer("/spec/ports").and_then(Value::as_array).map(|ps| ps.iter().map(|p| p.get("nodePort")).collect()).unwrap_or_default()
}

/// Clears what no longer applies after a type change. `old` is the stored Service.
pub fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let mut clear: Vec<&str> = Vec::new();
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if same(new, old, "clusterIP") && same(new, old, "clusterIPs") {
            clear.extend(["clusterIP", "clusterIPs"]);
        }
        if same(new, old, "ipFamilies") {
            clear.push("ipFamilies");
        }
        if same(new, old, "ipFamilyPolicy") {
            clear.push("ipFamilyPolicy");
        }
    }
    let clear_node_ports = needs_node_port(old) && !needs_node_port(new) && node_ports(new) == node_ports(old);
    if needs_node_port(old) && !needs_node_port(new) && same(new, old, "healthCheckNodePort") {
        clear.push("healthCheckNodePort");
    }
    if ty(old) == "LoadBalancer" && ty(new) != "LoadBalancer" {
        if same(new, old, "allocateLoadBalancerNodePorts") {
            clear.push("allocateLoadBalancerNodePorts");
        }
        if same(new, old, "loadBalancerClass") {
            clear.push("loadBalancerClass");
        }
    }
    if externally_accessible(old) && !externally_accessible(new) && same(new, old, "externalTrafficPolicy") {
        clear.push("externalTrafficPolicy");
    }
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        for f in clear {
            spec.remove(f);
        }
        if clear_node_ports {
            for p in spec.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(p) = p.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
    }
    // The load balancer's status goes with the type.
    if ty(new) != "LoadBalancer" {
        if let Some(lb) = new.pointer_mut("/status/loadBalancer").and_then(Value::as_object_mut) {
            lb.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lb() -> Value {
        json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"], "ports": [{"port": 80, "nodePort": 30080}],
                        "allocateLoadBalancerNodePorts": true, "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000},
               "status": {"loadBalancer": {"ingress": [{"ip": "10.99.1.1"}]}}})
    }

    #[test]
    fn switching_a_load_balancer_to_cluster_ip_clears_what_no_longer_applies() {
        let old = lb();
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&mut new, &old);
        assert_eq!(new["spec"], json!({"type": "ClusterIP", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"], "ports": [{"port": 80}]}));
        assert_eq!(new["status"]["loadBalancer"], json!({}));
    }

    #[test]
    fn a_node_port_the_user_changed_too_is_kept_for_validation_to_judge() {
        let old = lb();
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        new["spec"]["ports"][0]["nodePort"] = json!(30081);
        drop_type_dependent_fields(&mut new, &old);
        assert_eq!(new["spec"]["ports"][0]["nodePort"], json!(30081));
    }

    #[test]
    fn switching_to_external_name_clears_the_cluster_ips() {
        let old = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "ports": [{"port": 80}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["externalName"] = json!("example.test");
        drop_type_dependent_fields(&mut new, &old);
        assert!(new["spec"].get("clusterIP").is_none() && new["spec"].get("ipFamilies").is_none() && new["spec"].get("ipFamilyPolicy").is_none());
    }

    #[test]
    fn node_port_to_load_balancer_keeps_everything() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.9", "ports": [{"port": 80, "nodePort": 30080}], "externalTrafficPolicy": "Cluster"}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("LoadBalancer");
        drop_type_dependent_fields(&mut new, &old);
        assert_eq!(new["spec"]["ports"][0]["nodePort"], json!(30080));
        assert_eq!(new["spec"]["externalTrafficPolicy"], json!("Cluster"));
    }
}
