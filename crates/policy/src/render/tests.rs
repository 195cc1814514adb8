use super::*;
use crate::plan::PortAllow;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn range(a: &str, b: &str) -> IpRange {
    IpRange { first: ip(a), last: ip(b) }
}

fn one(a: &str) -> IpRange {
    range(a, a)
}

fn ports(peer: IpRange, protocol: Protocol, first: u16, last: u16) -> PortAllow {
    PortAllow { peer, protocol, first, last }
}

fn keys(o: &Objects, set: &str) -> Vec<ElemKey> {
    o.sets[set].elements.keys().cloned().collect()
}

fn v4(s: &str) -> Value {
    Value::ip(ip(s))
}

fn tuple(a: &str, proto: u8, port: u16) -> Value {
    Value::concat([v4(a), Value::proto(proto), Value::port(port)])
}

#[test]
fn a_group_with_peers_on_all_ports_and_on_some_ports_has_both_sets() {
    let allow = AllowSet {
        any: vec![range("10.0.0.0", "10.0.0.255"), one("fd00::1")],
        ports: vec![ports(one("10.1.0.5"), Protocol::Tcp, 80, 80), ports(range("10.2.0.0", "10.2.0.255"), Protocol::Udp, 1000, 2000)],
    };
    let g = GroupId(0xab);
    let o = group(Dir::Ingress, g, &allow).unwrap();
    let chain = "in-00000000000000ab";
    assert_eq!(o.sets.keys().cloned().collect::<Vec<_>>(), [format!("{chain}-any4"), format!("{chain}-any6"), format!("{chain}-p4")]);
    assert_eq!(keys(&o, &format!("{chain}-any4")), [(v4("10.0.0.0"), Some(v4("10.0.0.255")))]);
    assert_eq!(keys(&o, &format!("{chain}-any6")), [(Value::ip(ip("fd00::1")), None)]);
    assert_eq!(
        keys(&o, &format!("{chain}-p4")),
        [(tuple("10.1.0.5", 6, 80), None), (tuple("10.2.0.0", 17, 1000), Some(tuple("10.2.0.255", 17, 2000)))]
    );
    let rules = &o.chains[chain].rules;
    // any4, p4, any6, then the final drop.
    assert_eq!(rules.len(), 4);
    // Ingress judges the peer as the source.
    assert!(rules[0].contains(&Expr::ip_saddr(Reg::R1)));
    assert!(rules[1].contains(&Expr::ip_saddr(Reg::r32(0))) && rules[1].contains(&Expr::th_dport(Reg::r32(2))));
    assert!(rules[2].contains(&Expr::ip6_saddr(Reg::R1)));
    assert!(rules[0].contains(&log(FlowMark::IngressAllowed)) && rules[0].last() == Some(&Expr::ret()));
    assert_eq!(rules[3], vec![Expr::counter(), log(FlowMark::IngressDenied), Expr::drop()]);
}

#[test]
fn egress_groups_match_the_destination() {
    let allow = AllowSet { any: vec![], ports: vec![ports(one("fd00::5"), Protocol::Sctp, 80, 81)] };
    let o = group(Dir::Egress, GroupId(1), &allow).unwrap();
    let rules = &o.chains["eg-0000000000000001"].rules;
    assert_eq!(rules.len(), 2);
    assert!(rules[0].contains(&Expr::ip6_daddr(Reg::r32(0))) && rules[0].contains(&Expr::l4proto(Reg::r32(4))) && rules[0].contains(&Expr::th_dport(Reg::r32(5))));
    assert!(rules[0].contains(&log(FlowMark::EgressAllowed)));
    let key = |p: u16| Value::concat([Value::ip(ip("fd00::5")), Value::proto(132), Value::port(p)]);
    assert_eq!(keys(&o, "eg-0000000000000001-p6"), [(key(80), Some(key(81)))]);
}

#[test]
fn an_empty_allow_set_denies_everything() {
    let o = group(Dir::Ingress, GroupId(2), &AllowSet::default()).unwrap();
    assert!(o.sets.is_empty());
    assert_eq!(o.chains["in-0000000000000002"].rules, vec![vec![Expr::counter(), log(FlowMark::IngressDenied), Expr::drop()]]);
}

#[test]
fn overlapping_peers_and_ports_become_disjoint_elements() {
    let allow = AllowSet {
        any: vec![range("10.0.0.0", "10.0.0.9"), range("10.0.0.5", "10.0.0.20")],
        ports: vec![ports(range("10.0.0.0", "10.0.0.255"), Protocol::Tcp, 80, 80), ports(one("10.0.0.7"), Protocol::Tcp, 80, 90)],
    };
    let o = group(Dir::Ingress, GroupId(3), &allow).unwrap();
    assert_eq!(keys(&o, "in-0000000000000003-any4"), [(v4("10.0.0.0"), Some(v4("10.0.0.20")))]);
    assert_eq!(
        keys(&o, "in-0000000000000003-p4"),
        [(tuple("10.0.0.0", 6, 80), Some(tuple("10.0.0.255", 6, 80))), (tuple("10.0.0.7", 6, 81), Some(tuple("10.0.0.7", 6, 90)))]
    );
}

#[test]
fn a_range_mixing_families_is_refused_naming_the_group() {
    let allow = AllowSet { any: vec![range("10.0.0.1", "fd00::1")], ports: vec![] };
    let e = group(Dir::Egress, GroupId(4), &allow).unwrap_err();
    assert!(e.contains("0000000000000004") && e.contains("10.0.0.1-fd00::1"), "{e}");
}

#[test]
fn the_plan_maps_each_isolated_address_to_its_groups_chain() {
    let (a, b) = (GroupId(10), GroupId(11));
    let plan = NodePlan {
        ingress: [(ip("10.244.0.2"), a), (ip("10.244.0.3"), a), (ip("fd00::2"), b)].into(),
        egress: [(ip("10.244.0.2"), b)].into(),
        groups: [(a, AllowSet::default()), (b, AllowSet { any: vec![one("10.244.0.9")], ports: vec![] })].into(),
    };
    let o = render(&plan).unwrap();
    let jump = |s: &str, k: &str| o.sets[s].elements[&(Value::ip(ip(k)), None)].data.clone();
    assert_eq!(jump("ingress4", "10.244.0.2"), Some(Verdict::Jump("in-000000000000000a".into()).into()));
    assert_eq!(jump("ingress4", "10.244.0.3"), Some(Verdict::Jump("in-000000000000000a".into()).into()));
    assert_eq!(jump("ingress6", "fd00::2"), Some(Verdict::Jump("in-000000000000000b".into()).into()));
    assert_eq!(jump("egress4", "10.244.0.2"), Some(Verdict::Jump("eg-000000000000000b".into()).into()));
    assert!(o.sets["egress6"].elements.is_empty());
    // Group b is used in both directions: a chain each.
    let chains: Vec<&str> = o.chains.keys().map(String::as_str).collect();
    assert_eq!(chains, ["eg-000000000000000b", "forward", "in-000000000000000a", "in-000000000000000b", "input"]);
    assert_eq!(o.sets.len(), 4 + 2);
}

#[test]
fn a_plan_naming_an_undefined_group_is_refused() {
    let plan = NodePlan { ingress: [(ip("10.244.0.2"), GroupId(7))].into(), ..Default::default() };
    let e = render(&plan).unwrap_err();
    assert!(e.contains("10.244.0.2") && e.contains("0000000000000007"), "{e}");
}

#[test]
fn the_base_chains_judge_egress_before_ingress_and_input_only_egress() {
    let o = skeleton();
    let vmaps = |c: &str| -> Vec<String> {
        o.chains[c].rules.iter().flat_map(|r| r.iter()).filter_map(|e| match e {
            Expr::Lookup { set, dreg: Some(_), .. } => Some(set.clone()),
            _ => None,
        }).collect()
    };
    assert_eq!(vmaps(FORWARD), ["egress4", "egress6", "ingress4", "ingress6"]);
    assert_eq!(vmaps(INPUT), ["egress4", "egress6"]);
    assert_eq!(o.chains[FORWARD].rules[0], established());
}

#[test]
fn objects_survive_a_round_trip_through_a_ruleset() {
    let g = GroupId(5);
    let plan = NodePlan {
        ingress: [(ip("10.244.0.2"), g)].into(),
        egress: BTreeMap::new(),
        groups: [(g, AllowSet { any: vec![one("10.0.0.1")], ports: vec![ports(one("10.0.0.2"), Protocol::Udp, 53, 53)] })].into(),
    };
    let o = render(&plan).unwrap();
    assert_eq!(Objects::from_ruleset(&o.to_ruleset()), o);
}
