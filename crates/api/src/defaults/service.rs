use serde_json::Value;

pub fn default_service(_obj: &mut Value) {}
