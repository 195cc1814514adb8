//! One service port's rules, compiled from the port, its endpoints and the node.
//!
//! The shape follows kube-proxy's nftables mode, whose semantics users rely on:
//! - the port's addresses are captured by map elements (`service_ips`, `nodeports`) that
//!   `goto` a per-service chain, so a packet costs one map lookup however many services exist;
//! - the cluster-policy chain (`svc-…`) and local-policy chain (`local-…`) pick an endpoint
//!   chain at random (or the one a client is pinned to by session affinity);
//! - the external chain (`ext-…`) handles NodePort, external IPs and load-balancer traffic:
//!   masquerade for Cluster policy; for Local policy keep the client's address, with the
//!   short-circuits for pods and the node itself that upstream has;
//! - each endpoint chain (`ep-…`) marks hairpin traffic for masquerade, remembers the client
//!   for affinity, and DNATs;
//! - addresses with no usable endpoints land in `no_endpoint_*` with Reject (nothing serves)
//!   or Drop (Local policy and nothing local), checked in the filter stage.

use crate::categorize::categorize;
use crate::endpoints::Endpoint;
use crate::service::{Family, Proto, ServicePort};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What the proxy knows about the node it runs on.
#[derive(Debug, Clone, Default)]
pub struct NodeContext {
    pub node_name: String,
    /// The cluster's pod CIDRs: traffic from these is "from a pod".
    pub pod_cidrs: Vec<IpNet>,
    /// Masquerade all service traffic (kube-proxy's --masquerade-all).
    pub masquerade_all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Goto(String),
    /// Nothing serves this address at all: ICMP unreachable / TCP reset at once.
    Reject,
    /// Local traffic policy and no endpoint on this node.
    Drop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Traffic to `daddr:port` whose source is not a pod is marked for masquerade.
    MasqueradeUnlessFromPods {
        daddr: IpAddr,
        proto: Proto,
        port: u16,
        pod_cidrs: Vec<IpNet>,
    },
    /// Traffic to `daddr:port` is marked for masquerade.
    MasqueradeTo {
        daddr: IpAddr,
        proto: Proto,
        port: u16,
    },
    /// Mark for masquerade.
    Masquerade,
    /// Source is a pod: goto `chain`.
    GotoIfFromPods {
        pod_cidrs: Vec<IpNet>,
        chain: String,
    },
    /// Source is an address of this node: mark for masquerade.
    MasqueradeIfFromNode,
    /// Source is an address of this node: goto `chain`.
    GotoIfFromNode {
        chain: String,
    },
    Goto(String),
    /// Source remembered in affinity `set`: goto `chain`.
    Affinity {
        set: String,
        chain: String,
    },
    /// One of these chains, uniformly at random.
    Balance(Vec<String>),
    /// Source is this endpoint itself (hairpin): mark for masquerade.
    MasqueradeIfSource(IpAddr),
    /// Remember the source in affinity `set` (refreshing its timeout).
    RememberClient {
        set: String,
    },
    Dnat {
        proto: Proto,
        addr: IpAddr,
        port: u16,
    },
    /// Drop unless the source is in these ranges (loadBalancerSourceRanges).
    DropUnlessFrom(Vec<IpNet>),
}

/// Everything one service port contributes to the ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRules {
    pub service_ips: Vec<(IpAddr, Proto, u16, Verdict)>,
    pub nodeports: Vec<(Proto, u16, Verdict)>,
    pub no_endpoint_ips: Vec<(IpAddr, Proto, u16, Verdict)>,
    pub no_endpoint_nodeports: Vec<(Proto, u16, Verdict)>,
    pub firewall_ips: Vec<(IpAddr, Proto, u16, Verdict)>,
    /// Chains in creation order (a chain's targets come before it is jumped to).
    pub chains: BTreeMap<String, Vec<Rule>>,
    /// Affinity sets: name → timeout in seconds.
    pub affinity_sets: BTreeMap<String, u32>,
    /// `healthCheckNodePort` to serve, with whether this node has a local endpoint.
    pub health_check: Option<(u16, usize)>,
}

fn port_id(p: &ServicePort) -> String {
    let port = if p.name.port.is_empty() {
        format!("p{}", p.port)
    } else {
        p.name.port.clone()
    };
    format!(
        "{}/{}/{}/{}",
        p.name.namespace,
        p.name.name,
        p.name.proto.as_str(),
        port
    )
}

pub fn endpoint_chain(p: &ServicePort, e: &Endpoint) -> String {
    format!("ep-{}@{}", port_id(p), e.key())
}

pub fn cluster_chain(p: &ServicePort) -> String {
    format!("svc-{}", port_id(p))
}

pub fn local_chain(p: &ServicePort) -> String {
    format!("local-{}", port_id(p))
}

pub fn external_chain(p: &ServicePort) -> String {
    format!("ext-{}", port_id(p))
}

pub fn firewall_chain(p: &ServicePort) -> String {
    format!("fw-{}", port_id(p))
}

fn affinity_set(p: &ServicePort, e: &Endpoint) -> String {
    format!("aff-{}@{}", port_id(p), e.key())
}

/// Compiles one service port. Pure: the same inputs give the same rules.
pub fn compile(p: &ServicePort, endpoints: &[Endpoint], node: &NodeContext) -> ServiceRules {
    let mut r = ServiceRules::default();
    let pod_cidrs: Vec<IpNet> = node
        .pod_cidrs
        .iter()
        .filter(|n| Family::of(&n.addr()) == p.family)
        .copied()
        .collect();
    let cat = categorize(p, endpoints);
    let proto = p.name.proto;

    // Endpoint chains for everything reachable from this node.
    let mut reachable: Vec<&Endpoint> = cat.cluster.iter().chain(cat.local.iter()).collect();
    reachable.sort();
    reachable.dedup();
    for e in &reachable {
        let mut rules = vec![Rule::MasqueradeIfSource(e.ip)];
        if let Some(timeout) = p.affinity_seconds {
            let set = affinity_set(p, e);
            r.affinity_sets.insert(set.clone(), timeout);
            rules.push(Rule::RememberClient { set });
        }
        rules.push(Rule::Dnat {
            proto,
            addr: e.ip,
            port: e.port,
        });
        r.chains.insert(endpoint_chain(p, e), rules);
    }
    let policy_chain = |r: &mut ServiceRules, name: String, eps: &[Endpoint]| {
        let mut rules = Vec::new();
        if p.affinity_seconds.is_some() {
            for e in eps {
                rules.push(Rule::Affinity {
                    set: affinity_set(p, e),
                    chain: endpoint_chain(p, e),
                });
            }
        }
        rules.push(Rule::Balance(
            eps.iter().map(|e| endpoint_chain(p, e)).collect(),
        ));
        r.chains.insert(name, rules);
    };
    let uses_cluster = !cat.cluster.is_empty() && p.uses_cluster_endpoints();
    let uses_local = !cat.local.is_empty() && p.uses_local_endpoints();
    if uses_cluster {
        policy_chain(&mut r, cluster_chain(p), &cat.cluster);
    }
    if uses_local {
        policy_chain(&mut r, local_chain(p), &cat.local);
    }

    let has_endpoints = cat.any;
    let (internal_chain, has_internal) = if p.internal_local {
        (local_chain(p), has_endpoints && uses_local)
    } else {
        (cluster_chain(p), has_endpoints)
    };
    let (external_policy, has_external) = if p.external_local {
        (local_chain(p), has_endpoints && uses_local)
    } else {
        (cluster_chain(p), has_endpoints)
    };
    let (internal_verdict, external_verdict) = if !has_endpoints {
        (Verdict::Reject, Verdict::Reject)
    } else {
        (Verdict::Drop, Verdict::Drop)
    };

    // ClusterIP.
    if has_internal {
        r.service_ips.push((
            p.cluster_ip,
            proto,
            p.port,
            Verdict::Goto(internal_chain.clone()),
        ));
        let masq = if node.masquerade_all {
            Rule::MasqueradeTo {
                daddr: p.cluster_ip,
                proto,
                port: p.port,
            }
        } else {
            Rule::MasqueradeUnlessFromPods {
                daddr: p.cluster_ip,
                proto,
                port: p.port,
                pod_cidrs: pod_cidrs.clone(),
            }
        };
        if let Some(rules) = r.chains.get_mut(&internal_chain) {
            rules.insert(0, masq);
        }
    } else {
        r.no_endpoint_ips
            .push((p.cluster_ip, proto, p.port, internal_verdict));
    }

    // External IPs, load-balancer addresses and the node port go through the external chain.
    let ext = external_chain(p);
    let uses_ext = has_endpoints && p.externally_accessible();
    for ip in p.external_ips.iter().chain(&p.load_balancer_ips) {
        if uses_ext {
            r.service_ips
                .push((*ip, proto, p.port, Verdict::Goto(ext.clone())));
        }
        if !has_external {
            r.no_endpoint_ips
                .push((*ip, proto, p.port, external_verdict.clone()));
        }
    }
    if !p.load_balancer_ips.is_empty() && !p.source_ranges.is_empty() {
        let fw = firewall_chain(p);
        r.chains.insert(
            fw.clone(),
            vec![Rule::DropUnlessFrom(p.source_ranges.clone())],
        );
        for ip in &p.load_balancer_ips {
            r.firewall_ips
                .push((*ip, proto, p.port, Verdict::Goto(fw.clone())));
        }
    }
    if p.node_port != 0 {
        if uses_ext {
            r.nodeports
                .push((proto, p.node_port, Verdict::Goto(ext.clone())));
        }
        if !has_external {
            r.no_endpoint_nodeports
                .push((proto, p.node_port, external_verdict));
        }
    }
    if uses_ext {
        let mut rules = Vec::new();
        if !p.external_local {
            // Cluster policy: the endpoint may be on another node, so the reply must come back here.
            rules.push(Rule::Masquerade);
        } else {
            // Pods reaching an external address of the service act as if they went out and
            // came back in through a load balancer: neither policy applies to them.
            if uses_cluster {
                rules.push(Rule::GotoIfFromPods {
                    pod_cidrs: pod_cidrs.clone(),
                    chain: cluster_chain(p),
                });
            }
            // The node itself: its source is a local address (possibly the LB IP), masquerade it.
            rules.push(Rule::MasqueradeIfFromNode);
            if uses_cluster {
                rules.push(Rule::GotoIfFromNode {
                    chain: cluster_chain(p),
                });
            }
        }
        if has_external {
            rules.push(Rule::Goto(external_policy));
        }
        r.chains.insert(ext, rules);
    }
    if p.external_local && p.health_check_node_port != 0 {
        r.health_check = Some((p.health_check_node_port, cat.local.len()));
    }
    r
}

#[cfg(test)]
mod tests;
