//! The proxy's desired state, kept incrementally from watch events: Services and
//! EndpointSlices by service, compiled rules per service port, and the set of services
//! whose rules must be recompiled. `flush` recompiles only those and returns what
//! changed, which is what the applier writes to the kernel.

use crate::endpoints::{self, NodeNames, Slice};
use crate::plan::{compile, NodeContext, ServiceRules};
use crate::service::{service_ports, Family, Proto, ServicePort, ServicePortName};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

/// `(namespace, name)` of a service.
pub type ServiceKey = (String, String);
/// One service port in one family: the unit of compilation.
pub type PortKey = (ServicePortName, Family);

/// The label that hands a service to another proxy: kube-proxy and weft leave it alone.
pub const SERVICE_PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";

/// One service port as compiled. Shared (`Arc`) between the state and the changes it
/// hands out, so a full sync of 10,000 services does not copy every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub port: ServicePort,
    pub rules: ServiceRules,
}

/// One service port's rules before and after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: PortKey,
    pub old: Option<Arc<Compiled>>,
    pub new: Option<Arc<Compiled>>,
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

    /// UDP service addresses (ClusterIP, external and load-balancer IPs) that had no
    /// endpoints and now have some: conntrack entries made while they rejected must go,
    /// or clients keep being refused.
    pub fn udp_addresses_now_served(&self) -> Vec<IpAddr> {
        let Some(new) = &self.new else { return vec![] };
        if new.port.name.proto != Proto::Udp {
            return vec![];
        }
        let had: BTreeSet<IpAddr> = self.old.iter().flat_map(|o| o.rules.service_ips.iter().map(|s| s.0)).collect();
        new.rules.service_ips.iter().map(|s| s.0).filter(|ip| !had.contains(ip)).collect()
    }

    /// The UDP node port, when it had no endpoints and now has some (same reason).
    pub fn udp_node_port_now_served(&self) -> Option<u16> {
        let new = self.new.as_ref()?;
        if new.port.name.proto != Proto::Udp || new.rules.nodeports.is_empty() {
            return None;
        }
        let had = self.old.as_ref().is_some_and(|o| !o.rules.nodeports.is_empty());
        (!had).then_some(new.port.node_port)
    }
}

#[derive(Debug, Default)]
pub struct ProxyState {
    node: NodeContext,
    services: HashMap<ServiceKey, Vec<ServicePort>>,
    /// A service's slices by name (usually one: a Vec, not a map).
    slices: HashMap<ServiceKey, Vec<(String, Slice)>>,
    nodes: NodeNames,
    compiled: HashMap<PortKey, Arc<Compiled>>,
    /// Ports of each service as last compiled, to find the ones that went away.
    ports_of: HashMap<ServiceKey, Vec<PortKey>>,
    dirty: BTreeSet<ServiceKey>,
}

fn key_of(svc: &Service) -> ServiceKey {
    (svc.metadata.namespace.clone().unwrap_or_default(), svc.metadata.name.clone().unwrap_or_default())
}

/// Handed to another proxy by its `service.kubernetes.io/service-proxy-name` label.
pub fn is_for_another_proxy(svc: &Service) -> bool {
    svc.metadata.labels.as_ref().is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME))
}

/// Service ports and their compiled form, for one service.
type CompiledPort = (PortKey, Compiled);

impl ProxyState {
    pub fn new(node: NodeContext) -> Self {
        ProxyState { node, ..Default::default() }
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
        if is_for_another_proxy(svc) {
            return self.delete_service(svc);
        }
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
        let Some(data) = endpoints::read_slice(slice, &mut self.nodes) else {
            return self.delete_slice(slice);
        };
        let list = self.slices.entry(key.clone()).or_default();
        match list.iter_mut().find(|(n, _)| *n == name) {
            Some((_, d)) => *d = data,
            None => list.push((name, data)),
        }
        self.dirty.insert(key);
    }

    pub fn delete_slice(&mut self, slice: &EndpointSlice) {
        let Some(key) = endpoints::slice_service(slice) else {
            return;
        };
        let name = slice.metadata.name.clone().unwrap_or_default();
        if let Some(m) = self.slices.get_mut(&key) {
            m.retain(|(n, _)| *n != name);
            if m.is_empty() {
                self.slices.remove(&key);
            }
        }
        self.dirty.insert(key);
    }

    /// Replaces everything (a relist): services and slices not in the lists are gone.
    pub fn replace_all(&mut self, services: &[Service], slices: &[EndpointSlice]) {
        self.replace_services(services);
        self.replace_slices(slices);
    }

    /// Replaces every Service (a relist of Services alone).
    pub fn replace_services(&mut self, services: &[Service]) {
        self.begin_services_relist();
        for s in services {
            self.apply_service(s);
        }
    }

    /// Replaces every EndpointSlice (a relist of slices alone).
    pub fn replace_slices(&mut self, slices: &[EndpointSlice]) {
        self.begin_slices_relist();
        for s in slices {
            self.apply_slice(s);
        }
    }

    /// Forgets every Service before a relist delivers them again one by one (so the
    /// watch's objects need not be held until the list ends).
    pub fn begin_services_relist(&mut self) {
        self.dirty.extend(self.services.keys().cloned());
        self.services.clear();
    }

    /// Forgets every EndpointSlice before a relist delivers them again one by one.
    pub fn begin_slices_relist(&mut self) {
        self.dirty.extend(self.slices.keys().cloned());
        self.slices.clear();
        self.nodes.forget_unused();
    }

    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// How many services are waiting to be recompiled.
    pub fn dirty_services(&self) -> usize {
        self.dirty.len()
    }

    fn compile_service(&self, key: &ServiceKey) -> Vec<CompiledPort> {
        let Some(ports) = self.services.get(key) else { return vec![] };
        let eps = endpoints::service_endpoints(self.slices.get(key).into_iter().flatten().map(|(_, s)| s), &self.node.node_name);
        ports
            .iter()
            .map(|port| {
                let endpoints = endpoints::for_port(&eps, &port.name, port.family);
                let rules = compile(port, &endpoints, &self.node);
                ((port.name.clone(), port.family), Compiled { port: port.clone(), rules })
            })
            .collect()
    }

    /// Recompiles the services that changed (on every core when there are many); returns
    /// every service port whose rules differ.
    pub fn flush(&mut self) -> Vec<Change> {
        let dirty: Vec<ServiceKey> = std::mem::take(&mut self.dirty).into_iter().collect();
        let compiled = crate::parallel::map(&dirty, |key| self.compile_service(key));
        let mut changes = Vec::new();
        for (key, ports) in dirty.into_iter().zip(compiled) {
            let mut now: Vec<PortKey> = Vec::with_capacity(ports.len());
            for (pk, new) in ports {
                now.push(pk.clone());
                let old = self.compiled.get(&pk);
                if old.map(|o| &**o) != Some(&new) {
                    let new = Arc::new(new);
                    let old = self.compiled.insert(pk.clone(), new.clone());
                    changes.push(Change { key: pk, old, new: Some(new) });
                }
            }
            for gone in self.ports_of.remove(&key).unwrap_or_default() {
                if !now.contains(&gone) {
                    if let Some(old) = self.compiled.remove(&gone) {
                        changes.push(Change { key: gone, old: Some(old), new: None });
                    }
                }
            }
            if !now.is_empty() {
                now.shrink_to_fit();
                self.ports_of.insert(key, now);
            }
        }
        changes
    }

    /// Every compiled service port (for a full sync or for introspection).
    pub fn compiled(&self) -> impl Iterator<Item = (&PortKey, &Arc<Compiled>)> {
        self.compiled.iter()
    }

    /// How many service ports are compiled.
    pub fn port_count(&self) -> usize {
        self.compiled.len()
    }

    /// The compiled ports of one service.
    pub fn service(&self, namespace: &str, name: &str) -> Vec<&Compiled> {
        let key = (namespace.to_string(), name.to_string());
        let mut out: Vec<&Compiled> = self.ports_of.get(&key).into_iter().flatten().filter_map(|k| self.compiled.get(k).map(|c| &**c)).collect();
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
    fn a_service_labelled_for_another_proxy_is_left_alone_and_taken_back_without_the_label() {
        let mut s = state();
        let mut other = svc("a", "TCP");
        other.metadata.labels = Some([(SERVICE_PROXY_NAME.to_string(), "foo-bar".to_string())].into());
        s.apply_service(&other);
        assert!(s.flush().is_empty() && s.compiled().next().is_none());
        s.apply_service(&svc("a", "TCP"));
        assert_eq!(s.flush().len(), 1);
        // Labelled again: as good as deleted.
        s.apply_service(&other);
        let ch = s.flush();
        assert!(ch.len() == 1 && ch[0].new.is_none());
    }

    #[test]
    fn a_udp_node_port_that_gets_endpoints_is_reported_for_its_stale_entries() {
        let mut s = state();
        let np: Service = serde_json::from_value(json!({"metadata": {"namespace": "ns", "name": "dns"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.7", "ports": [{"name": "p", "port": 53, "protocol": "UDP", "nodePort": 30053}]}})).unwrap();
        s.apply_service(&np);
        let ch = s.flush();
        assert_eq!(ch[0].udp_node_port_now_served(), None, "nothing serves it yet");
        s.apply_slice(&slice("dns", "dns-1", &["10.244.0.5"]));
        let ch = s.flush();
        assert_eq!(ch[0].udp_node_port_now_served(), Some(30053));
        s.apply_slice(&slice("dns", "dns-1", &["10.244.0.6"]));
        assert_eq!(s.flush()[0].udp_node_port_now_served(), None, "it was served already");
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
