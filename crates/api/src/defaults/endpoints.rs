//! Endpoints and EndpointSlice defaults: ports speak TCP unless told otherwise, and an
//! EndpointSlice port without a name has the empty name.

use serde_json::{json, Value};

pub fn default_endpoints(obj: &mut Value) {
    let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) else { return };
    for subset in subsets {
        let Some(ports) = subset.get_mut("ports").and_then(Value::as_array_mut) else { continue };
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            if port.get("protocol").and_then(Value::as_str).unwrap_or("").is_empty() {
                port.insert("protocol".into(), json!("TCP"));
            }
        }
    }
}

pub fn default_endpoint_slice(obj: &mut Value) {
    let Some(ports) = obj.get_mut("ports").and_then(Value::as_array_mut) else { return };
    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
        if port.get("name").map(Value::is_null).unwrap_or(true) {
            port.insert("name".into(), json!(""));
        }
        if port.get("protocol").map(Value::is_null).unwrap_or(true) {
            port.insert("protocol".into(), json!("TCP"));
        }
    }
}
