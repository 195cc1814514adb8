//! API objects to zone entries: only what answers need. Pure.

use crate::zone::{Endpoint, Kind, Port, Service, Slice};
use k8s_openapi::api::core::v1::{Pod, Service as K8sService, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::net::IpAddr;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

fn port(name: Option<&String>, protocol: Option<&String>, port: i32) -> Option<Port> {
    Some(Port {
        name: name.map(|n| n.to_ascii_lowercase()).unwrap_or_default().into(),
        protocol: protocol.map(|p| p.to_ascii_lowercase()).unwrap_or_else(|| "tcp".into()).into(),
        port: u16::try_from(port).ok().filter(|p| *p > 0)?,
    })
}

/// A Service's record data; `None` without a spec.
pub fn service(svc: &K8sService) -> Option<Service> {
    let spec = svc.spec.as_ref()?;
    let ports = spec.ports.iter().flatten().filter_map(|p: &ServicePort| port(p.name.as_ref(), p.protocol.as_ref(), p.port)).collect();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.as_deref().unwrap_or_default().trim().trim_end_matches('.').to_ascii_lowercase();
        Kind::External(target.into())
    } else if spec.cluster_ip.as_deref() == Some("None") {
        Kind::Headless
    } else {
        let mut ips: Vec<IpAddr> = spec.cluster_ips.iter().flatten().filter_map(|s| s.parse().ok()).collect();
        if ips.is_empty() {
            ips.extend(spec.cluster_ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()));
        }
        Kind::ClusterIp(ips)
    };
    Some(Service { kind, ports })
}

/// An EndpointSlice's service name and endpoints; `None` when it names no service or
/// holds FQDN addresses.
pub fn slice(s: &EndpointSlice) -> Option<(String, Slice)> {
    let svc = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?.clone();
    if s.address_type == "FQDN" {
        return None;
    }
    let ports = s.ports.iter().flatten().filter_map(|p| port(p.name.as_ref(), p.protocol.as_ref(), p.port?)).collect();
    let mut endpoints = vec![];
    for e in &s.endpoints {
        let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
        let hostname = e.hostname.as_deref().filter(|h| !h.is_empty()).map(|h| h.to_ascii_lowercase().into_boxed_str());
        for a in &e.addresses {
            if let Ok(ip) = a.parse() {
                endpoints.push(Endpoint { ip, hostname: hostname.clone(), ready });
            }
        }
    }
    Some((svc, Slice { ports, endpoints }))
}

/// A pod's addresses; none once it has finished (its address may be reused).
pub fn pod_ips(p: &Pod) -> Vec<IpAddr> {
    let Some(st) = p.status.as_ref() else { return vec![] };
    if matches!(st.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
        return vec![];
    }
    let mut ips: Vec<IpAddr> = st.pod_ips.iter().flatten().filter_map(|i| i.ip.parse().ok()).collect();
    if ips.is_empty() {
        ips.extend(st.pod_ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()));
    }
    ips
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn services_map_to_their_kind() {
        let s: K8sService = serde_json::from_value(json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "None", "ports": [{"name": "HTTP", "port": 80}]}})).unwrap();
        let s = service(&s).unwrap();
        assert_eq!(s.kind, Kind::Headless);
        assert_eq!(s.ports, vec![Port { name: "http".into(), protocol: "tcp".into(), port: 80 }]);
        let s: K8sService = serde_json::from_value(json!({"metadata": {"name": "a"}, "spec": {"type": "ExternalName", "externalName": "Ext.Example."}})).unwrap();
        assert_eq!(service(&s).unwrap().kind, Kind::External("ext.example".into()));
        let s: K8sService = serde_json::from_value(json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "10.0.0.3", "clusterIPs": ["10.0.0.3", "10::3"]}})).unwrap();
        assert_eq!(service(&s).unwrap().kind, Kind::ClusterIp(vec!["10.0.0.3".parse().unwrap(), "10::3".parse().unwrap()]));
    }

    #[test]
    fn slices_keep_readiness_and_hostnames() {
        let s: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "h-1", "labels": {"kubernetes.io/service-name": "h"}}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["172.0.0.4"], "hostname": "dup-name"}, {"addresses": ["172.0.0.9"], "conditions": {"ready": false}}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "no-port"}]
        }))
        .unwrap();
        let (svc, sl) = slice(&s).unwrap();
        assert_eq!(svc, "h");
        assert_eq!(sl.ports.len(), 1);
        assert_eq!(sl.endpoints[0].hostname.as_deref(), Some("dup-name"));
        assert!(sl.endpoints[0].ready && !sl.endpoints[1].ready);
        let orphan: EndpointSlice = serde_json::from_value(json!({"metadata": {"name": "x"}, "addressType": "IPv4", "endpoints": []})).unwrap();
        assert!(slice(&orphan).is_none());
    }

    #[test]
    fn finished_pods_have_no_addresses() {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "podIP": "10.240.0.1", "podIPs": [{"ip": "10.240.0.1"}, {"ip": "fd00::1"}]}})).unwrap();
        assert_eq!(pod_ips(&p).len(), 2);
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"phase": "Succeeded", "podIP": "10.240.0.1"}})).unwrap();
        assert!(pod_ips(&p).is_empty());
    }
}
