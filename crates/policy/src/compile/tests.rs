//! compile_node: the content of a pod's groups, the sharing of groups, and what is left
//! out of a plan.

use crate::model::fixture::*;
use crate::model::{NamedPort, Protocol};
use crate::plan::{AllowSet, IpRange, PortAllow};
use serde_json::json;
use std::net::IpAddr;

fn range(first: &str, last: &str) -> IpRange {
    IpRange { first: first.parse().unwrap(), last: last.parse().unwrap() }
}

fn host(a: &str) -> IpRange {
    range(a, a)
}

fn allow(peer: IpRange, protocol: Protocol, first: u16, last: u16) -> PortAllow {
    PortAllow { peer, protocol, first, last }
}

#[test]
fn an_ingress_group_holds_the_union_of_its_policies_rules() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "from-b"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}], "ports": [{"port": 80}, {"port": 90, "endPort": 99}]}]}}));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "from-net"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.9.0.0/16", "except": ["10.9.1.0/24"]}}]},
                    {"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}, "podSelector": {"matchLabels": {"pod": "c"}}}], "ports": [{"protocol": "UDP", "port": "serve-81-udp"}, {"port": "serve-81-udp"}]}]}}));
    let plan = c.compile_node("n1");
    let a = c.pod(&key("x/a")).unwrap();
    let id = plan.ingress[&a.ips[0]];
    assert_eq!(plan.ingress[&a.ips[1]], id);
    assert_eq!(plan.ingress.len(), 2, "only x/a is isolated: {plan:?}");
    assert!(plan.egress.is_empty());
    let want = AllowSet {
        any: vec![range("10.9.0.0", "10.9.0.255"), range("10.9.2.0", "10.9.255.255")],
        ports: vec![
            allow(host("10.0.1.2"), Protocol::Tcp, 80, 80),
            allow(host("10.0.1.2"), Protocol::Tcp, 90, 99),
            allow(host("10.0.3.3"), Protocol::Udp, 81, 81),
            allow(host("fd00::1:2"), Protocol::Tcp, 80, 80),
            allow(host("fd00::1:2"), Protocol::Tcp, 90, 99),
            allow(host("fd00::3:3"), Protocol::Udp, 81, 81),
        ],
    };
    assert_eq!(plan.groups[&id], want);
    assert_eq!(plan.groups.len(), 1);
}

#[test]
fn a_rule_without_peers_is_every_address_of_both_families() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"], "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}, {"to": [{"podSelector": {}}]}]}}));
    let plan = c.compile_node("n1");
    let set = &plan.groups[&plan.egress[&ip(&c, "x/a")]];
    // Every pod of x, on every port: the three adjacent addresses of each family, merged.
    assert_eq!(set.any, vec![range("10.0.1.1", "10.0.1.3"), range("fd00::1:1", "fd00::1:3")]);
    // UDP/53 to everything but x's pods (allowed on every port already).
    assert_eq!(
        set.ports,
        vec![
            allow(range("0.0.0.0", "10.0.1.0"), Protocol::Udp, 53, 53),
            allow(range("10.0.1.4", "255.255.255.255"), Protocol::Udp, 53, 53),
            allow(range("::", "fd00::1:0"), Protocol::Udp, 53, 53),
            allow(range("fd00::1:4", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Protocol::Udp, 53, 53),
        ]
    );
}

#[test]
fn pods_with_equal_allow_sets_share_one_group() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}));
    let plan = c.compile_node("n1");
    assert_eq!(plan.groups.len(), 1, "{plan:?}");
    assert_eq!(plan.groups.values().next().unwrap(), &AllowSet::default());
    assert_eq!(plan.ingress.len(), 6);
    assert_eq!(plan.egress.len(), 6);
    // Different policies with the same content give the same group too.
    apply(&mut c, json!({"metadata": {"namespace": "y", "name": "deny-too"}, "spec": {"podSelector": {}}}));
    let n2 = c.compile_node("n2");
    let deny = *plan.groups.keys().next().unwrap();
    assert!(n2.ingress.iter().all(|(ip, g)| *g == deny || c.pod_by_ip(*ip).unwrap().key.namespace == "z"));
    assert_eq!(n2.ingress.len(), 6);
}

#[test]
fn named_ports_split_groups_only_where_the_numbers_differ() {
    let mut c = xyz();
    let web = |port| vec![NamedPort { name: "web".into(), port, protocol: Protocol::Tcp }];
    c.set_pod(pod("x/a", labels(&[("pod", "a")]), web(8080)));
    c.set_pod(pod("x/b", labels(&[("pod", "b")]), web(8080)));
    c.set_pod(pod("x/c", labels(&[("pod", "c")]), web(9090)));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": "web"}]}]}}));
    let plan = c.compile_node("n1");
    let group = |p: &str| plan.ingress[&ip(&c, p)];
    assert_eq!(group("x/a"), group("x/b"));
    assert_ne!(group("x/a"), group("x/c"));
    let ports = |p: &str| plan.groups[&group(p)].ports.iter().map(|a| (a.first, a.last)).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(ports("x/a"), [(8080, 8080)].into());
    assert_eq!(ports("x/c"), [(9090, 9090)].into());
}

#[test]
fn an_egress_named_port_lists_each_destination_with_its_own_number() {
    let mut c = xyz();
    c.set_pod(pod("y/b", labels(&[("pod", "b")]), vec![NamedPort { name: "serve-80-tcp".into(), port: 8000, protocol: Protocol::Tcp }]));
    c.set_pod(pod("z/c", labels(&[("pod", "c")]), vec![]));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "serve-80-tcp"}]}]}}));
    let plan = c.compile_node("n1");
    let set = &plan.groups[&plan.egress[&ip(&c, "x/a")]];
    assert!(set.any.is_empty());
    let mut want = Vec::new();
    for p in all_pods(&c).iter().filter(|p| *p != "z/c") {
        for addr in &c.pod(&key(p)).unwrap().ips {
            let port = if p == "y/b" { 8000 } else { 80 };
            want.push(allow(IpRange { first: *addr, last: *addr }, Protocol::Tcp, port, port));
        }
    }
    let mut got = set.ports.clone();
    // Adjacent pods with the same port are merged into one range; expand to compare.
    got = got
        .into_iter()
        .flat_map(|a| {
            let (f, l) = (crate::compile::ranges::Span::from_range(a.peer), a);
            (f.first..=f.last).map(move |n| PortAllow { peer: IpRange { first: crate::compile::ranges::to_ip(f.v6, n), last: crate::compile::ranges::to_ip(f.v6, n) }, ..l })
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn the_plan_holds_only_the_node_s_isolated_pods_with_addresses() {
    let mut c = xyz();
    let mut h = pod("x/h", labels(&[]), vec![]);
    h.host_network = true;
    h.ips = vec!["192.168.0.1".parse().unwrap()];
    c.set_pod(h);
    let mut pending = pod("x/p", labels(&[]), vec![]);
    pending.ips.clear();
    c.set_pod(pending);
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "deny"}, "spec": {"podSelector": {}}}));
    apply(&mut c, json!({"metadata": {"namespace": "y", "name": "deny"}, "spec": {"podSelector": {}}}));
    let plan = c.compile_node("n1");
    let keys: std::collections::BTreeSet<String> = plan.ingress.keys().map(|ip| c.pod_by_ip(*ip).unwrap().key.to_string()).collect();
    assert_eq!(keys, ["x/a", "x/b", "x/c"].iter().map(|s| s.to_string()).collect());
    assert!(!plan.ingress.contains_key(&"192.168.0.1".parse::<IpAddr>().unwrap()));
    assert_eq!(c.compile_node("n9"), Default::default());
}

#[test]
fn group_ids_are_a_stable_hash_of_the_content() {
    // Pinned (the values come from an independent FNV-1a over the same encoding): the
    // enforcer names kernel objects by these ids across restarts and builds.
    use crate::compile::canonical::group_id;
    let set = AllowSet { any: vec![host("10.0.0.1")], ports: vec![allow(host("fd00::1"), Protocol::Udp, 53, 53)] };
    assert_eq!(group_id(&AllowSet::default()).to_string(), "3b2de63ed5342877");
    assert_eq!(group_id(&set).to_string(), "7fd45b20a87df724");
    let other = AllowSet { ports: vec![allow(host("fd00::1"), Protocol::Tcp, 53, 53)], ..set.clone() };
    assert_ne!(group_id(&set), group_id(&other));
}

#[test]
fn compiling_is_deterministic_and_changes_are_reflected() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}}));
    let before = c.compile_node("n1");
    assert_eq!(before, c.compile_node("n1"));
    assert_eq!(before, c.clone().compile_node("n1"));
    c.set_namespace("z", labels(&[("ns", "z"), ("team", "blue")]));
    let after = c.compile_node("n1");
    assert_ne!(before, after);
    assert_eq!(after, c.clone().compile_node("n1"), "the cached compile equals a fresh one");
    let set = &after.groups[&after.ingress[&ip(&c, "x/a")]];
    assert!(set.admits(ip(&c, "z/b"), Protocol::Tcp, 80));
    assert!(!set.admits(ip(&c, "y/b"), Protocol::Tcp, 80));
}
