//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge
//! patch (what client-side `kubectl apply`, `kubectl edit` and `kubectl patch` send) and
//! server-side apply with `metadata.managedFields`.
//!
//! Each patch format lives in its own file; [`meta`] holds the per-field list strategies
//! of the built-in kinds that strategic merge and server-side apply both need.

pub mod apply;
pub mod fieldset;
pub mod json;
pub mod merge;
pub mod meta;
pub mod strategic;

use crate::{ApiError, GroupKind};
use serde_json::Value;

pub use apply::{record_update, server_side_apply};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchType {
    /// From the request's Content-Type (parameters such as `; charset=utf-8` ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" | "application/apply-patch+cbor" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// The 415 that kube-apiserver's custom resource handler returns for a strategic merge
/// patch: custom resources carry no patch metadata, so only these types are accepted.
pub fn strategic_merge_unsupported() -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    )
}

/// Applies a JSON, merge or strategic merge patch to `original`. Strategic merge on a
/// kind with no patch metadata (custom resources) is refused with 415, as kube-apiserver does.
/// Server-side apply needs the manager and force flag, so it goes through
/// [`server_side_apply`]; asking for it here is a caller error (500).
pub fn apply_patch(gk: &GroupKind, patch_type: PatchType, original: &Value, patch: &Value) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => json::apply(original, patch),
        PatchType::Merge => merge::apply(original, patch),
        PatchType::StrategicMerge => {
            if !crate::resources::is_builtin(gk) {
                return Err(strategic_merge_unsupported());
            }
            strategic::apply(gk, original, patch)
        }
        PatchType::Apply => Err(ApiError::internal("server-side apply must go through server_side_apply")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_on_custom_resource_is_415() {
        let gk = GroupKind::new("example.com", "Widget");
        let e = apply_patch(&gk, PatchType::StrategicMerge, &json!({}), &json!({})).unwrap_err();
        assert_eq!(e.code, 415);
        assert_eq!(e.reason, "UnsupportedMediaType");
    }

    #[test]
    fn merge_patch_on_custom_resource_is_allowed() {
        let gk = GroupKind::new("example.com", "Widget");
        let out = apply_patch(&gk, PatchType::Merge, &json!({"spec": {"a": 1}}), &json!({"spec": {"b": 2}})).unwrap();
        assert_eq!(out, json!({"spec": {"a": 1, "b": 2}}));
    }

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"), Some(PatchType::StrategicMerge));
        assert_eq!(PatchType::from_content_type("application/apply-patch+yaml"), Some(PatchType::Apply));
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }
}

#[cfg(test)]
mod dispatch_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_on_builtin_merges_containers_by_name() {
        let gk = GroupKind::new("", "Pod");
        let orig = json!({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}});
        let out = apply_patch(&gk, PatchType::StrategicMerge, &orig, &json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}})).unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]));
    }

    #[test]
    fn apply_type_is_not_handled_by_apply_patch() {
        let gk = GroupKind::new("", "Pod");
        assert_eq!(apply_patch(&gk, PatchType::Apply, &json!({}), &json!({})).unwrap_err().code, 500);
    }
}
