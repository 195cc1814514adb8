//! What policy reads of a Pod object.

use super::{NamedPort, PodInfo, PodKey, Protocol};
use k8s_openapi::api::core::v1::Pod;
use std::net::IpAddr;

impl PodInfo {
    /// From a Pod object (labels, podIPs, hostNetwork, nodeName, named ports). `None`
    /// for an object without a name. A pod that has finished (phase Succeeded or
    /// Failed) has released its addresses, which another pod may now hold.
    pub fn from_pod(pod: &Pod) -> Option<PodInfo> {
        let name = pod.metadata.name.clone()?;
        let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string());
        let status = pod.status.as_ref();
        let finished = status.and_then(|s| s.phase.as_deref()).is_some_and(|p| p == "Succeeded" || p == "Failed");
        let mut ips: Vec<IpAddr> = Vec::new();
        if !finished {
            if let Some(s) = status {
                for ip in s.pod_ips.iter().flatten().filter_map(|p| p.ip.parse().ok()) {
                    if !ips.contains(&ip) {
                        ips.push(ip);
                    }
                }
                if ips.is_empty() {
                    ips.extend(s.pod_ip.as_deref().and_then(|p| p.parse::<IpAddr>().ok()));
                }
            }
        }
        let spec = pod.spec.as_ref();
        let mut ports: Vec<NamedPort> = spec
            .into_iter()
            .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                let name = p.name.clone().filter(|n| !n.is_empty())?;
                let protocol = Protocol::parse(p.protocol.as_deref().unwrap_or("TCP"))?;
                let port = u16::try_from(p.container_port).ok().filter(|&n| n != 0)?;
                Some(NamedPort { name, port, protocol })
            })
            .collect();
        ports.sort();
        ports.dedup();
        Some(PodInfo {
            key: PodKey { namespace, name },
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            ips,
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            node: spec.and_then(|s| s.node_name.clone()),
            ports,
        })
    }

    /// The port a named port means on this pod, for this protocol.
    pub fn resolve_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports.iter().find(|p| p.name == name && p.protocol == protocol).map(|p| p.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pod_reads_labels_addresses_and_named_ports() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "x", "labels": {"pod": "a"}},
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "c", "ports": [
                    {"name": "http", "containerPort": 80},
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"containerPort": 9090}
                ]}],
                "initContainers": [{"name": "side", "restartPolicy": "Always", "ports": [{"name": "metrics", "containerPort": 9100}]}]
            },
            "status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}
        }))
        .unwrap();
        let info = PodInfo::from_pod(&pod).unwrap();
        assert_eq!(info.key.to_string(), "x/a");
        assert_eq!(info.ips, vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "fd00::1".parse().unwrap()]);
        assert_eq!(info.node.as_deref(), Some("n1"));
        assert!(!info.host_network);
        assert_eq!(info.resolve_port("http", Protocol::Tcp), Some(80));
        assert_eq!(info.resolve_port("http", Protocol::Udp), None);
        assert_eq!(info.resolve_port("dns", Protocol::Udp), Some(53));
        assert_eq!(info.resolve_port("metrics", Protocol::Tcp), Some(9100));
        assert_eq!(info.ports.len(), 3);
    }

    #[test]
    fn pod_ip_is_the_fallback_and_finished_pods_have_no_address() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "x"},
            "spec": {"hostNetwork": true, "containers": []},
            "status": {"podIP": "10.0.0.2", "phase": "Running"}
        }))
        .unwrap();
        let info = PodInfo::from_pod(&pod).unwrap();
        assert_eq!(info.ips, vec!["10.0.0.2".parse::<IpAddr>().unwrap()]);
        assert!(info.host_network);
        pod.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(PodInfo::from_pod(&pod).unwrap().ips.is_empty());
    }
}
