//! networking.k8s.io/v1 defaults: NetworkPolicy ports speak TCP and a policy without
//! `policyTypes` is an Ingress policy (plus Egress when it has egress rules).

use serde_json::{json, Value};

pub fn default_network_policy(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        // A policy with no spec selects every pod and denies their ingress.
        if let Some(o) = obj.as_object_mut() {
            o.insert("spec".into(), json!({"podSelector": {}, "policyTypes": ["Ingress"]}));
        }
        return;
    };
    for dir in ["ingress", "egress"] {
        for rule in spec.get_mut(dir).and_then(Value::as_array_mut).into_iter().flatten() {
            for port in rule.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(port) = port.as_object_mut() {
                    if port.get("protocol").map(Value::is_null).unwrap_or(true) {
                        port.insert("protocol".into(), json!("TCP"));
                    }
                }
            }
        }
    }
    let no_types = spec.get("policyTypes").and_then(Value::as_array).map(|a| a.is_empty()).unwrap_or(true);
    if no_types {
        let has_egress = spec.get("egress").and_then(Value::as_array).map(|a| !a.is_empty()).unwrap_or(false);
        let types = if has_egress { json!(["Ingress", "Egress"]) } else { json!(["Ingress"]) };
        spec.insert("policyTypes".into(), types);
    }
}

/// networking.k8s.io/v1 defines no defaults for Ingress; the function exists so the
/// dispatch can name every kind it serves.
pub fn default_ingress(_obj: &mut Value) {}

/// IngressClass parameters default to cluster scope. Not reached yet: `defaults/mod.rs`
/// does not dispatch IngressClass (reported to the lead).
pub fn default_ingress_class(obj: &mut Value) {
    if let Some(params) = obj.pointer_mut("/spec/parameters").and_then(Value::as_object_mut) {
        if params.get("scope").map(Value::is_null).unwrap_or(true) {
            params.insert("scope".into(), json!("Cluster"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_with_egress_rules_defaults_to_both_types() {
        let mut np = json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]}]}});
        default_network_policy(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "UDP");
        assert_eq!(np["spec"]["egress"][0]["ports"][1]["protocol"], "TCP");
    }

    #[test]
    fn explicit_policy_types_are_kept() {
        let mut np = json!({"spec": {"podSelector": {}, "policyTypes": ["Egress"]}});
        default_network_policy(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Egress"]));
    }

    #[test]
    fn ingress_class_parameters_default_to_cluster_scope() {
        let mut ic = json!({"spec": {"controller": "example.com/lb", "parameters": {"kind": "Cfg", "name": "c"}}});
        default_ingress_class(&mut ic);
        assert_eq!(ic["spec"]["parameters"]["scope"], "Cluster");
    }
}
