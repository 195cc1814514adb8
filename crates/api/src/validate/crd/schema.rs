//! The checks on a CRD version's `openAPIV3Schema` that decide whether kube-apiserver can
//! serve it: a structural schema (every specified field typed, an object at the root) built
//! from the supported OpenAPI types. CEL rules, defaults and list-type extensions are not
//! checked here.

use crate::FieldError;
use serde_json::{json, Value};

const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Items,
    Field,
    /// Inside allOf/anyOf/oneOf/not, where only value validations live.
    Junctor,
}

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Validates `schema` found at `path`; `structural` demands the structural rules.
pub fn validate(schema: &Value, path: &str, structural: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    walk(schema, path, Level::Root, structural, &mut errs);
    errs
}

fn walk(s: &Value, path: &str, level: Level, structural: bool, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        errs.push(FieldError::invalid(path, s.clone(), "must be a JSON schema object"));
        return;
    }
    let typ = s.get("type").and_then(Value::as_str).unwrap_or("");
    let type_path = format!("{path}.type");

    if structural {
        let untyped_ok = flag(s, "x-kubernetes-int-or-string") || flag(s, "x-kubernetes-preserve-unknown-fields");
        if typ.is_empty() && !untyped_ok {
            let why = match level {
                Level::Root => Some("must not be empty at the root"),
                Level::Items => Some("must not be empty for specified array items"),
                Level::Field => Some("must not be empty for specified object fields"),
                Level::Junctor => None,
            };
            if let Some(why) = why {
                errs.push(FieldError::required(type_path.clone(), why));
            }
        }
        if level == Level::Root && !typ.is_empty() && typ != "object" {
            errs.push(FieldError::invalid(type_path.clone(), json!(typ), "must be object at the root"));
        }
    }

    if !typ.is_empty() && !TYPES.contains(&typ) {
        errs.push(FieldError::not_supported(type_path, json!(typ), TYPES));
    }
    if typ == "array" && s.get("items").map(Value::is_null).unwrap_or(true) {
        errs.push(FieldError::required(format!("{path}.items"), "must be specified"));
    }
    if flag(s, "uniqueItems") {
        errs.push(FieldError::forbidden(
            format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }

    let props = s.get("properties").and_then(Value::as_object);
    if let Some(ap) = s.get("additionalProperties").filter(|v| !v.is_null()) {
        // Properties describe structs, additionalProperties maps; not both.
        let restricts = ap.is_object() || ap.as_bool() == Some(false);
        if props.map(|p| !p.is_empty()).unwrap_or(false) && restricts {
            errs.push(FieldError::forbidden(
                format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if ap.is_object() {
            walk(ap, &format!("{path}.additionalProperties"), Level::Field, structural, errs);
        }
    }
    for (name, p) in props.into_iter().flatten() {
        walk(p, &format!("{path}.properties[{name}]"), Level::Field, structural, errs);
    }
    if let Some(items) = s.get("items").filter(|v| v.is_object()) {
        walk(items, &format!("{path}.items"), Level::Items, structural, errs);
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in s.get(junctor).and_then(Value::as_array).into_iter().flatten().enumerate() {
            walk(sub, &format!("{path}.{junctor}[{i}]"), Level::Junctor, structural, errs);
        }
    }
    if let Some(not) = s.get("not").filter(|v| v.is_object()) {
        walk(not, &format!("{path}.not"), Level::Junctor, structural, errs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(schema: Value) -> Vec<String> {
        validate(&schema, "s", true).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn typed_object_schema_is_structural() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}},
            "port": {"x-kubernetes-int-or-string": true},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
        assert_eq!(msgs(schema), Vec::<String>::new());
    }

    #[test]
    fn untyped_fields_and_arrays_without_items_are_named() {
        let schema = json!({"type": "object", "properties": {"spec": {"properties": {"list": {"type": "array"}}}}});
        assert_eq!(
            msgs(schema),
            vec![
                "s.properties[spec].type: Required value: must not be empty for specified object fields",
                "s.properties[spec].properties[list].items: Required value: must be specified",
            ]
        );
    }

    #[test]
    fn root_must_be_an_object_of_a_known_type() {
        assert_eq!(msgs(json!({"type": "string"})), vec!["s.type: Invalid value: \"string\": must be object at the root"]);
        assert_eq!(msgs(json!({})), vec!["s.type: Required value: must not be empty at the root"]);
        assert_eq!(
            msgs(json!({"type": "object", "properties": {"a": {"type": "map"}}})),
            vec!["s.properties[a].type: Unsupported value: \"map\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""]
        );
    }
}
