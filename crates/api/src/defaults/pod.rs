use serde_json::Value;

pub fn default_pod(_obj: &mut Value) {}
