//! Pods and pod specs, as kube-apiserver's `ValidatePodCreate`, `ValidatePodSpec` and
//! `ValidatePodUpdate` check them. Pod specs are shared with pod templates (Deployments,
//! ReplicaSets), so every check takes the path prefix of the spec it looks at.

mod container;
mod volume;

use super::names::{
    child, index, is_dns1123_subdomain, is_label_value, is_qualified_name, validate_dns1123_label,
    validate_dns1123_subdomain, validate_ip, validate_labels, validate_qualified_name, IS_NEGATIVE_ERROR,
};
use crate::FieldError;
use container::{
    check_host_port_conflicts, forbid_probes_and_lifecycle, validate_container_common, validate_probes_and_lifecycle,
    ContainerKind,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

const MAX_INT32: i64 = i32::MAX as i64;
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCH_PATHS: usize = 32;
const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;

/// Validates a Pod for create (`old` = None) or update. Metadata is validated separately.
pub fn validate_pod(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let mut errs = Vec::new();
    if let Some(ann) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        errs.extend(validate_pod_specific_annotations(ann, spec, "metadata.annotations"));
    }
    errs.extend(validate_pod_spec(spec, "spec"));
    match old {
        None => {
            for list in ["containers", "initContainers"] {
                for (i, c) in arr(spec, list).iter().enumerate() {
                    let image = str_of(c, "image");
                    if image.trim() != image {
                        errs.push(FieldError::invalid(
                            child(&index(&format!("spec.{list}"), i), "image"),
                            json!(image),
                            "must not have leading or trailing whitespace",
                        ));
                    }
                }
            }
            if !arr(spec, "ephemeralContainers").is_empty() {
                errs.push(FieldError::forbidden("spec.ephemeralContainers", "cannot be set on create"));
            }
        }
        Some(old) => errs.extend(validate_pod_spec_update(spec, old.get("spec").unwrap_or(&null))),
    }
    errs
}

/// A pod template (`spec.template` of a workload): its labels, annotations and spec.
/// Upstream reports template labels at `<path>.labels`, not `<path>.metadata.labels`.
pub(crate) fn validate_pod_template(template: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(labels) = template.pointer("/metadata/labels").and_then(Value::as_object) {
        errs.extend(validate_labels(&child(path, "labels"), labels));
    }
    if let Some(ann) = template.pointer("/metadata/annotations").and_then(Value::as_object) {
        errs.extend(super::meta::validate_annotations(&child(path, "annotations"), ann));
    }
    let null = Value::Null;
    let spec_path = child(path, "spec");
    let spec = template.get("spec").unwrap_or(&null);
    if let Some(ann) = template.pointer("/metadata/annotations").and_then(Value::as_object) {
        errs.extend(validate_pod_specific_annotations(ann, spec, &child(path, "annotations")));
    }
    errs.extend(validate_pod_spec(spec, &spec_path));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            child(&spec_path, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// A mirror pod (a static pod's shadow, created by the kubelet) is always bound.
fn validate_pod_specific_annotations(ann: &Map<String, Value>, spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(v) = ann.get("kubernetes.io/config.mirror") {
        if str_of(spec, "nodeName").is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}[kubernetes.io/config.mirror]"),
                v.clone(),
                "must set spec.nodeName if mirror pod annotation is set",
            ));
        }
    }
    errs
}

/// A `PodSpec` at `path` (`spec`, `spec.template.spec`).
pub(crate) fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (volumes, verrs) = volume::validate_volumes(arr(spec, "volumes"), &child(path, "volumes"));
    errs.extend(verrs);
    let grace = int(spec, "terminationGracePeriodSeconds");
    let containers = arr(spec, "containers");
    let cpath = child(path, "containers");
    let mut names = BTreeSet::new();
    if containers.is_empty() {
        errs.push(FieldError::required(&cpath, ""));
    } else {
        for (i, c) in containers.iter().enumerate() {
            let ip = index(&cpath, i);
            errs.extend(validate_container_common(c, &ip, &volumes));
            let name = str_of(c, "name");
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&ip, "name"), json!(name)));
            }
            errs.extend(validate_probes_and_lifecycle(c, &ip, grace));
            if c.get("restartPolicy").map(|v| !v.is_null()).unwrap_or(false) {
                errs.push(FieldError::forbidden(child(&ip, "restartPolicy"), "may not be set for non-init containers"));
            }
        }
        errs.extend(check_host_port_conflicts(containers, &cpath, 0, &mut BTreeSet::new()));
    }
    errs.extend(validate_init_containers(arr(spec, "initContainers"), &child(path, "initContainers"), &volumes, &mut names, grace));
    errs.extend(validate_host_network_ports(spec, path));
    match str_of(spec, "restartPolicy") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(child(path, "restartPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            child(path, "restartPolicy"),
            json!(other),
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns_policy = str_of(spec, "dnsPolicy");
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(child(path, "dnsPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            child(path, "dnsPolicy"),
            json!(other),
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    if let Some(ns) = spec.get("nodeSelector").and_then(Value::as_object) {
        errs.extend(validate_labels(&child(path, "nodeSelector"), ns));
    }
    if let Some(sc) = spec.get("securityContext").filter(|v| !v.is_null()) {
        errs.extend(validate_pod_security_context(sc, &child(path, "securityContext")));
    }
    errs.extend(validate_dns_config(spec.get("dnsConfig").filter(|v| !v.is_null()), dns_policy, &child(path, "dnsConfig")));
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        let t = str_of(g, "conditionType");
        errs.extend(validate_qualified_name(&child(&index(&child(path, "readinessGates"), i), "conditionType"), t));
    }
    for field in ["serviceAccountName", "nodeName", "priorityClassName"] {
        let v = str_of(spec, field);
        if !v.is_empty() {
            errs.extend(validate_dns1123_subdomain(&child(path, field), v));
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&ads) {
            errs.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                json!(ads),
                format!("must be between 1 and {MAX_INT32}, inclusive"),
            ));
        }
    }
    if let Some(g) = grace {
        if g < 0 {
            errs.push(FieldError::invalid(child(path, "terminationGracePeriodSeconds"), json!(g), IS_NEGATIVE_ERROR));
        }
    }
    for field in ["hostname", "subdomain"] {
        let v = str_of(spec, field);
        if !v.is_empty() {
            errs.extend(validate_dns1123_label(&child(path, field), v));
        }
    }
    errs.extend(validate_tolerations(arr(spec, "tolerations"), &child(path, "tolerations")));
    for (i, ha) in arr(spec, "hostAliases").iter().enumerate() {
        let ip = index(&child(path, "hostAliases"), i);
        errs.extend(validate_ip(&child(&ip, "ip"), str_of(ha, "ip")));
        for (j, h) in arr(ha, "hostnames").iter().enumerate() {
            let h = h.as_str().unwrap_or("");
            errs.extend(validate_dns1123_subdomain(&index(&child(&ip, "hostnames"), j), h));
        }
    }
    if let Some(p) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if p != "PreemptLowerPriority" && p != "Never" {
            errs.push(FieldError::not_supported(
                child(path, "preemptionPolicy"),
                json!(p),
                &["PreemptLowerPriority", "Never"],
            ));
        }
    }
    if let Some(os) = spec.get("os").filter(|v| !v.is_null()) {
        match str_of(os, "name") {
            "" => errs.push(FieldError::required(child(&child(path, "os"), "name"), "")),
            "linux" | "windows" => {}
            other => errs.push(FieldError::not_supported(child(&child(path, "os"), "name"), json!(other), &["linux", "windows"])),
        }
    }
    errs
}

fn validate_init_containers(
    list: &[Value],
    path: &str,
    volumes: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
    grace: Option<i64>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let ip = index(path, i);
        errs.extend(validate_container_common(c, &ip, volumes));
        let mut kind = ContainerKind::Init;
        if let Some(rp) = c.get("restartPolicy").filter(|v| !v.is_null()) {
            let rp = rp.as_str().unwrap_or("");
            if rp == "Always" {
                kind = ContainerKind::Regular;
            } else {
                errs.push(FieldError::not_supported(child(&ip, "restartPolicy"), json!(rp), &["Always"]));
            }
        }
        let name = str_of(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(child(&ip, "name"), json!(name)));
        } else if !name.is_empty() {
            names.insert(name.to_string());
        }
        // Init containers run one at a time, so host ports only clash within one.
        errs.extend(check_host_port_conflicts(std::slice::from_ref(c), path, i, &mut BTreeSet::new()));
        if kind == ContainerKind::Regular {
            errs.extend(validate_probes_and_lifecycle(c, &ip, grace));
        } else {
            errs.extend(forbid_probes_and_lifecycle(c, &ip));
        }
    }
    errs
}

/// With `hostNetwork`, a container's port is the host's port: `hostPort` must equal
/// `containerPort` where set.
fn validate_host_network_ports(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !spec.get("hostNetwork").and_then(Value::as_bool).unwrap_or(false) {
        return errs;
    }
    for (ci, c) in arr(spec, "containers").iter().enumerate() {
        for (pi, p) in arr(c, "ports").iter().enumerate() {
            let hp = int(p, "hostPort").unwrap_or(0);
            let cp = int(p, "containerPort").unwrap_or(0);
            if hp != 0 && hp != cp {
                let f = child(&index(&child(&index(&child(path, "containers"), ci), "ports"), pi), "containerPort");
                errs.push(FieldError::invalid(f, json!(cp), "must match `hostPort` when `hostNetwork` is true"));
            }
        }
    }
    errs
}

fn validate_pod_security_context(sc: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(id) = int(sc, f) {
            if !(0..=MAX_INT32).contains(&id) {
                errs.push(FieldError::invalid(child(path, f), json!(id), format!("must be between 0 and {MAX_INT32}, inclusive")));
            }
        }
    }
    for (i, g) in arr(sc, "supplementalGroups").iter().enumerate() {
        let id = g.as_i64().unwrap_or(-1);
        if !(0..=MAX_INT32).contains(&id) {
            errs.push(FieldError::invalid(
                index(&child(path, "supplementalGroups"), i),
                json!(id),
                format!("must be between 0 and {MAX_INT32}, inclusive"),
            ));
        }
    }
    errs
}

fn validate_dns_config(cfg: Option<&Value>, dns_policy: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if dns_policy == "None" {
        let Some(cfg) = cfg else {
            errs.push(FieldError::required(path, "must provide `dnsConfig` when `dnsPolicy` is None"));
            return errs;
        };
        if arr(cfg, "nameservers").is_empty() {
            errs.push(FieldError::required(
                child(path, "nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ));
            return errs;
        }
    }
    let Some(cfg) = cfg else { return errs };
    let nameservers = arr(cfg, "nameservers");
    if nameservers.len() > MAX_DNS_NAMESERVERS {
        errs.push(FieldError::invalid(
            child(path, "nameservers"),
            json!(nameservers),
            format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        errs.extend(validate_ip(&index(&child(path, "nameservers"), i), ns.as_str().unwrap_or("")));
    }
    let searches: Vec<&str> = arr(cfg, "searches").iter().map(|s| s.as_str().unwrap_or("")).collect();
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        errs.push(FieldError::invalid(
            child(path, "searches"),
            json!(searches),
            format!("must not have more than {MAX_DNS_SEARCH_PATHS} search paths"),
        ));
    }
    if searches.join(" ").len() > MAX_DNS_SEARCH_LIST_CHARS {
        errs.push(FieldError::invalid(
            child(path, "searches"),
            json!(searches),
            format!("must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list"),
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        // A trailing dot (fully qualified) is fine.
        let s = s.strip_suffix('.').unwrap_or(s);
        for m in is_dns1123_subdomain(s) {
            errs.push(FieldError::invalid(index(&child(path, "searches"), i), json!(s), m));
        }
    }
    for (i, o) in arr(cfg, "options").iter().enumerate() {
        if str_of(o, "name").is_empty() {
            errs.push(FieldError::required(index(&child(path, "options"), i), "must not be empty"));
        }
    }
    errs
}

fn validate_tolerations(list: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let ip = index(path, i);
        let k = str_of(t, "key");
        let op = str_of(t, "operator");
        let effect = str_of(t, "effect");
        if !k.is_empty() {
            for m in is_qualified_name(k) {
                errs.push(FieldError::invalid(child(&ip, "key"), json!(k), m));
            }
        }
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&ip, "operator"),
                json!(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.get("tolerationSeconds").map(|v| !v.is_null()).unwrap_or(false) && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&ip, "effect"),
                json!(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = str_of(t, "value");
        match op {
            "Equal" | "" => {
                let msgs = is_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(child(&ip, "operator"), json!(value), msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&ip, "operator"),
                        t.clone(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(child(&ip, "operator"), json!(other), &["Equal", "Exists"])),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                child(&ip, "effect"),
                json!(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

/// What an update may change in a running pod: container images, a shorter
/// `activeDeadlineSeconds`, added tolerations, removed scheduling gates.
fn validate_pod_spec_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for list in ["containers", "initContainers"] {
        let lp = format!("spec.{list}");
        let (n, o) = (arr(new, list), arr(old, list));
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(lp, "pod updates may not add or remove containers"));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = str_of(c, "image");
            let ip = child(&index(&lp, i), "image");
            if image.is_empty() {
                errs.push(FieldError::required(ip, ""));
            } else if image.trim() != image {
                errs.push(FieldError::invalid(ip, json!(image), "must not have leading or trailing whitespace"));
            }
        }
    }
    let ads_path = "spec.activeDeadlineSeconds";
    match (int(new, "activeDeadlineSeconds"), int(old, "activeDeadlineSeconds")) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(FieldError::invalid(ads_path, json!(n), format!("must be between 0 and {MAX_INT32}, inclusive")));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(ads_path, json!(n), "must be less than or equal to previous value"));
            return errs;
        }
        (None, Some(_)) => {
            errs.push(FieldError::invalid(ads_path, Value::Null, "must not update from a positive integer to nil value"));
        }
        _ => {}
    }
    errs.extend(validate_only_added_tolerations(arr(new, "tolerations"), arr(old, "tolerations")));
    if new == old {
        return errs;
    }
    let munged = munge_updatable_fields(new, old);
    if munged != *old {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n{}",
                spec_diff(old, &munged)
            ),
        ));
    }
    errs
}

/// `new` with every field an update may change set back to `old`'s value, so that what
/// remains different is forbidden.
fn munge_updatable_fields(new: &Value, old: &Value) -> Value {
    let mut m = new.clone();
    for list in ["containers", "initContainers"] {
        if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in cs.iter_mut().enumerate() {
                let old_image = old.get(list).and_then(|l| l.get(i)).and_then(|c| c.get("image")).cloned();
                set_or_remove(c, "image", old_image);
            }
        }
    }
    for field in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
        set_or_remove(&mut m, field, old.get(field).cloned());
    }
    let old_grace = int(old, "terminationGracePeriodSeconds");
    if old_grace.map(|g| g < 0).unwrap_or(false) && int(&m, "terminationGracePeriodSeconds") == Some(1) {
        set_or_remove(&mut m, "terminationGracePeriodSeconds", old.get("terminationGracePeriodSeconds").cloned());
    }
    m
}

fn set_or_remove(obj: &mut Value, field: &str, v: Option<Value>) {
    if let Some(o) = obj.as_object_mut() {
        match v {
            Some(v) => {
                o.insert(field.to_string(), v);
            }
            None => {
                o.remove(field);
            }
        }
    }
}

/// A short description of what differs, in the spirit of the `cmp.Diff` upstream appends.
fn spec_diff(old: &Value, new: &Value) -> String {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    let mut s = String::from("  core.PodSpec{\n");
    for k in keys {
        let (ov, nv) = (o.get(k), n.get(k));
        if ov == nv {
            continue;
        }
        if let Some(ov) = ov {
            s.push_str(&format!("- \t{k}: {ov},\n"));
        }
        if let Some(nv) = nv {
            s.push_str(&format!("+ \t{k}: {nv},\n"));
        }
    }
    s.push_str("  }\n");
    s
}

fn validate_only_added_tolerations(new: &[Value], old: &[Value]) -> Vec<FieldError> {
    for o in old {
        let found = new.iter().any(|n| {
            let mut o = o.clone();
            set_or_remove(&mut o, "tolerationSeconds", n.get("tolerationSeconds").cloned());
            without_nulls(&o) == without_nulls(n)
        });
        if !found {
            return vec![FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    Vec::new()
}

/// A toleration as Go compares it: absent and empty fields are the same.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

// Small accessors over untyped objects, shared with the container and volume checks.

pub(super) fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn arr<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v.get(field).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

pub(super) fn int(v: &Value, field: &str) -> Option<i64> {
    v.get(field).and_then(Value::as_i64)
}

#[cfg(test)]
mod tests;
