//! One container's fields: name, image, ports, env, mounts, probes, lifecycle, resources.

use super::{arr, int, str_of};
use crate::validate::names::{
    child, index, is_config_map_key, is_dns1123_subdomain, is_env_var_name, is_http_header_name,
    is_qualified_name, is_valid_port_name, is_valid_port_num, key, quantity_of, validate_dns1123_label,
    validate_nonnegative, validate_nonnegative_quantity, validate_port_num, validate_port_num_or_name,
};
use crate::{FieldError, FieldErrorType};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Which list a container is in; init containers may carry probes and lifecycle hooks only
/// as sidecars (`restartPolicy: Always`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ContainerKind {
    Regular,
    Init,
}

/// Env `fieldRef` paths a container may read.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
/// Downward API volume `fieldRef` paths.
pub(super) const VOLUME_FIELD_PATHS: &[&str] =
    &["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"];
/// Every pod field the downward API can convert at all; others are "not supported".
const CONVERTIBLE_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_FIELD_REFS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// Checks common to regular and init containers. `volumes` are the names of the pod's
/// valid volumes, for `volumeMounts[].name`.
pub(super) fn validate_container_common(c: &Value, path: &str, volumes: &BTreeSet<String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        errs.extend(validate_dns1123_label(&child(path, "name"), name));
    }
    if str_of(c, "image").is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    }
    match str_of(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            child(path, "terminationMessagePolicy"),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        other => errs.push(FieldError::not_supported(
            child(path, "terminationMessagePolicy"),
            json!(other),
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_ports(arr(c, "ports"), &child(path, "ports")));
    errs.extend(validate_env(arr(c, "env"), &child(path, "env")));
    errs.extend(validate_env_from(arr(c, "envFrom"), &child(path, "envFrom")));
    errs.extend(validate_volume_mounts(c, volumes, &child(path, "volumeMounts")));
    match str_of(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(child(path, "imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            child(path, "imagePullPolicy"),
            json!(other),
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(res) = c.get("resources") {
        errs.extend(validate_resources(res, &child(path, "resources")));
    }
    errs
}

/// Probes and lifecycle hooks, allowed on regular containers and sidecars.
pub(super) fn validate_probes_and_lifecycle(c: &Value, path: &str, grace: Option<i64>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(lc) = c.get("lifecycle").filter(|v| !v.is_null()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get(hook).filter(|v| !v.is_null()) {
                errs.extend(validate_handler(h, &child(&child(path, "lifecycle"), hook), grace, false));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get(probe).filter(|v| !v.is_null()) {
            errs.extend(validate_probe(p, &child(path, probe), probe, grace));
        }
    }
    errs
}

/// Init containers without `restartPolicy: Always` run to completion: no probes or hooks.
pub(super) fn forbid_probes_and_lifecycle(c: &Value, path: &str) -> Vec<FieldError> {
    ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"]
        .into_iter()
        .filter(|f| c.get(*f).map(|v| !v.is_null()).unwrap_or(false))
        .map(|f| FieldError::forbidden(child(path, f), "may not be set for init containers without restartPolicy=Always"))
        .collect()
}

fn validate_ports(ports: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ip = index(path, i);
        let name = str_of(p, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(child(&ip, "name"), json!(name), m));
                }
            } else if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&ip, "name"), json!(name)));
            }
        }
        let cp = int(p, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(FieldError::required(child(&ip, "containerPort"), ""));
        } else {
            errs.extend(validate_port_num(&child(&ip, "containerPort"), cp));
        }
        let hp = int(p, "hostPort").unwrap_or(0);
        if hp != 0 {
            errs.extend(validate_port_num(&child(&ip, "hostPort"), hp));
        }
        match str_of(p, "protocol") {
            "" => errs.push(FieldError::required(child(&ip, "protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(FieldError::not_supported(child(&ip, "protocol"), json!(other), &["SCTP", "TCP", "UDP"])),
        }
    }
    errs
}

/// Host ports must be unique per (hostIP, protocol, port) across `containers`, which sit
/// at `path[first_index..]`.
pub(super) fn check_host_port_conflicts(
    containers: &[Value],
    path: &str,
    first_index: usize,
    seen: &mut BTreeSet<String>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (ci, c) in containers.iter().enumerate().map(|(i, c)| (i + first_index, c)) {
        for (pi, p) in arr(c, "ports").iter().enumerate() {
            let hp = int(p, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let k = format!("{}/{}/{}", str_of(p, "hostIP"), str_of(p, "protocol"), hp);
            if !seen.insert(k.clone()) {
                let f = child(&index(&child(&index(path, ci), "ports"), pi), "hostPort");
                errs.push(FieldError::duplicate(f, json!(k)));
            }
        }
    }
    errs
}

fn validate_env(env: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in env.iter().enumerate() {
        let ip = index(path, i);
        let name = str_of(e, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&ip, "name"), ""));
        }
        for m in is_env_var_name(name) {
            errs.push(FieldError::invalid(child(&ip, "name"), json!(name), m));
        }
        if let Some(vf) = e.get("valueFrom").filter(|v| !v.is_null()) {
            errs.extend(validate_env_value_from(vf, !str_of(e, "value").is_empty(), &child(&ip, "valueFrom")));
        }
    }
    errs
}

fn validate_env_value_from(vf: &Value, has_value: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut sources = 0;
    if let Some(fr) = present(vf, "fieldRef") {
        sources += 1;
        errs.extend(validate_object_field_selector(fr, ENV_FIELD_PATHS, &child(path, "fieldRef")));
    }
    if let Some(rr) = present(vf, "resourceFieldRef") {
        sources += 1;
        errs.extend(validate_resource_field_ref(rr, &child(path, "resourceFieldRef"), false));
    }
    if let Some(cm) = present(vf, "configMapKeyRef") {
        sources += 1;
        errs.extend(validate_key_selector(cm, &child(path, "configMapKeyRef")));
    }
    if let Some(s) = present(vf, "secretKeyRef") {
        sources += 1;
        errs.extend(validate_key_selector(s, &child(path, "secretKeyRef")));
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            json!(""),
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if has_value {
        errs.push(FieldError::invalid(path, json!(""), "may not be specified when `value` is not empty"));
    } else if sources > 1 {
        errs.push(FieldError::invalid(path, json!(""), "may not have more than one field specified at a time"));
    }
    errs
}

pub(super) fn present<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    v.get(field).filter(|x| !x.is_null())
}

/// A `configMapKeyRef` / `secretKeyRef`: object name and key.
fn validate_key_selector(sel: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(sel, "name");
    for m in is_dns1123_subdomain(name) {
        errs.push(FieldError::invalid(child(path, "name"), json!(name), m));
    }
    let k = str_of(sel, "key");
    if k.is_empty() {
        errs.push(FieldError::required(child(path, "key"), ""));
    } else {
        for m in is_config_map_key(k) {
            errs.push(FieldError::invalid(child(path, "key"), json!(k), m));
        }
    }
    errs
}

/// A downward API `fieldRef`: `apiVersion` and a `fieldPath` among `allowed`, or a
/// subscripted `metadata.labels['k']` / `metadata.annotations['k']`.
pub(super) fn validate_object_field_selector(fr: &Value, allowed: &[&str], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let api_version = str_of(fr, "apiVersion");
    if api_version.is_empty() {
        errs.push(FieldError::required(child(path, "apiVersion"), ""));
        return errs;
    }
    let fp = str_of(fr, "fieldPath");
    if fp.is_empty() {
        errs.push(FieldError::required(child(path, "fieldPath"), ""));
        return errs;
    }
    if api_version != "v1" {
        errs.push(FieldError::invalid(
            child(path, "fieldPath"),
            json!(fp),
            format!("error converting fieldPath: unsupported pod version: {api_version}"),
        ));
        return errs;
    }
    if let Some((base, sub)) = split_subscript(fp) {
        match base {
            "metadata.annotations" => {
                for m in is_qualified_name(&sub.to_lowercase()) {
                    errs.push(FieldError::invalid(path, json!(sub.to_lowercase()), m));
                }
            }
            "metadata.labels" => {
                for m in is_qualified_name(sub) {
                    errs.push(FieldError::invalid(path, json!(sub), m));
                }
            }
            _ => errs.push(FieldError::invalid(path, json!(base), "does not support subscript")),
        }
        return errs;
    }
    let internal = if fp == "spec.host" { "spec.nodeName" } else { fp };
    if !CONVERTIBLE_FIELD_PATHS.contains(&internal) {
        errs.push(FieldError::invalid(
            child(path, "fieldPath"),
            json!(fp),
            format!("error converting fieldPath: field label not supported: {fp}"),
        ));
    } else if !allowed.contains(&internal) {
        errs.push(FieldError::not_supported(child(path, "fieldPath"), json!(internal), allowed));
    }
    errs
}

/// `metadata.labels['app']` -> ("metadata.labels", "app").
fn split_subscript(fp: &str) -> Option<(&str, &str)> {
    let open = fp.find("['")?;
    let rest = fp[open + 2..].strip_suffix("']")?;
    Some((&fp[..open], rest))
}

/// A `resourceFieldRef` (env or downward API volume item).
pub(super) fn validate_resource_field_ref(rr: &Value, path: &str, container_required: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if container_required && str_of(rr, "containerName").is_empty() {
        errs.push(FieldError::required(child(path, "containerName"), ""));
    }
    let resource = str_of(rr, "resource");
    if resource.is_empty() {
        errs.push(FieldError::required(child(path, "resource"), ""));
        return errs;
    }
    let hugepages = resource.starts_with("limits.hugepages-") || resource.starts_with("requests.hugepages-");
    if !RESOURCE_FIELD_REFS.contains(&resource) && !hugepages {
        errs.push(FieldError::not_supported(child(path, "resource"), json!(resource), RESOURCE_FIELD_REFS));
        return errs;
    }
    if let Some(div) = present(rr, "divisor") {
        let ok_cpu = ["1m", "1"];
        let ok_mem = ["1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"];
        let d = match div {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if resource.ends_with(".cpu") && !ok_cpu.contains(&d.as_str()) {
            errs.push(FieldError::invalid(
                child(path, "divisor"),
                json!(d),
                "only divisor's values 1m and 1 are supported with the cpu resource",
            ));
        } else if (resource.ends_with(".memory") || resource.ends_with(".ephemeral-storage") || hugepages)
            && !ok_mem.contains(&d.as_str())
        {
            let which = resource.split_once('.').map(|x| x.1).unwrap_or(resource);
            errs.push(FieldError::invalid(
                child(path, "divisor"),
                json!(d),
                format!("only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the {which} resource"),
            ));
        }
    }
    errs
}

fn validate_env_from(list: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ef) in list.iter().enumerate() {
        let ip = index(path, i);
        let prefix = str_of(ef, "prefix");
        if !prefix.is_empty() {
            for m in is_env_var_name(prefix) {
                errs.push(FieldError::invalid(child(&ip, "prefix"), json!(prefix), m));
            }
        }
        let mut sources = 0;
        for src in ["configMapRef", "secretRef"] {
            if let Some(r) = present(ef, src) {
                sources += 1;
                let np = child(&child(&ip, src), "name");
                let name = str_of(r, "name");
                if name.is_empty() {
                    errs.push(FieldError::required(np, ""));
                } else {
                    let masked = mask_trailing_dash(name);
                    for m in is_dns1123_subdomain(&masked) {
                        errs.push(FieldError::invalid(&np, json!(name), m));
                    }
                }
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(path, json!(""), "must specify one of: `configMapRef` or `secretRef`"));
        } else if sources > 1 {
            errs.push(FieldError::invalid(path, json!(""), "may not have more than one field specified at a time"));
        }
    }
    errs
}

/// Upstream checks envFrom names as name prefixes, which may end in '-'.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') { format!("{}a", &name[..name.len() - 1]) } else { name.to_string() }
}

fn validate_volume_mounts(c: &Value, volumes: &BTreeSet<String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_points = BTreeSet::new();
    let devices = arr(c, "volumeDevices");
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let ip = index(path, i);
        let name = str_of(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&ip, "name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(FieldError {
                kind: FieldErrorType::NotFound,
                field: child(&ip, "name"),
                value: Some(json!(name)),
                detail: String::new(),
            });
        }
        let mp = str_of(m, "mountPath");
        if mp.is_empty() {
            errs.push(FieldError::required(child(&ip, "mountPath"), ""));
        }
        if !mount_points.insert(mp.to_string()) {
            errs.push(FieldError::invalid(child(&ip, "mountPath"), json!(mp), "must be unique"));
        }
        if devices.iter().any(|d| str_of(d, "name") == name) {
            errs.push(FieldError::invalid(child(&ip, "name"), json!(name), "must not already exist in volumeDevices"));
        }
        if devices.iter().any(|d| str_of(d, "devicePath") == mp) {
            errs.push(FieldError::invalid(
                child(&ip, "mountPath"),
                json!(mp),
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub = str_of(m, "subPath");
        if !sub.is_empty() {
            errs.extend(validate_local_descending_path(sub, &child(path, "subPath")));
        }
        let expr = str_of(m, "subPathExpr");
        if !expr.is_empty() {
            if !sub.is_empty() {
                errs.push(FieldError::invalid(
                    child(&ip, "subPathExpr"),
                    json!(expr),
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(expr, &child(path, "subPathExpr")));
        }
        if let Some(prop) = m.get("mountPropagation").and_then(Value::as_str) {
            let pp = child(path, "mountPropagation");
            match prop {
                "None" | "HostToContainer" => {}
                "Bidirectional" => {
                    let privileged = c.pointer("/securityContext/privileged").and_then(Value::as_bool).unwrap_or(false);
                    if !privileged {
                        errs.push(FieldError::forbidden(
                            pp,
                            "Bidirectional mount propagation is available only to privileged containers",
                        ));
                    }
                }
                other => errs.push(FieldError::not_supported(pp, json!(other), &["Bidirectional", "HostToContainer", "None"])),
            }
        }
    }
    errs
}

/// A relative path that does not climb out with `..`.
pub(super) fn validate_local_descending_path(p: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, json!(p), "must be a relative path"));
    }
    errs.extend(validate_path_no_backsteps(p, path));
    errs
}

pub(super) fn validate_path_no_backsteps(p: &str, path: &str) -> Vec<FieldError> {
    if p.split('/').any(|part| part == "..") {
        vec![FieldError::invalid(path, json!(p), "must not contain '..'")]
    } else {
        Vec::new()
    }
}

fn validate_probe(p: &Value, path: &str, which: &str, grace: Option<i64>) -> Vec<FieldError> {
    let mut errs = validate_handler(p, path, grace, true);
    for f in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        errs.extend(validate_nonnegative(&child(path, f), int(p, f).unwrap_or(0)));
    }
    if let Some(t) = int(p, "terminationGracePeriodSeconds") {
        if which == "readinessProbe" {
            errs.push(FieldError::invalid(
                child(path, "terminationGracePeriodSeconds"),
                json!(t),
                "must not be set for readinessProbes",
            ));
        } else if t <= 0 {
            errs.push(FieldError::invalid(child(path, "terminationGracePeriodSeconds"), json!(t), "must be greater than 0"));
        }
    }
    if which != "readinessProbe" {
        let st = int(p, "successThreshold").unwrap_or(1);
        if st != 1 {
            errs.push(FieldError::invalid(child(path, "successThreshold"), json!(st), "must be 1"));
        }
    }
    errs
}

/// Exactly one action in a probe (`exec`, `httpGet`, `tcpSocket`, `grpc`) or a lifecycle
/// hook (`exec`, `httpGet`, `tcpSocket`, `sleep`).
fn validate_handler(h: &Value, path: &str, grace: Option<i64>, is_probe: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let kinds: &[&str] =
        if is_probe { &["exec", "httpGet", "tcpSocket", "grpc"] } else { &["exec", "httpGet", "tcpSocket", "sleep"] };
    let mut count = 0;
    for kind in kinds {
        let Some(a) = present(h, kind) else { continue };
        let ap = child(path, kind);
        if count > 0 {
            errs.push(FieldError::forbidden(ap, "may not specify more than 1 handler type"));
            continue;
        }
        count += 1;
        match *kind {
            "exec" => {
                if arr(a, "command").is_empty() {
                    errs.push(FieldError::required(child(&ap, "command"), ""));
                }
            }
            "httpGet" => {
                if str_of(a, "path").is_empty() {
                    errs.push(FieldError::required(child(&ap, "path"), ""));
                }
                errs.extend(validate_port_num_or_name(&child(&ap, "port"), a.get("port").unwrap_or(&Value::Null)));
                let scheme = str_of(a, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(FieldError::not_supported(child(&ap, "scheme"), json!(scheme), &["HTTP", "HTTPS"]));
                }
                for hdr in arr(a, "httpHeaders") {
                    let n = str_of(hdr, "name");
                    for m in is_http_header_name(n) {
                        errs.push(FieldError::invalid(child(&ap, "httpHeaders"), json!(n), m));
                    }
                }
            }
            "tcpSocket" => {
                errs.extend(validate_port_num_or_name(&child(&ap, "port"), a.get("port").unwrap_or(&Value::Null)));
            }
            "grpc" => {
                let port = int(a, "port").unwrap_or(0);
                for m in is_valid_port_num(port) {
                    errs.push(FieldError::invalid(child(&ap, "port"), json!(port), m));
                }
            }
            "sleep" => {
                let secs = int(a, "seconds").unwrap_or(0);
                if let Some(g) = grace {
                    if secs <= 0 || secs > g {
                        errs.push(FieldError::invalid(
                            child(&ap, "seconds"),
                            json!(secs),
                            format!("must be greater than 0 and less than terminationGracePeriodSeconds ({g})"),
                        ));
                    }
                }
            }
            _ => unreachable!("handler kinds are listed above"),
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// Requests and limits: known resource names, non-negative quantities, requests <= limits
/// (equal for resources that cannot be overcommitted, such as extended resources).
fn validate_resources(res: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let limits = res.get("limits").and_then(Value::as_object);
    let requests = res.get("requests").and_then(Value::as_object);
    if let Some(limits) = limits {
        for (name, q) in limits {
            let fp = key(&lim_path, name);
            errs.extend(validate_container_resource_name(name, &fp));
            errs.extend(validate_resource_quantity(name, q, &fp));
        }
    }
    if let Some(requests) = requests {
        for (name, q) in requests {
            let fp = key(&req_path, name);
            errs.extend(validate_container_resource_name(name, &fp));
            errs.extend(validate_resource_quantity(name, q, &fp));
            let shown = display_quantity(q);
            match limits.and_then(|l| l.get(name)) {
                Some(lq) => {
                    let (Ok(r), Ok(l)) = (quantity_of(q), quantity_of(lq)) else { continue };
                    if r != l && !overcommit_allowed(name) {
                        errs.push(FieldError::invalid(
                            &req_path,
                            json!(shown),
                            format!("must be equal to {name} limit of {}", display_quantity(lq)),
                        ));
                    } else if r > l {
                        errs.push(FieldError::invalid(
                            &req_path,
                            json!(shown),
                            format!("must be less than or equal to {name} limit of {}", display_quantity(lq)),
                        ));
                    }
                }
                None if !overcommit_allowed(name) => {
                    errs.push(FieldError::required(&lim_path, "Limit must be set for non overcommitable resources"));
                }
                None => {}
            }
        }
    }
    let has_hugepages = |m: Option<&serde_json::Map<String, Value>>| {
        m.map(|m| m.keys().any(|k| k.starts_with("hugepages-"))).unwrap_or(false)
    };
    let has_cpu_mem = |m: Option<&serde_json::Map<String, Value>>| {
        m.map(|m| m.contains_key("cpu") || m.contains_key("memory")).unwrap_or(false)
    };
    if (has_hugepages(limits) && !has_cpu_mem(limits)) || (has_hugepages(requests) && !has_cpu_mem(requests)) {
        errs.push(FieldError::forbidden(path, "HugePages require cpu or memory"));
    }
    errs
}

fn display_quantity(q: &Value) -> String {
    match q {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !name.starts_with("hugepages-")
}

fn validate_container_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> =
        is_qualified_name(name).into_iter().map(|m| FieldError::invalid(path, json!(name), m)).collect();
    if !name.contains('/') {
        let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
        if !standard {
            errs.push(FieldError::invalid(path, json!(name), "must be a standard resource for containers"));
        }
    } else if !is_native(name) && (name.starts_with("requests.") || name.contains("kubernetes.io")) {
        errs.push(FieldError::invalid(path, json!(name), "doesn't follow extended resource name standard"));
    }
    errs
}

fn validate_resource_quantity(name: &str, q: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_nonnegative_quantity(path, q);
    if errs.is_empty() && !overcommit_allowed(name) && !name.starts_with("hugepages-") {
        // Extended resources are counted in whole units.
        if let Ok(v) = quantity_of(q) {
            if (v.value * 1000.0).round() % 1000.0 != 0.0 {
                errs.push(FieldError::invalid(path, q.clone(), "must be an integer"));
            }
        }
    }
    errs
}
