use crate::{FieldError, GroupKind};
use serde_json::Value;

pub fn validate_object_meta(_gk: &GroupKind, _obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
