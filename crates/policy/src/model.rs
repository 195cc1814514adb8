//! The cluster as NetworkPolicy sees it: namespaces with their labels, pods with their
//! labels, addresses and named ports, and the policies. Kept live from watch events
//! (`apply_*` / `delete_*`); [`crate::evaluate`] and [`crate::compile`] read it.
//!
//! INTERFACE SKELETON: the signatures below are the contract between the model, the
//! enforcer, the flow recorder and the conformance runner. Bodies are filled in by the
//! model's implementation.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

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

impl PodInfo {
    /// From a Pod object (labels, podIPs, hostNetwork, nodeName, named ports).
    pub fn from_pod(_pod: &Pod) -> Option<PodInfo> {
        todo!("model implementation")
    }
}

/// The live cluster state.
#[derive(Clone, Debug, Default)]
pub struct Cluster {}

impl Cluster {
    pub fn new() -> Cluster {
        todo!("model implementation")
    }
    pub fn apply_namespace(&mut self, _ns: &Namespace) {
        todo!("model implementation")
    }
    /// Sets a namespace's labels directly (tests, the conformance runner's pure model).
    pub fn set_namespace(&mut self, _name: &str, _labels: Labels) {
        todo!("model implementation")
    }
    pub fn delete_namespace(&mut self, _name: &str) {
        todo!("model implementation")
    }
    pub fn apply_pod(&mut self, _pod: &Pod) {
        todo!("model implementation")
    }
    pub fn set_pod(&mut self, _pod: PodInfo) {
        todo!("model implementation")
    }
    pub fn delete_pod(&mut self, _key: &PodKey) {
        todo!("model implementation")
    }
    /// A policy the API accepted; an invalid one (a CIDR that does not parse, an
    /// `except` outside its `cidr`) is rejected with an error naming the field, and the
    /// model keeps the previous version.
    pub fn apply_policy(&mut self, _np: &NetworkPolicy) -> Result<(), String> {
        todo!("model implementation")
    }
    pub fn delete_policy(&mut self, _namespace: &str, _name: &str) {
        todo!("model implementation")
    }
    pub fn pod(&self, _key: &PodKey) -> Option<&PodInfo> {
        todo!("model implementation")
    }
    /// The pod (not hostNetwork) that has this address.
    pub fn pod_by_ip(&self, _ip: IpAddr) -> Option<&PodInfo> {
        todo!("model implementation")
    }
}
