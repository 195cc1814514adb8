use serde_json::Value;

pub fn default_namespace(_obj: &mut Value) {}
pub fn default_node(_obj: &mut Value) {}
