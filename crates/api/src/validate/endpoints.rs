use crate::FieldError;
use serde_json::Value;

pub fn validate_endpoints(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_endpoint_slice(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
