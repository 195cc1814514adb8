//! Strategic merge patch, applied as k8s.io/apimachinery's strategicpatch does on the server:
//! maps merge recursively and `null` deletes; lists follow the field's [`PatchStrategy`]
//! (merge by key, union of scalars, or replace); and the directives a 3-way patch from
//! `kubectl apply` carries are honoured: `$patch: replace|delete` in maps and list items,
//! `$retainKeys`, `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
//!
//! Errors carry the status kube-apiserver gives them: malformed directives are 400, lists
//! of lists 422, and the rest (a missing merge key, an unknown `$patch`) surface as the
//! 500 with an empty reason that kube-apiserver returns for them.

use super::meta::{field_meta, PatchStrategy};
use crate::{ApiError, GroupKind};
use serde_json::{Map, Value};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Applies `patch` to `original`, both objects of kind `gk` (a built-in kind; the caller
/// refuses custom resources).
pub fn apply(gk: &GroupKind, original: &Value, patch: &Value) -> Result<Value, ApiError> {
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            super::json::go_json_kind(patch)
        )));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        _ => return Err(ApiError::bad_request("invalid JSON document")),
    };
    let mut path = Vec::new();
    merge_map(gk, &mut path, original, patch.clone()).map(Value::Object)
}

fn bad_request(msg: &str) -> ApiError {
    ApiError::bad_request(msg)
}

/// Errors that kube-apiserver passes through untyped: a 500 with no reason.
fn untyped(msg: impl Into<String>) -> ApiError {
    ApiError::new(500, "", msg)
}

fn no_list_of_lists() -> ApiError {
    ApiError::new(422, "Invalid", super::json::APPLY_FAILED).with_details(serde_json::json!({}))
}

fn no_merge_key(item: &Value, key: &str) -> ApiError {
    untyped(format!("map: {} does not contain declared merge key: {key}", go_fmt(item)))
}

fn merge_map(gk: &GroupKind, path: &mut Vec<String>, mut original: Map<String, Value>, mut patch: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    if let Some(directive) = patch.get(PATCH) {
        return match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(PATCH);
                Ok(clean_map(patch))
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(untyped(format!("unknown patch type: {} in map: {}", go_fmt(directive), go_fmt(&Value::Object(patch.clone()))))),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_element_orders(gk, path, &mut original, &mut patch)?;

    // Deletions from scalar lists run after additions, as after a `$setElementOrder` merge.
    let mut deletions = Vec::new();
    for (k, pv) in patch {
        if k.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            deletions.push((directive_field(&k, DELETE_FROM_PRIMITIVE_LIST)?, pv));
            continue;
        }
        merge_field(gk, path, &mut original, k, pv, false)?;
    }
    for (k, pv) in deletions {
        merge_field(gk, path, &mut original, k, pv, true)?;
    }
    Ok(original)
}

/// `$deleteFromPrimitiveList/finalizers` → `finalizers`.
fn directive_field(key: &str, prefix: &str) -> Result<String, ApiError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(bad_request("invalid patch format of primitive list")),
        _ => Err(bad_request("invalid patch format of setElementOrder list")),
    }
}

fn merge_field(gk: &GroupKind, path: &mut Vec<String>, original: &mut Map<String, Value>, k: String, pv: Value, delete_list: bool) -> Result<(), ApiError> {
    if pv.is_null() {
        original.shift_remove(&k);
        return Ok(());
    }
    let both_maps = matches!((original.get(&k), &pv), (Some(Value::Object(_)), Value::Object(_)));
    let both_lists = matches!((original.get(&k), &pv), (Some(Value::Array(_)), Value::Array(_)));
    if !both_maps && !both_lists {
        // New fields and changes of type take the patch value, minus nulls and directives;
        // a deletion list has nothing to delete from.
        if !delete_list {
            match clean(pv) {
                Some(v) => {
                    original.insert(k, v);
                }
                None => {
                    original.shift_remove(&k);
                }
            }
        }
        return Ok(());
    }
    let ov = original.get_mut(&k).expect("checked above").take();
    path.push(k);
    let merged = match (ov, pv) {
        (Value::Object(o), Value::Object(p)) => merge_map(gk, path, o, p).map(Value::Object),
        (Value::Array(o), Value::Array(p)) => merge_list_field(gk, path, o, p, delete_list).map(Value::Array),
        _ => unreachable!("both maps or both lists"),
    };
    let k = path.pop().expect("pushed above");
    original.insert(k, merged?);
    Ok(())
}

fn merge_list_field(gk: &GroupKind, path: &mut Vec<String>, original: Vec<Value>, patch: Vec<Value>, delete_list: bool) -> Result<Vec<Value>, ApiError> {
    match field_meta(gk, path).strategy {
        PatchStrategy::Merge { key } => merge_list(gk, path, original, patch, Some(key), delete_list),
        PatchStrategy::MergePrimitive => merge_list(gk, path, original, patch, None, delete_list),
        PatchStrategy::Replace => Ok(clean_list(patch)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ElemKind {
    Map,
    Scalar,
}

/// The common kind of the items of both lists; lists of lists are refused.
fn elem_kind(a: &[Value], b: &[Value]) -> Result<Option<ElemKind>, ApiError> {
    let mut kind: Option<(ElemKind, &'static str)> = None;
    for v in a.iter().chain(b) {
        let this = match v {
            Value::Array(_) => return Err(no_list_of_lists()),
            Value::Object(_) => (ElemKind::Map, "map"),
            other => (ElemKind::Scalar, super::json::go_json_kind(other)),
        };
        match kind {
            None => kind = Some(this),
            Some(k) if k.1 != this.1 => return Err(untyped("list items have mismatched types")),
            _ => {}
        }
    }
    Ok(kind.map(|k| k.0))
}

fn merge_list(gk: &GroupKind, path: &mut Vec<String>, original: Vec<Value>, patch: Vec<Value>, key: Option<&str>, delete_list: bool) -> Result<Vec<Value>, ApiError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = elem_kind(&original, &patch)?;
    if kind != Some(ElemKind::Map) {
        if delete_list {
            return Ok(original.into_iter().filter(|v| !patch.contains(v)).collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(&patch) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = merged.into_iter().partition(|v| patch.contains(v));
        return Ok(normalize_order(in_patch, server_only, &patch, &original, None));
    }
    let Some(key) = key else {
        return Err(untyped("cannot merge lists without merge key for type map"));
    };
    let (original, patch) = apply_list_directives(original, patch, key)?;
    let mut merged = original.clone();
    for item in &patch {
        let kv = item.get(key).ok_or_else(|| no_merge_key(item, key))?;
        match position_by_key(&merged, key, kv)? {
            Some(i) => {
                let (Value::Object(o), Value::Object(p)) = (merged[i].take(), item.clone()) else { unreachable!("checked maps") };
                merged[i] = Value::Object(merge_map(gk, path, o, p)?);
            }
            None => {
                if let Some(v) = clean(item.clone()) {
                    merged.push(v);
                }
            }
        }
    }
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let kv = v.get(key).ok_or_else(|| no_merge_key(&v, key))?;
        if position_by_key(&patch, key, kv)?.is_some() {
            in_patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok(normalize_order(in_patch, server_only, &patch, &original, Some(key)))
}

/// Handles `$patch: delete` and `$patch: replace` items of a list of maps; returns the
/// original left after deletions (or the replacement) and the plain patch items.
fn apply_list_directives(mut original: Vec<Value>, patch: Vec<Value>, key: &str) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(PATCH) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let kv = item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
                original.retain(|o| o.get(key) != Some(kv));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(untyped("merging lists cannot yet be specified in the patch")),
            _ => return Err(untyped(format!("unknown patch type: {} in map: {}", go_fmt(directive), go_fmt(&item)))),
        }
    }
    if replace {
        return Ok((clean_list(plain), Vec::new()));
    }
    Ok((original, plain))
}

fn position_by_key(list: &[Value], key: &str, kv: &Value) -> Result<Option<usize>, ApiError> {
    for (i, v) in list.iter().enumerate() {
        if !v.is_object() {
            return Err(untyped(format!("value for key {i} is not a map.")));
        }
        if v.get(key) == Some(kv) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// `$retainKeys`: clear every field of `original` the list does not name, after checking
/// that the patch itself sets only named fields.
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else { return Ok(()) };
    let Value::Array(retain) = retain else { return Err(bad_request("invalid patch format of retainKeys")) };
    let named = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        if !named(k) {
            return Err(bad_request("invalid patch format of retainKeys"));
        }
    }
    original.retain(|k, _| named(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merges the field's list (if the patch has one) and orders
/// the result: listed items in the given order, server-only items kept where they were.
fn merge_element_orders(gk: &GroupKind, path: &mut Vec<String>, original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), ApiError> {
    let keys: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
    for directive in keys {
        let order = patch.shift_remove(&directive).expect("listed above");
        let Value::Array(order) = order else {
            return Err(untyped(format!("expected a slice, but received a {}", super::json::go_json_kind(&order))));
        };
        let field = directive_field(&directive, SET_ELEMENT_ORDER)?;
        let orig_list = match original.get(&field) {
            None => None,
            Some(Value::Array(l)) => Some(l.clone()),
            Some(other) => return Err(untyped(format!("expected a slice, but received a {}", super::json::go_json_kind(other)))),
        };
        let patch_list = match patch.get(&field) {
            None => None,
            Some(Value::Array(l)) => Some(l.clone()),
            Some(Value::Null) => continue, // the list is being deleted; nothing to order
            Some(other) => return Err(untyped(format!("expected a slice, but received a {}", super::json::go_json_kind(other)))),
        };
        path.push(field);
        let meta = field_meta(gk, path);
        let key = match meta.strategy {
            PatchStrategy::Merge { key } => Some(key),
            _ => None,
        };
        let merged = match (orig_list.clone(), patch_list.clone()) {
            (None, None) => {
                path.pop();
                continue;
            }
            (Some(o), None) => Ok(o),
            (None, Some(p)) => Ok(clean_list(p)),
            (Some(o), Some(p)) => {
                check_order_matches(&p, &order, key).and_then(|_| merge_list_field(gk, path, o, p, false))
            }
        };
        let field = path.pop().expect("pushed above");
        let merged = merged?;
        let (in_order, server_only): (Vec<Value>, Vec<Value>) = match key {
            None => merged.into_iter().partition(|v| order.contains(v)),
            Some(key) => merged.into_iter().partition(|v| order.iter().any(|o| o.get(key).is_some() && o.get(key) == v.get(key))),
        };
        let ordered = normalize_order(in_order, server_only, &order, orig_list.as_deref().unwrap_or(&[]), key);
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// The plain items of a patch list must appear in `$setElementOrder` in the same order.
fn check_order_matches(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), ApiError> {
    let ident = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let plain: Vec<&Value> = patch.iter().filter(|v| v.get(PATCH).is_none()).collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < plain.len() && oi < order.len() {
        if ident(plain[pi]) == ident(&order[oi]) {
            pi += 1;
        }
        oi += 1;
    }
    if pi < plain.len() {
        return Err(untyped(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            go_fmt(&Value::Array(patch.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

/// Orders a merged list: items named by the patch (or `$setElementOrder`) follow
/// `patch_order`, server-only items follow `server_order`, and the two are interleaved so
/// that server-only items stay ahead of the patch items they preceded in the live list.
fn normalize_order(mut in_patch: Vec<Value>, mut server_only: Vec<Value>, patch_order: &[Value], server_order: &[Value], key: Option<&str>) -> Vec<Value> {
    let index = |list: &[Value], v: &Value| -> Option<usize> {
        match key {
            Some(k) => list.iter().position(|o| o.get(k) == v.get(k)),
            None => list.iter().position(|o| o == v),
        }
    };
    in_patch.sort_by_key(|v| index(patch_order, v).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index(server_order, v).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.push(left.next().expect("peeked")),
            (None, Some(_)) => out.push(right.next().expect("peeked")),
            (Some(l), Some(r)) => {
                let left_first = matches!((index(server_order, l), index(server_order, r)), (Some(li), Some(ri)) if li < ri);
                out.push(if left_first { left.next() } else { right.next() }.expect("peeked"));
            }
        }
    }
    out
}

/// A patch value taken as-is: nulls mean nothing when there is nothing to delete, and
/// directives are dropped (the typed decode in kube-apiserver ignores them). `None` when the
/// value itself is a `$patch` directive.
fn clean(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(PATCH) {
                return None;
            }
            Some(Value::Object(clean_map(m)))
        }
        Value::Array(l) => Some(Value::Array(clean_list(l))),
        other => Some(other),
    }
}

fn clean_map(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
        .filter_map(|(k, v)| clean(v).map(|v| (k, v)))
        .collect()
}

fn clean_list(l: Vec<Value>) -> Vec<Value> {
    l.into_iter().filter_map(clean).collect()
}

fn is_directive_key(k: &str) -> bool {
    k == PATCH || k == RETAIN_KEYS || k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER)
}

/// A value printed as Go's `%v` prints decoded JSON, for error messages that match kube's.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(l) => format!("[{}]", l.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!("map[{}]", keys.iter().map(|k| format!("{k}:{}", go_fmt(&m[*k]))).collect::<Vec<_>>().join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy() -> GroupKind {
        GroupKind::new("apps", "Deployment")
    }

    fn web() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}\n"}},
            "spec": {
                "replicas": 2,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "app:1", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "proxy:1"}
                ],
                "volumes": [{"name": "data", "emptyDir": {}}]}}
            }
        })
    }

    fn containers(v: &Value) -> &Vec<Value> {
        v["spec"]["template"]["spec"]["containers"].as_array().unwrap()
    }

    #[test]
    fn changing_one_container_image_keeps_the_other_containers() {
        // What `kubectl set image` / `kubectl edit` send.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [{"name": "sidecar", "image": "proxy:2"}]}}}});
        let out = apply(&deploy(), &web(), &patch).unwrap();
        let c = containers(&out);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0]["name"].as_str(), c[0]["image"].as_str()), (Some("app"), Some("app:1")));
        assert_eq!(c[1]["image"], "proxy:2");
        assert_eq!(c[0]["env"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn kubectl_apply_three_way_patch_updates_image_and_last_applied() {
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}\n"}},
            "spec": {"replicas": 3, "template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                                "env": [{"name": "B", "value": "3"}], "image": "app:2", "name": "app"}]}}}
        });
        let out = apply(&deploy(), &web(), &patch).unwrap();
        assert_eq!(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"], "{\"new\":true}\n");
        assert_eq!(out["spec"]["replicas"], 3);
        let app = &containers(&out)[0];
        assert_eq!(app["image"], "app:2");
        assert_eq!(app["env"], json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]));
        assert_eq!(app["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
        assert!(app.get("$setElementOrder/env").is_none());
    }

    #[test]
    fn removing_a_service_port_with_delete_directive() {
        let svc = GroupKind::new("", "Service");
        let orig = json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8443},
            {"name": "metrics", "port": 9090}]}});
        let patch = json!({"spec": {
            "$setElementOrder/ports": [{"port": 80}, {"port": 9090}],
            "ports": [{"$patch": "delete", "port": 443}]}});
        let out = apply(&svc, &orig, &patch).unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"name": "http", "port": 80, "targetPort": 8080}, {"name": "metrics", "port": 9090}]));
    }

    #[test]
    fn set_element_order_reorders_and_new_items_take_their_place() {
        let svc = GroupKind::new("", "Service");
        let orig = json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}});
        let patch = json!({"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 53}, {"port": 80}], "ports": [{"port": 53}]}});
        let out = apply(&svc, &orig, &patch).unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"port": 443}, {"port": 53}, {"port": 80}]));
    }

    #[test]
    fn server_only_items_go_before_the_patch_items_they_preceded() {
        let svc = GroupKind::new("", "Service");
        let orig = json!({"spec": {"ports": [{"port": 1}, {"port": 2}, {"port": 3}]}});
        let patch = json!({"spec": {"ports": [{"port": 3, "name": "c"}, {"port": 1, "name": "a"}]}});
        let out = apply(&svc, &orig, &patch).unwrap();
        let ports: Vec<i64> = out["spec"]["ports"].as_array().unwrap().iter().map(|p| p["port"].as_i64().unwrap()).collect();
        // Patched items take the patch's order; port 2 preceded port 3 in the live list.
        assert_eq!(ports, vec![2, 3, 1]);
    }

    #[test]
    fn new_list_item_without_element_order_goes_first() {
        // kube places patch items the live list has never seen ahead of server-only
        // items; `kubectl apply` avoids this by sending `$setElementOrder`.
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n:1"}]}}}});
        let out = apply(&deploy(), &web(), &patch).unwrap();
        let names: Vec<&str> = containers(&out).iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["new", "app", "sidecar"]);
    }

    #[test]
    fn null_deletes_map_keys_and_is_dropped_when_nothing_to_delete() {
        let patch = json!({"metadata": {"labels": {"app": null, "tier": "fe"}}, "spec": {"paused": null}});
        let out = apply(&deploy(), &web(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"tier": "fe"}));
        assert!(out["spec"].get("paused").is_none());
    }

    #[test]
    fn finalizers_union_and_delete_from_primitive_list() {
        let add = apply(&deploy(), &web(), &json!({"metadata": {"finalizers": ["c", "a"]}})).unwrap();
        assert_eq!(add["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let del = apply(
            &deploy(),
            &web(),
            &json!({"metadata": {"$setElementOrder/finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(del["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn lists_without_strategy_are_replaced() {
        let pod = GroupKind::new("", "Pod");
        let orig = json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}], "containers": [{"name": "c", "args": ["x", "y"]}]}});
        let patch = json!({"spec": {"tolerations": [{"key": "c"}], "containers": [{"name": "c", "args": ["z"]}]}});
        let out = apply(&pod, &orig, &patch).unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "c"}]));
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["z"]));
    }

    #[test]
    fn patch_replace_directive_in_list_replaces_whole_list() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}}}});
        let out = apply(&deploy(), &web(), &patch).unwrap();
        assert_eq!(containers(&out), &vec![json!({"name": "only", "image": "o:1"})]);
    }

    #[test]
    fn patch_replace_directive_in_map_replaces_map() {
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "x": "y"}}});
        let out = apply(&deploy(), &web(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"x": "y"}));
    }

    #[test]
    fn patch_delete_directive_in_map_empties_it() {
        let out = apply(&deploy(), &web(), &json!({"spec": {"strategy": {"$patch": "delete"}}})).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({}));
    }

    #[test]
    fn retain_keys_switches_deployment_strategy_to_recreate() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = apply(&deploy(), &web(), &patch).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn retain_keys_in_volume_item_switches_volume_source() {
        let patch = json!({"spec": {"template": {"spec": {"volumes": [
            {"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}}]}}}});
        let out = apply(&deploy(), &web(), &patch).unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["volumes"], json!([{"name": "data", "configMap": {"name": "cfg"}}]));
    }

    #[test]
    fn retain_keys_not_naming_a_patched_field_is_400() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}});
        let e = apply(&deploy(), &web(), &patch).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "invalid patch format of retainKeys"));
    }

    #[test]
    fn missing_merge_key_is_reported_like_kube() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}});
        let e = apply(&deploy(), &web(), &patch).unwrap_err();
        assert_eq!(e.code, 500);
        assert_eq!(e.message, "map: map[image:nginx] does not contain declared merge key: name");
    }

    #[test]
    fn unknown_patch_directive_is_refused() {
        let e = apply(&deploy(), &web(), &json!({"metadata": {"labels": {"$patch": "bogus"}}})).unwrap_err();
        assert!(e.message.starts_with("unknown patch type: bogus"));
    }

    #[test]
    fn lists_of_lists_are_422() {
        let node = GroupKind::new("", "Node");
        let e = apply(&node, &json!({"spec": {"podCIDRs": ["10.0.0.0/24"]}}), &json!({"spec": {"podCIDRs": [["x"]]}})).unwrap_err();
        assert_eq!(e.code, 422);
    }

    #[test]
    fn new_subtree_loses_directives_and_nulls() {
        let pod = GroupKind::new("", "Pod");
        let patch = json!({"spec": {"containers": [{"name": "c", "$setElementOrder/env": [{"name": "A"}], "env": [{"name": "A", "value": "1"}], "image": null}]}});
        let out = apply(&pod, &json!({"metadata": {"name": "p"}}), &patch).unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "c", "env": [{"name": "A", "value": "1"}]}]));
    }

    #[test]
    fn patch_that_is_not_an_object_is_400() {
        assert_eq!(apply(&deploy(), &web(), &json!([1])).unwrap_err().code, 400);
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let cm = GroupKind::new("", "ConfigMap");
        let orig = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}});
        let out = apply(&cm, &orig, &json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}})).unwrap();
        assert_eq!(out["metadata"]["ownerReferences"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn config_map_data_merges_key_by_key() {
        let cm = GroupKind::new("", "ConfigMap");
        let out = apply(&cm, &json!({"data": {"a": "1", "b": "2"}}), &json!({"data": {"b": null, "c": "3"}})).unwrap();
        assert_eq!(out["data"], json!({"a": "1", "c": "3"}));
    }
}
