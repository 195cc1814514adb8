//! EndpointSlices folded into per-service-port endpoint lists.

use crate::service::{Family, Proto, ServicePortName};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

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

/// What the proxy keeps of an EndpointSlice: its family, its valid ports and, per
/// endpoint, the first address, the conditions and the node (names interned, so 250,000
/// endpoints on 5,000 nodes hold 5,000 strings). Nothing else of the object is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub family: Family,
    pub ports: Vec<SlicePort>,
    pub endpoints: Vec<SliceEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePort {
    pub name: String,
    pub proto: Proto,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceEndpoint {
    pub ip: IpAddr,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node: Option<Arc<str>>,
}

/// Node names shared by every endpoint that names them.
#[derive(Debug, Default)]
pub struct NodeNames(HashSet<Arc<str>>);

impl NodeNames {
    pub fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.get(name) {
            return n.clone();
        }
        let n: Arc<str> = name.into();
        self.0.insert(n.clone());
        n
    }

    /// Forgets names no endpoint uses any more.
    pub fn forget_unused(&mut self) {
        self.0.retain(|n| Arc::strong_count(n) > 1);
    }
}

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

/// What the proxy reads of `slice`; None for slices it does not proxy (FQDN).
pub fn read_slice(slice: &EndpointSlice, nodes: &mut NodeNames) -> Option<Slice> {
    let family = match slice.address_type.as_str() {
        "IPv4" => Family::V4,
        "IPv6" => Family::V6,
        _ => return None,
    };
    let ports = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let proto = Proto::parse(p.protocol.as_deref())?;
            let port = p.port.filter(|p| (1..=65535).contains(p))? as u16;
            Some(SlicePort { name: p.name.clone().unwrap_or_default(), proto, port })
        })
        .collect();
    let endpoints = slice
        .endpoints
        .iter()
        .filter_map(|ep| {
            let c = ep.conditions.as_ref();
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            // Upstream uses the first address of an endpoint.
            let ip = ep.addresses.first()?.parse::<IpAddr>().ok().filter(|ip| Family::of(ip) == family)?;
            Some(SliceEndpoint {
                ip,
                ready,
                serving: c.and_then(|c| c.serving).unwrap_or(ready),
                terminating: c.and_then(|c| c.terminating).unwrap_or(false),
                node: ep.node_name.as_deref().map(|n| nodes.intern(n)),
            })
        })
        .collect();
    Some(Slice { family, ports, endpoints })
}

/// Every endpoint of one service, per (port name, protocol, family), from all its slices.
/// The same address and port in two slices counts once (ready wins).
pub fn service_endpoints<'a>(slices: impl IntoIterator<Item = &'a Slice>, node_name: &str) -> PortEndpoints {
    let mut out = PortEndpoints::new();
    for slice in slices {
        for port in &slice.ports {
            let entry = out.entry((port.name.clone(), port.proto, slice.family)).or_default();
            entry.extend(slice.endpoints.iter().map(|ep| Endpoint {
                ip: ep.ip,
                port: port.port,
                ready: ep.ready,
                serving: ep.serving,
                terminating: ep.terminating,
                local: ep.node.as_deref() == Some(node_name),
            }));
        }
    }
    for eps in out.values_mut() {
        // By address, ready first, then one per address and port.
        eps.sort_by_key(|e| (e.ip, e.port, !e.ready));
        eps.dedup_by(|b, a| (a.ip, a.port) == (b.ip, b.port));
    }
    out
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
        let mut nodes = NodeNames::default();
        let (a, b) = (read_slice(&a, &mut nodes).unwrap(), read_slice(&b, &mut nodes).unwrap());
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
        assert!(read_slice(&s, &mut NodeNames::default()).is_none());
        let s = slice(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "y", "labels": {"kubernetes.io/service-name": "y"}},
            "addressType": "IPv6", "ports": [{"port": 80}], "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["fd00::1"]}]
        }));
        let s = read_slice(&s, &mut NodeNames::default()).unwrap();
        let eps = service_endpoints([&s], "n");
        assert_eq!(eps[&(String::new(), Proto::Tcp, Family::V6)].len(), 1);
    }
}
