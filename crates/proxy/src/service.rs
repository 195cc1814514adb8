//! A Service as the proxy sees it: one [`ServicePort`] per (port, IP family).

use k8s_openapi::api::core::v1::Service;
use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: Option<&str>) -> Option<Proto> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// `namespace/name:port` (the port's name, empty for an unnamed single port), as upstream
/// names a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub port: String,
    pub proto: Proto,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        write!(f, "/{}", self.proto.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: ServicePortName,
    pub family: Family,
    pub cluster_ip: IpAddr,
    pub port: u16,
    /// 0 when the service has none.
    pub node_port: u16,
    pub external_ips: Vec<IpAddr>,
    pub load_balancer_ips: Vec<IpAddr>,
    pub source_ranges: Vec<ipnet::IpNet>,
    /// `externalTrafficPolicy: Local` (only for NodePort and LoadBalancer services).
    pub external_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `sessionAffinity: ClientIP` timeout in seconds.
    pub affinity_seconds: Option<u32>,
    /// `healthCheckNodePort` (externalTrafficPolicy Local on a LoadBalancer).
    pub health_check_node_port: u16,
}

impl ServicePort {
    /// NodePort, external IPs or load-balancer addresses: traffic that may come from
    /// outside the cluster.
    pub fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.external_ips.is_empty() || !self.load_balancer_ips.is_empty()
    }
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_local || (self.externally_accessible() && !self.external_local)
    }
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_local || (self.externally_accessible() && self.external_local)
    }
}

/// The ports the proxy handles for a service, per family. ExternalName and headless
/// services have none: DNS answers for them.
pub fn service_ports(svc: &Service) -> Vec<ServicePort> {
    let Some(spec) = &svc.spec else { return vec![] };
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    if ty == "ExternalName" {
        return vec![];
    }
    let ips: Vec<IpAddr> = match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.iter().filter_map(|s| s.parse().ok()).collect(),
        (_, Some(ip)) => ip.parse().ok().into_iter().collect(),
        _ => vec![],
    };
    if ips.is_empty() {
        return vec![]; // headless ("None") or not yet allocated
    }
    let namespace = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let external_ips: Vec<IpAddr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|s| s.parse().ok())
        .collect();
    let lb_ips: Vec<IpAddr> = if ty == "LoadBalancer" {
        svc.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
            // ipMode Proxy means the load balancer itself delivers to the node: no capture.
            .filter(|i| i.ip_mode.as_deref() != Some("Proxy"))
            .filter_map(|i| i.ip.as_deref().and_then(|s| s.parse().ok()))
            .collect()
    } else {
        vec![]
    };
    let source_ranges: Vec<ipnet::IpNet> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let externally = ty == "NodePort" || ty == "LoadBalancer";
    let external_local = externally && spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .map(|t| t.clamp(1, 86400) as u32)
            .unwrap_or(10800)
    });
    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let Some(proto) = Proto::parse(p.protocol.as_deref()) else {
            continue;
        };
        for ip in &ips {
            let family = Family::of(ip);
            out.push(ServicePort {
                name: ServicePortName {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    port: p.name.clone().unwrap_or_default(),
                    proto,
                },
                family,
                cluster_ip: *ip,
                port: p.port as u16,
                node_port: if externally {
                    p.node_port.unwrap_or(0) as u16
                } else {
                    0
                },
                external_ips: external_ips
                    .iter()
                    .filter(|a| Family::of(a) == family)
                    .copied()
                    .collect(),
                load_balancer_ips: lb_ips
                    .iter()
                    .filter(|a| Family::of(a) == family)
                    .copied()
                    .collect(),
                source_ranges: source_ranges
                    .iter()
                    .filter(|n| Family::of(&n.addr()) == family)
                    .copied()
                    .collect(),
                external_local,
                internal_local,
                affinity_seconds,
                health_check_node_port: spec.health_check_node_port.unwrap_or(0) as u16,
            });
        }
    }
    out
}

/// The service port the unit tests start from: `ns/web:http/tcp` at 10.96.0.20:80,
/// ClusterIP only, no affinity, Cluster traffic policies.
#[cfg(test)]
pub(crate) fn example_port() -> ServicePort {
    ServicePort {
        name: ServicePortName { namespace: "ns".into(), name: "web".into(), port: "http".into(), proto: Proto::Tcp },
        family: Family::V4,
        cluster_ip: "10.96.0.20".parse().unwrap(),
        port: 80,
        node_port: 0,
        external_ips: vec![],
        load_balancer_ips: vec![],
        source_ranges: vec![],
        external_local: false,
        internal_local: false,
        affinity_seconds: None,
        health_check_node_port: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_dual_stack_service_with_two_ports_gives_four_service_ports() {
        let s = svc(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "web"},
            "spec": {"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5", "fd00:10:96::5"], "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]}
        }));
        let ports = service_ports(&s);
        assert_eq!(ports.len(), 4);
        assert_eq!(ports[0].name.to_string(), "ns/web:http/tcp");
        assert_eq!(ports[1].family, Family::V6);
        assert!(ports
            .iter()
            .all(|p| p.node_port == 0 && !p.externally_accessible()));
    }

    #[test]
    fn headless_and_external_name_services_have_no_proxy_ports() {
        let headless = svc(
            serde_json::json!({"metadata": {"namespace": "ns", "name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
        );
        let ext = svc(
            serde_json::json!({"metadata": {"namespace": "ns", "name": "e"}, "spec": {"type": "ExternalName", "externalName": "example.test"}}),
        );
        assert!(service_ports(&headless).is_empty());
        assert!(service_ports(&ext).is_empty());
    }

    #[test]
    fn load_balancer_fields_and_policies_are_read() {
        let s = svc(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "lb"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.9", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
                     "sessionAffinity": "ClientIP", "externalIPs": ["192.0.2.7"], "loadBalancerSourceRanges": ["203.0.113.0/24"],
                     "ports": [{"port": 443, "nodePort": 31443}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.4"}, {"ip": "198.51.100.5", "ipMode": "Proxy"}]}}
        }));
        let p = &service_ports(&s)[0];
        assert_eq!(p.node_port, 31443);
        assert_eq!(
            p.load_balancer_ips,
            vec!["198.51.100.4".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(p.external_ips.len(), 1);
        assert!(p.external_local && !p.internal_local);
        assert_eq!(p.affinity_seconds, Some(10800));
        assert_eq!(p.health_check_node_port, 32000);
        assert!(p.uses_local_endpoints() && p.uses_cluster_endpoints());
    }

    #[test]
    fn external_traffic_policy_means_nothing_for_a_cluster_ip_service() {
        let s = svc(
            serde_json::json!({"metadata": {"namespace": "ns", "name": "c"}, "spec": {"clusterIP": "10.96.0.3", "externalTrafficPolicy": "Local", "ports": [{"port": 80, "nodePort": 30080}]}}),
        );
        let p = &service_ports(&s)[0];
        assert!(!p.external_local);
        assert_eq!(p.node_port, 0);
    }
}
