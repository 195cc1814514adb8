//! Field selectors per kind: the fields kube-apiserver lets clients select on.

use serde_json::Value;
use weft_api::selector::FieldSelector;
use weft_api::GroupKind;

/// Fields selectable for a kind beyond `metadata.name` and `metadata.namespace`.
fn extra_fields(gk: &GroupKind) -> &'static [&'static str] {
    match (gk.group.as_str(), gk.kind.as_str()) {
        ("", "Pod") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "Secret") => &["type"],
        ("", "Namespace") => &["status.phase"],
        ("", "Node") => &["spec.unschedulable"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        ("apps", "ReplicaSet") => &["status.replicas"],
        _ => &[],
    }
}

/// Rejects a selector that names a field this kind cannot be selected on.
pub fn check(gk: &GroupKind, sel: &FieldSelector) -> Result<(), String> {
    let extra = extra_fields(gk);
    for r in &sel.requirements {
        if r.field != "metadata.name" && r.field != "metadata.namespace" && !extra.contains(&r.field.as_str()) {
            return Err(format!("field label not supported: {}", r.field));
        }
    }
    Ok(())
}

pub fn matches(sel: &FieldSelector, obj: &Value) -> bool {
    sel.matches(|field| Some(lookup(obj, field)))
}

fn lookup(obj: &Value, field: &str) -> String {
    use weft_api::selector::field_value_string as s;
    match field {
        "source" => s(obj.pointer("/source/component")),
        "status.podIPs" => s(obj.pointer("/status/podIP")),
        "spec.unschedulable" | "spec.hostNetwork" => {
            let v = weft_api::meta::get_path(obj, field).and_then(Value::as_bool).unwrap_or(false);
            v.to_string()
        }
        "status.replicas" => weft_api::meta::get_path(obj, field).and_then(Value::as_i64).unwrap_or(0).to_string(),
        _ => s(weft_api::meta::get_path(obj, field)),
    }
}
