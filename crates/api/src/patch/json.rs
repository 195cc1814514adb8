//! RFC 6902 JSON patch, with kube-apiserver's status codes: a body that is not a list of
//! operations is a 400, an operation that cannot be applied (a failed `test`, a missing
//! path, an unknown `op`) is a 422 whose message is the generic one kube-apiserver sends.

use crate::ApiError;
use serde_json::Value;

/// kube-apiserver refuses longer patches with 413 before applying anything.
pub const MAX_OPERATIONS: usize = 10_000;

/// What kube-apiserver says for any operation that fails to apply; it drops the detail.
pub const APPLY_FAILED: &str = "the server rejected our request due to an error in our request";

pub fn apply(original: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops = match patch {
        Value::Array(ops) => ops,
        other => {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                go_json_kind(other)
            )))
        }
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}", ops.len()),
        ));
    }
    // Operations are only checked for shape when applied, as the Go decoder does.
    let parsed: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|_| apply_failed())?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &parsed.0).map_err(|_| apply_failed())?;
    Ok(doc)
}

fn apply_failed() -> ApiError {
    ApiError::new(422, "Invalid", APPLY_FAILED).with_details(serde_json::json!({}))
}

/// The word Go's encoding/json uses for a JSON value's type in unmarshal errors.
pub(crate) fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}})
    }

    #[test]
    fn replace_container_image_by_index() {
        let out = apply(&pod(), &json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:2"}])).unwrap();
        assert_eq!(out["spec"]["containers"][0]["image"], "nginx:2");
    }

    #[test]
    fn add_and_remove_label_with_escaped_key() {
        let out = apply(
            &pod(),
            &json!([
                {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "x"},
                {"op": "remove", "path": "/metadata/labels/app"}
            ]),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app.kubernetes.io/name": "x"}));
    }

    #[test]
    fn failed_test_op_is_422_and_leaves_nothing_applied() {
        let e = apply(
            &pod(),
            &json!([
                {"op": "replace", "path": "/metadata/name", "value": "q"},
                {"op": "test", "path": "/metadata/labels/app", "value": "db"}
            ]),
        )
        .unwrap_err();
        assert_eq!((e.code, e.reason.as_str(), e.message.as_str()), (422, "Invalid", APPLY_FAILED));
    }

    #[test]
    fn passing_test_op_applies_following_ops() {
        let out = apply(
            &pod(),
            &json!([
                {"op": "test", "path": "/metadata/labels/app", "value": "web"},
                {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/tier"}
            ]),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"]["tier"], "web");
    }

    #[test]
    fn remove_of_missing_path_is_422() {
        let e = apply(&pod(), &json!([{"op": "remove", "path": "/spec/nodeName"}])).unwrap_err();
        assert_eq!(e.code, 422);
    }

    #[test]
    fn unknown_op_is_422() {
        let e = apply(&pod(), &json!([{"op": "frobnicate", "path": "/spec"}])).unwrap_err();
        assert_eq!(e.code, 422);
    }

    #[test]
    fn patch_that_is_not_a_list_is_400() {
        let e = apply(&pod(), &json!({"op": "add"})).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(e.message, "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
    }

    #[test]
    fn too_many_operations_is_413() {
        let ops: Vec<Value> = (0..=MAX_OPERATIONS).map(|_| json!({"op": "test", "path": "/spec", "value": {}})).collect();
        assert_eq!(apply(&pod(), &Value::Array(ops)).unwrap_err().code, 413);
    }

    #[test]
    fn append_to_list_with_dash() {
        let out = apply(&pod(), &json!([{"op": "add", "path": "/spec/containers/-", "value": {"name": "d", "image": "busybox"}}])).unwrap();
        assert_eq!(out["spec"]["containers"][1]["name"], "d");
    }
}
