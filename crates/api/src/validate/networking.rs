use crate::FieldError;
use serde_json::Value;

pub fn validate_network_policy(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_ingress(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
pub fn validate_ingress_class(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
