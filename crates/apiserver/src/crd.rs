//! CustomResourceDefinitions: establishing them, validating custom objects against
//! their structural schema, and removing their objects when they go.

use crate::api::Api;
use serde_json::{json, Value};
use weft_api::FieldError;

/// Marks a new CRD accepted and established, as the apiextensions controllers do.
pub fn establish(crd: &mut Value) {
    let now = crate::objects::now();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter(|v| v["storage"].as_bool() == Some(true)).map(|v| v["name"].clone()).collect())
        .unwrap_or_default();
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    });
}

impl Api {
    /// Rebuilds the custom resources served from the stored CRDs.
    pub fn refresh_crds(&self) {
        let (crds, _) = self.store.list("/apiextensions.k8s.io/customresourcedefinitions/");
        let values: Vec<Value> = crds.iter().filter(|c| c.value().pointer("/metadata/deletionTimestamp").is_none()).map(|c| c.value()).collect();
        self.registry.set_crds(&values);
    }
}

pub async fn delete_custom_objects(api: &Api, crd: &Value) {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or("");
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or("");
    if group.is_empty() || plural.is_empty() {
        return;
    }
    let (items, _) = api.store.list(&format!("/{group}/{plural}/"));
    for o in items {
        if let Err(e) = api.store.delete(&o.key, None).await {
            tracing::warn!(key = %o.key, %e, "removing a custom object of a deleted CRD");
        }
    }
}

/// Validates a custom object against its version's `openAPIV3Schema`.
pub fn validate_custom(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, s) in props {
            if matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
                continue;
            }
            if let Some(v) = obj.get(k) {
                check(s, v, k, &mut errs);
            }
        }
    }
    required(schema, obj, "", &mut errs);
    errs
}

fn required(schema: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let (Some(req), Some(o)) = (schema.get("required").and_then(Value::as_array), v.as_object()) {
        for r in req.iter().filter_map(Value::as_str) {
            if !o.contains_key(r) {
                let p = if path.is_empty() { r.to_string() } else { format!("{path}.{r}") };
                errs.push(FieldError::required(p, ""));
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(schema: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if v.is_null() && schema["nullable"].as_bool() == Some(true) {
        return;
    }
    if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !matches!(type_name(v), "integer" | "string") {
            errs.push(FieldError::invalid(path, v.clone(), "must be an integer or a string"));
        }
        return;
    }
    if let Some(t) = schema["type"].as_str() {
        let actual = type_name(v);
        let ok = actual == t || (t == "number" && actual == "integer");
        if !ok {
            errs.push(FieldError { kind: weft_api::FieldErrorType::Invalid, field: path.to_string(), value: Some(v.clone()), detail: format!("must be of type {t}") });
            return;
        }
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            let valid: Vec<String> = e.iter().map(|x| x.to_string()).collect();
            errs.push(FieldError { kind: weft_api::FieldErrorType::NotSupported, field: path.to_string(), value: Some(v.clone()), detail: format!("supported values: {}", valid.join(", ")) });
        }
    }
    if let Some(n) = v.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|m| n < m) {
            errs.push(FieldError::invalid(path, v.clone(), &format!("should be greater than or equal to {}", schema["minimum"])));
        }
        if schema["maximum"].as_f64().is_some_and(|m| n > m) {
            errs.push(FieldError::invalid(path, v.clone(), &format!("should be less than or equal to {}", schema["maximum"])));
        }
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count() as u64;
        if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
            errs.push(FieldError::too_long(path, schema["maxLength"].as_u64().unwrap() as usize));
        }
        if schema["minLength"].as_u64().is_some_and(|m| len < m) {
            errs.push(FieldError::invalid(path, v.clone(), &format!("should be at least {} chars long", schema["minLength"])));
        }
    }
    if let Some(a) = v.as_array() {
        if schema["maxItems"].as_u64().is_some_and(|m| a.len() as u64 > m) {
            errs.push(FieldError { kind: weft_api::FieldErrorType::TooMany, field: path.to_string(), value: None, detail: format!("must have at most {} items", schema["maxItems"]) });
        }
        if schema["minItems"].as_u64().is_some_and(|m| (a.len() as u64) < m) {
            errs.push(FieldError::invalid(path, v.clone(), &format!("should have at least {} items", schema["minItems"])));
        }
        if let Some(items) = schema.get("items") {
            for (i, x) in a.iter().enumerate() {
                check(items, x, &format!("{path}[{i}]"), errs);
            }
        }
    }
    if let Some(o) = v.as_object() {
        required(schema, v, path, errs);
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, s) in props {
                if let Some(x) = o.get(k) {
                    check(s, x, &format!("{path}.{k}"), errs);
                }
            }
        }
        if let Some(ap) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, x) in o {
                if props.is_none_or(|p| !p.contains_key(k)) {
                    check(ap, x, &format!("{path}.{k}"), errs);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_objects_are_checked_against_their_schema() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["replicas"], "properties": {"replicas": {"type": "integer", "minimum": 1}, "mode": {"type": "string", "enum": ["a", "b"]}}}}});
        assert!(validate_custom(&schema, &json!({"spec": {"replicas": 2, "mode": "a"}})).is_empty());
        let errs = validate_custom(&schema, &json!({"spec": {"replicas": 0, "mode": "c"}}));
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs, vec!["spec.replicas: Invalid value: 0: should be greater than or equal to 1", "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\""]);
        assert_eq!(validate_custom(&schema, &json!({"spec": {}}))[0].to_string(), "spec.replicas: Required value");
    }
}
