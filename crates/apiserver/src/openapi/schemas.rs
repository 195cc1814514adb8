//! Component schemas of the built-in kinds, named as upstream names them
//! (`io.k8s.api.core.v1.Service`), generated from k8s-openapi's JSON schemas and shaped
//! the way kube-apiserver publishes OpenAPI v3: references with siblings wrapped in
//! `allOf`, `x-kubernetes-group-version-kind` on kinds, and the patch extensions of
//! [`weft_api::patch::meta`] on the fields that carry them.

use k8s_openapi::api::{apps::v1 as apps, autoscaling::v1 as autoscaling, coordination::v1 as coordination, core::v1 as core};
use k8s_openapi::api::{discovery::v1 as discovery, networking::v1 as networking};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use weft_api::patch::meta::{field_meta, FieldMeta, ListType, PatchStrategy};
use weft_api::resources::ResourceInfo;
use weft_api::GroupKind;

pub type Components = BTreeMap<String, Value>;

/// The built-in components and, for each built-in kind, its component's name.
pub struct Builtins {
    pub components: Components,
    /// `group/version/Kind` → component name.
    pub kinds: BTreeMap<String, String>,
}

impl Builtins {
    pub fn kind_name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds.get(&format!("{group}/{version}/{kind}")).map(String::as_str)
    }
}

pub const REF_PREFIX: &str = "#/components/schemas/";
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// The meta types every group-version document carries (requests and responses use them).
pub const META_TYPES: &[&str] = &[DELETE_OPTIONS, STATUS, PATCH, "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent"];

pub const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
pub const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
pub const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// Registers the kind's Rust type (and everything it references) in `gen`; returns its
/// schema name, or `None` for a kind weft has no type for.
pub fn builtin_schema(gen: &mut SchemaGenerator, group: &str, version: &str, kind: &str) -> Option<String> {
    fn add<T: JsonSchema>(gen: &mut SchemaGenerator) -> Option<String> {
        gen.subschema_for::<T>();
        Some(T::schema_name().into_owned())
    }
    match (group, version, kind) {
        ("", "v1", "Namespace") => add::<core::Namespace>(gen),
        ("", "v1", "Node") => add::<core::Node>(gen),
        ("", "v1", "Pod") => add::<core::Pod>(gen),
        ("", "v1", "Service") => add::<core::Service>(gen),
        ("", "v1", "Endpoints") => add::<core::Endpoints>(gen),
        ("", "v1", "ConfigMap") => add::<core::ConfigMap>(gen),
        ("", "v1", "Secret") => add::<core::Secret>(gen),
        ("", "v1", "ServiceAccount") => add::<core::ServiceAccount>(gen),
        ("", "v1", "Event") => add::<core::Event>(gen),
        ("discovery.k8s.io", "v1", "EndpointSlice") => add::<discovery::EndpointSlice>(gen),
        ("networking.k8s.io", "v1", "NetworkPolicy") => add::<networking::NetworkPolicy>(gen),
        ("networking.k8s.io", "v1", "Ingress") => add::<networking::Ingress>(gen),
        ("networking.k8s.io", "v1", "IngressClass") => add::<networking::IngressClass>(gen),
        ("apps", "v1", "Deployment") => add::<apps::Deployment>(gen),
        ("apps", "v1", "ReplicaSet") => add::<apps::ReplicaSet>(gen),
        ("coordination.k8s.io", "v1", "Lease") => add::<coordination::Lease>(gen),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => add::<apiextensions::CustomResourceDefinition>(gen),
        ("autoscaling", "v1", "Scale") => add::<autoscaling::Scale>(gen),
        _ => None,
    }
}

/// Every component the built-in resources need, keyed by upstream name: the kinds, their
/// `<Kind>List`s, everything they reference, `Scale` and the meta types.
pub fn builtin_components(resources: &[ResourceInfo]) -> Builtins {
    let settings = SchemaSettings::openapi3().with(|s| {
        s.transforms.clear();
        s.meta_schema = None;
    });
    let mut gen = settings.into_generator();
    let mut kinds: Vec<(ResourceInfo, String)> = Vec::new();
    for r in resources {
        if let Some(name) = builtin_schema(&mut gen, &r.group, &r.version, &r.kind) {
            kinds.push((r.clone(), name));
        }
    }
    builtin_schema(&mut gen, "autoscaling", "v1", "Scale");
    gen.subschema_for::<meta::DeleteOptions>();
    gen.subschema_for::<meta::Status>();
    gen.subschema_for::<meta::Patch>();
    gen.subschema_for::<meta::WatchEvent<meta::Status>>();
    gen.subschema_for::<meta::ListMeta>();

    let mut out: Components = gen.take_definitions(false).into_iter().map(|(k, mut v)| {
        normalize(&mut v);
        (k, v)
    }).collect();
    set_gvk(&mut out, SCALE, "autoscaling", "v1", "Scale");
    for (r, name) in &kinds {
        set_gvk(&mut out, name, &r.group, &r.version, &r.kind);
        if let Some(Value::Array(req)) = out.get_mut(name).and_then(|s| s.get_mut("required")) {
            // k8s-openapi requires `metadata` because its Rust field is not optional;
            // upstream never does, and `kubectl explain` would print it as required.
            req.retain(|f| f != "metadata");
        }
        let list_name = format!("{name}List");
        out.insert(list_name.clone(), list_schema(&r.kind, &format!("{REF_PREFIX}{name}"), &r.group, &r.version));
        annotate_patch_meta(&mut out, &r.group_kind(), name);
    }
    for s in out.values_mut() {
        if let Some(Value::Array(req)) = s.get("required") {
            if req.is_empty() {
                s.as_object_mut().map(|o| o.remove("required"));
            }
        }
    }
    let kinds = kinds.into_iter().map(|(r, name)| (format!("{}/{}/{}", r.group, r.version, r.kind), name)).collect();
    Builtins { components: out, kinds }
}

/// `<Kind>List`, which k8s-openapi expresses as a generic rather than a named schema.
pub fn list_schema(kind: &str, item_ref: &str, group: &str, version: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {"description": format!("List of {kind} objects."), "type": "array", "items": {"$ref": item_ref}},
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {"allOf": [{"$ref": format!("{REF_PREFIX}{LIST_META}")}], "description": LIST_METADATA_DESCRIPTION},
        },
        "x-kubernetes-group-version-kind": [{"group": group, "kind": format!("{kind}List"), "version": version}],
    })
}

pub fn set_gvk(components: &mut Components, name: &str, group: &str, version: &str, kind: &str) {
    if let Some(Value::Object(s)) = components.get_mut(name) {
        s.insert("x-kubernetes-group-version-kind".into(), json!([{"group": group, "kind": kind, "version": version}]));
    }
}

/// Rewrites a schema in place into the shape upstream publishes: a `$ref` with siblings
/// (a field's description) becomes `allOf: [{$ref}]` plus the siblings, since OpenAPI 3.0
/// ignores siblings of `$ref` and kubectl reads descriptions from there.
pub fn normalize(v: &mut Value) {
    let Value::Object(o) = v else { return };
    if o.contains_key("$ref") && o.len() > 1 {
        let r = o.remove("$ref").unwrap_or(Value::Null);
        o.insert("allOf".into(), json!([{"$ref": r}]));
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(props)) = o.get_mut(key) {
            props.values_mut().for_each(normalize);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(s) = o.get_mut(key) {
            normalize(s);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(a)) = o.get_mut(key) {
            a.iter_mut().for_each(normalize);
        }
    }
}

/// The component a schema refers to, directly or through a one-element `allOf`.
pub fn ref_target(s: &Value) -> Option<&str> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return r.strip_prefix(REF_PREFIX);
    }
    match s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        Some([one]) => one.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(REF_PREFIX)),
        _ => None,
    }
}

/// Every component reachable from `roots` (the roots included), sorted, looking names
/// up with `lookup`.
pub fn closure<'a>(lookup: impl Fn(&str) -> Option<&'a Value>, roots: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        let Some(schema) = lookup(&name) else { continue };
        let mut refs = Vec::new();
        collect_refs(schema, &mut refs);
        todo.extend(refs.into_iter().map(String::from));
        seen.insert(name);
    }
    seen.into_iter().collect()
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(REF_PREFIX)) {
                out.push(r);
            }
            o.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// Walks the kind from its root along field paths and puts the patch extensions that
/// [`field_meta`] gives onto the properties of the components the fields live in.
fn annotate_patch_meta(components: &mut Components, gk: &GroupKind, root: &str) {
    let mut found: Vec<(String, String, FieldMeta)> = Vec::new();
    let mut path = Vec::new();
    let mut stack = vec![root.to_string()];
    collect_patch_meta(components, gk, root, &mut path, &mut stack, &mut found);
    for (comp, prop, meta) in found {
        if let Some(Value::Object(p)) = components.get_mut(&comp).and_then(|s| s.get_mut("properties")).and_then(|p| p.get_mut(&prop)) {
            put_extensions(p, &meta);
        }
    }
}

const MAX_DEPTH: usize = 16;

fn collect_patch_meta(
    components: &Components,
    gk: &GroupKind,
    comp: &str,
    path: &mut Vec<String>,
    stack: &mut Vec<String>,
    found: &mut Vec<(String, String, FieldMeta)>,
) {
    let Some(Value::Object(props)) = components.get(comp).and_then(|s| s.get("properties")) else { return };
    for (prop, sub) in props {
        path.push(prop.clone());
        let meta = field_meta(gk, path);
        if meta != FieldMeta::PLAIN {
            found.push((comp.to_string(), prop.clone(), meta));
        }
        let target = ref_target(sub).or_else(|| sub.get("items").and_then(ref_target));
        if let Some(t) = target {
            if path.len() < MAX_DEPTH && !stack.iter().any(|s| s == t) {
                stack.push(t.to_string());
                collect_patch_meta(components, gk, t, path, stack, found);
                stack.pop();
            }
        }
        path.pop();
    }
}

fn put_extensions(p: &mut Map<String, Value>, meta: &FieldMeta) {
    let strategy = match (meta.strategy, meta.retain_keys) {
        (PatchStrategy::Merge { key }, retain) => {
            p.insert("x-kubernetes-patch-merge-key".into(), key.into());
            Some(if retain { "merge,retainKeys" } else { "merge" })
        }
        (PatchStrategy::MergePrimitive, retain) => Some(if retain { "merge,retainKeys" } else { "merge" }),
        (PatchStrategy::Replace, true) => Some("retainKeys"),
        (PatchStrategy::Replace, false) => None,
    };
    if let Some(s) = strategy {
        p.insert("x-kubernetes-patch-strategy".into(), s.into());
    }
    match meta.list_type {
        ListType::Map(keys) => {
            p.insert("x-kubernetes-list-type".into(), "map".into());
            p.insert("x-kubernetes-list-map-keys".into(), keys.iter().map(|k| Value::from(k.name)).collect());
        }
        ListType::Set => {
            p.insert("x-kubernetes-list-type".into(), "set".into());
        }
        ListType::Atomic => {}
    }
    if meta.atomic_map {
        p.insert("x-kubernetes-map-type".into(), "atomic".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;
    use weft_api::resources::builtin_resources;

    static ALL: LazyLock<Components> = LazyLock::new(|| builtin_components(&builtin_resources()).components);

    #[test]
    fn every_builtin_resource_has_a_component_with_its_gvk() {
        for r in builtin_resources() {
            let (name, schema) = ALL
                .iter()
                .find(|(_, s)| s["x-kubernetes-group-version-kind"][0] == json!({"group": r.group, "kind": r.kind, "version": r.version}))
                .unwrap_or_else(|| panic!("no component for {}/{}", r.api_version(), r.kind));
            assert!(name.ends_with(&format!(".{}", r.kind)), "{name}");
            assert!(schema["properties"]["metadata"].is_object(), "{name} has metadata");
            assert!(ALL.contains_key(&format!("{name}List")));
        }
    }

    #[test]
    fn components_use_upstream_names_and_resolve_every_ref() {
        assert!(ALL.contains_key("io.k8s.api.core.v1.Service"));
        assert!(ALL.contains_key("io.k8s.api.apps.v1.Deployment"));
        assert!(ALL.contains_key(OBJECT_META));
        for (name, s) in ALL.iter() {
            let mut refs = Vec::new();
            collect_refs(s, &mut refs);
            for r in refs {
                assert!(ALL.contains_key(r), "{name} refers to missing {r}");
            }
        }
    }

    #[test]
    fn field_refs_with_descriptions_are_wrapped_in_all_of() {
        let spec = &ALL["io.k8s.api.core.v1.Service"]["properties"]["spec"];
        assert_eq!(spec["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.core.v1.ServiceSpec");
        assert!(spec["description"].as_str().unwrap().contains("behavior of a service"));
        assert!(spec.get("$ref").is_none());
    }

    #[test]
    fn metadata_is_not_required_on_kinds() {
        let svc = &ALL["io.k8s.api.core.v1.Service"];
        assert!(svc.get("required").is_none(), "{:?}", svc.get("required"));
        assert_eq!(ALL["io.k8s.api.core.v1.ServicePort"]["required"], json!(["port"]));
    }

    #[test]
    fn merge_keys_come_from_the_patch_metadata() {
        let containers = &ALL["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        let ports = &ALL["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        assert_eq!(ports["x-kubernetes-list-map-keys"], json!(["containerPort", "protocol"]));
        let svc_ports = &ALL["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
        assert_eq!(svc_ports["x-kubernetes-patch-merge-key"], "port");
        let volumes = &ALL["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        assert_eq!(ALL["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]["x-kubernetes-patch-strategy"], "retainKeys");
        assert_eq!(ALL[OBJECT_META]["properties"]["finalizers"]["x-kubernetes-list-type"], "set");
        assert!(ALL["io.k8s.api.core.v1.PodSpec"]["properties"]["tolerations"].get("x-kubernetes-patch-strategy").is_none());
    }

    #[test]
    fn closure_follows_refs_from_a_kind() {
        let names = closure(|n| ALL.get(n), ["io.k8s.api.core.v1.Service".to_string()]);
        let has = |n: &str| names.iter().any(|x| x == n);
        assert!(has("io.k8s.api.core.v1.ServicePort"));
        assert!(has(OBJECT_META));
        assert!(has("io.k8s.apimachinery.pkg.util.intstr.IntOrString"));
        assert!(!has("io.k8s.api.core.v1.PodSpec"));
    }
}
