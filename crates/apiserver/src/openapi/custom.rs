//! Component schemas of custom resources, from their CRD's `openAPIV3Schema`, named as
//! kube-apiserver names them: the group reversed, then version and kind
//! (`stable.example.com/v1 CronTab` is `com.example.stable.v1.CronTab`).

use super::schemas::{list_schema, normalize, API_VERSION_DESCRIPTION, KIND_DESCRIPTION, METADATA_DESCRIPTION, OBJECT_META, REF_PREFIX};
use crate::registry::Served;
use serde_json::{json, Value};

pub fn component_name(group: &str, version: &str, kind: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    format!("{}.{version}.{kind}", parts.join("."))
}

/// The kind's schema and its list's, as (name, schema) pairs.
pub fn components(served: &Served) -> [(String, Value); 2] {
    let info = &served.info;
    let name = component_name(&info.group, &info.version, &info.kind);
    let mut schema = match &served.schema {
        Some(Value::Object(o)) => Value::Object(o.clone()),
        // No schema: anything goes, as for a CRD with `x-kubernetes-preserve-unknown-fields`.
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    normalize(&mut schema);
    let o = schema.as_object_mut().expect("an object schema");
    o.entry("type").or_insert_with(|| "object".into());
    let props = o.entry("properties").or_insert_with(|| json!({}));
    if let Value::Object(p) = props {
        p.insert("apiVersion".into(), json!({"description": API_VERSION_DESCRIPTION, "type": "string"}));
        p.insert("kind".into(), json!({"description": KIND_DESCRIPTION, "type": "string"}));
        p.insert("metadata".into(), json!({"allOf": [{"$ref": format!("{REF_PREFIX}{OBJECT_META}")}], "description": METADATA_DESCRIPTION}));
    }
    o.insert("x-kubernetes-group-version-kind".into(), json!([{"group": info.group, "kind": info.kind, "version": info.version}]));
    let list = list_schema(&info.kind, &format!("{REF_PREFIX}{name}"), &info.group, &info.version);
    [(format!("{name}List"), list), (name, schema)]
}

/// A CRD for tests: `stable.example.com/v1 CronTab` with a small schema.
#[cfg(test)]
pub fn crontab_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "description": "The schedule and image.",
                        "properties": {"cronSpec": {"type": "string", "description": "When to run."}, "replicas": {"type": "integer"}},
                    }},
                }},
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::served_from_crd;

    #[test]
    fn crd_schema_becomes_a_reverse_named_component_with_metadata_and_gvk() {
        let served = served_from_crd(&crontab_crd()).remove(0);
        let [(list_name, list), (name, schema)] = components(&served);
        assert_eq!(name, "com.example.stable.v1.CronTab");
        assert_eq!(list_name, "com.example.stable.v1.CronTabList");
        assert_eq!(schema["properties"]["spec"]["properties"]["cronSpec"]["description"], "When to run.");
        assert_eq!(schema["properties"]["metadata"]["allOf"][0]["$ref"], format!("{REF_PREFIX}{OBJECT_META}"));
        assert_eq!(schema["x-kubernetes-group-version-kind"], json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}]));
        assert_eq!(list["properties"]["items"]["items"]["$ref"], "#/components/schemas/com.example.stable.v1.CronTab");
    }
}
