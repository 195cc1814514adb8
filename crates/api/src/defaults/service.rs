//! Service defaults (`SetDefaults_Service` in core/v1). Cluster IPs, IP families and the
//! family policy are the allocator's to fill, not defaulting's.

use serde_json::{json, Map, Value};

const DEFAULT_CLIENT_IP_TIMEOUT: i64 = 10800;

pub fn default_service(obj: &mut Value) {
    let Some(spec) = spec_mut(obj) else { return };

    let affinity = spec.get("sessionAffinity").and_then(Value::as_str).unwrap_or("").to_string();
    let affinity = if affinity.is_empty() { "None".to_string() } else { affinity };
    spec.insert("sessionAffinity".into(), json!(affinity));
    if affinity == "None" {
        spec.remove("sessionAffinityConfig");
    } else if affinity == "ClientIP" {
        let has_timeout = spec
            .get("sessionAffinityConfig")
            .and_then(|c| c.get("clientIP"))
            .and_then(|c| c.get("timeoutSeconds"))
            .map(|t| !t.is_null())
            .unwrap_or(false);
        if !has_timeout {
            spec.insert(
                "sessionAffinityConfig".into(),
                json!({"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_TIMEOUT}}),
            );
        }
    }

    if spec.get("type").and_then(Value::as_str).unwrap_or("").is_empty() {
        spec.insert("type".into(), json!("ClusterIP"));
    }
    let typ = spec.get("type").and_then(Value::as_str).unwrap_or("").to_string();

    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if port.get("protocol").and_then(Value::as_str).unwrap_or("").is_empty() {
                port.insert("protocol".into(), json!("TCP"));
            }
            let unset = match port.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(n) => n.as_i64() == Some(0),
            };
            if unset {
                let number = port.get("port").cloned().unwrap_or(json!(0));
                port.insert("targetPort".into(), number);
            }
        }
    }

    let has_external_ips = spec.get("externalIPs").and_then(Value::as_array).map(|a| !a.is_empty()).unwrap_or(false);
    let externally_accessible =
        typ == "LoadBalancer" || typ == "NodePort" || (typ == "ClusterIP" && has_external_ips);
    if externally_accessible && spec.get("externalTrafficPolicy").and_then(Value::as_str).unwrap_or("").is_empty() {
        spec.insert("externalTrafficPolicy".into(), json!("Cluster"));
    }

    let itp_unset = spec.get("internalTrafficPolicy").map(Value::is_null).unwrap_or(true);
    if itp_unset && matches!(typ.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        spec.insert("internalTrafficPolicy".into(), json!("Cluster"));
    }

    if typ == "LoadBalancer" {
        if spec.get("allocateLoadBalancerNodePorts").map(Value::is_null).unwrap_or(true) {
            spec.insert("allocateLoadBalancerNodePorts".into(), json!(true));
        }
        default_ingress_ip_mode(obj);
    }
}

/// Load-balancer ingress points with an IP default to `ipMode: VIP`.
fn default_ingress_ip_mode(obj: &mut Value) {
    let Some(ingress) = obj.pointer_mut("/status/loadBalancer/ingress").and_then(Value::as_array_mut) else {
        return;
    };
    for ing in ingress.iter_mut().filter_map(Value::as_object_mut) {
        let has_ip = ing.get("ip").and_then(Value::as_str).map(|s| !s.is_empty()).unwrap_or(false);
        if has_ip && ing.get("ipMode").map(Value::is_null).unwrap_or(true) {
            ing.insert("ipMode".into(), json!("VIP"));
        }
    }
}

/// `spec`, created if missing (upstream's spec is a struct, never absent).
fn spec_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let o = obj.as_object_mut()?;
    if !o.get("spec").map(Value::is_object).unwrap_or(false) {
        o.insert("spec".into(), json!({}));
    }
    o.get_mut("spec").and_then(Value::as_object_mut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ip_service_gets_type_protocol_target_port_and_policies() {
        let mut svc = json!({"spec": {"selector": {"app": "MyApp"}, "ports": [{"port": 80}]}});
        default_service(&mut svc);
        assert_eq!(
            svc["spec"],
            json!({"selector": {"app": "MyApp"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster"})
        );
    }

    #[test]
    fn load_balancer_gets_external_policy_and_node_port_allocation() {
        let mut svc = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 3000}]}});
        default_service(&mut svc);
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(svc["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 3000);
        assert!(svc["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn external_name_gets_no_traffic_policies() {
        let mut svc = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        default_service(&mut svc);
        assert!(svc["spec"].get("internalTrafficPolicy").is_none());
        assert!(svc["spec"].get("externalTrafficPolicy").is_none());
    }

    #[test]
    fn session_affinity_none_drops_its_config() {
        let mut svc = json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}});
        default_service(&mut svc);
        assert!(svc["spec"].get("sessionAffinityConfig").is_none());
    }

    #[test]
    fn empty_named_target_port_defaults_to_the_port() {
        let mut svc = json!({"spec": {"ports": [{"port": 443, "targetPort": ""}]}});
        default_service(&mut svc);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 443);
    }

    #[test]
    fn load_balancer_ingress_ip_defaults_to_vip_mode() {
        let mut svc = json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example.com"}]}}});
        default_service(&mut svc);
        assert_eq!(svc["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
        assert!(svc["status"]["loadBalancer"]["ingress"][1].get("ipMode").is_none());
    }
}
