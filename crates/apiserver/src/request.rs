//! What a request addresses: kube-apiserver's RequestInfo.

use http::Method;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `/api`, `/apis`, `/api/v1`, `/apis/apps`, `/apis/apps/v1`.
    Discovery { group: Option<String>, version: Option<String>, legacy: bool },
    Resource(ResourceRequest),
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix.
    pub watch_path: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

pub fn parse_path(path: &str) -> Target {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest, legacy) = match segs.as_slice() {
        ["api"] => return Target::Discovery { group: None, version: None, legacy: true },
        ["api", v] => return Target::Discovery { group: Some(String::new()), version: Some(v.to_string()), legacy: true },
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest, true),
        ["apis"] => return Target::Discovery { group: None, version: None, legacy: false },
        ["apis", g] => return Target::Discovery { group: Some(g.to_string()), version: None, legacy: false },
        ["apis", g, v] => return Target::Discovery { group: Some(g.to_string()), version: Some(v.to_string()), legacy: false },
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest, false),
        _ => return Target::Other,
    };
    let _ = legacy;
    let (watch_path, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let (namespace, resource, name, sub) = match rest {
        // The namespaces resource itself, with a subresource.
        ["namespaces", ns, sub @ ("status" | "finalize")] => (None, "namespaces", Some(ns.to_string()), Some(sub.to_string())),
        ["namespaces", ns, res, tail @ ..] => (Some(ns.to_string()), *res, tail.first().map(|s| s.to_string()), tail.get(1).map(|s| s.to_string())),
        [res, tail @ ..] => (None, *res, tail.first().map(|s| s.to_string()), tail.get(1).map(|s| s.to_string())),
        [] => return Target::Other,
    };
    Target::Resource(ResourceRequest {
        group,
        version,
        resource: resource.to_string(),
        namespace: namespace.map(|n| decode(&n)),
        name: name.map(|n| decode(&n)),
        subresource: sub,
        watch_path,
    })
}

pub fn verb(method: &Method, r: &ResourceRequest, query: &HashMap<String, String>) -> Option<Verb> {
    let watch_param = query.get("watch").map(|v| v == "true" || v == "1").unwrap_or(false);
    Some(match *method {
        Method::GET | Method::HEAD => {
            if r.watch_path || watch_param {
                Verb::Watch
            } else if r.name.is_some() {
                Verb::Get
            } else {
                Verb::List
            }
        }
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE => {
            if r.name.is_some() {
                Verb::Delete
            } else {
                Verb::DeleteCollection
            }
        }
        _ => return None,
    })
}

pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_and_cluster_paths() {
        let Target::Resource(r) = parse_path("/api/v1/namespaces/default/pods/web/status") else { panic!() };
        assert_eq!((r.namespace.as_deref(), r.resource.as_str(), r.name.as_deref(), r.subresource.as_deref()), (Some("default"), "pods", Some("web"), Some("status")));
        let Target::Resource(r) = parse_path("/api/v1/namespaces/kube-system") else { panic!() };
        assert_eq!((r.namespace, r.resource.as_str(), r.name.as_deref()), (None, "namespaces", Some("kube-system")));
        let Target::Resource(r) = parse_path("/api/v1/namespaces/gone/finalize") else { panic!() };
        assert_eq!((r.resource.as_str(), r.name.as_deref(), r.subresource.as_deref()), ("namespaces", Some("gone"), Some("finalize")));
        let Target::Resource(r) = parse_path("/apis/apps/v1/watch/namespaces/a/deployments") else { panic!() };
        assert!(r.watch_path);
        assert_eq!(r.group, "apps");
        assert_eq!(parse_path("/apis/apps"), Target::Discovery { group: Some("apps".into()), version: None, legacy: false });
    }
}
