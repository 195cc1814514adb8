//! Routes between nodes for the `direct` backend (Calico-style, no encapsulation):
//! each other node's pod CIDRs via that node's InternalIP of the same family. Pure; the
//! node agent applies the plan in the node's netns. (The `vxlan` backend's plan is in
//! `overlay`.)

use ipnet::IpNet;
use std::net::IpAddr;

/// What the plan needs of a Node object.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRoutes {
    pub name: String,
    pub internal_ips: Vec<IpAddr>,
    pub pod_cidrs: Vec<IpNet>,
    /// The node's `weft.dev/vtep-mac` annotation as written (the vxlan backend's).
    pub vtep_mac: Option<String>,
}

/// (destination, gateway) pairs this node needs, sorted.
pub fn plan(this: &str, nodes: &[NodeRoutes]) -> Vec<(IpNet, IpAddr)> {
    let mut out = Vec::new();
    for n in nodes.iter().filter(|n| n.name != this) {
        for cidr in &n.pod_cidrs {
            let gw = n.internal_ips.iter().find(|ip| ip.is_ipv4() == matches!(cidr, IpNet::V4(_)));
            if let Some(gw) = gw {
                out.push((*cidr, *gw));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ips: &[&str], cidrs: &[&str]) -> NodeRoutes {
        NodeRoutes { name: name.into(), internal_ips: ips.iter().map(|s| s.parse().unwrap()).collect(), pod_cidrs: cidrs.iter().map(|s| s.parse().unwrap()).collect(), vtep_mac: None }
    }

    #[test]
    fn each_other_nodes_pod_cidr_goes_via_its_address_of_the_same_family() {
        let nodes = [
            node("node-1", &["10.99.0.2"], &["10.244.0.0/24"]),
            node("node-2", &["10.99.0.3", "fd00:99::3"], &["10.244.1.0/24", "fd00:10:244:1::/64"]),
            node("node-3", &[], &["10.244.2.0/24"]),
        ];
        let p = plan("node-1", &nodes);
        assert_eq!(
            p,
            vec![("10.244.1.0/24".parse().unwrap(), "10.99.0.3".parse().unwrap()), ("fd00:10:244:1::/64".parse().unwrap(), "fd00:99::3".parse().unwrap())]
        );
    }

    #[test]
    fn a_node_without_an_address_or_cidr_gets_no_route() {
        let nodes = [node("node-1", &["10.99.0.2"], &["10.244.0.0/24"]), node("node-2", &["10.99.0.3"], &[])];
        assert!(plan("node-1", &nodes).is_empty());
    }
}
