use crate::FieldError;
use serde_json::Value;

pub fn validate_config_map(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_secret(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_service_account(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
