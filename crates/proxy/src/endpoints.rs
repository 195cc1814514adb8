//! EndpointSlices folded into per-service-port endpoint lists.

use crate::service::{Family, Proto, ServicePortName};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// On this node (its `nodeName` is ours).
    pub local: bool,
}

impl Endpoint {
    pub fn key(&self) -> String {
        match self.ip {
            IpAddr::V4(ip) => format!("{ip}:{}", self.port),
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
        }
    }
}

/// A service's endpoints per (port name, protocol, family).
pub type PortEndpoints = BTreeMap<(String, Proto, Family), Vec<Endpoint>>;

/// The service a slice belongs to: `(namespace, kubernetes.io/service-name)`.
pub fn slice_service(slice: &EndpointSlice) -> Option<(String, String)> {
    let ns = slice.metadata.namespace.clone()?;
    let svc = slice
        .metadata
        .labels
        .as_ref()?
        .get("kubernetes.io/service-name")?
        .clone();
    Some((ns, svc))
}

/// Every endpoint of one service, per (port name, protocol, family), from all its slices.
/// The same address and port in two slices counts once (ready wins).
pub fn service_endpoints<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node_name: &str,
) -> PortEndpoints {
    type ByAddress = BTreeMap<(IpAddr, u16), Endpoint>;
    let mut out: BTreeMap<(String, Proto, Family), ByAddress> = BTreeMap::new();
    for slice in slices {
        let family = match slice.address_type.as_str() {
            "IPv4" => Family::V4,
            "IPv6" => Family::V6,
            _ => continue, // FQDN slices are not proxied
        };
        for port in slice.ports.iter().flatten() {
            let Some(proto) = Proto::parse(port.protocol.as_deref()) else {
                continue;
            };
            let Some(number) = port.port.filter(|p| (1..=65535).contains(p)) else {
                continue;
            };
            let entry = out
                .entry((port.name.clone().unwrap_or_default(), proto, family))
                .or_default();
            for ep in &slice.endpoints {
                let c = ep.conditions.as_ref();
                let ready = c.and_then(|c| c.ready).unwrap_or(true);
                let serving = c.and_then(|c| c.serving).unwrap_or(ready);
                let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
                let local = ep.node_name.as_deref() == Some(node_name);
                // Upstream uses the first address of an endpoint.
                let Some(ip) = ep.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                if Family::of(&ip) != family {
                    continue;
                }
                let e = Endpoint {
                    ip,
                    port: number as u16,
                    ready,
                    serving,
                    terminating,
                    local,
                };
                match entry.get(&(ip, e.port)) {
                    Some(prev) if prev.ready && !e.ready => {}
                    _ => {
                        entry.insert((ip, e.port), e);
                    }
                }
            }
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_values().collect()))
        .collect()
}

/// The endpoints of one service port.
pub fn for_port(all: &PortEndpoints, port: &ServicePortName, family: Family) -> Vec<Endpoint> {
    all.get(&(port.port.clone(), port.proto, family))
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn slices_merge_and_a_duplicate_endpoint_counts_once_as_ready() {
        let a = slice(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "web-a", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.5"], "conditions": {"ready": true}, "nodeName": "node-0"},
                {"addresses": ["10.244.1.5"], "conditions": {"ready": false, "serving": true, "terminating": true}, "nodeName": "node-1"}
            ]
        }));
        let b = slice(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "web-b", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.0.6"], "nodeName": "node-0"}, {"addresses": ["10.244.0.5"], "conditions": {"ready": false}}]
        }));
        assert_eq!(slice_service(&a), Some(("ns".into(), "web".into())));
        let eps = service_endpoints([&a, &b], "node-0");
        let http = &eps[&("http".to_string(), Proto::Tcp, Family::V4)];
        let keys: Vec<String> = http.iter().map(Endpoint::key).collect();
        assert_eq!(
            keys,
            vec!["10.244.0.5:8080", "10.244.0.6:8080", "10.244.1.5:8080"]
        );
        assert!(http[0].ready && http[0].local);
        assert!(http[1].ready, "no conditions means ready");
        assert!(!http[2].ready && http[2].serving && http[2].terminating && !http[2].local);
    }

    #[test]
    fn fqdn_slices_and_wrong_family_addresses_are_skipped() {
        let s = slice(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "x", "labels": {"kubernetes.io/service-name": "x"}},
            "addressType": "FQDN", "ports": [{"port": 80}], "endpoints": [{"addresses": ["example.test"]}]
        }));
        assert!(service_endpoints([&s], "n").is_empty());
        let s = slice(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "y", "labels": {"kubernetes.io/service-name": "y"}},
            "addressType": "IPv6", "ports": [{"port": 80}], "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["fd00::1"]}]
        }));
        let eps = service_endpoints([&s], "n");
        assert_eq!(eps[&(String::new(), Proto::Tcp, Family::V6)].len(), 1);
    }
}
