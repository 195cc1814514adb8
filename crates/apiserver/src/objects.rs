//! What the server does to an object on its way into the store: names, uids,
//! timestamps, generation, status handling, defaulting — the registry strategies.

use crate::registry::Served;
use serde_json::{json, Value};
use weft_api::meta;

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn group_segment(group: &str) -> &str {
    if group.is_empty() { "core" } else { group }
}

/// The store key of one object.
pub fn key(s: &Served, ns: Option<&str>, name: &str) -> String {
    match (s.info.namespaced, ns) {
        (true, Some(ns)) => format!("/{}/{}/{}/{}", group_segment(&s.info.group), s.info.plural, ns, name),
        _ => format!("/{}/{}/{}", group_segment(&s.info.group), s.info.plural, name),
    }
}

/// The key prefix of a list (one namespace, or all).
pub fn prefix(s: &Served, ns: Option<&str>) -> String {
    match (s.info.namespaced, ns) {
        (true, Some(ns)) => format!("/{}/{}/{}/", group_segment(&s.info.group), s.info.plural, ns),
        _ => format!("/{}/{}/", group_segment(&s.info.group), s.info.plural),
    }
}

/// Kinds whose strategy sets `metadata.generation` and bumps it on spec changes.
fn tracks_generation(s: &Served) -> bool {
    s.custom
        || matches!(
            (s.info.group.as_str(), s.info.kind.as_str()),
            ("apps", _) | ("networking.k8s.io", _) | ("apiextensions.k8s.io", _)
        )
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let u = uuid::Uuid::new_v4();
    u.as_bytes()[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// Create: fills name from generateName, uid, creationTimestamp, generation; resets
/// status where the kind has a status subresource; sets apiVersion/kind.
pub fn prepare_create(s: &Served, obj: &mut Value, ns: Option<&str>) {
    obj["apiVersion"] = json!(s.info.api_version());
    obj["kind"] = json!(s.info.kind);
    let gen_name = meta::name(obj).is_empty();
    let m = meta::metadata_mut(obj);
    if gen_name {
        if let Some(g) = m.get("generateName").and_then(Value::as_str) {
            let n = format!("{g}{}", random_suffix());
            m.insert("name".into(), json!(n));
        }
    }
    if s.info.namespaced {
        if let Some(ns) = ns {
            m.insert("namespace".into(), json!(ns));
        }
    } else {
        m.remove("namespace");
    }
    drop_empty_lists(m);
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(now()));
    m.remove("resourceVersion");
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    m.remove("selfLink");
    if tracks_generation(s) {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    if s.info.has_status {
        create_status(s, obj);
    }
}

fn create_status(s: &Served, obj: &mut Value) {
    let o = obj.as_object_mut().expect("objects are JSON objects");
    match (s.info.group.as_str(), s.info.kind.as_str()) {
        ("", "Pod") => {
            let qos = qos_class(o.get("spec"));
            o.insert("status".into(), json!({"phase": "Pending", "qosClass": qos}));
        }
        ("", "Namespace") => {
            o.insert("status".into(), json!({"phase": "Active"}));
        }
        // A node registers itself with its status.
        ("", "Node") => {}
        ("", "Service") => {
            o.insert("status".into(), json!({"loadBalancer": {}}));
        }
        _ => {
            o.remove("status");
        }
    }
}

/// The pod's quality-of-service class, from its containers' requests and limits.
pub fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.and_then(|s| s.get(*k)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Metadata lists and maps that are empty are absent, as kube-apiserver serializes them
/// (`omitempty`): a finalizer or owner list emptied by a patch reads as gone.
fn drop_empty_lists(m: &mut serde_json::Map<String, Value>) {
    for field in ["ownerReferences", "finalizers", "labels", "annotations", "managedFields"] {
        let empty = match m.get(field) {
            Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        if empty {
            m.remove(field);
        }
    }
}

/// Update of the main resource or of a subresource: carries over what clients may not
/// change, bumps generation when the spec changed.
pub fn prepare_update(s: &Served, new: &mut Value, old: &Value, subresource: Option<&str>) {
    new["apiVersion"] = json!(s.info.api_version());
    new["kind"] = json!(s.info.kind);
    if subresource == Some("status") {
        // Only status comes from the request.
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        match status {
            Some(st) => merged["status"] = st,
            None => {
                merged.as_object_mut().unwrap().remove("status");
            }
        }
        *new = merged;
        return;
    }
    drop_empty_lists(meta::metadata_mut(new));
    if s.info.has_status && subresource.is_none() {
        match old.get("status") {
            Some(st) => new["status"] = st.clone(),
            None => {
                new.as_object_mut().unwrap().remove("status");
            }
        }
    }
    let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
    let m = meta::metadata_mut(new);
    for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace", "name"] {
        match old_meta.get(f) {
            Some(v) => {
                m.insert(f.into(), v.clone());
            }
            None => {
                m.remove(f);
            }
        }
    }
    m.remove("selfLink");
    if s.info.group.is_empty() && s.info.kind == "Service" {
        weft_api::defaults::drop_type_dependent_fields(new, old);
    }
    if tracks_generation(s) && spec_changed(new, old) {
        let g = old_meta.get("generation").and_then(Value::as_i64).unwrap_or(1) + 1;
        meta::metadata_mut(new).insert("generation".into(), json!(g));
    }
}

fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            o.remove("status");
        }
        v
    };
    strip(new) != strip(old)
}
