use crate::FieldError;
use serde_json::Value;

pub fn validate_deployment(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_replica_set(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
