//! How long the enforcer takes to write a node's table at scale, in a network namespace
//! of its own (needs root): the first apply, a restart's read-back that finds nothing
//! to change, one pod moving to another group, and one group's content changing.
//!
//! ```text
//! cargo run --release -p weft-policy --example apply_bench -- [pods] [groups] [peers]
//! ```
//! Defaults: 110 local pods (a node's usual maximum), 100 groups, 2,000 peers per group
//! (each a /32 on one TCP port, plus an ipBlock range on every port).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;
use weft_policy::apply::PolicyApplier;
use weft_policy::{AllowSet, GroupId, IpRange, NodePlan, PortAllow, Protocol};

fn addr(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

fn group(seed: u32, peers: u32) -> AllowSet {
    // Peers two addresses apart, so they stay separate elements.
    let base = u32::from(Ipv4Addr::new(10, 244, 0, 0)) + seed * 7;
    let ports = (0..peers).map(|i| PortAllow { peer: IpRange { first: addr(base + i * 2), last: addr(base + i * 2) }, protocol: Protocol::Tcp, first: 80 + (seed % 5) as u16, last: 80 + (seed % 5) as u16 }).collect();
    let block = u32::from(Ipv4Addr::new(172, 16, 0, 0)) + (seed << 8);
    AllowSet { any: vec![IpRange { first: addr(block), last: addr(block + 255) }], ports }
}

fn main() {
    let arg = |i: usize, d: u32| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (pods, groups, peers) = (arg(1, 110), arg(2, 100), arg(3, 2000));
    weft_testns::run("policy_apply_bench", |t| {
        let ns = weft_kernel::Netns::create(&t.dir().join("node")).unwrap();
        let mut plan = NodePlan::default();
        for g in 0..groups {
            plan.groups.insert(GroupId(g as u64), group(g, peers));
        }
        for p in 0..pods {
            let ip = addr(u32::from(Ipv4Addr::new(10, 244, 200, 2)) + p);
            plan.ingress.insert(ip, GroupId((p % groups) as u64));
            plan.egress.insert(ip, GroupId(((p + 1) % groups) as u64));
        }
        let mut ap = PolicyApplier::open(&ns).unwrap();
        let time = |what: &str, ap: &mut PolicyApplier, plan: &NodePlan| {
            let t = Instant::now();
            let r = ap.apply(plan).unwrap();
            println!("{what:<40} {:>9.2} ms  weight {:>8}  transactions {}", t.elapsed().as_secs_f64() * 1e3, r.weight, r.transactions);
        };
        println!("{pods} pods, {groups} groups, {peers} peers per group");
        time("first apply (empty netns)", &mut ap, &plan);
        drop(ap);
        let mut ap = PolicyApplier::open(&ns).unwrap();
        time("restart: read back, nothing to write", &mut ap, &plan);
        let mut moved = plan.clone();
        let first = *moved.ingress.keys().next().unwrap();
        moved.ingress.insert(first, GroupId(groups as u64 + 1));
        moved.groups.insert(GroupId(groups as u64 + 1), group(groups + 1, peers));
        time("one pod moves to a new group", &mut ap, &moved);
        let mut relabel = moved.clone();
        let second = *relabel.ingress.keys().nth(1).unwrap();
        relabel.ingress.insert(second, GroupId(groups as u64 + 1));
        time("one pod joins an existing group", &mut ap, &relabel);
        drop(ap);
        drop(ns);
        weft_kernel::Netns::remove(&t.dir().join("node")).unwrap();
    });
}
