//! The verdict for one connection, computed from the model, with what decides it.
//! This is the reference the enforcer must agree with on every cell.

use crate::model::policy::{Peer, PortMatch, PortSpec, Rule};
use crate::model::{Cluster, PodInfo, PodKey, Protocol};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One connection attempt: from `src` to `dst` (the destination after Service DNAT:
/// a pod address, or any other address) on `protocol`/`port` (the pod's port).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: Protocol,
    pub port: u16,
}

/// A rule of a policy: `ingress[index]` or `egress[index]` of `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleRef {
    pub namespace: String,
    pub policy: String,
    pub egress: bool,
    pub index: usize,
}

/// How one side (the source's egress, or the destination's ingress) judges it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Not a pod that policy applies to (an outside address, a hostNetwork pod).
    NotAPod,
    /// A pod that no policy isolates in this direction.
    NotIsolated,
    /// Allowed by these rules (all that match, in namespace/name/index order).
    Allowed { by: Vec<RuleRef> },
    /// Isolated by these policies, and no rule of theirs matches.
    Denied { isolated_by: Vec<(String, String)> },
}

impl Side {
    pub fn allows(&self) -> bool {
        !matches!(self, Side::Denied { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub src_pod: Option<PodKey>,
    pub dst_pod: Option<PodKey>,
    pub egress: Side,
    pub ingress: Side,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.egress.allows() && self.ingress.allows()
    }
}

impl Cluster {
    pub fn evaluate(&self, q: &Query) -> Verdict {
        let src = self.pod_by_ip(q.src);
        let dst = self.pod_by_ip(q.dst);
        Verdict {
            src_pod: src.map(|p| p.key.clone()),
            dst_pod: dst.map(|p| p.key.clone()),
            egress: self.judge(src, q.dst, dst, q, true),
            ingress: self.judge(dst, q.src, src, q, false),
        }
    }

    /// One side: `pod` is the side judged (the source for egress, the destination for
    /// ingress), `peer`/`peer_pod` the other end.
    fn judge(&self, pod: Option<&PodInfo>, peer: IpAddr, peer_pod: Option<&PodInfo>, q: &Query, egress: bool) -> Side {
        let Some(pod) = pod else { return Side::NotAPod };
        let policies = self.isolating(pod, egress);
        if policies.is_empty() {
            return Side::NotIsolated;
        }
        // Named ports are resolved on the destination: the peer for egress, the pod itself for ingress.
        let serving = if egress { peer_pod } else { Some(pod) };
        let mut by = Vec::new();
        for p in &policies {
            for (index, rule) in p.rules(egress).unwrap_or_default().iter().enumerate() {
                if self.rule_matches(&p.namespace, rule, peer, peer_pod, serving, q) {
                    by.push(RuleRef { namespace: p.namespace.clone(), policy: p.name.clone(), egress, index });
                }
            }
        }
        if by.is_empty() {
            Side::Denied { isolated_by: policies.iter().map(|p| (p.namespace.clone(), p.name.clone())).collect() }
        } else {
            Side::Allowed { by }
        }
    }

    pub(crate) fn rule_matches(&self, policy_ns: &str, rule: &Rule, peer: IpAddr, peer_pod: Option<&PodInfo>, serving: Option<&PodInfo>, q: &Query) -> bool {
        let peer_ok = rule.peers.is_empty() || rule.peers.iter().any(|p| self.peer_matches(policy_ns, p, peer, peer_pod));
        peer_ok && (rule.ports.is_empty() || rule.ports.iter().any(|p| port_matches(p, serving, q.protocol, q.port)))
    }

    pub(crate) fn peer_matches(&self, policy_ns: &str, peer: &Peer, ip: IpAddr, pod: Option<&PodInfo>) -> bool {
        match peer {
            Peer::IpBlock { cidr, except } => Peer::ip_block_contains(cidr, except, ip),
            Peer::Pods { namespaces, pods } => pod.is_some_and(|p| self.peer_selects(policy_ns, namespaces.as_ref(), pods, p)),
        }
    }
}

/// Whether a `ports` item admits `protocol`/`port` on the serving pod; a named port
/// needs a serving pod with a containerPort of that name and protocol.
pub(crate) fn port_matches(spec: &PortSpec, serving: Option<&PodInfo>, protocol: Protocol, port: u16) -> bool {
    spec.protocol == protocol
        && match &spec.port {
            PortMatch::All => true,
            PortMatch::Range(first, last) => (*first..=*last).contains(&port),
            PortMatch::Named(name) => serving.and_then(|p| p.resolve_port(name, protocol)) == Some(port),
        }
}

#[cfg(test)]
mod tests;
