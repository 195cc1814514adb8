use crate::FieldError;
use serde_json::Value;

pub fn validate_namespace(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_node(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_event(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_lease(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
