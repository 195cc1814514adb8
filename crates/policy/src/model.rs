//! The cluster as NetworkPolicy sees it: namespaces with their labels, pods with their
//! labels, addresses and named ports, and the policies. Kept live from watch events
//! (`apply_*` / `delete_*`); [`crate::evaluate`] and [`crate::compile`] read it.
//!
//! The signatures of the public items are the contract between the model, the
//! enforcer, the flow recorder and the conformance runner.

#[cfg(test)]
pub(crate) mod fixture;
pub(crate) mod fxhash;
mod index;
mod pod;
pub mod policy;
pub mod selector;

use crate::compile::cache::CompileCache;
use fxhash::FxHashMap;
use index::{NsPods, NsPolicies};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use policy::{Peer, Policy};
use selector::Selector;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The IP protocol number (`meta l4proto`).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// `TCP`, `UDP`, `SCTP` as the API spells them.
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// A pod's containerPort that has a name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NamedPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What policy needs of a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    pub key: PodKey,
    pub labels: Labels,
    /// `status.podIPs` (empty until the pod has an address).
    pub ips: Vec<IpAddr>,
    /// hostNetwork pods are never selected by policies and are not pod peers.
    pub host_network: bool,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// Named containerPorts of every container (for named ports in policies).
    pub ports: Vec<NamedPort>,
}

/// The live cluster state.
#[derive(Debug, Default)]
pub struct Cluster {
    namespaces: BTreeMap<String, Labels>,
    pods: BTreeMap<String, NsPods>,
    /// Addresses of pods that are not hostNetwork; the newest holder last.
    by_ip: FxHashMap<IpAddr, Vec<PodKey>>,
    by_node: HashMap<String, BTreeSet<PodKey>>,
    policies: BTreeMap<String, NsPolicies>,
    /// The last [`Policy::uid`] given out.
    last_uid: u64,
    /// What [`Cluster::compile_node`] keeps between calls; told of every change.
    pub(crate) cache: Mutex<CompileCache>,
}

impl Clone for Cluster {
    /// The state; the copy starts with an empty compile cache.
    fn clone(&self) -> Cluster {
        Cluster {
            namespaces: self.namespaces.clone(),
            pods: self.pods.clone(),
            by_ip: self.by_ip.clone(),
            by_node: self.by_node.clone(),
            policies: self.policies.clone(),
            last_uid: self.last_uid,
            cache: Mutex::default(),
        }
    }
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster::default()
    }

    fn cache_mut(&mut self) -> &mut CompileCache {
        self.cache.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    pub fn apply_namespace(&mut self, ns: &Namespace) {
        if let Some(name) = &ns.metadata.name {
            self.set_namespace(name, ns.metadata.labels.clone().unwrap_or_default());
        }
    }

    /// Sets a namespace's labels directly (tests, the conformance runner's pure model).
    /// `kubernetes.io/metadata.name` is added if missing, as the apiserver does.
    pub fn set_namespace(&mut self, name: &str, mut labels: Labels) {
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
        let old = self.namespaces.insert(name.to_string(), labels.clone());
        if old.as_ref() != Some(&labels) {
            self.cache_mut().namespace_changed(name, old, Some(labels));
        }
    }

    /// Removes the namespace with its pods and policies (the apiserver deletes them
    /// before the namespace itself goes).
    pub fn delete_namespace(&mut self, name: &str) {
        let pods: Vec<PodKey> = self.pods.get(name).map(|p| p.pods.values().map(|p| p.key.clone()).collect()).unwrap_or_default();
        for key in pods {
            self.delete_pod(&key);
        }
        let policies: Vec<String> = self.policies.get(name).map(|p| p.policies.keys().cloned().collect()).unwrap_or_default();
        for policy in policies {
            self.delete_policy(name, &policy);
        }
        if let Some(old) = self.namespaces.remove(name) {
            self.cache_mut().namespace_changed(name, Some(old), None);
        }
    }

    pub fn apply_pod(&mut self, pod: &Pod) {
        if let Some(info) = PodInfo::from_pod(pod) {
            self.set_pod(info);
        }
    }

    pub fn set_pod(&mut self, pod: PodInfo) {
        if self.pod(&pod.key) == Some(&pod) {
            return;
        }
        let old = self.remove_pod(&pod.key);
        if !pod.host_network {
            for ip in &pod.ips {
                let holders = self.by_ip.entry(*ip).or_default();
                let others: Vec<PodKey> = holders.clone();
                holders.push(pod.key.clone());
                self.address_moved(others);
            }
        }
        if let Some(node) = &pod.node {
            self.by_node.entry(node.clone()).or_default().insert(pod.key.clone());
        }
        self.pods.entry(pod.key.namespace.clone()).or_default().insert(pod.clone());
        self.cache_mut().pod_changed(old, Some(pod));
    }

    pub fn delete_pod(&mut self, key: &PodKey) {
        if let Some(old) = self.remove_pod(key) {
            self.cache_mut().pod_changed(Some(old), None);
        }
    }

    fn remove_pod(&mut self, key: &PodKey) -> Option<PodInfo> {
        let ns = self.pods.get_mut(&key.namespace)?;
        let old = ns.remove(&key.name)?;
        if ns.pods.is_empty() {
            self.pods.remove(&key.namespace);
        }
        for ip in &old.ips {
            if let Some(holders) = self.by_ip.get_mut(ip) {
                holders.retain(|k| k != key);
                let others = holders.clone();
                if holders.is_empty() {
                    self.by_ip.remove(ip);
                }
                self.address_moved(others);
            }
        }
        if let Some(node) = &old.node {
            if let Some(keys) = self.by_node.get_mut(node) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_node.remove(node);
                }
            }
        }
        Some(old)
    }

    /// Pods that share an address with a pod that came or went: which of them owns
    /// the address changed, so what selects them compiles differently.
    fn address_moved(&mut self, keys: Vec<PodKey>) {
        for key in keys {
            if let Some(p) = self.pod(&key).cloned() {
                self.cache_mut().pod_changed(Some(p.clone()), Some(p));
            }
        }
    }

    /// A policy the API accepted; an invalid one (a CIDR that does not parse, an
    /// `except` outside its `cidr`) is rejected with an error naming the field, and the
    /// model keeps the previous version.
    pub fn apply_policy(&mut self, np: &NetworkPolicy) -> Result<(), String> {
        let mut policy = Policy::from_api(np)?;
        if let Some(old) = self.policy(&policy.namespace, &policy.name) {
            policy.uid = old.uid;
            if *old == policy {
                return Ok(());
            }
            self.cache_mut().policy_changed(policy.uid);
        }
        self.last_uid += 1;
        policy.uid = self.last_uid;
        tracing::debug!(namespace = %policy.namespace, name = %policy.name, "network policy applied to the model");
        self.policies.entry(policy.namespace.clone()).or_default().insert(Arc::new(policy));
        Ok(())
    }

    pub fn delete_policy(&mut self, namespace: &str, name: &str) {
        let Some(ns) = self.policies.get_mut(namespace) else { return };
        if let Some(old) = ns.remove(name) {
            if ns.policies.is_empty() {
                self.policies.remove(namespace);
            }
            self.cache_mut().policy_changed(old.uid);
        }
    }

    pub fn pod(&self, key: &PodKey) -> Option<&PodInfo> {
        self.pods.get(&key.namespace)?.pods.get(&key.name)
    }

    /// The pod (not hostNetwork) that has this address.
    pub fn pod_by_ip(&self, ip: IpAddr) -> Option<&PodInfo> {
        self.by_ip.get(&ip)?.last().and_then(|k| self.pod(k))
    }

    /// Whether `ip` identifies this pod (the newest pod that claims an address owns it).
    pub(crate) fn owns(&self, ip: IpAddr, key: &PodKey) -> bool {
        self.by_ip.get(&ip).and_then(|k| k.last()) == Some(key)
    }

    /// A namespace's labels (`None` for a namespace the model has not seen).
    pub fn namespace_labels(&self, name: &str) -> Option<&Labels> {
        self.namespaces.get(name)
    }

    /// The normalized policy `namespace/name`.
    pub fn policy(&self, namespace: &str, name: &str) -> Option<&Policy> {
        self.policies.get(namespace)?.policies.get(name).map(|p| &**p)
    }

    /// Every policy, in namespace/name order.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values().flat_map(|ns| ns.policies.values().map(|p| &**p))
    }

    /// Every pod, in namespace/name order.
    pub fn pods(&self) -> impl Iterator<Item = &PodInfo> {
        self.pods.values().flat_map(|ns| ns.pods.values())
    }

    /// The pods whose `spec.nodeName` is `node`, in namespace/name order.
    pub fn pods_on_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a PodInfo> + 'a {
        self.by_node.get(node).into_iter().flatten().filter_map(|k| self.pod(k))
    }

    /// The policies that select this pod and isolate it in this direction, in name
    /// order; none for a hostNetwork pod.
    pub fn isolating(&self, pod: &PodInfo, egress: bool) -> Vec<&Arc<Policy>> {
        let (ingress, eg) = self.isolating_both(pod);
        if egress { eg } else { ingress }
    }

    /// [`Cluster::isolating`] for ingress and for egress.
    pub fn isolating_both(&self, pod: &PodInfo) -> (Vec<&Arc<Policy>>, Vec<&Arc<Policy>>) {
        if pod.host_network {
            return (Vec::new(), Vec::new());
        }
        let Some(ns) = self.policies.get(&pod.key.namespace) else { return (Vec::new(), Vec::new()) };
        let selecting = ns.selecting(&pod.labels);
        let ingress = selecting.iter().copied().filter(|p| p.ingress.is_some()).collect();
        let egress = selecting.into_iter().filter(|p| p.egress.is_some()).collect();
        (ingress, egress)
    }

    /// Whether a namespace selector matches the namespace `name`; a namespace the model
    /// has not seen carries only its name label.
    pub(crate) fn namespace_matches(&self, sel: &Selector, name: &str) -> bool {
        match self.namespaces.get(name) {
            Some(labels) => sel.matches(labels),
            None => sel.is_everything() || sel.matches(&Labels::from([(NAMESPACE_NAME_LABEL.to_string(), name.to_string())])),
        }
    }

    /// Whether a selector peer of a policy in `policy_ns` matches this pod.
    pub(crate) fn peer_selects(&self, policy_ns: &str, namespaces: Option<&Selector>, pods: &Selector, pod: &PodInfo) -> bool {
        if pod.host_network {
            return false;
        }
        let ns_ok = match namespaces {
            None => pod.key.namespace == policy_ns,
            Some(sel) => self.namespace_matches(sel, &pod.key.namespace),
        };
        ns_ok && pods.matches(&pod.labels)
    }

    /// The pods (not hostNetwork) a peer of a policy in `policy_ns` selects; none for
    /// an ipBlock.
    pub(crate) fn peer_pods<'a>(&'a self, policy_ns: &'a str, peer: &'a Peer) -> Vec<&'a PodInfo> {
        let Peer::Pods { namespaces, pods } = peer else { return Vec::new() };
        let in_ns = |ns: &'a NsPods| ns.select(pods).filter(|p| !p.host_network);
        match namespaces {
            None => self.pods.get(policy_ns).map(|ns| in_ns(ns).collect()).unwrap_or_default(),
            Some(sel) => self.pods.iter().filter(|(name, _)| self.namespace_matches(sel, name)).flat_map(|(_, ns)| in_ns(ns)).collect(),
        }
    }
}
