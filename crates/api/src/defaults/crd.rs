use serde_json::Value;

pub fn default_crd(_obj: &mut Value) {}
