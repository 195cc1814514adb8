//! The `paths` of a group-version document: the REST operations weft serves for each
//! resource, with the vendor extensions clients read. kubectl looks for the PATCH
//! operation of a kind (by `x-kubernetes-group-version-kind`) to learn whether the server
//! takes `fieldValidation`, and whether it takes strategic merge patches.

use super::schemas::{DELETE_OPTIONS, PATCH, REF_PREFIX, SCALE, STATUS};
use serde_json::{json, Map, Value};
use weft_api::resources::ResourceInfo;

/// Adds the operations on `r` (whose schema is `schema`) to `paths`.
pub fn add_resource(paths: &mut Map<String, Value>, r: &ResourceInfo, schema: &str, custom: bool) {
    let prefix = if r.group.is_empty() { format!("/api/{}", r.version) } else { format!("/apis/{}/{}", r.group, r.version) };
    let ns = if r.namespaced { "/namespaces/{namespace}" } else { "" };
    let collection = format!("{prefix}{ns}/{}", r.plural);
    let item = format!("{collection}/{{name}}");
    let op = Op { r, custom, namespaced_word: if r.namespaced { "Namespaced" } else { "" } };
    let kind_ref = format!("{REF_PREFIX}{schema}");
    let list_ref = format!("{REF_PREFIX}{schema}List");
    let gvk = gvk(&r.group, &r.version, &r.kind);

    let mut coll = path_params(r.namespaced, false);
    coll.insert("get".into(), op.operation("list", &r.kind, &list_ref, &gvk, &["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"], None));
    coll.insert("post".into(), op.operation("create", &r.kind, &kind_ref, &gvk, &["dryRun", "fieldManager", "fieldValidation"], Some(body(&kind_ref))));
    coll.insert("delete".into(), op.operation("deletecollection", &r.kind, &format!("{REF_PREFIX}{STATUS}"), &gvk, &["continue", "dryRun", "fieldSelector", "gracePeriodSeconds", "labelSelector", "limit", "propagationPolicy", "resourceVersion", "timeoutSeconds"], Some(body(&format!("{REF_PREFIX}{DELETE_OPTIONS}")))));
    paths.insert(collection, Value::Object(coll));

    paths.insert(item.clone(), Value::Object(item_ops(&op, r.namespaced, &r.kind, "", &kind_ref, &gvk, true)));
    if r.has_status {
        paths.insert(format!("{item}/status"), Value::Object(item_ops(&op, r.namespaced, &r.kind, "Status", &kind_ref, &gvk, false)));
    }
    if r.has_scale {
        let scale_gvk = gvk_of_scale();
        paths.insert(format!("{item}/scale"), Value::Object(item_ops(&op, r.namespaced, &r.kind, "Scale", &format!("{REF_PREFIX}{SCALE}"), &scale_gvk, false)));
    }
    if r.namespaced {
        let mut all = path_params(false, false);
        all.insert("get".into(), op.operation_named(&format!("list{}{}ForAllNamespaces", op.group_word(), r.kind), "list", &list_ref, &gvk, &["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"], None));
        paths.insert(format!("{prefix}/{}", r.plural), Value::Object(all));
    }
}

fn item_ops(op: &Op, namespaced: bool, kind: &str, sub: &str, kind_ref: &str, gvk: &Value, delete: bool) -> Map<String, Value> {
    let mut m = path_params(namespaced, true);
    let what = format!("{kind}{sub}");
    m.insert("get".into(), op.operation("read", &what, kind_ref, gvk, &[], None));
    m.insert("put".into(), op.operation("replace", &what, kind_ref, gvk, &["dryRun", "fieldManager", "fieldValidation"], Some(body(kind_ref))));
    m.insert("patch".into(), op.operation("patch", &what, kind_ref, gvk, &["dryRun", "fieldManager", "fieldValidation", "force"], Some(patch_body(op.custom))));
    if delete {
        m.insert("delete".into(), op.operation("delete", &what, &format!("{REF_PREFIX}{STATUS}"), gvk, &["dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential", "propagationPolicy"], Some(body(&format!("{REF_PREFIX}{DELETE_OPTIONS}")))));
    }
    m
}

struct Op<'a> {
    r: &'a ResourceInfo,
    custom: bool,
    namespaced_word: &'a str,
}

impl Op<'_> {
    /// `CoreV1`, `AppsV1`, `NetworkingV1`, `StableExampleComV1`, as upstream's operation ids.
    fn group_word(&self) -> String {
        let g = self.r.group.strip_suffix(".k8s.io").unwrap_or(&self.r.group);
        let g = if g.is_empty() { "core" } else { g };
        let mut out: String = g.split(['.', '-']).map(capitalize).collect();
        out.push_str(&capitalize(&self.r.version));
        out
    }

    fn operation(&self, action: &str, what: &str, response: &str, gvk: &Value, query: &[&str], request: Option<Value>) -> Value {
        let verb = match action {
            "create" => "create",
            "read" => "read",
            "replace" => "replace",
            "patch" => "patch",
            "delete" => "delete",
            "deletecollection" => "deleteCollection",
            _ => "list",
        };
        let id = format!("{verb}{}{}{what}", self.group_word(), self.namespaced_word);
        self.operation_named(&id, action, response, gvk, query, request)
    }

    fn operation_named(&self, id: &str, action: &str, response: &str, gvk: &Value, query: &[&str], request: Option<Value>) -> Value {
        let mut responses = Map::new();
        responses.insert("200".into(), ok(response));
        if matches!(action, "create" | "replace" | "patch") {
            responses.insert("201".into(), ok(response));
        }
        if action == "create" || action == "delete" {
            responses.insert("202".into(), ok(response));
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut o = Map::new();
        o.insert("tags".into(), json!([self.tag()]));
        o.insert("description".into(), description(action, &self.r.kind).into());
        o.insert("operationId".into(), id.into());
        o.insert("parameters".into(), Value::Array(query.iter().map(|q| query_param(q)).collect()));
        if let Some(b) = request {
            o.insert("requestBody".into(), b);
        }
        o.insert("responses".into(), Value::Object(responses));
        o.insert("x-kubernetes-action".into(), (if action == "read" { "get" } else if action == "replace" { "put" } else if action == "create" { "post" } else { action }).into());
        o.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        Value::Object(o)
    }

    fn tag(&self) -> String {
        let g = self.r.group.strip_suffix(".k8s.io").unwrap_or(&self.r.group);
        let g = if g.is_empty() { "core" } else { g };
        format!("{}_{}", g.replace('.', "_"), self.r.version)
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn description(action: &str, kind: &str) -> String {
    match action {
        "list" => format!("list or watch objects of kind {kind}"),
        "create" => format!("create a {kind}"),
        "read" => format!("read the specified {kind}"),
        "replace" => format!("replace the specified {kind}"),
        "patch" => format!("partially update the specified {kind}"),
        "delete" => format!("delete a {kind}"),
        _ => format!("delete collection of {kind}"),
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn gvk_of_scale() -> Value {
    gvk("autoscaling", "v1", "Scale")
}

fn media(schema_ref: &str, types: &[&str]) -> Value {
    let mut m = Map::new();
    for t in types {
        m.insert((*t).into(), json!({"schema": {"$ref": schema_ref}}));
    }
    Value::Object(m)
}

fn ok(response: &str) -> Value {
    json!({"description": "OK", "content": media(response, &["application/json", "application/yaml"])})
}

fn body(schema_ref: &str) -> Value {
    json!({"content": media(schema_ref, &["*/*"]), "required": true})
}

/// Custom resources take no strategic merge patch (they carry no patch metadata).
fn patch_body(custom: bool) -> Value {
    let patch_ref = format!("{REF_PREFIX}{PATCH}");
    let mut types = vec!["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"];
    if !custom {
        types.push("application/strategic-merge-patch+json");
    }
    json!({"content": media(&patch_ref, &types), "required": true})
}

fn path_params(namespaced: bool, named: bool) -> Map<String, Value> {
    let mut params = Vec::new();
    if named {
        params.push(json!({"name": "name", "in": "path", "description": "name of the resource", "required": true, "schema": {"type": "string", "uniqueItems": true}}));
    }
    if namespaced {
        params.push(json!({"name": "namespace", "in": "path", "description": "object name and auth scope, such as for teams and projects", "required": true, "schema": {"type": "string", "uniqueItems": true}}));
    }
    params.push(query_param("pretty"));
    let mut m = Map::new();
    m.insert("parameters".into(), Value::Array(params));
    m
}

fn query_param(name: &str) -> Value {
    let (ty, description) = match name {
        "pretty" => ("string", "If 'true', then the output is pretty printed."),
        "dryRun" => ("string", "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed"),
        "fieldManager" => ("string", "fieldManager is a name associated with the actor or entity that is making these changes."),
        "fieldValidation" => ("string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: ignores unknown fields. - Warn: sends a warning for each unknown field. - Strict: fails the request on unknown fields."),
        "force" => ("boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."),
        "gracePeriodSeconds" | "limit" | "timeoutSeconds" => ("integer", "See the Kubernetes API reference."),
        "allowWatchBookmarks" | "watch" | "sendInitialEvents" | "ignoreStoreReadErrorWithClusterBreakingPotential" => ("boolean", "See the Kubernetes API reference."),
        _ => ("string", "See the Kubernetes API reference."),
    };
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::resources::builtin_resources;

    fn paths_for(plural: &str, custom: bool) -> Map<String, Value> {
        let r = builtin_resources().into_iter().find(|r| r.plural == plural).unwrap();
        let mut paths = Map::new();
        add_resource(&mut paths, &r, "io.k8s.api.x", custom);
        paths
    }

    #[test]
    fn patch_of_a_namespaced_kind_carries_gvk_and_field_validation() {
        let paths = paths_for("services", false);
        let patch = &paths["/api/v1/namespaces/{namespace}/services/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"], json!({"group": "", "kind": "Service", "version": "v1"}));
        assert_eq!(patch["operationId"], "patchCoreV1NamespacedService");
        assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
        assert!(patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object());
        assert!(paths.contains_key("/api/v1/services"));
        assert!(paths.contains_key("/api/v1/namespaces/{namespace}/services/{name}/status"));
    }

    #[test]
    fn scale_subresource_is_described_as_autoscaling_scale() {
        let paths = paths_for("deployments", false);
        let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
        assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
        assert_eq!(scale["operationId"], "patchAppsV1NamespacedDeploymentScale");
    }

    #[test]
    fn cluster_scoped_kinds_have_no_namespace_segment() {
        let paths = paths_for("ingressclasses", false);
        assert!(paths.contains_key("/apis/networking.k8s.io/v1/ingressclasses/{name}"));
        assert_eq!(paths["/apis/networking.k8s.io/v1/ingressclasses/{name}"]["get"]["operationId"], "readNetworkingV1IngressClass");
    }

    #[test]
    fn custom_resources_take_no_strategic_merge_patch() {
        let paths = paths_for("services", true);
        let patch = &paths["/api/v1/namespaces/{namespace}/services/{name}"]["patch"];
        assert!(patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_none());
        assert!(patch["requestBody"]["content"]["application/merge-patch+json"].is_object());
    }
}
