//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge
//! patch (what client-side `kubectl apply` sends) and server-side apply.

use crate::{ApiError, GroupKind};
use serde_json::Value;

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

/// Applies a JSON, merge or strategic merge patch to `original`. Strategic merge on a
/// kind with no patch metadata (custom resources) is refused with 415, as kube-apiserver does.
pub fn apply_patch(gk: &GroupKind, patch_type: PatchType, original: &Value, patch: &Value) -> Result<Value, ApiError> {
    let _ = (gk, patch_type, original, patch);
    Err(ApiError::new(415, "UnsupportedMediaType", "patch support is being built"))
}
