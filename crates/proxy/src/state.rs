//! The proxy's desired state, kept incrementally from watch events: Services and
//! EndpointSlices by service, compiled rules per service port, and the set of services
//! whose rules must be recompiled. `flush` recompiles only those and returns what
//! changed, which is what the applier writes to the kernel.

use crate::endpoints::{self, Endpoint};
use crate::plan::{compile, NodeContext, ServiceRules};
use crate::service::{service_ports, Family, Proto, ServicePort, ServicePortName};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// `(namespace, name)` of a service.
pub type ServiceKey = (String, String);
/// One service port in one family: the unit of compilation.
pub type PortKey = (ServicePortName, Family);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub port: ServicePort,
    pub endpoints: Vec<Endpoint>,
    pub rules: ServiceRules,
}

/// One service port's rules before and after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: PortKey,
    pub old: Option<Compiled>,
    pub new: Option<Compiled>,
}

impl Change {
    /// UDP endpoints that went away: their conntrack entries must go too, or clients keep
    /// sending to a dead backend (the classic DNS outage).
    pub fn stale_udp_endpoints(&self) -> Vec<IpAddr> {
        let Some(old) = &self.old else { return vec![] };
        if old.port.name.proto != Proto::Udp {
            return vec![];
        }
        let still: BTreeSet<IpAddr> = self.new.iter().flat_map(|n| n.rules.targets()).map(|t| t.addr).collect();
        let mut gone: Vec<IpAddr> = old.rules.targets().map(|t| t.addr).filter(|a| !still.contains(a)).collect();
        gone.sort();
        gone.dedup();
        gone
    }

    /// A UDP service address that had no endpoints and now has some: conntrack entries
    /// made while it rejected must go, or clients keep being refused.
    pub fn udp_addresses_now_served(&self) -> Vec<IpAddr> {
        let Some(new) = &self.new else { return vec![] };
        if new.port.name.proto != Proto::Udp {
            return vec![];
        }
        let had: BTreeSet<IpAddr> = self
            .old
            .iter()
            .flat_map(|o| o.rules.service_ips.iter().map(|s| s.0))
            .collect();
        new.rules
            .service_ips
            .iter()
            .map(|s| s.0)
            .filter(|ip| !had.contains(ip))
            .collect()
    }
}

#[derive(Debug, Default)]
pub struct ProxyState {
    node: NodeContext,
    services: HashMap<ServiceKey, Vec<ServicePort>>,
    slices: HashMap<ServiceKey, BTreeMap<String, EndpointSlice>>,
    compiled: HashMap<PortKey, Compiled>,
    /// Ports of each service as last compiled, to find the ones that went away.
    ports_of: HashMap<ServiceKey, BTreeSet<PortKey>>,
    dirty: BTreeSet<ServiceKey>,
}

/// What the proxy reads of a slice (addresses, conditions, node, ports), so that 10,000
/// services do not keep 10,000 slices' metadata, hints and target references in memory.
fn trimmed(slice: &EndpointSlice) -> EndpointSlice {
    EndpointSlice {
        address_type: slice.address_type.clone(),
        endpoints: slice
            .endpoints
            .iter()
            .map(|e| k8s_openapi::api::discovery::v1::Endpoint {
                addresses: e.addresses.clone(),
                conditions: e.conditions.clone(),
                node_name: e.node_name.clone(),
                ..Default::default()
            })
            .collect(),
        ports: slice.ports.clone(),
        metadata: Default::default(),
    }
}

fn key_of(svc: &Service) -> ServiceKey {
    (
        svc.metadata.namespace.clone().unwrap_or_default(),
        svc.metadata.name.clone().unwrap_or_default(),
    )
}

impl ProxyState {
    pub fn new(node: NodeContext) -> Self {
        ProxyState {
            node,
            ..Default::default()
        }
    }

    pub fn node(&self) -> &NodeContext {
        &self.node
    }

    /// A new node context (e.g. the pod CIDRs changed) recompiles everything.
    pub fn set_node(&mut self, node: NodeContext) {
        self.node = node;
        self.dirty.extend(self.services.keys().cloned());
    }

    pub fn apply_service(&mut self, svc: &Service) {
        let key = key_of(svc);
        self.services.insert(key.clone(), service_ports(svc));
        self.dirty.insert(key);
    }

    pub fn delete_service(&mut self, svc: &Service) {
        let key = key_of(svc);
        self.services.remove(&key);
        self.dirty.insert(key);
    }

    pub fn apply_slice(&mut self, slice: &EndpointSlice) {
        let Some(key) = endpoints::slice_service(slice) else {
            return;
        };
        let name = slice.metadata.name.clone().unwrap_or_default();
        self.slices
            .entry(key.clone())
            .or_default()
            .insert(name, trimmed(slice));
        self.dirty.insert(key);
    }

    pub fn delete_slice(&mut self, slice: &EndpointSlice) {
        let Some(key) = endpoints::slice_service(slice) else {
            return;
        };
        let name = slice.metadata.name.clone().unwrap_or_default();
        if let Some(m) = self.slices.get_mut(&key) {
            m.remove(&name);
            if m.is_empty() {
                self.slices.remove(&key);
            }
        }
        self.dirty.insert(key);
    }

    /// Replaces everything (a relist): services and slices not in the lists are gone.
    pub fn replace_all(&mut self, services: &[Service], slices: &[EndpointSlice]) {
        let before: BTreeSet<ServiceKey> = self
            .services
            .keys()
            .chain(self.slices.keys())
            .cloned()
            .collect();
        self.services.clear();
        self.slices.clear();
        for s in services {
            self.apply_service(s);
        }
        for s in slices {
            self.apply_slice(s);
        }
        self.dirty.extend(before);
    }

    /// Replaces every Service (a relist of Services alone).
    pub fn replace_services(&mut self, services: &[Service]) {
        self.dirty.extend(self.services.keys().cloned());
        self.services.clear();
        for s in services {
            self.apply_service(s);
        }
    }

    /// Replaces every EndpointSlice (a relist of slices alone).
    pub fn replace_slices(&mut self, slices: &[EndpointSlice]) {
        self.dirty.extend(self.slices.keys().cloned());
        self.slices.clear();
        for s in slices {
            self.apply_slice(s);
        }
    }

    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Recompiles the services that changed; returns every service port whose rules differ.
    pub fn flush(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for key in std::mem::take(&mut self.dirty) {
            let ports = self.services.get(&key).cloned().unwrap_or_default();
            let eps = endpoints::service_endpoints(
                self.slices.get(&key).into_iter().flat_map(|m| m.values()),
                &self.node.node_name,
            );
            let mut now: BTreeSet<PortKey> = BTreeSet::new();
            for port in ports {
                let pk: PortKey = (port.name.clone(), port.family);
                let endpoints = endpoints::for_port(&eps, &port.name, port.family);
                let rules = compile(&port, &endpoints, &self.node);
                let new = Compiled {
                    port,
                    endpoints,
                    rules,
                };
                now.insert(pk.clone());
                let old = self.compiled.get(&pk);
                if old != Some(&new) {
                    changes.push(Change {
                        key: pk.clone(),
                        old: old.cloned(),
                        new: Some(new.clone()),
                    });
                    self.compiled.insert(pk, new);
                }
            }
            for gone in self
                .ports_of
                .get(&key)
                .cloned()
                .unwrap_or_default()
                .difference(&now)
            {
                if let Some(old) = self.compiled.remove(gone) {
                    changes.push(Change {
                        key: gone.clone(),
                        old: Some(old),
                        new: None,
                    });
                }
            }
            if now.is_empty() {
                self.ports_of.remove(&key);
            } else {
                self.ports_of.insert(key, now);
            }
        }
        changes
    }

    /// Every compiled service port (for a full sync or for introspection).
    pub fn compiled(&self) -> impl Iterator<Item = (&PortKey, &Compiled)> {
        self.compiled.iter()
    }

    /// The compiled ports of one service.
    pub fn service(&self, namespace: &str, name: &str) -> Vec<&Compiled> {
        let key = (namespace.to_string(), name.to_string());
        let mut out: Vec<&Compiled> = self
            .ports_of
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|k| self.compiled.get(k))
            .collect();
        out.sort_by(|a, b| (&a.port.name, a.port.family).cmp(&(&b.port.name, b.port.family)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(name: &str, proto: &str) -> Service {
        serde_json::from_value(json!({"metadata": {"namespace": "ns", "name": name}, "spec": {"clusterIP": "10.96.0.7", "ports": [{"name": "p", "port": 53, "protocol": proto}]}})).unwrap()
    }

    fn slice(svc: &str, name: &str, ips: &[&str]) -> EndpointSlice {
        let eps: Vec<_> = ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "node-0"})).collect();
        serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": name, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "p", "port": 5353, "protocol": "UDP"}], "endpoints": eps
        }))
        .unwrap()
    }

    fn state() -> ProxyState {
        ProxyState::new(NodeContext {
            node_name: "node-0".into(),
            pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
            masquerade_all: false,
        })
    }

    #[test]
    fn only_changed_services_produce_changes() {
        let mut s = state();
        s.apply_service(&svc("a", "UDP"));
        s.apply_service(&svc("b", "UDP"));
        assert_eq!(s.flush().len(), 2);
        assert!(s.flush().is_empty());
        s.apply_slice(&slice("a", "a-1", &["10.244.0.5"]));
        let ch = s.flush();
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].key.0.name, "a");
        assert_eq!(
            ch[0].udp_addresses_now_served(),
            vec!["10.96.0.7".parse::<IpAddr>().unwrap()]
        );
        // The same slice again changes nothing.
        s.apply_slice(&slice("a", "a-1", &["10.244.0.5"]));
        assert!(s.flush().is_empty());
    }

    #[test]
    fn a_removed_udp_endpoint_is_reported_stale() {
        let mut s = state();
        s.apply_service(&svc("dns", "UDP"));
        s.apply_slice(&slice("dns", "dns-1", &["10.244.0.5", "10.244.0.6"]));
        s.flush();
        s.apply_slice(&slice("dns", "dns-1", &["10.244.0.6"]));
        let ch = s.flush();
        assert_eq!(
            ch[0].stale_udp_endpoints(),
            vec!["10.244.0.5".parse::<IpAddr>().unwrap()]
        );
        assert!(ch[0].udp_addresses_now_served().is_empty());
    }

    #[test]
    fn deleting_a_service_removes_its_ports() {
        let mut s = state();
        let a = svc("a", "TCP");
        s.apply_service(&a);
        s.flush();
        s.delete_service(&a);
        let ch = s.flush();
        assert_eq!(ch.len(), 1);
        assert!(ch[0].old.is_some() && ch[0].new.is_none());
        assert!(s.compiled().next().is_none());
    }

    #[test]
    fn replace_all_forgets_what_is_not_listed() {
        let mut s = state();
        s.apply_service(&svc("a", "TCP"));
        s.apply_service(&svc("b", "TCP"));
        s.flush();
        s.replace_all(&[svc("b", "TCP")], &[]);
        let ch = s.flush();
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].key.0.name, "a");
        assert!(ch[0].new.is_none());
    }
}
