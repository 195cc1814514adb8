//! Namespace and Node defaults, including what kube-apiserver's registry adds on create.

use serde_json::{json, Value};

/// A namespace carries its own name as the `kubernetes.io/metadata.name` label and starts
/// `Active`. A new one also gets the `kubernetes` finalizer, which the namespace controller
/// removes once the namespace's contents are gone; it is never re-added to an existing
/// namespace (one with a resourceVersion or being deleted).
pub fn default_namespace(obj: &mut Value) {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    if !name.is_empty() {
        let meta = crate::meta::metadata_mut(obj);
        if !meta.get("labels").map(Value::is_object).unwrap_or(false) {
            meta.insert("labels".into(), json!({}));
        }
        meta["labels"]["kubernetes.io/metadata.name"] = json!(name);
    }

    let is_new = crate::meta::resource_version(obj).is_empty() && crate::meta::deletion_timestamp(obj).is_none();
    let Some(o) = obj.as_object_mut() else { return };
    if is_new {
        if !o.get("spec").map(Value::is_object).unwrap_or(false) {
            o.insert("spec".into(), json!({}));
        }
        let spec = o.get_mut("spec").and_then(Value::as_object_mut).expect("spec is an object");
        if !spec.get("finalizers").map(Value::is_array).unwrap_or(false) {
            spec.insert("finalizers".into(), json!([]));
        }
        let finalizers = spec.get_mut("finalizers").and_then(Value::as_array_mut).expect("finalizers is a list");
        if !finalizers.iter().any(|f| f == "kubernetes") {
            finalizers.push(json!("kubernetes"));
        }
    }

    if !o.get("status").map(Value::is_object).unwrap_or(false) {
        o.insert("status".into(), json!({}));
    }
    let status = o.get_mut("status").and_then(Value::as_object_mut).expect("status is an object");
    if status.get("phase").and_then(Value::as_str).unwrap_or("").is_empty() {
        status.insert("phase".into(), json!("Active"));
    }
}

/// A node's allocatable resources default to its capacity, and `podCIDR`/`podCIDRs` are
/// kept in step as v1 conversion keeps them (`podCIDR` is `podCIDRs[0]`).
pub fn default_node(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let single = spec.get("podCIDR").and_then(Value::as_str).unwrap_or("").to_string();
        let first = spec.get("podCIDRs").and_then(Value::as_array).and_then(|a| a.first()).and_then(Value::as_str).map(String::from);
        match (single.is_empty(), first) {
            (false, None) => {
                spec.insert("podCIDRs".into(), json!([single]));
            }
            (true, Some(f)) => {
                spec.insert("podCIDR".into(), json!(f));
            }
            _ => {}
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        let capacity = status.get("capacity").filter(|c| c.is_object()).cloned();
        if let (Some(cap), true) = (capacity, status.get("allocatable").map(Value::is_null).unwrap_or(true)) {
            status.insert("allocatable".into(), cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_namespace_does_not_regain_the_kubernetes_finalizer() {
        let mut ns = json!({"metadata": {"name": "shop", "resourceVersion": "12"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}});
        default_namespace(&mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!([]));
        assert_eq!(ns["status"]["phase"], "Terminating");
    }

    #[test]
    fn new_namespace_keeps_its_own_finalizers_and_adds_kubernetes() {
        let mut ns = json!({"metadata": {"name": "shop", "labels": {"team": "a"}}, "spec": {"finalizers": ["example.com/x"]}});
        default_namespace(&mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["example.com/x", "kubernetes"]));
        assert_eq!(ns["metadata"]["labels"], json!({"team": "a", "kubernetes.io/metadata.name": "shop"}));
    }

    #[test]
    fn node_pod_cidr_fills_the_list_and_back() {
        let mut node = json!({"spec": {"podCIDRs": ["10.244.0.0/24", "fd00::/64"]}});
        default_node(&mut node);
        assert_eq!(node["spec"]["podCIDR"], "10.244.0.0/24");
    }
}
