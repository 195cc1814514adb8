//! The `vxlan` backend's plan (Flannel-style): from this node and all Node objects to
//! what the node's VXLAN device needs. Pure; the node agent applies it.
//!
//! Each node has one VXLAN device ([`DEVICE`], VNI 1, UDP 8472, no learning) whose
//! MAC (the VTEP MAC) it publishes in the [`VTEP_MAC_ANNOTATION`] of its Node. For
//! every other node, with the gateway being the network address (`.0`) of that node's
//! pod CIDR:
//!
//! - a route: its pod CIDR via the gateway, `onlink`, out of the device;
//! - a permanent neighbour: the gateway is at its VTEP MAC (no ARP over the overlay);
//! - an FDB entry: frames for its VTEP MAC go to its node IP (no flooding).
//!
//! IPv6 pod CIDRs ride the same device (the underlay family decides only the VTEP
//! addresses). This node's own gateways go on its device as /32 (/128) addresses, so
//! traffic the node itself sends to remote pods leaves with an address that the remote
//! pods route back over the overlay.

use crate::routes::NodeRoutes;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use weft_kernel::Mac;

/// The device's name in each node's netns (as Flannel's `flannel.1`).
pub const DEVICE: &str = "weft.1";
pub const VNI: u32 = 1;
/// The Linux (and Flannel) VXLAN port; IANA's is 4789.
pub const PORT: u16 = 8472;
/// Where a node publishes its VTEP MAC (as Flannel's `backend-data`).
pub const VTEP_MAC_ANNOTATION: &str = "weft.dev/vtep-mac";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VxlanPlan {
    /// Addresses of this node's device: the gateway of each of its own pod CIDRs.
    pub addresses: BTreeSet<IpNet>,
    /// (another node's pod CIDR, its gateway): onlink, out of the device.
    pub routes: BTreeSet<(IpNet, IpAddr)>,
    /// (gateway, VTEP MAC) permanent neighbours on the device.
    pub neighbours: BTreeSet<(IpAddr, Mac)>,
    /// (VTEP MAC, node IP) FDB entries on the device.
    pub fdb: BTreeSet<(Mac, IpAddr)>,
    /// Nodes left out of the plan and why, for logs: each names the node and field.
    pub skipped: Vec<String>,
}

/// The gateway of a pod CIDR on the overlay: its network address.
pub fn gateway(cidr: &IpNet) -> IpAddr {
    cidr.network()
}

/// The plan for node `this`, whose VTEP (tunnel source) address is `local`.
pub fn plan(this: &str, local: IpAddr, nodes: &[NodeRoutes]) -> VxlanPlan {
    let mut p = VxlanPlan::default();
    if let Some(me) = nodes.iter().find(|n| n.name == this) {
        for c in &me.pod_cidrs {
            let host = if c.addr().is_ipv4() { 32 } else { 128 };
            p.addresses.insert(IpNet::new(gateway(c), host).expect("a host prefix is valid"));
        }
    }
    // Each other node's VTEP, when it has everything the overlay needs.
    let mut vteps: Vec<(&NodeRoutes, Mac, IpAddr)> = Vec::new();
    for n in nodes.iter().filter(|n| n.name != this && !n.pod_cidrs.is_empty()) {
        let Some(raw) = n.vtep_mac.as_deref() else {
            p.skipped.push(format!("node {}: no {VTEP_MAC_ANNOTATION} annotation yet (its agent publishes it once its {DEVICE} device is up)", n.name));
            continue;
        };
        let mac = match raw.parse::<Mac>() {
            Ok(m) if m.0[0] & 1 == 0 && m.0 != [0; 6] => m,
            _ => {
                p.skipped.push(format!("node {}: annotation {VTEP_MAC_ANNOTATION} {raw:?} is not a unicast MAC address (want e.g. 02:42:0a:f4:01:00); its agent rewrites it on its next sync", n.name));
                continue;
            }
        };
        let Some(ip) = n.internal_ips.iter().find(|ip| ip.is_ipv4() == local.is_ipv4()) else {
            p.skipped.push(format!("node {}: no InternalIP of the same family as this node's VTEP address {local} in status.addresses", n.name));
            continue;
        };
        vteps.push((n, mac, *ip));
    }
    // An FDB entry maps one MAC to one node: a MAC claimed twice (or claimed by this
    // node's own device) cannot be told apart, so those nodes wait for a new MAC.
    let mut claims: BTreeMap<Mac, usize> = BTreeMap::new();
    for (_, mac, _) in &vteps {
        *claims.entry(*mac).or_default() += 1;
    }
    let own = nodes.iter().find(|n| n.name == this).and_then(|n| n.vtep_mac.as_deref()).and_then(|m| m.parse::<Mac>().ok());
    for (n, mac, ip) in vteps {
        if claims[&mac] > 1 || Some(mac) == own {
            p.skipped.push(format!("node {}: its {VTEP_MAC_ANNOTATION} {mac} is also another node's; left out until one of them changes", n.name));
            continue;
        }
        for c in &n.pod_cidrs {
            let gw = gateway(c);
            p.routes.insert((*c, gw));
            p.neighbours.insert((gw, mac));
        }
        p.fdb.insert((mac, ip));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ips: &[&str], cidrs: &[&str], mac: Option<&str>) -> NodeRoutes {
        NodeRoutes {
            name: name.into(),
            internal_ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
            pod_cidrs: cidrs.iter().map(|s| s.parse().unwrap()).collect(),
            vtep_mac: mac.map(str::to_string),
        }
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }
    const LOCAL: &str = "10.99.0.2";
    const M2: &str = "02:00:00:00:00:02";
    const M3: &str = "02:00:00:00:00:03";

    fn three() -> Vec<NodeRoutes> {
        vec![
            node("node-1", &[LOCAL], &["10.244.0.0/24"], Some("02:00:00:00:00:01")),
            node("node-2", &["10.99.0.3"], &["10.244.1.0/24"], Some(M2)),
            node("node-3", &["10.99.0.4"], &["10.244.2.0/24"], Some(M3)),
        ]
    }

    #[test]
    fn every_other_node_gets_a_route_via_its_gateway_a_neighbour_and_an_fdb_entry() {
        let p = plan("node-1", ip(LOCAL), &three());
        assert_eq!(p.addresses, [net("10.244.0.0/32")].into());
        assert_eq!(p.routes, [(net("10.244.1.0/24"), ip("10.244.1.0")), (net("10.244.2.0/24"), ip("10.244.2.0"))].into());
        assert_eq!(p.neighbours, [(ip("10.244.1.0"), mac(M2)), (ip("10.244.2.0"), mac(M3))].into());
        assert_eq!(p.fdb, [(mac(M2), ip("10.99.0.3")), (mac(M3), ip("10.99.0.4"))].into());
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn a_node_added_or_removed_adds_or_removes_exactly_its_entries() {
        let mut nodes = three();
        let before = plan("node-1", ip(LOCAL), &nodes);
        nodes.push(node("node-4", &["10.99.0.5"], &["10.244.3.0/24"], Some("02:00:00:00:00:04")));
        let after = plan("node-1", ip(LOCAL), &nodes);
        assert_eq!(after.routes.difference(&before.routes).cloned().collect::<Vec<_>>(), vec![(net("10.244.3.0/24"), ip("10.244.3.0"))]);
        assert_eq!(after.fdb.difference(&before.fdb).cloned().collect::<Vec<_>>(), vec![(mac("02:00:00:00:00:04"), ip("10.99.0.5"))]);
        assert_eq!(after.neighbours.len(), before.neighbours.len() + 1);
        nodes.retain(|n| n.name != "node-2");
        let removed = plan("node-1", ip(LOCAL), &nodes);
        assert!(!removed.routes.iter().any(|(c, _)| *c == net("10.244.1.0/24")));
        assert!(!removed.neighbours.iter().any(|(_, m)| *m == mac(M2)));
        assert!(!removed.fdb.iter().any(|(m, _)| *m == mac(M2)));
        assert_eq!(removed.routes.len(), 2);
    }

    #[test]
    fn a_node_ip_change_moves_only_its_fdb_entry() {
        let mut nodes = three();
        let before = plan("node-1", ip(LOCAL), &nodes);
        nodes[1].internal_ips = vec![ip("10.99.0.30")];
        let after = plan("node-1", ip(LOCAL), &nodes);
        assert_eq!((after.routes.clone(), after.neighbours.clone()), (before.routes, before.neighbours));
        assert!(after.fdb.contains(&(mac(M2), ip("10.99.0.30"))) && !after.fdb.contains(&(mac(M2), ip("10.99.0.3"))));
    }

    #[test]
    fn a_vtep_mac_change_moves_its_neighbour_and_fdb_entries() {
        let mut nodes = three();
        nodes[1].vtep_mac = Some("02:aa:00:00:00:02".into());
        let p = plan("node-1", ip(LOCAL), &nodes);
        assert!(p.neighbours.contains(&(ip("10.244.1.0"), mac("02:aa:00:00:00:02"))) && !p.neighbours.iter().any(|(_, m)| *m == mac(M2)));
        assert!(p.fdb.contains(&(mac("02:aa:00:00:00:02"), ip("10.99.0.3"))) && !p.fdb.iter().any(|(m, _)| *m == mac(M2)));
    }

    #[test]
    fn dual_stack_pod_cidrs_share_the_device_and_the_ipv4_vtep() {
        let nodes = [
            node("node-1", &[LOCAL], &["10.244.0.0/24", "fd00:10:244::/64"], Some("02:00:00:00:00:01")),
            node("node-2", &["10.99.0.3"], &["10.244.1.0/24", "fd00:10:244:1::/64"], Some(M2)),
        ];
        let p = plan("node-1", ip(LOCAL), &nodes);
        assert_eq!(p.addresses, [net("10.244.0.0/32"), net("fd00:10:244::/128")].into());
        assert_eq!(p.routes, [(net("10.244.1.0/24"), ip("10.244.1.0")), (net("fd00:10:244:1::/64"), ip("fd00:10:244:1::"))].into());
        assert_eq!(p.neighbours, [(ip("10.244.1.0"), mac(M2)), (ip("fd00:10:244:1::"), mac(M2))].into());
        assert_eq!(p.fdb, [(mac(M2), ip("10.99.0.3"))].into());
    }

    #[test]
    fn the_vtep_is_the_remote_address_of_the_local_vteps_family() {
        let nodes = [node("node-1", &["fd00:99::2"], &["10.244.0.0/24"], None), node("node-2", &["10.99.0.3", "fd00:99::3"], &["10.244.1.0/24"], Some(M2))];
        assert_eq!(plan("node-1", ip("fd00:99::2"), &nodes).fdb, [(mac(M2), ip("fd00:99::3"))].into());
        let v4_only = [nodes[0].clone(), node("node-2", &["10.99.0.3"], &["10.244.1.0/24"], Some(M2))];
        let p = plan("node-1", ip("fd00:99::2"), &v4_only);
        assert!(p.routes.is_empty() && p.fdb.is_empty());
        assert!(p.skipped[0].contains("node-2") && p.skipped[0].contains("InternalIP"), "{:?}", p.skipped);
    }

    #[test]
    fn nodes_without_a_mac_or_cidr_or_with_a_bad_mac_are_left_out_with_the_reason() {
        let nodes = [
            node("node-1", &[LOCAL], &["10.244.0.0/24"], Some("02:00:00:00:00:01")),
            node("node-2", &["10.99.0.3"], &["10.244.1.0/24"], None),
            node("node-3", &["10.99.0.4"], &["10.244.2.0/24"], Some("not-a-mac")),
            node("node-4", &["10.99.0.5"], &["10.244.3.0/24"], Some("01:00:5e:00:00:01")),
            node("node-5", &["10.99.0.6"], &[], Some("02:00:00:00:00:05")),
        ];
        let p = plan("node-1", ip(LOCAL), &nodes);
        assert!(p.routes.is_empty() && p.neighbours.is_empty() && p.fdb.is_empty(), "{p:?}");
        assert_eq!(p.skipped.len(), 3, "{:?}", p.skipped);
        assert!(p.skipped[0].contains("node-2") && p.skipped[0].contains(VTEP_MAC_ANNOTATION));
        assert!(p.skipped[1].contains("node-3") && p.skipped[1].contains("\"not-a-mac\""));
        assert!(p.skipped[2].contains("node-4") && p.skipped[2].contains("unicast"));
    }

    #[test]
    fn a_mac_claimed_twice_or_equal_to_ours_leaves_those_nodes_out() {
        let mut nodes = three();
        nodes[2].vtep_mac = Some(M2.into());
        nodes.push(node("node-4", &["10.99.0.5"], &["10.244.3.0/24"], Some("02:00:00:00:00:01")));
        nodes.push(node("node-5", &["10.99.0.6"], &["10.244.4.0/24"], Some("02:00:00:00:00:05")));
        let p = plan("node-1", ip(LOCAL), &nodes);
        assert_eq!(p.fdb, [(mac("02:00:00:00:00:05"), ip("10.99.0.6"))].into());
        assert_eq!(p.routes.len(), 1);
        let skipped = p.skipped.join("\n");
        assert!(["node-2", "node-3", "node-4"].iter().all(|n| skipped.contains(n)), "{skipped}");
    }

    #[test]
    fn a_node_alone_plans_only_its_own_gateway_address() {
        let p = plan("node-1", ip(LOCAL), &three()[..1]);
        assert_eq!(p, VxlanPlan { addresses: [net("10.244.0.0/32")].into(), ..Default::default() });
        assert_eq!(plan("node-9", ip(LOCAL), &[]), VxlanPlan::default());
    }
}
