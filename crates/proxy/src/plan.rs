//! One service port's rules, compiled from the port, its endpoints and the node.
//!
//! The shape follows kube-proxy's nftables mode, whose semantics users rely on:
//! - the port's addresses are captured by map elements (`service_ips`, `nodeports`) that
//!   `goto` a per-service chain, so a packet costs one map lookup however many services exist;
//! - the cluster-policy chain (`svc-…`) and local-policy chain (`local-…`) end in a
//!   [`Rule::Balance`]: pick an endpoint at random (or the one a client is pinned to by
//!   session affinity) and DNAT to it. The renderer turns it into one lookup in a shard
//!   map keyed `service id . slot`, so the cost does not grow with endpoints either;
//! - the external chain (`ext-…`) handles NodePort, external IPs and load-balancer traffic:
//!   masquerade for Cluster policy; for Local policy keep the client's address, with the
//!   short-circuits for pods and the node itself that upstream has;
//! - addresses with no usable endpoints land in `no_endpoint_*` with Reject (nothing serves)
//!   or Drop (Local policy and nothing local), checked in the filter stage.
//!
//! Hairpin (a pod reaching itself through its service) needs no per-endpoint rule: the
//! renderer masquerades every DNATed, forwarded packet whose source is its destination.

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
    /// DNAT to one of `endpoints`, uniformly at random; with session affinity, a client
    /// that chose an endpoint of this chain within `affinity_seconds` gets the same one.
    Balance {
        endpoints: Vec<Target>,
        affinity_seconds: Option<u32>,
    },
    /// Drop unless the source is in these ranges (loadBalancerSourceRanges).
    DropUnlessFrom(Vec<IpNet>),
}

fn nets(n: &[IpNet]) -> String {
    n.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::MasqueradeUnlessFromPods { daddr, proto, port, pod_cidrs } => write!(f, "masquerade {daddr}:{port}/{} unless from pods ({})", proto.as_str(), nets(pod_cidrs)),
            Rule::MasqueradeTo { daddr, proto, port } => write!(f, "masquerade {daddr}:{port}/{}", proto.as_str()),
            Rule::Masquerade => write!(f, "masquerade"),
            Rule::GotoIfFromPods { pod_cidrs, chain } => write!(f, "from pods ({}): goto {chain}", nets(pod_cidrs)),
            Rule::MasqueradeIfFromNode => write!(f, "from this node: masquerade"),
            Rule::GotoIfFromNode { chain } => write!(f, "from this node: goto {chain}"),
            Rule::Goto(c) => write!(f, "goto {c}"),
            Rule::DropUnlessFrom(n) => write!(f, "drop unless from {}", nets(n)),
            Rule::Balance { endpoints, affinity_seconds } => {
                let eps: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
                write!(f, "dnat to one of {}", eps.join(", "))?;
                if let Some(s) = affinity_seconds {
                    write!(f, " (session affinity by client address, {s}s)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Goto(c) => write!(f, "goto {c}"),
            Verdict::Reject => write!(f, "reject (no endpoints)"),
            Verdict::Drop => write!(f, "drop (no local endpoints)"),
        }
    }
}

/// Where a connection is DNATed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub addr: IpAddr,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Everything one service port contributes to the ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRules {
    pub service_ips: Vec<(IpAddr, Proto, u16, Verdict)>,
    pub nodeports: Vec<(Proto, u16, Verdict)>,
    pub no_endpoint_ips: Vec<(IpAddr, Proto, u16, Verdict)>,
    pub no_endpoint_nodeports: Vec<(Proto, u16, Verdict)>,
    pub firewall_ips: Vec<(IpAddr, Proto, u16, Verdict)>,
    /// The service port's chains by name.
    pub chains: BTreeMap<String, Vec<Rule>>,
    /// `healthCheckNodePort` to serve, with whether this node has a local endpoint.
    pub health_check: Option<(u16, usize)>,
}

impl ServiceRules {
    /// Every endpoint any chain of this port may DNAT to.
    pub fn targets(&self) -> impl Iterator<Item = Target> + '_ {
        self.chains.values().flatten().flat_map(|r| match r {
            Rule::Balance { endpoints, .. } => endpoints.as_slice(),
            _ => &[],
        }).copied()
    }
}

fn port_id(p: &ServicePort) -> String {
    let port = if p.name.port.is_empty() {
        format!("p{}", p.port)
    } else {
        p.name.port.clone()
    };
    let family = match p.family {
        Family::V4 => "",
        Family::V6 => "/v6",
    };
    format!(
        "{}/{}/{}/{}{family}",
        p.name.namespace,
        p.name.name,
        p.name.proto.as_str(),
        port
    )
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

    let policy_chain = |r: &mut ServiceRules, name: String, eps: &[Endpoint]| {
        let endpoints = eps
            .iter()
            .map(|e| Target {
                addr: e.ip,
                port: e.port,
            })
            .collect();
        r.chains.insert(
            name,
            vec![Rule::Balance {
                endpoints,
                affinity_seconds: p.affinity_seconds,
            }],
        );
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
