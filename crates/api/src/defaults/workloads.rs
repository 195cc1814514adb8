use serde_json::Value;

pub fn default_deployment(_obj: &mut Value) {}
pub fn default_replica_set(_obj: &mut Value) {}
