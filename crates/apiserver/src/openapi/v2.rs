//! The Swagger 2.0 document (`/openapi/v2`). kubectl 1.33 downloads it when it validates
//! on the client side (a `kind: List` manifest, which its v3 field-validation check
//! never vouches for), when OpenAPI v3 offers no strategic merge patch for a kind (custom
//! resources: it then asks v2 for the patch type), and for
//! `explain --output=plaintext-openapiv2`. It holds every definition, built-ins and
//! custom resources, converted from the v3 components.

use super::schemas::REF_PREFIX;
use serde_json::{json, Map, Value};

const V2_REF_PREFIX: &str = "#/definitions/";

pub fn document<'a>(components: impl IntoIterator<Item = (&'a String, &'a Value)>, kube_version: &str) -> Value {
    let mut defs = Map::new();
    for (name, schema) in components {
        defs.insert(name.clone(), to_v2(schema));
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": kube_version},
        "paths": {},
        "definitions": defs,
    })
}

/// A v3 schema in v2 terms: references point into `#/definitions/`, `allOf: [{$ref}]`
/// wrappers become a plain `$ref` with siblings (as upstream's v2 has them), and
/// keywords that v2 lacks (`anyOf`, `oneOf`, `not`, `nullable`) are dropped. Arrays
/// always get `items`, since kubectl's v2 parser rejects an array without one.
fn to_v2(v: &Value) -> Value {
    let Value::Object(o) = v else { return v.clone() };
    let mut out = Map::new();
    for (k, val) in o {
        match k.as_str() {
            "anyOf" | "oneOf" | "not" | "nullable" => {}
            "$ref" => {
                let r = val.as_str().unwrap_or("");
                out.insert(k.clone(), r.replacen(REF_PREFIX, V2_REF_PREFIX, 1).into());
            }
            "allOf" => match val.as_array().map(Vec::as_slice) {
                Some([one]) if one.get("$ref").is_some() && one.as_object().is_some_and(|x| x.len() == 1) => {
                    out.insert("$ref".into(), to_v2(one)["$ref"].clone());
                }
                Some(items) => {
                    out.insert(k.clone(), Value::Array(items.iter().map(to_v2).collect()));
                }
                None => {}
            },
            "properties" | "patternProperties" => {
                let props = val.as_object().map(|p| p.iter().map(|(n, s)| (n.clone(), to_v2(s))).collect()).unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" => {
                out.insert(k.clone(), to_v2(val));
            }
            "type" if !val.is_string() => {}
            _ => {
                out.insert(k.clone(), val.clone());
            }
        }
    }
    if out.get("type").and_then(Value::as_str) == Some("array") && !out.contains_key("items") {
        out.insert("items".into(), json!({}));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_of_references_become_definitions_refs_with_their_description() {
        let v = to_v2(&json!({"properties": {"spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.ServiceSpec"}], "description": "d"}}}));
        assert_eq!(v["properties"]["spec"], json!({"$ref": "#/definitions/io.k8s.api.core.v1.ServiceSpec", "description": "d"}));
    }

    #[test]
    fn v3_only_keywords_are_dropped_and_arrays_get_items() {
        let v = to_v2(&json!({"type": "object", "properties": {"a": {"type": "array", "nullable": true}, "b": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true}}}));
        assert_eq!(v["properties"]["a"], json!({"type": "array", "items": {}}));
        assert_eq!(v["properties"]["b"], json!({"x-kubernetes-int-or-string": true}));
    }
}
