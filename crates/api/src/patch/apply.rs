//! Server-side apply and field ownership, following structured-merge-diff as
//! kube-apiserver runs it: the applied configuration is merged into the live object
//! (maps by key, `map` lists by their keys, `set` lists by value, atomic values whole),
//! fields the manager applied before but omits now are removed unless someone else owns
//! them, and changing a field another manager owns is a conflict unless forced.
//! Every write records who owns what in `metadata.managedFields` (`FieldsV1`).

use super::fieldset::{path_string, FieldSet, Path, PathElement, Scalar};
use super::meta::{field_meta, FieldMeta, ListType};
use crate::{ApiError, GroupKind};
use serde_json::{json, Map, Value};

const APPLY: &str = "Apply";
const UPDATE: &str = "Update";

/// Applies `applied` (the configuration a manager wants) to `live` (None when creating) on
/// behalf of `manager`, returning the new object with its `managedFields` updated.
/// `now` is the RFC 3339 time stamped on entries that change.
pub fn server_side_apply(gk: &GroupKind, live: Option<&Value>, applied: &Value, manager: &str, force: bool, now: &str) -> Result<Value, ApiError> {
    if !applied.is_object() {
        return Err(ApiError::bad_request("error decoding YAML: the applied configuration must be an object"));
    }
    let mut entries = live.and_then(|l| decode_entries(l.pointer("/metadata/managedFields"))).unwrap_or_default();
    let live = live.map(without_managed_fields).unwrap_or_else(|| json!({}));
    let applied = without_managed_fields(applied);
    let api_version = applied.get("apiVersion").or_else(|| live.get("apiVersion")).and_then(Value::as_str).unwrap_or("").to_string();

    let me = entries.iter().position(|e| e.manager == manager && e.operation == APPLY && e.subresource.is_none());
    let new_set = ignore(gk, &to_field_set(gk, &applied));
    let mut merged = merge_value(gk, &mut Vec::new(), Some(live.clone()), &applied);

    // Fields this manager applied last time and no longer does go, unless still owned.
    if let Some(i) = me {
        let mut owned = new_set.clone();
        for (j, e) in entries.iter().enumerate() {
            if j != i {
                owned = owned.union(&e.set);
            }
        }
        for p in entries[i].set.difference(&owned).0 {
            if !owned.has_at_or_below(&p) {
                remove_path(gk, &mut merged, &mut Vec::new(), &p);
            }
        }
    }

    let cmp = compare(gk, &live, &merged);
    let changed = ignore(gk, &cmp.added.union(&cmp.modified));
    let mut conflicts: Vec<(usize, FieldSet)> = Vec::new();
    for (j, e) in entries.iter().enumerate() {
        if Some(j) != me {
            let c = e.set.intersection(&changed);
            if !c.is_empty() {
                conflicts.push((j, c));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let mut list = Vec::new();
        for (j, c) in &conflicts {
            list.extend(c.0.iter().map(|p| (entries[*j].display(), path_string(p))));
        }
        return Err(conflict_error(list));
    }
    for (j, c) in &conflicts {
        entries[*j].set = entries[*j].set.difference(c);
    }
    for (j, e) in entries.iter_mut().enumerate() {
        if Some(j) != me {
            e.set = e.set.difference(&cmp.removed);
        }
    }

    let object_changed = merged != live;
    match me {
        Some(i) => {
            let e = &mut entries[i];
            e.set = new_set;
            e.api_version = api_version;
            if object_changed || e.time.is_none() {
                e.time = Some(now.to_string());
            }
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: APPLY.into(),
            api_version,
            time: Some(now.to_string()),
            subresource: None,
            set: new_set,
        }),
    }
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Records ownership for a non-apply write (create, update, or a JSON / merge / strategic
/// patch) by `manager`: fields it set or changed become its own with operation `Update`
/// and leave every other manager; removed fields leave everyone. `old` is None on create.
pub fn record_update(gk: &GroupKind, old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
    if !new.is_object() {
        return;
    }
    let mut entries = entries_from_live_or_new(old, new);
    let old_v = old.map(without_managed_fields).unwrap_or_else(|| zero_object(gk));
    let new_v = without_managed_fields(new);
    let cmp = compare(gk, &old_v, &new_v);
    let changed = ignore(gk, &cmp.added.union(&cmp.modified));
    let removed = ignore(gk, &cmp.removed);
    let api_version = new.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();

    for e in entries.iter_mut() {
        e.set = e.set.difference(&changed).difference(&removed);
    }
    if !changed.is_empty() {
        let mine = entries.iter().position(|e| e.manager == manager && e.operation == UPDATE && e.api_version == api_version && e.subresource.is_none());
        match mine {
            Some(i) => {
                entries[i].set = entries[i].set.union(&changed);
                entries[i].time = Some(now.to_string());
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: UPDATE.into(),
                api_version,
                time: Some(now.to_string()),
                subresource: None,
                set: changed,
            }),
        }
    }
    write_entries(new, entries);
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    /// How kube names a manager in conflict messages.
    fn display(&self) -> String {
        let mut s = serde_json::to_string(&self.manager).unwrap_or_default();
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {}", serde_json::to_string(sub).unwrap_or_default()));
        }
        if self.operation == UPDATE {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.set.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m)
    }
}

/// Parses `managedFields`; `None` when absent or malformed (kube then starts afresh).
fn decode_entries(v: Option<&Value>) -> Option<Vec<Entry>> {
    let list = v?.as_array()?;
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        out.push(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").filter(|x| !x.is_empty()),
            set: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&json!({})))?,
        });
    }
    Some(out)
}

/// The request's own `managedFields` win when it carries valid, non-empty ones (`[{}]`
/// resets them); otherwise the live object's are kept, so clients unaware of
/// managedFields cannot drop them by accident.
fn entries_from_live_or_new(old: Option<&Value>, new: &Value) -> Vec<Entry> {
    let requested = new.pointer("/metadata/managedFields");
    if requested == Some(&json!([{}])) {
        return Vec::new();
    }
    match decode_entries(requested) {
        Some(e) if !e.is_empty() => e,
        _ => old.and_then(|o| decode_entries(o.pointer("/metadata/managedFields"))).unwrap_or_default(),
    }
}

/// Writes entries sorted as kube sorts them: operation, then time, manager, apiVersion.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(&b.operation, &b.time, &b.manager, &b.api_version, &b.subresource))
    });
    let Some(root) = obj.as_object_mut() else { return };
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else { return };
    if entries.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(entries.iter().map(Entry::to_json).collect()));
    }
}

fn conflict_error(mut conflicts: Vec<(String, String)>) -> ApiError {
    conflicts.sort();
    let message = if conflicts.len() == 1 {
        format!("Apply failed with 1 conflict: conflict with {}: {}", conflicts[0].0, conflicts[0].1)
    } else {
        let mut lines = Vec::new();
        let mut last: Option<&str> = None;
        for (m, p) in &conflicts {
            if last != Some(m.as_str()) {
                lines.push(format!("conflicts with {m}:"));
                last = Some(m);
            }
            lines.push(format!("- {p}"));
        }
        format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"type": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p}))
        .collect();
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.shift_remove("managedFields");
    }
    v
}

/// Fields no manager owns: identity and server-set metadata, and `status`, which kube
/// tracks under the status subresource for kinds that have one (custom resources
/// included, which almost always do).
fn ignore(gk: &GroupKind, set: &FieldSet) -> FieldSet {
    let f = |n: &str| PathElement::Field(n.to_string());
    let mut out = set.clone();
    for top in ["apiVersion", "kind", "metadata"] {
        out.0.remove(&vec![f(top)]);
    }
    for m in ["name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation", "resourceVersion"] {
        out.0.remove(&vec![f("metadata"), f(m)]);
    }
    out.remove_subtree(&[f("metadata"), f("managedFields")]);
    let has_status = crate::resources::builtin_resources().iter().find(|r| r.group == gk.group && r.kind == gk.kind).map(|r| r.has_status).unwrap_or(true);
    if has_status {
        out.remove_subtree(&[f("status")]);
    }
    out
}

/// What an empty object of the kind looks like once encoded by kube's typed structs; a
/// create is compared against it, so fields present there (`spec`, a template's `spec`)
/// are not recorded as created while optional ones (`labels`) are.
fn zero_object(gk: &GroupKind) -> Value {
    let template = json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}});
    let mut obj = json!({"metadata": {"creationTimestamp": null}});
    let extra = match (gk.group.as_str(), gk.kind.as_str()) {
        ("", "Pod") => json!({"spec": {"containers": null}, "status": {}}),
        ("apps", "Deployment") => json!({"spec": {"selector": null, "template": template, "strategy": {}}, "status": {}}),
        ("apps", "ReplicaSet") => json!({"spec": {"selector": null, "template": template}, "status": {}}),
        ("", "Service") => json!({"spec": {}, "status": {"loadBalancer": {}}}),
        ("", "Node") | ("", "Namespace") => json!({"spec": {}, "status": {}}),
        ("networking.k8s.io", "Ingress") => json!({"spec": {}, "status": {"loadBalancer": {}}}),
        ("networking.k8s.io", "NetworkPolicy") => json!({"spec": {"podSelector": {}}}),
        ("coordination.k8s.io", "Lease") => json!({"spec": {}}),
        _ => json!({}),
    };
    if let (Some(o), Value::Object(e)) = (obj.as_object_mut(), extra) {
        o.extend(e);
    }
    obj
}

/// The list item's identity under server-side apply; `None` for atomic lists.
fn item_element(meta: &FieldMeta, item: &Value, index: usize) -> Option<PathElement> {
    match meta.list_type {
        ListType::Atomic => None,
        ListType::Set => Some(PathElement::Value(Scalar(item.clone()))),
        ListType::Map(keys) => {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                match (item.get(k.name), k.default) {
                    (Some(v), _) if !v.is_null() => out.push((k.name.to_string(), Scalar(v.clone()))),
                    (_, Some(d)) => out.push((k.name.to_string(), Scalar(json!(d)))),
                    // An item without its key can only be told apart by position.
                    _ => return Some(PathElement::Index(index)),
                }
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Some(PathElement::Key(out))
        }
    }
}

fn is_granular_map(gk: &GroupKind, names: &[String], v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Null) && !field_meta(gk, names).atomic_map
}

fn is_granular_list(gk: &GroupKind, names: &[String], v: &Value) -> bool {
    matches!(v, Value::Array(_) | Value::Null) && field_meta(gk, names).list_type != ListType::Atomic
}

/// The fields an applied configuration sets: leaves, list items, empty or null maps.
fn to_field_set(gk: &GroupKind, v: &Value) -> FieldSet {
    fn walk(gk: &GroupKind, names: &mut Vec<String>, path: &mut Path, v: &Value, out: &mut FieldSet) {
        match v {
            Value::Object(m) if path.is_empty() || !field_meta(gk, names).atomic_map => {
                for (k, c) in m {
                    names.push(k.clone());
                    path.push(PathElement::Field(k.clone()));
                    walk(gk, names, path, c, out);
                    if c.is_null() || c.as_object().is_some_and(Map::is_empty) {
                        out.insert(path.clone());
                    }
                    path.pop();
                    names.pop();
                }
            }
            Value::Array(l) if field_meta(gk, names).list_type != ListType::Atomic => {
                let meta = field_meta(gk, names);
                for (i, item) in l.iter().enumerate() {
                    path.push(item_element(&meta, item, i).expect("not atomic"));
                    walk(gk, names, path, item, out);
                    out.insert(path.clone());
                    path.pop();
                }
            }
            _ => out.insert(path.clone()),
        }
    }
    let mut out = FieldSet::new();
    walk(gk, &mut Vec::new(), &mut Vec::new(), v, &mut out);
    out
}

#[derive(Default, Debug)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

/// What changed from `old` to `new`: leaves added, changed or removed, and maps and list
/// items that appeared or disappeared as a whole.
fn compare(gk: &GroupKind, old: &Value, new: &Value) -> Comparison {
    let mut c = Comparison::default();
    compare_at(gk, &mut Vec::new(), &mut Vec::new(), Some(old), Some(new), &mut c);
    c
}

fn compare_at(gk: &GroupKind, names: &mut Vec<String>, path: &mut Path, old: Option<&Value>, new: Option<&Value>, c: &mut Comparison) {
    match (old, new) {
        (None, None) => {}
        (None, Some(n)) => {
            every_node(gk, names, path, n, &mut c.added);
            c.added.insert(path.clone());
        }
        (Some(o), None) => {
            every_node(gk, names, path, o, &mut c.removed);
            c.removed.insert(path.clone());
        }
        (Some(o), Some(n)) => {
            let both_null = o.is_null() && n.is_null();
            let root = path.is_empty();
            if !both_null && (root || is_granular_map(gk, names, o) && is_granular_map(gk, names, n)) {
                let empty = Map::new();
                let (om, nm) = (o.as_object().unwrap_or(&empty), n.as_object().unwrap_or(&empty));
                let keys: Vec<&String> = om.keys().chain(nm.keys().filter(|k| !om.contains_key(*k))).collect();
                for k in keys {
                    names.push(k.clone());
                    path.push(PathElement::Field(k.clone()));
                    compare_at(gk, names, path, om.get(k), nm.get(k), c);
                    path.pop();
                    names.pop();
                }
            } else if !both_null && is_granular_list(gk, names, o) && is_granular_list(gk, names, n) {
                let meta = field_meta(gk, names);
                let index = |v: &Value| -> Vec<(PathElement, Value)> {
                    v.as_array().map(|l| l.iter().enumerate().map(|(i, x)| (item_element(&meta, x, i).expect("not atomic"), x.clone())).collect()).unwrap_or_default()
                };
                let (ol, nl) = (index(o), index(n));
                let find = |l: &[(PathElement, Value)], pe: &PathElement| l.iter().find(|(p, _)| p == pe).map(|(_, v)| v.clone());
                let mut seen: Vec<&PathElement> = Vec::new();
                for (pe, _) in ol.iter().chain(&nl) {
                    if seen.contains(&pe) {
                        continue;
                    }
                    seen.push(pe);
                    path.push(pe.clone());
                    compare_at(gk, names, path, find(&ol, pe).as_ref(), find(&nl, pe).as_ref(), c);
                    path.pop();
                }
            } else if o != n {
                c.modified.insert(path.clone());
            }
        }
    }
}

/// Every node below `v` (not `v` itself) into `out`.
fn every_node(gk: &GroupKind, names: &mut Vec<String>, path: &mut Path, v: &Value, out: &mut FieldSet) {
    match v {
        Value::Object(m) if path.is_empty() || is_granular_map(gk, names, v) => {
            for (k, c) in m {
                names.push(k.clone());
                path.push(PathElement::Field(k.clone()));
                every_node(gk, names, path, c, out);
                out.insert(path.clone());
                path.pop();
                names.pop();
            }
        }
        Value::Array(l) if is_granular_list(gk, names, v) => {
            let meta = field_meta(gk, names);
            for (i, item) in l.iter().enumerate() {
                path.push(item_element(&meta, item, i).expect("not atomic"));
                every_node(gk, names, path, item, out);
                out.insert(path.clone());
                path.pop();
            }
        }
        _ => {}
    }
}

/// Merges the applied configuration into the live value: applied leaves win, granular
/// maps and lists combine, a `null` clears the field.
fn merge_value(gk: &GroupKind, names: &mut Vec<String>, live: Option<Value>, applied: &Value) -> Value {
    match (live, applied) {
        (Some(Value::Object(mut l)), Value::Object(a)) if names.is_empty() || !field_meta(gk, names).atomic_map => {
            for (k, av) in a {
                if av.is_null() {
                    l.shift_remove(k);
                    continue;
                }
                names.push(k.clone());
                let lv = l.get_mut(k).map(Value::take);
                let merged = merge_value(gk, names, lv, av);
                names.pop();
                l.insert(k.clone(), merged);
            }
            Value::Object(l)
        }
        (Some(Value::Array(l)), Value::Array(a)) if field_meta(gk, names).list_type != ListType::Atomic => {
            Value::Array(merge_list(gk, names, l, a))
        }
        _ => without_nulls(applied.clone()),
    }
}

/// Merges associative lists keeping both sides' relative order: live-only items stay
/// where they were, applied items come in the applied order.
fn merge_list(gk: &GroupKind, names: &mut Vec<String>, live: Vec<Value>, applied: &[Value]) -> Vec<Value> {
    let meta = field_meta(gk, names);
    let lpe: Vec<PathElement> = live.iter().enumerate().map(|(i, v)| item_element(&meta, v, i).expect("not atomic")).collect();
    let rpe: Vec<PathElement> = applied.iter().enumerate().map(|(i, v)| item_element(&meta, v, i).expect("not atomic")).collect();
    let in_applied = |pe: &PathElement| rpe.contains(pe);
    let live_item = |pe: &PathElement| lpe.iter().position(|p| p == pe).map(|i| live[i].clone());
    let mut shared = rpe.iter().filter(|pe| lpe.contains(pe));
    let mut next_shared = shared.next();
    let mut done: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(live.len() + applied.len());
    let (mut li, mut ri) = (0, 0);
    while li < live.len() || ri < applied.len() {
        if li < live.len() && ri < applied.len() {
            if lpe[li] == rpe[ri] {
                out.push(merge_value(gk, names, Some(live[li].clone()), &applied[ri]));
                done.push(&rpe[ri]);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if in_applied(&lpe[li]) && next_shared.is_some_and(|s| *s != lpe[li]) {
                // Shared, but applied order puts it later: it is merged when reached there.
                li += 1;
                continue;
            }
        }
        if li < live.len() {
            if !in_applied(&lpe[li]) {
                out.push(live[li].clone());
                li += 1;
                continue;
            }
            if done.contains(&&lpe[li]) {
                li += 1;
                continue;
            }
        }
        if ri < applied.len() {
            let pe = &rpe[ri];
            out.push(merge_value(gk, names, live_item(pe), &applied[ri]));
            done.push(pe);
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
            ri += 1;
        }
    }
    out
}

fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, without_nulls(v))).collect()),
        Value::Array(l) => Value::Array(l.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// Removes the node at `path`. Maps and lists emptied by the removal go too, as kube's
/// typed round trip drops empty `omitempty` maps and slices. Returns whether `v` emptied.
fn remove_path(gk: &GroupKind, v: &mut Value, names: &mut Vec<String>, path: &[PathElement]) -> bool {
    let Some((first, rest)) = path.split_first() else { return false };
    match (first, v) {
        (PathElement::Field(f), Value::Object(m)) => {
            let removed = if rest.is_empty() {
                m.shift_remove(f).is_some()
            } else if let Some(c) = m.get_mut(f) {
                names.push(f.clone());
                let emptied = remove_path(gk, c, names, rest);
                names.pop();
                emptied && m.shift_remove(f).is_some()
            } else {
                false
            };
            removed && m.is_empty()
        }
        (pe, Value::Array(l)) => {
            let meta = field_meta(gk, names);
            let Some(i) = l.iter().enumerate().position(|(i, item)| item_element(&meta, item, i).as_ref() == Some(pe)) else { return false };
            if rest.is_empty() || remove_path(gk, &mut l[i], names, rest) {
                l.remove(i);
                return l.is_empty();
            }
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
