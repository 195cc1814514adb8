//! RFC 7386 JSON merge patch (`kubectl patch --type merge`): objects merge recursively,
//! `null` deletes, anything else (lists included) replaces.

use crate::ApiError;
use serde_json::Value;

pub fn apply(original: &Value, patch: &Value) -> Result<Value, ApiError> {
    // The Go library kube-apiserver uses refuses a patch that is not an object.
    if !patch.is_object() {
        return Err(ApiError::bad_request("Invalid JSON Patch"));
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_maps_merge_and_null_deletes() {
        let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
        let out = apply(&orig, &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"replicas": 3}})).unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 3}}));
    }

    #[test]
    fn lists_are_replaced_whole() {
        let orig = json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}});
        let out = apply(&orig, &json!({"spec": {"ports": [{"port": 8080}]}})).unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"port": 8080}]));
    }

    #[test]
    fn null_inside_new_subtree_is_dropped() {
        let out = apply(&json!({}), &json!({"spec": {"a": 1, "b": null}})).unwrap();
        assert_eq!(out, json!({"spec": {"a": 1}}));
    }

    #[test]
    fn key_order_of_original_is_kept() {
        let out = apply(&json!({"a": 1, "b": 2, "c": 3}), &json!({"a": 9})).unwrap();
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"a":9,"b":2,"c":3}"#);
    }

    #[test]
    fn non_object_patch_is_400() {
        assert_eq!(apply(&json!({}), &json!([1])).unwrap_err().code, 400);
        assert_eq!(apply(&json!({}), &Value::Null).unwrap_err().code, 400);
    }
}
