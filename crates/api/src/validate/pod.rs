use crate::FieldError;
use serde_json::Value;

pub fn validate_pod(_obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}
