//! Server-side field validation (`?fieldValidation=Strict|Warn`): the fields of an
//! object that its kind's schema does not declare, named as kube-apiserver's strict
//! decoding names them (`spec.ports[0].nodeport`).

use super::schemas::ref_target;
use serde_json::Value;

/// How deep a walk goes before giving up; schemas of built-ins are far shallower.
const MAX_DEPTH: usize = 64;

/// The undeclared fields of `obj` under `schema`, resolving `$ref`s with `lookup`.
pub fn unknown_fields<'a>(schema: &'a Value, lookup: &dyn Fn(&str) -> Option<&'a Value>, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, lookup, obj, &mut String::new(), &mut out, 0);
    out
}

/// The schema a field's schema stands for: itself, or what its `$ref` (or one-element
/// `allOf`) points to.
fn resolve<'a>(s: &'a Value, lookup: &dyn Fn(&str) -> Option<&'a Value>) -> &'a Value {
    match ref_target(s).and_then(lookup) {
        Some(t) => t,
        None => s,
    }
}

fn walk<'a>(schema: &'a Value, lookup: &dyn Fn(&str) -> Option<&'a Value>, obj: &Value, path: &mut String, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let s = resolve(schema, lookup);
    if s.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true) || s.get("x-kubernetes-int-or-string").is_some() {
        return;
    }
    match obj {
        Value::Object(fields) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && additional.is_none() {
                // A free-form object (`type: object` alone, RawExtension): anything goes.
                return;
            }
            for (k, v) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match props.and_then(|p| p.get(k)).or(additional) {
                    Some(sub) => walk(sub, lookup, v, path, out, depth + 1),
                    None => out.push(path.clone()),
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = s.get("items") else { return };
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item_schema, lookup, v, path, out, depth + 1);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The 400 kube-apiserver answers a create or update with `fieldValidation=Strict` and
/// undeclared fields in the body.
pub fn strict_decoding_error(kind: &str, version: &str, fields: &[String]) -> weft_api::ApiError {
    let list: Vec<String> = fields.iter().map(|f| format!("unknown field \"{f}\"")).collect();
    weft_api::ApiError::bad_request(format!("{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}", list.join(", ")))
}

/// The `Warning` header values for `fieldValidation=Warn` (the server's default).
pub fn warnings(fields: &[String]) -> Vec<String> {
    fields.iter().map(|f| format!("299 - \"unknown field \\\"{f}\\\"\"")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::schemas::{builtin_components, Builtins};
    use serde_json::json;
    use std::sync::LazyLock;
    use weft_api::resources::builtin_resources;

    static B: LazyLock<Builtins> = LazyLock::new(|| builtin_components(&builtin_resources()));

    fn unknown(kind: &str, obj: Value) -> Vec<String> {
        let schema = &B.components[kind];
        unknown_fields(schema, &|n| B.components.get(n), &obj)
    }

    #[test]
    fn a_valid_service_has_no_unknown_fields() {
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}]},
        });
        assert_eq!(unknown("io.k8s.api.core.v1.Service", svc), Vec::<String>::new());
    }

    #[test]
    fn unknown_fields_are_named_by_path_with_list_indexes() {
        let svc = json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "colour": "red"},
            "spec": {"bogus": 1, "ports": [{"port": 80}, {"port": 81, "nodeport": 30001}]},
        });
        assert_eq!(unknown("io.k8s.api.core.v1.Service", svc), vec!["metadata.colour", "spec.bogus", "spec.ports[1].nodeport"]);
    }

    #[test]
    fn deployment_template_fields_are_checked_deep() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "hostPort2": 1}], "resources": {"limits": {"cpu": 1}}}]},
            }},
        });
        assert_eq!(unknown("io.k8s.api.apps.v1.Deployment", d), vec!["spec.template.spec.containers[0].ports[0].hostPort2"]);
    }

    #[test]
    fn preserve_unknown_fields_stops_the_walk() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
        let obj = json!({"spec": {"anything": {"goes": 1}}, "extra": true});
        assert_eq!(unknown_fields(&schema, &|_| None, &obj), vec!["extra"]);
    }

    #[test]
    fn strict_error_lists_every_field_like_kube_apiserver() {
        let e = strict_decoding_error("Service", "v1", &["spec.bogus".into(), "spec.x".into()]);
        assert_eq!(e.code, 400);
        assert_eq!(e.to_status()["message"], "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.bogus\", unknown field \"spec.x\"");
    }
}
