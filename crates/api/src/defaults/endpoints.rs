use serde_json::Value;

pub fn default_endpoints(_obj: &mut Value) {}
pub fn default_endpoint_slice(_obj: &mut Value) {}
