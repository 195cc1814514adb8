//! OpenAPI v3 documents: one per group-version (`/openapi/v3/apis/apps/v1`), each
//! self-contained: the group-version's paths plus every component they reach.

use super::custom;
use super::paths::add_resource;
use super::schemas::{closure, Builtins, Components, META_TYPES, SCALE};
use crate::registry::Served;
use serde_json::{json, Map, Value};

/// `api/v1` or `apis/apps/v1`: the document's path under `/openapi/v3/`.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The served resources grouped by group-version path, in registry order.
pub fn by_group_version(all: Vec<Served>) -> Vec<(String, Vec<Served>)> {
    let mut out: Vec<(String, Vec<Served>)> = Vec::new();
    for s in all {
        let p = gv_path(&s.info.group, &s.info.version);
        match out.iter_mut().find(|(gv, _)| *gv == p) {
            Some((_, v)) => v.push(s),
            None => out.push((p, vec![s])),
        }
    }
    out
}

/// The document of one group-version, for the resources in `served` (all of that
/// group-version). Built-ins without a schema in [`Builtins`] are left out.
pub fn document(builtins: &Builtins, served: &[Served], kube_version: &str) -> Value {
    let mut own = Components::new();
    let mut roots: Vec<String> = META_TYPES.iter().map(|s| s.to_string()).collect();
    let mut paths = Map::new();
    for s in served {
        let info = &s.info;
        let name = if s.custom {
            for (n, v) in custom::components(s) {
                own.insert(n, v);
            }
            custom::component_name(&info.group, &info.version, &info.kind)
        } else {
            match builtins.kind_name(&info.group, &info.version, &info.kind) {
                Some(n) => n.to_string(),
                None => continue,
            }
        };
        roots.push(format!("{name}List"));
        roots.push(name.clone());
        if info.has_scale {
            roots.push(SCALE.to_string());
        }
        add_resource(&mut paths, info, &name, s.custom);
    }
    let lookup = |n: &str| own.get(n).or_else(|| builtins.components.get(n));
    let mut schemas = Map::new();
    for name in closure(lookup, roots) {
        if let Some(s) = lookup(&name) {
            schemas.insert(name, s.clone());
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": kube_version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{served_from_crd, Registry};
    use crate::openapi::custom::crontab_crd;
    use crate::openapi::schemas::builtin_components;
    use std::sync::LazyLock;
    use weft_api::resources::builtin_resources;

    static BUILTINS: LazyLock<Builtins> = LazyLock::new(|| builtin_components(&builtin_resources()));

    fn doc(gv: &str, registry: &Registry) -> Value {
        let (_, served) = by_group_version(registry.all()).into_iter().find(|(p, _)| p == gv).unwrap();
        document(&BUILTINS, &served, "v1.33.0")
    }

    #[test]
    fn core_document_has_service_with_gvk_and_its_references() {
        let d = doc("api/v1", &Registry::new());
        let schemas = &d["components"]["schemas"];
        assert_eq!(schemas["io.k8s.api.core.v1.Service"]["x-kubernetes-group-version-kind"], json!([{"group": "", "kind": "Service", "version": "v1"}]));
        assert!(schemas["io.k8s.api.core.v1.ServiceSpec"].is_object());
        assert!(schemas["io.k8s.api.core.v1.PodSpec"].is_object());
        assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"].is_object());
        assert!(schemas.get("io.k8s.api.apps.v1.Deployment").is_none());
        assert!(d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"].is_object());
    }

    #[test]
    fn apps_document_has_deployment_scale_and_no_core_kinds() {
        let d = doc("apis/apps/v1", &Registry::new());
        let schemas = &d["components"]["schemas"];
        assert!(schemas["io.k8s.api.apps.v1.Deployment"].is_object());
        assert!(schemas["io.k8s.api.autoscaling.v1.Scale"].is_object());
        assert!(schemas["io.k8s.api.core.v1.PodTemplateSpec"].is_object());
        assert!(schemas.get("io.k8s.api.core.v1.Service").is_none());
    }

    #[test]
    fn crd_group_gets_its_own_document() {
        let registry = Registry::new();
        registry.set_crds(&[crontab_crd()]);
        let d = doc("apis/stable.example.com/v1", &registry);
        let schemas = &d["components"]["schemas"];
        assert!(schemas["com.example.stable.v1.CronTab"].is_object());
        assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
        let patch = &d["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "CronTab");
        assert_eq!(served_from_crd(&crontab_crd()).len(), 1);
    }
}
