//! CustomResourceDefinition (apiextensions.k8s.io/v1) defaults: singular and list kind
//! from the kind, `None` conversion, port 443 for a webhook service, and the storage
//! version recorded in `status.storedVersions` as the registry records it on create.

use serde_json::{json, Value};

pub fn default_crd(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else { return };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        if names.get("singular").and_then(Value::as_str).unwrap_or("").is_empty() {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if names.get("listKind").and_then(Value::as_str).unwrap_or("").is_empty() && !kind.is_empty() {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    if spec.get("conversion").map(Value::is_null).unwrap_or(true) {
        spec.insert("conversion".into(), json!({"strategy": "None"}));
    }
    if let Some(service) = spec
        .get_mut("conversion")
        .and_then(|c| c.pointer_mut("/webhook/clientConfig/service"))
        .and_then(Value::as_object_mut)
    {
        if service.get("port").map(Value::is_null).unwrap_or(true) {
            service.insert("port".into(), json!(443));
        }
    }

    let storage = spec
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v.get("storage").and_then(Value::as_bool).unwrap_or(false)))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .map(String::from);
    let Some(storage) = storage else { return };
    let Some(o) = obj.as_object_mut() else { return };
    if !o.get("status").map(Value::is_object).unwrap_or(false) {
        o.insert("status".into(), json!({}));
    }
    let status = o.get_mut("status").and_then(Value::as_object_mut).expect("status is an object");
    if !status.get("storedVersions").map(Value::is_array).unwrap_or(false) {
        status.insert("storedVersions".into(), json!([]));
    }
    let stored = status.get_mut("storedVersions").and_then(Value::as_array_mut).expect("storedVersions is a list");
    // A new storage version joins the list; earlier ones stay until a storage migration.
    if !stored.iter().any(|v| v.as_str() == Some(&storage)) {
        stored.push(json!(storage));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_the_storage_version_keeps_the_old_one_stored() {
        let mut crd = json!({"spec": {"names": {"kind": "Foo"}, "versions": [{"name": "v1", "storage": false}, {"name": "v2", "storage": true}]},
            "status": {"storedVersions": ["v1"]}});
        default_crd(&mut crd);
        assert_eq!(crd["status"]["storedVersions"], json!(["v1", "v2"]));
        assert_eq!(crd["spec"]["names"]["singular"], "foo");
    }

    #[test]
    fn webhook_service_port_defaults_to_443() {
        let mut crd = json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "conv", "namespace": "ns"}}}}}});
        default_crd(&mut crd);
        assert_eq!(crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"], 443);
    }
}
