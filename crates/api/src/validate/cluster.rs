//! Namespace, Node, Event (core/v1) and Lease validation, as kube-apiserver does it.
//! Names (a Namespace's DNS-1123 label included) are checked by the shared metadata
//! validation.

use super::names;
use super::service::fields::{int_of, list_of, str_of, strings_of};
use super::service::formats::invalid_each;
use crate::FieldError;
use serde_json::{json, Value};
use std::collections::HashSet;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const PODCIDR_CHANGE_MSG: &str = "node updates may not change podCIDR except from \"\" to valid";
const EVENT_FIELD_LIMIT: usize = 128;
const EVENT_MESSAGE_LIMIT: usize = 1024;
const LEASE_STRATEGIES: &[&str] = &["OldestEmulationVersion"];

// ---------------------------------------------------------------------------
// Namespace

pub fn validate_namespace(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let null = Value::Null;
    for f in strings_of(obj.get("spec").unwrap_or(&null), "finalizers") {
        // Upstream reports every finalizer at the list's path, without an index.
        errs.extend(validate_finalizer_name(f, "spec.finalizers"));
    }
    errs
}

/// A finalizer is qualified (`example.com/cleanup`) or one of Kubernetes' own (`kubernetes`).
fn validate_finalizer_name(f: &str, path: &str) -> Vec<FieldError> {
    let mut errs = invalid_each(path, f, names::is_qualified_name(f));
    if !f.contains('/') && f != "kubernetes" {
        errs.push(FieldError::invalid(path, json!(f), "name is neither a standard finalizer name nor is it fully qualified"));
    }
    errs
}

// ---------------------------------------------------------------------------
// Node

pub fn validate_node(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = Vec::new();
    // Upstream validates taints under `metadata.taints`, so that is what clients see.
    errs.extend(validate_taints(list_of(spec, "taints"), "metadata.taints"));
    errs.extend(validate_node_resources(obj));
    errs.extend(validate_pod_cidrs(spec));
    if let Some(old) = old {
        errs.extend(validate_node_update(obj, old));
    }
    errs
}

fn validate_taints(taints: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = names::index(path, i);
        let key = str_of(t, "key");
        errs.extend(names::validate_qualified_name(&format!("{p}.key"), key));
        let value = str_of(t, "value");
        let msgs = names::is_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(format!("{p}.value"), json!(value), msgs.join(";")));
        }
        let effect = str_of(t, "effect");
        if effect.is_empty() {
            errs.push(FieldError::required(format!("{p}.effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(format!("{p}.effect"), json!(effect), TAINT_EFFECTS));
        }
        if !seen.insert((key, effect)) {
            let mut dup = FieldError::duplicate(p, t.clone());
            dup.detail = "taints must be unique by key and effect pair".into();
            errs.push(dup);
        }
    }
    errs
}

fn validate_node_resources(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for list in ["capacity", "allocatable"] {
        let Some(resources) = obj.pointer(&format!("/status/{list}")).and_then(Value::as_object) else { continue };
        for (name, q) in resources {
            errs.extend(names::validate_nonnegative_quantity(&format!("status.{list}.{name}"), q));
        }
    }
    errs
}

/// Each pod CIDR valid, at most one per family, no repeats.
fn validate_pod_cidrs(spec: &Value) -> Vec<FieldError> {
    let cidrs = strings_of(spec, "podCIDRs");
    let mut errs = Vec::new();
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(names::validate_cidr(&format!("spec.podCIDRs[{i}]"), c));
    }
    if cidrs.len() > 1 {
        let v6 = cidrs.iter().filter_map(|c| names::parse_cidr_sloppy(c)).filter(|n| n.addr().is_ipv6()).count();
        if cidrs.len() > 2 || v6 != 1 {
            errs.push(FieldError::invalid("spec.podCIDRs", json!(cidrs), "may specify no more than one CIDR for each IP family"));
        }
        let mut seen = HashSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(*c) {
                errs.push(FieldError::duplicate(format!("spec.podCIDRs[{i}]"), json!(c)));
            }
        }
    }
    errs
}

/// Pod CIDRs and the provider ID may only go from unset to set; addresses may not repeat.
fn validate_node_update(obj: &Value, old: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    let mut errs = Vec::new();

    let mut seen = HashSet::new();
    for (i, a) in obj.pointer("/status/addresses").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let key = (str_of(a, "type").to_string(), str_of(a, "address").to_string());
        if !seen.insert(key) {
            errs.push(FieldError::duplicate(format!("status.addresses[{i}]"), a.clone()));
        }
    }

    let old_cidrs = strings_of(old_spec, "podCIDRs");
    let new_cidrs = strings_of(spec, "podCIDRs");
    if old_cidrs.is_empty() {
        // Unset to set is how pod CIDRs get assigned.
    } else if old_cidrs.len() != new_cidrs.len() {
        errs.push(FieldError::forbidden("spec.podCIDRs", PODCIDR_CHANGE_MSG));
    } else {
        for (a, b) in old_cidrs.iter().zip(new_cidrs.iter()) {
            if a != b {
                errs.push(FieldError::forbidden("spec.podCIDRs", PODCIDR_CHANGE_MSG));
            }
        }
    }

    let old_provider = str_of(old_spec, "providerID");
    if !old_provider.is_empty() && old_provider != str_of(spec, "providerID") {
        errs.push(FieldError::forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid"));
    }
    if str_of(old_spec, "externalID") != str_of(spec, "externalID") {
        errs.push(FieldError::forbidden("spec.externalID", "may not be updated"));
    }
    errs
}

// ---------------------------------------------------------------------------
// Event (core/v1: the legacy rules, which events.k8s.io objects must pass too)

pub fn validate_event(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
    let involved_ns = obj.pointer("/involvedObject/namespace").and_then(Value::as_str).unwrap_or("");
    let mismatch = || FieldError::invalid("involvedObject.namespace", json!(involved_ns), "does not match event.namespace");
    // A zero MicroTime serialises as null.
    let has_event_time = obj.get("eventTime").map(|t| !t.is_null() && t.as_str() != Some("")).unwrap_or(false);

    if !has_event_time {
        // Old clients may post cluster-scoped objects' events into "default".
        if involved_ns.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                errs.push(mismatch());
            }
        } else if namespace != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = str_of(obj, "reportingController");
        if controller.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        errs.extend(names::validate_qualified_name("reportingController", controller));
        for (field, limit) in [("reportingInstance", EVENT_FIELD_LIMIT), ("action", EVENT_FIELD_LIMIT), ("reason", EVENT_FIELD_LIMIT)] {
            let v = str_of(obj, field);
            if v.is_empty() {
                errs.push(FieldError::required(field, ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(field, json!(""), format!("can have at most {limit} characters")));
            }
        }
        if str_of(obj, "message").len() > EVENT_MESSAGE_LIMIT {
            errs.push(FieldError::invalid("message", json!(""), format!("can have at most {EVENT_MESSAGE_LIMIT} characters")));
        }
    }
    errs.extend(names::validate_dns1123_subdomain("namespace", namespace));
    errs
}

// ---------------------------------------------------------------------------
// Lease

pub fn validate_lease(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = Vec::new();
    if let Some(d) = spec.get("leaseDurationSeconds").filter(|v| !v.is_null()) {
        if int_of(spec, "leaseDurationSeconds").map(|n| n <= 0).unwrap_or(true) {
            errs.push(FieldError::invalid("spec.leaseDurationSeconds", d.clone(), "must be greater than 0"));
        }
    }
    if let Some(t) = spec.get("leaseTransitions").filter(|v| !v.is_null()) {
        if int_of(spec, "leaseTransitions").map(|n| n < 0).unwrap_or(true) {
            errs.push(FieldError::invalid("spec.leaseTransitions", t.clone(), "must be greater than or equal to 0"));
        }
    }
    let strategy = spec.get("strategy").and_then(Value::as_str);
    if let Some(s) = strategy {
        // Upstream nests the child twice here, so clients see `spec.strategy.strategy`.
        let path = "spec.strategy.strategy";
        if !s.contains('/') {
            if !LEASE_STRATEGIES.contains(&s) {
                errs.push(FieldError::not_supported(path, json!(s), LEASE_STRATEGIES));
            }
        } else {
            errs.extend(names::validate_qualified_name(path, s));
        }
    }
    let preferred = spec.get("preferredHolder").and_then(Value::as_str).unwrap_or("");
    if !preferred.is_empty() && strategy.unwrap_or("").is_empty() {
        errs.push(FieldError::forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::GroupKind;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn new_namespace_defaults_and_validates_clean() {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        apply_defaults(&GroupKind::new("", "Namespace"), &mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "shop");
        assert!(validate_namespace(&ns, None).is_empty());
    }

    #[test]
    fn namespace_finalizers_are_standard_or_qualified() {
        let ns = json!({"spec": {"finalizers": ["kubernetes", "example.com/cleanup", "cleanup"]}});
        assert_eq!(
            msgs(validate_namespace(&ns, None)),
            vec!["spec.finalizers: Invalid value: \"cleanup\": name is neither a standard finalizer name nor is it fully qualified"]
        );
    }

    #[test]
    fn node_with_pod_cidrs_and_taints_validates_clean() {
        let mut node = json!({"metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.244.1.0/24",
            "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}}});
        apply_defaults(&GroupKind::new("", "Node"), &mut node);
        assert_eq!(node["spec"]["podCIDRs"], json!(["10.244.1.0/24"]));
        assert_eq!(node["status"]["allocatable"], node["status"]["capacity"]);
        assert_eq!(msgs(validate_node(&node, None)), Vec::<String>::new());
    }

    #[test]
    fn node_pod_cidrs_hold_one_valid_cidr_per_family() {
        let node = json!({"spec": {"podCIDRs": ["10.244.0.0/24", "10.245.0.0/24", "bad"]}});
        assert_eq!(
            msgs(validate_node(&node, None)),
            vec![
                "spec.podCIDRs[2]: Invalid value: \"bad\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                "spec.podCIDRs: Invalid value: [\"10.244.0.0/24\",\"10.245.0.0/24\",\"bad\"]: may specify no more than one CIDR for each IP family",
            ]
        );
        assert!(validate_node(&json!({"spec": {"podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"]}}), None).is_empty());
    }

    #[test]
    fn node_taints_need_effects_and_unique_key_effect_pairs() {
        let node = json!({"spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "other", "effect": "NoSchedule"},
            {"key": "x", "effect": "Sometimes"},
            {"key": "y"}]}});
        assert_eq!(
            msgs(validate_node(&node, None)),
            vec![
                "metadata.taints[1]: Duplicate value: {\"key\":\"dedicated\",\"value\":\"other\",\"effect\":\"NoSchedule\"}: taints must be unique by key and effect pair",
                "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "metadata.taints[3].effect: Required value",
            ]
        );
    }

    #[test]
    fn node_pod_cidrs_and_provider_id_are_set_once() {
        let old = json!({"spec": {"podCIDRs": ["10.244.1.0/24"], "providerID": "kind://a"}});
        let new = json!({"spec": {"podCIDRs": ["10.244.2.0/24"], "providerID": "kind://b"}});
        assert_eq!(
            msgs(validate_node(&new, Some(&old))),
            vec![
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
                "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
            ]
        );
        let unset = json!({"spec": {}});
        assert!(validate_node(&old, Some(&unset)).is_empty());
    }

    #[test]
    fn legacy_event_namespace_must_match_its_object() {
        let ev = json!({"metadata": {"name": "web.1", "namespace": "shop"}, "involvedObject": {"kind": "Pod", "namespace": "other"},
            "reason": "Started", "type": "Normal"});
        assert_eq!(
            msgs(validate_event(&ev, None)),
            vec!["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]
        );
        let node_event = json!({"metadata": {"namespace": "default"}, "involvedObject": {"kind": "Node", "name": "node-1"}, "eventTime": null});
        assert!(validate_event(&node_event, None).is_empty());
    }

    #[test]
    fn new_style_event_needs_reporting_fields() {
        let ev = json!({"metadata": {"namespace": "shop"}, "involvedObject": {"kind": "Pod", "namespace": "shop"},
            "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "weft/kubelet", "reportingInstance": "node-1",
            "action": "Started", "reason": "Started"});
        assert!(validate_event(&ev, None).is_empty());
        let mut bad = ev.clone();
        bad["reportingController"] = json!("");
        bad["action"] = json!("x".repeat(129));
        let errs = msgs(validate_event(&bad, None));
        assert_eq!(errs[0], "reportingController: Required value");
        assert!(errs.contains(&"action: Invalid value: \"\": can have at most 128 characters".to_string()));
    }

    #[test]
    fn lease_duration_must_be_positive() {
        let lease = json!({"spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 0, "leaseTransitions": -1}});
        assert_eq!(
            msgs(validate_lease(&lease, None)),
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
        assert!(validate_lease(&json!({"spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}}), None).is_empty());
    }

    #[test]
    fn lease_preferred_holder_needs_a_strategy() {
        let lease = json!({"spec": {"preferredHolder": "a"}});
        assert_eq!(msgs(validate_lease(&lease, None)), vec!["spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"]);
    }
}
