use serde_json::Value;

pub fn default_secret(_obj: &mut Value) {}
