//! `metadata` validation common to every kind, as apimachinery's `ValidateObjectMeta` and
//! `ValidateObjectMetaUpdate` do it, with the per-kind name formats of kube-apiserver.

use super::names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, validate_dns1123_label,
    validate_immutable, validate_labels, IS_NEGATIVE_ERROR, TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
};
use crate::resources::builtin_resources;
use crate::{FieldError, GroupKind};
use serde_json::{json, Map, Value};

/// Validates `metadata` of `obj` (kind `gk`) for create, or for update against `old`.
pub fn validate_object_meta(gk: &GroupKind, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let empty = Value::Object(Map::new());
    let meta = obj.get("metadata").unwrap_or(&empty);
    let mut errs = Vec::new();
    match old {
        None => errs.extend(validate_create_only(gk, meta)),
        Some(old) => errs.extend(validate_update_only(meta, old.get("metadata").unwrap_or(&empty))),
    }
    errs.extend(validate_common(meta));
    errs
}

/// The name format each kind requires; `prefix` is true when checking `generateName`.
fn name_messages(gk: &GroupKind, name: &str, prefix: bool) -> Vec<String> {
    // A generateName prefix may end in '-', since random characters follow it.
    let masked;
    let name = if prefix && name.len() > 1 && name.ends_with('-') {
        masked = format!("{}a", &name[..name.len() - 1]);
        masked.as_str()
    } else {
        name
    };
    match (gk.group.as_str(), gk.kind.as_str()) {
        ("", "Namespace") => is_dns1123_label(name),
        ("", "Service") => is_dns1035_label(name),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") => {
            path_segment_messages(name, prefix)
        }
        _ => is_dns1123_subdomain(name),
    }
}

/// Names that only need to be usable as one URL path segment (RBAC objects).
fn path_segment_messages(name: &str, prefix: bool) -> Vec<String> {
    let mut msgs = Vec::new();
    if !prefix && (name == "." || name == "..") {
        msgs.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            msgs.push(format!("may not contain '{bad}'"));
        }
    }
    msgs
}

/// Whether objects of `gk` live in a namespace; None for kinds this crate does not know
/// (custom resources), whose scope the server checks from the URL.
fn namespaced(gk: &GroupKind) -> Option<bool> {
    builtin_resources().iter().find(|r| r.group == gk.group && r.kind == gk.kind).map(|r| r.namespaced)
}

fn str_at<'a>(meta: &'a Value, field: &str) -> &'a str {
    meta.get(field).and_then(Value::as_str).unwrap_or("")
}

fn validate_create_only(gk: &GroupKind, meta: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = str_at(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in name_messages(gk, generate_name, true) {
            errs.push(FieldError::invalid("metadata.generateName", json!(generate_name), msg));
        }
    }
    let name = str_at(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required("metadata.name", "name or generateName is required"));
    } else {
        for msg in name_messages(gk, name, false) {
            errs.push(FieldError::invalid("metadata.name", json!(name), msg));
        }
    }
    let namespace = str_at(meta, "namespace");
    match namespaced(gk) {
        Some(true) if namespace.is_empty() => errs.push(FieldError::required("metadata.namespace", "")),
        Some(true) => errs.extend(validate_dns1123_label("metadata.namespace", namespace)),
        Some(false) if !namespace.is_empty() => {
            errs.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"))
        }
        _ => {}
    }
    errs
}

fn validate_update_only(meta: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("deletionTimestamp").map(|d| !d.is_null()).unwrap_or(false) {
        let old_finalizers = string_list(old.get("finalizers"));
        let added: Vec<String> = string_list(meta.get("finalizers"))
            .into_iter()
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        if !added.is_empty() {
            let quoted: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    for field in ["name", "namespace", "uid", "creationTimestamp"] {
        let new_v = meta.get(field).cloned().unwrap_or(Value::Null);
        let old_v = old.get(field).cloned().unwrap_or(Value::Null);
        // An empty string and an absent field are the same thing in Go's ObjectMeta. An
        // update without uid or creationTimestamp keeps the stored ones (kube-apiserver
        // copies them over before validating), so only a different value is an error.
        let server_kept = matches!(field, "uid" | "creationTimestamp");
        if is_unset(&new_v) && (is_unset(&old_v) || server_kept) {
            continue;
        }
        let shown = if new_v.is_null() { json!("") } else { new_v.clone() };
        if new_v != old_v {
            errs.extend(validate_immutable(&format!("metadata.{field}"), &shown, &old_v));
        }
    }
    errs
}

fn is_unset(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Checks run on both create and update.
fn validate_common(meta: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(g) = meta.get("generation").and_then(Value::as_i64) {
        if g < 0 {
            errs.push(FieldError::invalid("metadata.generation", json!(g), IS_NEGATIVE_ERROR));
        }
    }
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        errs.extend(validate_labels("metadata.labels", labels));
    }
    if let Some(ann) = meta.get("annotations").and_then(Value::as_object) {
        errs.extend(validate_annotations("metadata.annotations", ann));
    }
    if let Some(refs) = meta.get("ownerReferences").and_then(Value::as_array) {
        errs.extend(validate_owner_references("metadata.ownerReferences", refs));
    }
    errs.extend(validate_finalizers("metadata.finalizers", &string_list(meta.get("finalizers"))));
    errs
}

/// Annotation keys are qualified names compared case-insensitively; all keys and values
/// together may take at most 256 KiB.
pub(crate) fn validate_annotations(path: &str, ann: &Map<String, Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in ann {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, json!(k), msg));
        }
        total += k.len() + v.as_str().map(str::len).unwrap_or(0);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_BYTES));
    }
    errs
}

fn validate_owner_references(path: &str, refs: &[Value]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = str_at(r, "apiVersion");
        let kind = str_at(r, "kind");
        let (group, version) = split_api_version(api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.apiVersion"), json!(api_version), "version must not be empty"));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.kind"), json!(kind), "kind must not be empty"));
        }
        let name = str_at(r, "name");
        if name.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.name"), json!(name), "name must not be empty"));
        }
        let uid = str_at(r, "uid");
        if uid.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.uid"), json!(uid), "uid must not be empty"));
        }
        // Events may not own anything: they are garbage collected by TTL, not by owner.
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(path, r.clone(), "/v1, Kind=Event is disallowed from being an owner"));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                )),
                None => first_controller = Some(this),
            }
        }
    }
    errs
}

/// `apps/v1` -> ("apps", "v1"); `v1` -> ("", "v1"); anything with more slashes is empty.
fn split_api_version(av: &str) -> (&str, &str) {
    match av.split('/').collect::<Vec<_>>().as_slice() {
        [v] => ("", v),
        [g, v] => (g, v),
        _ => ("", ""),
    }
}

fn validate_finalizers(path: &str, finalizers: &[String]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, json!(f), msg));
        }
    }
    if finalizers.iter().any(|f| f == "orphan") && finalizers.iter().any(|f| f == "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            json!(finalizers),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gk(group: &str, kind: &str) -> GroupKind {
        GroupKind::new(group, kind)
    }

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn valid_pod_metadata_passes() {
        let pod = json!({"metadata": {
            "name": "nginx", "namespace": "default",
            "labels": {"app": "nginx", "app.kubernetes.io/name": "web"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "finalizers": ["example.com/cleanup"],
        }});
        assert_eq!(validate_object_meta(&gk("", "Pod"), &pod, None), vec![]);
    }

    #[test]
    fn missing_name_requires_name_or_generate_name() {
        let pod = json!({"metadata": {"namespace": "default"}});
        assert_eq!(
            msgs(&validate_object_meta(&gk("", "Pod"), &pod, None)),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
    }

    #[test]
    fn uppercase_pod_name_is_not_a_subdomain() {
        let pod = json!({"metadata": {"name": "Foo_", "namespace": "default"}});
        let errs = validate_object_meta(&gk("", "Pod"), &pod, None);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with(
            "metadata.name: Invalid value: \"Foo_\": a lowercase RFC 1123 subdomain must consist of"
        ));
    }

    #[test]
    fn service_names_are_dns1035_labels() {
        let svc = json!({"metadata": {"name": "1web", "namespace": "default"}});
        let errs = validate_object_meta(&gk("", "Service"), &svc, None);
        assert!(errs[0].detail.starts_with("a DNS-1035 label"));
        let dotted = json!({"metadata": {"name": "web.v1", "namespace": "default"}});
        assert_eq!(validate_object_meta(&gk("", "Service"), &dotted, None).len(), 1);
        // Pods may have dots.
        assert!(validate_object_meta(&gk("", "Pod"), &dotted, None).is_empty());
    }

    #[test]
    fn namespace_names_are_dns1123_labels_and_take_no_namespace() {
        let ns = json!({"metadata": {"name": "a.b"}});
        assert_eq!(
            msgs(&validate_object_meta(&gk("", "Namespace"), &ns, None)),
            vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
        let ns = json!({"metadata": {"name": "team-a", "namespace": "default"}});
        assert_eq!(
            msgs(&validate_object_meta(&gk("", "Namespace"), &ns, None)),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let node = json!({"metadata": {"name": "node-1.example.com"}});
        assert!(validate_object_meta(&gk("", "Node"), &node, None).is_empty());
    }

    #[test]
    fn namespaced_kinds_require_a_valid_namespace() {
        let cm = json!({"metadata": {"name": "cfg"}});
        assert_eq!(
            msgs(&validate_object_meta(&gk("", "ConfigMap"), &cm, None)),
            vec!["metadata.namespace: Required value"]
        );
        let cm = json!({"metadata": {"name": "cfg", "namespace": "Bad_NS"}});
        assert_eq!(validate_object_meta(&gk("", "ConfigMap"), &cm, None)[0].field, "metadata.namespace");
    }

    #[test]
    fn generate_name_may_end_with_dash() {
        let pod = json!({"metadata": {"generateName": "web-", "name": "web-x7k2p", "namespace": "default"}});
        assert!(validate_object_meta(&gk("", "Pod"), &pod, None).is_empty());
        let bad = json!({"metadata": {"generateName": "Web-", "name": "web-x7k2p", "namespace": "default"}});
        assert_eq!(validate_object_meta(&gk("", "Pod"), &bad, None)[0].field, "metadata.generateName");
    }

    #[test]
    fn bad_label_and_annotation_keys_are_named() {
        let pod = json!({"metadata": {"name": "p", "namespace": "default",
            "labels": {"app": "has space"},
            "annotations": {"-bad": "x", "Example.COM/Ok": "case does not matter"}}});
        let errs = validate_object_meta(&gk("", "Pod"), &pod, None);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].field, "metadata.labels");
        assert_eq!(errs[0].value, Some(json!("has space")));
        assert_eq!(errs[1].field, "metadata.annotations");
        assert_eq!(errs[1].value, Some(json!("-bad")));
    }

    #[test]
    fn annotations_over_256_kib_are_too_long() {
        let pod = json!({"metadata": {"name": "p", "namespace": "default",
            "annotations": {"big": "x".repeat(256 * 1024)}}});
        let errs = validate_object_meta(&gk("", "Pod"), &pod, None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].kind, crate::FieldErrorType::TooLong);
        assert_eq!(errs[0].field, "metadata.annotations");
    }

    #[test]
    fn owner_references_need_version_kind_name_uid_and_one_controller() {
        let pod = json!({"metadata": {"name": "p", "namespace": "default", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u1", "controller": true},
            {"apiVersion": "apps/", "kind": "", "name": "", "uid": "", "controller": true},
            {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u3"},
        ]}});
        let got = msgs(&validate_object_meta(&gk("", "Pod"), &pod, None));
        assert_eq!(got.len(), 6, "{got:#?}");
        assert_eq!(got[0], "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty");
        assert_eq!(got[1], "metadata.ownerReferences.kind: Invalid value: \"\": kind must not be empty");
        assert!(got[4].contains("Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/web-1 and /"));
        assert!(got[5].ends_with("/v1, Kind=Event is disallowed from being an owner"));
    }

    #[test]
    fn finalizers_must_be_qualified_and_not_orphan_plus_foreground() {
        let pod = json!({"metadata": {"name": "p", "namespace": "default",
            "finalizers": ["orphan", "foregroundDeletion", "bad/fin/x"]}});
        let errs = validate_object_meta(&gk("", "Pod"), &pod, None);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].value, Some(json!("bad/fin/x")));
        assert_eq!(errs[1].detail, "finalizer orphan and foregroundDeletion cannot be both set");
    }

    #[test]
    fn update_may_not_change_name_uid_or_creation_timestamp() {
        let old = json!({"metadata": {"name": "p", "namespace": "default", "uid": "u1",
            "creationTimestamp": "2024-01-01T00:00:00Z", "resourceVersion": "5"}});
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"a": "b"});
        assert!(validate_object_meta(&gk("", "Pod"), &new, Some(&old)).is_empty());
        // Leaving out server-kept fields is not a change.
        let mut bare = new.clone();
        bare["metadata"].as_object_mut().unwrap().remove("uid");
        bare["metadata"].as_object_mut().unwrap().remove("creationTimestamp");
        assert!(validate_object_meta(&gk("", "Pod"), &bare, Some(&old)).is_empty());
        new["metadata"]["name"] = json!("q");
        new["metadata"]["uid"] = json!("u2");
        new["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        assert_eq!(msgs(&validate_object_meta(&gk("", "Pod"), &new, Some(&old))), vec![
            "metadata.name: Invalid value: \"q\": field is immutable",
            "metadata.uid: Invalid value: \"u2\": field is immutable",
            "metadata.creationTimestamp: Invalid value: \"2025-01-01T00:00:00Z\": field is immutable",
        ]);
    }

    #[test]
    fn no_new_finalizers_while_deleting() {
        let old = json!({"metadata": {"name": "p", "namespace": "default",
            "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x"]}});
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["a.io/x", "b.io/y"]);
        assert_eq!(msgs(&validate_object_meta(&gk("", "Pod"), &new, Some(&old))), vec![
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}",
        ]);
        new["metadata"]["finalizers"] = json!([]);
        assert!(validate_object_meta(&gk("", "Pod"), &new, Some(&old)).is_empty());
    }

    #[test]
    fn rbac_names_only_need_to_be_path_segments() {
        let role = json!({"metadata": {"name": "system:controller:Foo", "namespace": "default"}});
        assert!(validate_object_meta(&gk("rbac.authorization.k8s.io", "Role"), &role, None).is_empty());
        let bad = json!({"metadata": {"name": "a/b"}});
        assert_eq!(
            msgs(&validate_object_meta(&gk("rbac.authorization.k8s.io", "ClusterRole"), &bad, None)),
            vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'"]
        );
    }

    #[test]
    fn custom_resources_get_subdomain_names_and_no_scope_check() {
        let cr = json!({"metadata": {"name": "my-crontab"}});
        assert!(validate_object_meta(&gk("stable.example.com", "CronTab"), &cr, None).is_empty());
    }
}
