//! A pod's `volumes`: unique DNS-1123 label names and exactly one source each.

use super::container::{
    present, validate_local_descending_path, validate_object_field_selector, validate_path_no_backsteps,
    validate_resource_field_ref, VOLUME_FIELD_PATHS,
};
use super::{arr, int, str_of};
use crate::validate::names::{child, index, validate_dns1123_label};
use crate::FieldError;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Every volume source a pod may name, in upstream's order of checking.
const SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// Validates `volumes` and returns the names of the valid ones, which container
/// `volumeMounts` may refer to.
pub(super) fn validate_volumes(volumes: &[Value], path: &str) -> (BTreeSet<String>, Vec<FieldError>) {
    let mut names = BTreeSet::new();
    let mut errs = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let ip = index(path, i);
        let np = child(&ip, "name");
        let mut el = validate_volume_source(v, &ip);
        let name = str_of(v, "name");
        if name.is_empty() {
            el.push(FieldError::required(&np, ""));
        } else {
            el.extend(validate_dns1123_label(&np, name));
        }
        if names.contains(name) {
            el.push(FieldError::duplicate(&np, json!(name)));
        }
        if el.is_empty() {
            names.insert(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    (names, errs)
}

fn validate_volume_source(v: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    for src in SOURCES {
        let Some(s) = present(v, src) else { continue };
        let sp = child(path, src);
        if count > 0 {
            errs.push(FieldError::forbidden(sp, "may not specify more than 1 volume type"));
            continue;
        }
        count += 1;
        errs.extend(match *src {
            "emptyDir" => validate_empty_dir(s, &sp),
            "hostPath" => validate_host_path(s, &sp),
            "secret" => {
                let mut e = Vec::new();
                if str_of(s, "secretName").is_empty() {
                    e.push(FieldError::required(child(&sp, "secretName"), ""));
                }
                e.extend(validate_mode_and_items(s, &sp));
                e
            }
            "configMap" => {
                let mut e = Vec::new();
                if str_of(s, "name").is_empty() {
                    e.push(FieldError::required(child(&sp, "name"), ""));
                }
                e.extend(validate_mode_and_items(s, &sp));
                e
            }
            "persistentVolumeClaim" => {
                if str_of(s, "claimName").is_empty() {
                    vec![FieldError::required(child(&sp, "claimName"), "")]
                } else {
                    Vec::new()
                }
            }
            "nfs" => validate_nfs(s, &sp),
            "downwardAPI" => validate_downward_api(s, &sp),
            "projected" => validate_projected(s, &sp),
            _ => Vec::new(),
        });
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn validate_empty_dir(s: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(limit) = present(s, "sizeLimit") {
        if crate::validate::names::quantity_of(limit).map(|q| q.value < 0.0).unwrap_or(true) {
            errs.push(FieldError::forbidden(child(path, "sizeLimit"), "SizeLimit field must be a valid resource quantity"));
        }
    }
    match str_of(s, "medium") {
        "" | "Memory" => {}
        m if m.starts_with("HugePages") => {}
        other => errs.push(FieldError::not_supported(child(path, "medium"), json!(other), &["", "Memory", "HugePages"])),
    }
    errs
}

fn validate_host_path(s: &Value, path: &str) -> Vec<FieldError> {
    let p = str_of(s, "path");
    if p.is_empty() {
        return vec![FieldError::required(child(path, "path"), "")];
    }
    let mut errs = validate_path_no_backsteps(p, &child(path, "path"));
    let types =
        ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"];
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        if !types.contains(&t) {
            errs.push(FieldError::not_supported(child(path, "type"), json!(t), &types));
        }
    }
    errs
}

fn validate_nfs(s: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if str_of(s, "server").is_empty() {
        errs.push(FieldError::required(child(path, "server"), ""));
    }
    let p = str_of(s, "path");
    if p.is_empty() {
        errs.push(FieldError::required(child(path, "path"), ""));
    } else if !p.starts_with('/') {
        errs.push(FieldError::invalid(child(path, "path"), json!(p), "must be an absolute path"));
    }
    errs
}

fn check_mode(v: &Value, field: &str, path: &str) -> Vec<FieldError> {
    match int(v, field) {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(child(path, field), json!(m), FILE_MODE_ERROR)],
        _ => Vec::new(),
    }
}

/// `defaultMode` and `items[]` of secret and configMap volumes (and projections).
fn validate_mode_and_items(s: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = check_mode(s, "defaultMode", path);
    for (i, item) in arr(s, "items").iter().enumerate() {
        let ip = index(&child(path, "items"), i);
        if str_of(item, "key").is_empty() {
            errs.push(FieldError::required(child(&ip, "key"), ""));
        }
        errs.extend(validate_item_path(item, &ip));
        errs.extend(check_mode(item, "mode", &ip));
    }
    errs
}

/// An item's `path`: required, relative, not climbing out.
fn validate_item_path(item: &Value, ip: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = str_of(item, "path");
    let pp = child(ip, "path");
    if p.is_empty() {
        errs.push(FieldError::required(&pp, ""));
    }
    errs.extend(validate_local_descending_path(p, &pp));
    if p.starts_with("..") {
        errs.push(FieldError::invalid(&pp, json!(p), "must not start with '..'"));
    }
    errs
}

fn validate_downward_api(s: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = check_mode(s, "defaultMode", path);
    errs.extend(validate_downward_api_items(arr(s, "items"), &child(path, "items")));
    errs
}

fn validate_downward_api_items(items: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = index(path, i);
        errs.extend(validate_item_path(item, &ip));
        errs.extend(check_mode(item, "mode", &ip));
        let fr = present(item, "fieldRef");
        let rr = present(item, "resourceFieldRef");
        if let Some(fr) = fr {
            errs.extend(validate_object_field_selector(fr, VOLUME_FIELD_PATHS, &child(&ip, "fieldRef")));
        }
        if let Some(rr) = rr {
            errs.extend(validate_resource_field_ref(rr, &child(&ip, "resourceFieldRef"), true));
        }
        if fr.is_some() && rr.is_some() {
            errs.push(FieldError::invalid(
                &ip,
                json!("resource"),
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    }
    errs
}

fn validate_projected(s: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = check_mode(s, "defaultMode", path);
    for (i, src) in arr(s, "sources").iter().enumerate() {
        let ip = index(&child(path, "sources"), i);
        let mut count = 0;
        for kind in ["secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle"] {
            let Some(p) = present(src, kind) else { continue };
            count += 1;
            let kp = child(&ip, kind);
            if count > 1 {
                errs.push(FieldError::forbidden(&kp, "may not specify more than 1 volume type per source"));
                continue;
            }
            match kind {
                "secret" | "configMap" => {
                    if str_of(p, "name").is_empty() {
                        errs.push(FieldError::required(child(&kp, "name"), ""));
                    }
                    errs.extend(validate_mode_and_items(p, &kp));
                }
                "downwardAPI" => errs.extend(validate_downward_api_items(arr(p, "items"), &child(&kp, "items"))),
                "serviceAccountToken" => {
                    if let Some(e) = int(p, "expirationSeconds") {
                        if e < 600 {
                            errs.push(FieldError::invalid(
                                child(&kp, "expirationSeconds"),
                                json!(e),
                                "may not specify a duration less than 10 minutes",
                            ));
                        } else if e > 1 << 32 {
                            errs.push(FieldError::invalid(
                                child(&kp, "expirationSeconds"),
                                json!(e),
                                "may not specify a duration larger than 2^32 seconds",
                            ));
                        }
                    }
                    if str_of(p, "path").is_empty() {
                        errs.push(FieldError::required(child(&kp, "path"), ""));
                    }
                }
                _ => {}
            }
        }
        if count == 0 {
            errs.push(FieldError::required(&ip, "must specify exactly 1 volume type"));
        }
    }
    errs
}
