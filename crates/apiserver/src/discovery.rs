//! Discovery: `/api`, `/apis`, and each group-version's resource list (the legacy
//! form, which every client falls back to).

use crate::api::Api;
use crate::http::{error_response, json_response, Body};
use http::Response;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use weft_api::ApiError;

/// The Kubernetes version weft's API corresponds to.
pub const KUBE_VERSION: (&str, &str) = ("1", "33");

pub fn version() -> Value {
    json!({
        "major": KUBE_VERSION.0,
        "minor": KUBE_VERSION.1,
        "gitVersion": format!("v{}.{}.0-weft.{}", KUBE_VERSION.0, KUBE_VERSION.1, env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// Group → versions (preferred first), in discovery order.
fn groups(api: &Api) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for s in api.registry.all() {
        match out.iter_mut().find(|(g, _)| *g == s.info.group) {
            Some((_, vs)) => {
                if !vs.contains(&s.info.version) {
                    vs.push(s.info.version.clone());
                }
            }
            None => out.push((s.info.group.clone(), vec![s.info.version.clone()])),
        }
    }
    out
}

fn group_json(api: &Api, name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    let _ = api;
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": gv(&versions[0]),
    })
}

pub fn serve(api: &Api, group: Option<&str>, version: Option<&str>, legacy: bool) -> Response<Body> {
    let not_found = || error_response(&ApiError::new(404, "NotFound", "the server could not find the requested resource"));
    match (legacy, group, version) {
        (true, None, None) => json_response(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": api.settings.public_address}]}),
        ),
        (false, None, None) => {
            let gs: Vec<Value> = groups(api).iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_json(api, g, vs)).collect();
            json_response(200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs}))
        }
        (false, Some(g), None) => match groups(api).into_iter().find(|(name, _)| name == g && !g.is_empty()) {
            Some((name, vs)) => {
                let mut v = group_json(api, &name, &vs);
                v["kind"] = json!("APIGroup");
                v["apiVersion"] = json!("v1");
                json_response(200, &v)
            }
            None => not_found(),
        },
        (_, Some(g), Some(v)) => {
            let served: Vec<_> = api.registry.all().into_iter().filter(|s| s.info.group == g && s.info.version == v).collect();
            if served.is_empty() {
                return not_found();
            }
            let mut resources = Vec::new();
            for s in &served {
                let i = &s.info;
                let mut r = json!({
                    "name": i.plural,
                    "singularName": i.singular,
                    "namespaced": i.namespaced,
                    "kind": i.kind,
                    "verbs": i.verbs(),
                });
                if !i.short_names.is_empty() {
                    r["shortNames"] = json!(i.short_names);
                }
                if !i.categories.is_empty() {
                    r["categories"] = json!(i.categories);
                }
                resources.push(r);
                let mut subs: BTreeMap<&str, (&str, Vec<&str>, Option<(&str, &str)>)> = BTreeMap::new();
                if i.has_status {
                    subs.insert("status", (i.kind.as_str(), vec!["get", "patch", "update"], None));
                }
                if i.has_scale {
                    subs.insert("scale", ("Scale", vec!["get", "patch", "update"], Some(("autoscaling", "v1"))));
                }
                if g.is_empty() && i.plural == "namespaces" {
                    subs.insert("finalize", ("Namespace", vec!["update"], None));
                }
                if g.is_empty() && i.plural == "pods" {
                    subs.insert("binding", ("Binding", vec!["create"], None));
                    // Streamed from the pod's node (pod_streams).
                    subs.insert("log", ("Pod", vec!["get"], None));
                    subs.insert("exec", ("PodExecOptions", vec!["create", "get"], None));
                    subs.insert("attach", ("PodAttachOptions", vec!["create", "get"], None));
                    subs.insert("portforward", ("PodPortForwardOptions", vec!["create", "get"], None));
                }
                for (sub, (kind, verbs, gv)) in subs {
                    let mut r = json!({"name": format!("{}/{sub}", i.plural), "singularName": "", "namespaced": i.namespaced, "kind": kind, "verbs": verbs});
                    if let Some((gg, vv)) = gv {
                        r["group"] = json!(gg);
                        r["version"] = json!(vv);
                    }
                    resources.push(r);
                }
            }
            let gv = if g.is_empty() { v.to_string() } else { format!("{g}/{v}") };
            json_response(200, &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
        }
        _ => not_found(),
    }
}
