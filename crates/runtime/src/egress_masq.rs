//! Pod traffic that leaves the cluster is masqueraded to the node's address (the CNI's
//! `ipMasq`, Flannel's and Calico's default): source in the cluster's pod CIDRs,
//! destination outside them. Pod-to-pod traffic, on one node or across nodes, keeps its
//! source address. A table of its own, `inet weft-egress`, in the node's netns,
//! replaced atomically at each agent start (it holds no state).

use ipnet::IpNet;
use std::net::IpAddr;
use weft_kernel::nft::*;

pub const TABLE: &str = "weft-egress";

fn last(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => IpAddr::V4(n.broadcast()),
        IpNet::V6(n) => IpAddr::V6(n.broadcast()),
    }
}

/// The table for these cluster pod CIDRs. Pure.
pub fn ruleset(cluster_cidrs: &[IpNet]) -> Ruleset {
    let mut rs = Ruleset::new(Table::new(Family::Inet, TABLE));
    rs.chain(Chain::base("postrouting", ChainType::Nat, Hook::Postrouting, priority::SRCNAT).with_comment("pods reaching outside the cluster leave as the node"));
    for (set, key, v6) in [("pods4", KeyType::Ipv4Addr, false), ("pods6", KeyType::Ipv6Addr, true)] {
        let nets: Vec<&IpNet> = cluster_cidrs.iter().filter(|n| n.addr().is_ipv6() == v6).collect();
        if nets.is_empty() {
            continue;
        }
        let elems = nets.iter().map(|n| Element::range(Value::ip(n.network()), Value::ip(last(n)))).collect();
        rs.set(Set::new(set, &[key]).with_flags(SetFlags { interval: true, ..Default::default() }), elems);
        let (guard, saddr, daddr) = if v6 { (Expr::only_ipv6(), Expr::ip6_saddr(Reg::R1), Expr::ip6_daddr(Reg::R1)) } else { (Expr::only_ipv4(), Expr::ip_saddr(Reg::R1), Expr::ip_daddr(Reg::R1)) };
        let mut exprs = guard;
        exprs.extend([saddr, Expr::in_set(set, Reg::R1), daddr, Expr::not_in_set(set, Reg::R1), Expr::masquerade()]);
        rs.rule(Rule::new("postrouting", exprs));
    }
    rs
}

/// Writes the table into the node's netns (`None`: the calling thread's), unless the
/// kernel already has exactly it (a restart leaves a matching table alone).
pub fn apply(netns: Option<&std::path::Path>, cluster_cidrs: &[IpNet]) -> anyhow::Result<()> {
    let mut nft = match netns {
        Some(p) => Nft::open(&weft_kernel::Netns::open(p)?)?,
        None => Nft::current()?,
    };
    let want = ruleset(cluster_cidrs);
    if nft.ruleset(&want.table_ref())?.is_some_and(|have| have.canonical() == want.canonical()) {
        return Ok(());
    }
    nft.commit(Batch::new().replace_ruleset(&want))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_per_family_present() {
        let rs = ruleset(&["10.244.0.0/16".parse().unwrap()]);
        assert_eq!(rs.rules.len(), 1);
        assert_eq!(rs.sets.len(), 1);
        let rs = ruleset(&["10.244.0.0/16".parse().unwrap(), "fd00:10:244::/56".parse().unwrap()]);
        assert_eq!(rs.rules.len(), 2);
        assert!(matches!(rs.rules[1].exprs.last(), Some(Expr::Masquerade { .. })));
    }
}
