//! A container's environment, as the kubelet builds it: the service variables of the
//! pod's namespace (docker-link forms too), then the container's own `env` with
//! `valueFrom` and `$(VAR)` expansion. Pure: the caller fetches what it needs.

use k8s_openapi::api::core::v1::{Container, Pod, Service};
use std::collections::BTreeMap;

/// What `valueFrom` may read besides the pod: config maps and secrets by name.
#[derive(Default)]
pub struct Sources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// `BACKEND_SERVICE_SERVICE_HOST` and friends for each service with a cluster IP.
/// `services` are the pod's namespace's plus `default/kubernetes`, as upstream.
pub fn service_env(services: &[Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut sorted: Vec<&Service> = services.iter().collect();
    sorted.sort_by_key(|s| s.metadata.name.clone());
    for s in sorted {
        let Some(spec) = &s.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        let name = env_name(s.metadata.name.as_deref().unwrap_or_default());
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
        out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((format!("{name}_SERVICE_PORT_{}", env_name(pn)), p.port.to_string()));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
        out.push((format!("{name}_PORT"), format!("{}://{host}:{}", proto(first).to_lowercase(), first.port)));
        for p in &ports {
            let pr = proto(p);
            let prefix = format!("{name}_PORT_{}_{}", p.port, pr.to_uppercase());
            out.push((prefix.clone(), format!("{}://{host}:{}", pr.to_lowercase(), p.port)));
            out.push((format!("{prefix}_PROTO"), pr.to_lowercase()));
            out.push((format!("{prefix}_PORT"), p.port.to_string()));
            out.push((format!("{prefix}_ADDR"), ip.to_string()));
        }
    }
    out
}

fn env_name(s: &str) -> String {
    s.to_uppercase().replace('-', "_")
}

/// The final environment: base, service variables (unless `enableServiceLinks: false`,
/// where only the `kubernetes` service's are kept), then the container's own.
pub fn build(pod: &Pod, c: &Container, services: &[Service], sources: &Sources, base: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    let services: Vec<Service> = services
        .iter()
        .filter(|s| links || (s.metadata.name.as_deref() == Some("kubernetes") && s.metadata.namespace.as_deref() == Some("default")))
        .cloned()
        .collect();
    let mut env: Vec<(String, String)> = base.to_vec();
    env.extend(service_env(&services));
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (map, optional, what) = if let Some(r) = &from.config_map_ref {
            (sources.config_maps.get(&r.name), r.optional.unwrap_or(false), format!("configMap {:?}", r.name))
        } else if let Some(r) = &from.secret_ref {
            (sources.secrets.get(&r.name), r.optional.unwrap_or(false), format!("secret {:?}", r.name))
        } else {
            continue;
        };
        match map {
            Some(m) => env.extend(m.iter().map(|(k, v)| (format!("{prefix}{k}"), v.clone()))),
            None if optional => {}
            None => return Err(format!("envFrom: {what} not found")),
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => expand(e.value.as_deref().unwrap_or_default(), &env),
            Some(from) => {
                if let Some(f) = &from.field_ref {
                    field(pod, &f.field_path).ok_or_else(|| format!("env {:?}: unsupported fieldRef {:?}", e.name, f.field_path))?
                } else if let Some(r) = &from.config_map_key_ref {
                    match sources.config_maps.get(&r.name).and_then(|m| m.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if r.optional.unwrap_or(false) => continue,
                        None => return Err(format!("env {:?}: key {:?} of configMap {:?} not found", e.name, r.key, r.name)),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    match sources.secrets.get(&r.name).and_then(|m| m.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if r.optional.unwrap_or(false) => continue,
                        None => return Err(format!("env {:?}: key {:?} of secret {:?} not found", e.name, r.key, r.name)),
                    }
                } else if let Some(r) = &from.resource_field_ref {
                    resource(c, &r.resource).ok_or_else(|| format!("env {:?}: unsupported resourceFieldRef {:?}", e.name, r.resource))?
                } else {
                    continue;
                }
            }
        };
        env.retain(|(k, _)| k != &e.name);
        env.push((e.name.clone(), value));
    }
    Ok(env)
}

/// `$(VAR)` expansion as upstream: known variables are replaced, `$$` escapes, and
/// unknown references stay as written.
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(j) => {
                    let name = &inner[..j];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[j + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The downward API's fields.
pub fn field(pod: &Pod, path: &str) -> Option<String> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let bracket = |p: &str, prefix: &str| p.strip_prefix(prefix).and_then(|r| r.strip_suffix("']")).map(str::to_string);
    Some(match path {
        "metadata.name" => m.name.clone()?,
        "metadata.namespace" => m.namespace.clone()?,
        "metadata.uid" => m.uid.clone()?,
        "spec.nodeName" => spec?.node_name.clone()?,
        "spec.serviceAccountName" => spec?.service_account_name.clone().unwrap_or_else(|| "default".into()),
        "status.hostIP" => status?.host_ip.clone().unwrap_or_default(),
        "status.hostIPs" => status?.host_ips.iter().flatten().map(|i| i.ip.clone()).collect::<Vec<_>>().join(","),
        "status.podIP" => status?.pod_ip.clone().unwrap_or_default(),
        "status.podIPs" => status?.pod_ips.iter().flatten().map(|i| i.ip.clone()).collect::<Vec<_>>().join(","),
        p if p.starts_with("metadata.labels['") => m.labels.as_ref()?.get(&bracket(p, "metadata.labels['")?).cloned().unwrap_or_default(),
        p if p.starts_with("metadata.annotations['") => m.annotations.as_ref()?.get(&bracket(p, "metadata.annotations['")?).cloned().unwrap_or_default(),
        _ => return None,
    })
}

pub(crate) fn resource(c: &Container, r: &str) -> Option<String> {
    let res = c.resources.as_ref();
    let get = |limits: bool, k: &str| {
        let m = if limits { res.and_then(|r| r.limits.as_ref()) } else { res.and_then(|r| r.requests.as_ref()) };
        m.and_then(|m| m.get(k)).map(|q| q.0.clone())
    };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string();
    Some(match r {
        "limits.cpu" => get(true, "cpu").unwrap_or(cpus),
        "requests.cpu" => get(false, "cpu").unwrap_or_else(|| "0".into()),
        "limits.memory" => get(true, "memory").unwrap_or_else(|| "0".into()),
        "requests.memory" => get(false, "memory").unwrap_or_else(|| "0".into()),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" => "0".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"clusterIP": ip, "ports": ports}})).unwrap()
    }

    #[test]
    fn service_variables_have_the_kubelet_names_and_docker_link_forms() {
        let env = service_env(&[svc("backend-service", "10.96.0.20", json!([{"name": "http", "port": 80, "protocol": "TCP"}]))]);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("BACKEND_SERVICE_SERVICE_HOST"), Some("10.96.0.20"));
        assert_eq!(get("BACKEND_SERVICE_SERVICE_PORT"), Some("80"));
        assert_eq!(get("BACKEND_SERVICE_SERVICE_PORT_HTTP"), Some("80"));
        assert_eq!(get("BACKEND_SERVICE_PORT"), Some("tcp://10.96.0.20:80"));
        assert_eq!(get("BACKEND_SERVICE_PORT_80_TCP"), Some("tcp://10.96.0.20:80"));
        assert_eq!(get("BACKEND_SERVICE_PORT_80_TCP_PROTO"), Some("tcp"));
        assert_eq!(get("BACKEND_SERVICE_PORT_80_TCP_PORT"), Some("80"));
        assert_eq!(get("BACKEND_SERVICE_PORT_80_TCP_ADDR"), Some("10.96.0.20"));
    }

    #[test]
    fn headless_services_have_no_variables() {
        assert!(service_env(&[svc("h", "None", json!([{"port": 80}]))]).is_empty());
    }

    #[test]
    fn field_refs_and_expansion() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "env": [
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "URL", "value": "http://$(POD_IP):80/$(MISSING)/$$(POD_IP)"},
            ]}]},
            "status": {"podIP": "10.244.1.5"},
        }))
        .unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        let env = build(&pod, &c, &[], &Sources::default(), &[]).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("POD_IP"), "10.244.1.5");
        assert_eq!(get("APP"), "web");
        assert_eq!(get("URL"), "http://10.244.1.5:80/$(MISSING)/$(POD_IP)");
    }

    #[test]
    fn service_links_off_keeps_only_the_kubernetes_service() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"enableServiceLinks": false, "containers": [{"name": "c"}]}})).unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        let svcs = [svc("kubernetes", "10.96.0.1", json!([{"name": "https", "port": 443}])), svc("web", "10.96.0.9", json!([{"port": 80}]))];
        let env = build(&pod, &c, &svcs, &Sources::default(), &[]).unwrap();
        assert!(env.iter().any(|(k, _)| k == "KUBERNETES_SERVICE_HOST"));
        assert!(!env.iter().any(|(k, _)| k.starts_with("WEB_")));
    }

    #[test]
    fn a_missing_config_map_key_is_an_error_unless_optional() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}]}}))
        .unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        let e = build(&pod, &c, &[], &Sources::default(), &[]).unwrap_err();
        assert!(e.contains("configMap \"cm\""), "{e}");
    }
}
