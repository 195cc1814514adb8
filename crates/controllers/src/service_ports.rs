//! How a Service's selected pods become endpoints, shared by the Endpoints and
//! EndpointSlice controllers: which pods count, which IP family, which port number
//! a (possibly named) targetPort resolves to on each pod, and the hostname rule.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::pod_state;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    /// The EndpointSlice `addressType`.
    pub fn address_type(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// Whether the endpoint controllers manage this Service's endpoints at all.
/// Selector-less services get user-managed endpoints; ExternalName services none;
/// `default/kubernetes` belongs to the API server.
pub fn has_managed_endpoints(svc: &Service) -> bool {
    let Some(spec) = svc.spec.as_ref() else { return false };
    let is_apiserver = svc.metadata.namespace.as_deref() == Some("default") && svc.metadata.name.as_deref() == Some("kubernetes");
    spec.selector.is_some() && spec.type_.as_deref() != Some("ExternalName") && !is_apiserver
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publishes_not_ready(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false)
}

/// A pod is an endpoint once it has an IP and until it finishes; a terminating
/// pod only where the caller keeps terminating endpoints.
pub fn should_be_endpoint(pod: &Pod, include_terminating: bool) -> bool {
    !pod_state::is_terminal(pod)
        && !pod_state::ips(pod).is_empty()
        && (include_terminating || !pod_state::is_terminating(pod))
}

/// A pod's hostname is published for the Service named by its subdomain.
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let spec = pod.spec.as_ref();
    let hostname = spec.and_then(|s| s.hostname.as_deref()).unwrap_or("");
    !hostname.is_empty()
        && spec.and_then(|s| s.subdomain.as_deref()) == svc.metadata.name.as_deref()
        && pod.metadata.namespace == svc.metadata.namespace
}

/// The address families the Service's endpoints are published in: its
/// `ipFamilies`; else the family of its clusterIP; else (headless, not yet
/// defaulted) both, as upstream, so no traffic is cut while fields settle.
pub fn families(svc: &Service) -> Vec<Family> {
    let spec = svc.spec.as_ref();
    let mut out: Vec<Family> = spec
        .and_then(|s| s.ip_families.as_ref())
        .map(|f| {
            f.iter()
                .filter_map(|f| match f.as_str() {
                    "IPv4" => Some(Family::V4),
                    "IPv6" => Some(Family::V6),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    out.dedup();
    if !out.is_empty() {
        return out;
    }
    match spec.and_then(|s| s.cluster_ip.as_deref()).filter(|ip| !ip.is_empty() && *ip != "None") {
        Some(ip) => vec![if ip.contains(':') { Family::V6 } else { Family::V4 }],
        None => vec![Family::V4, Family::V6],
    }
}

/// The family of the legacy (single-stack) Endpoints object: the primary one.
pub fn primary_family(svc: &Service, pod: &Pod) -> Family {
    let spec = svc.spec.as_ref();
    if let Some(first) = spec.and_then(|s| s.ip_families.as_ref()).and_then(|f| f.first()) {
        return if first == "IPv6" { Family::V6 } else { Family::V4 };
    }
    match spec.and_then(|s| s.cluster_ip.as_deref()).filter(|ip| !ip.is_empty() && *ip != "None") {
        Some(ip) => {
            if ip.contains(':') { Family::V6 } else { Family::V4 }
        }
        None => pod_state::ips(pod).first().map(Family::of).unwrap_or(Family::V4),
    }
}

pub fn ip_of_family(pod: &Pod, family: Family) -> Option<IpAddr> {
    pod_state::ips(pod).into_iter().find(|ip| Family::of(ip) == family)
}

/// The port number `sp` reaches on `pod`: a number as is; a name resolves to the
/// pod's container port of that name and protocol (sidecar init containers
/// included), or to nothing, in which case the pod does not serve that port.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(0)) => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let protocol = sp.protocol.as_deref().unwrap_or("TCP");
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers.iter().chain(sidecars).flat_map(|c| c.ports.iter().flatten()).find_map(|p| {
                (p.name.as_deref() == Some(name.as_str()) && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                    .then_some(p.container_port)
            })
        }
    }
}

pub fn service_ports(svc: &Service) -> &[ServicePort] {
    svc.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_state::fixtures::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, ServiceSpec};

    pub fn named_port_pod(name: &str, port_name: &str, number: i32, protocol: &str) -> Pod {
        let mut p = pod(name, &[]);
        p.spec.as_mut().unwrap().containers = vec![Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort {
                name: Some(port_name.into()),
                container_port: number,
                protocol: Some(protocol.into()),
                ..Default::default()
            }]),
            ..Default::default()
        }];
        p
    }

    fn sp(port: i32, target: Option<IntOrString>, protocol: &str) -> ServicePort {
        ServicePort { port, target_port: target, protocol: Some(protocol.into()), ..Default::default() }
    }

    #[test]
    fn target_port_resolution_cases() {
        let p = named_port_pod("a", "http", 8080, "TCP");
        let cases = [
            ("number", sp(80, Some(IntOrString::Int(9090)), "TCP"), Some(9090)),
            ("unset means the service port", sp(80, None, "TCP"), Some(80)),
            ("name resolves per pod", sp(80, Some(IntOrString::String("http".into())), "TCP"), Some(8080)),
            ("name with other protocol does not", sp(80, Some(IntOrString::String("http".into())), "UDP"), None),
            ("unknown name does not", sp(80, Some(IntOrString::String("grpc".into())), "TCP"), None),
        ];
        for (name, port, want) in cases {
            assert_eq!(find_port(&p, &port), want, "{name}");
        }
    }

    #[test]
    fn families_come_from_ip_families_then_cluster_ip_then_both() {
        let svc = |fams: Option<Vec<&str>>, cip: Option<&str>| Service {
            spec: Some(ServiceSpec {
                ip_families: fams.map(|f| f.into_iter().map(String::from).collect()),
                cluster_ip: cip.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(families(&svc(Some(vec!["IPv6", "IPv4"]), None)), vec![Family::V6, Family::V4]);
        assert_eq!(families(&svc(None, Some("fd00::1"))), vec![Family::V6]);
        assert_eq!(families(&svc(None, Some("10.96.0.1"))), vec![Family::V4]);
        assert_eq!(families(&svc(None, Some("None"))), vec![Family::V4, Family::V6]);
    }

    #[test]
    fn only_pods_with_an_ip_that_have_not_finished_are_endpoints() {
        assert!(!should_be_endpoint(&pod("a", &[]), true));
        let running = with_ips(pod("a", &[]), &["10.0.0.1"]);
        assert!(should_be_endpoint(&running, false));
        assert!(should_be_endpoint(&terminating(running.clone()), true));
        assert!(!should_be_endpoint(&terminating(running.clone()), false));
        let mut done = running;
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!should_be_endpoint(&done, true));
    }
}
