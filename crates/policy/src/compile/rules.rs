//! A policy's rules as addresses: what each rule contributes to the allow set of every
//! pod the policy selects. Computed once per policy and kept until a change could
//! alter it (see [`super::cache`]).

use super::canonical::PortItem;
use super::ranges::{block, merge, Span};
use crate::model::policy::{Peer, Policy, PortMatch, PortSpec, Rule};
use crate::model::{Cluster, PodInfo, Protocol};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct CompiledRule {
    /// The peers' addresses, merged (every address when the rule names no peer).
    pub peers: Vec<Span>,
    /// The rule has no `ports`: its peers are allowed on everything.
    pub all_ports: bool,
    /// Ports that do not depend on a pod: numeric ports and whole protocols.
    pub fixed: Vec<(Protocol, u16, u16)>,
    /// Named ports (name, protocol), to resolve on the destination.
    pub named: Vec<(String, Protocol)>,
    /// Egress only: the named ports resolved on each destination pod the peers match.
    pub named_egress: Vec<PortItem>,
}

#[derive(Clone, Debug, Default)]
pub struct CompiledPolicy {
    pub ingress: Vec<CompiledRule>,
    pub egress: Vec<CompiledRule>,
}

/// The addresses of selector peers, shared by the policies that name the same peer
/// (keyed by the policy's namespace, or "" when the peer has a namespaceSelector).
pub type PeerMemo = HashMap<(String, Peer), Arc<Vec<Span>>>;

impl CompiledPolicy {
    pub fn new(cluster: &Cluster, policy: &Policy, memo: &mut PeerMemo) -> CompiledPolicy {
        let mut compile = |rules: Option<&[Rule]>, egress: bool| -> Vec<CompiledRule> {
            rules.unwrap_or_default().iter().map(|r| compile_rule(cluster, &policy.namespace, r, egress, memo)).collect()
        };
        let ingress = compile(policy.ingress.as_deref(), false);
        CompiledPolicy { ingress, egress: compile(policy.egress.as_deref(), true) }
    }

    /// The named ports of the ingress rules, which the selected pod resolves.
    pub fn ingress_named(&self) -> impl Iterator<Item = &(String, Protocol)> {
        self.ingress.iter().flat_map(|r| &r.named)
    }

    pub fn rules(&self, egress: bool) -> &[CompiledRule] {
        if egress { &self.egress } else { &self.ingress }
    }
}

fn compile_rule(cluster: &Cluster, policy_ns: &str, rule: &Rule, egress: bool, memo: &mut PeerMemo) -> CompiledRule {
    let mut peers = Vec::new();
    if rule.peers.is_empty() {
        peers.extend(Span::everything());
    }
    for peer in &rule.peers {
        match peer {
            Peer::IpBlock { cidr, except } => peers.extend(block(cidr, except)),
            Peer::Pods { namespaces, .. } => {
                let ns = if namespaces.is_some() { String::new() } else { policy_ns.to_string() };
                let spans = memo.entry((ns, peer.clone())).or_insert_with(|| {
                    Arc::new(merge(cluster.peer_pods(policy_ns, peer).into_iter().flat_map(|pod| owned_ips(cluster, pod).map(Span::host)).collect()))
                });
                peers.extend_from_slice(spans);
            }
        }
    }
    let mut fixed = Vec::new();
    let mut named = Vec::new();
    for PortSpec { protocol, port } in &rule.ports {
        match port {
            PortMatch::All => fixed.push((*protocol, 0, u16::MAX)),
            PortMatch::Range(a, b) => fixed.push((*protocol, *a, *b)),
            PortMatch::Named(n) => named.push((n.clone(), *protocol)),
        }
    }
    let named_egress = if egress && !named.is_empty() { resolve_on_destinations(cluster, policy_ns, rule, &named) } else { Vec::new() };
    CompiledRule { peers: merge(peers), all_ports: rule.ports.is_empty(), fixed, named, named_egress }
}

/// Each destination pod the rule's peers reach (every pod for an empty `to`; for an
/// ipBlock, the pods whose address is in it), with its own number for each named port.
fn resolve_on_destinations(cluster: &Cluster, policy_ns: &str, rule: &Rule, named: &[(String, Protocol)]) -> Vec<PortItem> {
    let mut out = Vec::new();
    let mut emit = |pod: &PodInfo, ips: &mut dyn Iterator<Item = std::net::IpAddr>| {
        let resolved: Vec<(Protocol, u16)> = named.iter().filter_map(|(n, proto)| pod.resolve_port(n, *proto).map(|p| (*proto, p))).collect();
        if resolved.is_empty() {
            return;
        }
        for ip in ips {
            for (protocol, port) in &resolved {
                out.push(PortItem { peer: Span::host(ip), protocol: *protocol, first: *port, last: *port });
            }
        }
    };
    if rule.peers.is_empty() {
        for pod in cluster.pods().filter(|p| !p.host_network) {
            emit(pod, &mut owned_ips(cluster, pod));
        }
    }
    for peer in &rule.peers {
        match peer {
            Peer::Pods { .. } => {
                for pod in cluster.peer_pods(policy_ns, peer) {
                    emit(pod, &mut owned_ips(cluster, pod));
                }
            }
            Peer::IpBlock { cidr, except } => {
                for pod in cluster.pods().filter(|p| !p.host_network) {
                    emit(pod, &mut owned_ips(cluster, pod).filter(|ip| Peer::ip_block_contains(cidr, except, *ip)));
                }
            }
        }
    }
    out
}

/// The pod's addresses that identify it (an address another, newer pod also claims
/// belongs to that one, as in [`Cluster::pod_by_ip`]).
pub fn owned_ips<'a>(cluster: &'a Cluster, pod: &'a PodInfo) -> impl Iterator<Item = std::net::IpAddr> + 'a {
    pod.ips.iter().copied().filter(move |ip| cluster.owns(*ip, &pod.key))
}

impl CompiledRule {
    /// This rule's tuples for one selected pod (`pod` resolves ingress named ports).
    pub fn contribute(&self, egress: bool, pod: &PodInfo, any: &mut Vec<Span>, ports: &mut Vec<PortItem>) {
        if self.all_ports {
            any.extend_from_slice(&self.peers);
            return;
        }
        let mut push = |protocol: Protocol, first: u16, last: u16| {
            ports.extend(self.peers.iter().map(|&peer| PortItem { peer, protocol, first, last }));
        };
        for &(protocol, first, last) in &self.fixed {
            push(protocol, first, last);
        }
        if egress {
            ports.extend_from_slice(&self.named_egress);
        } else {
            for (name, protocol) in &self.named {
                if let Some(port) = pod.resolve_port(name, *protocol) {
                    push(*protocol, port, port);
                }
            }
        }
    }
}
