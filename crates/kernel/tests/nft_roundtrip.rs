//! nf_tables round trips: what a batch writes reads back equal, for every
//! object and expression kind, and incremental updates change exactly what
//! they say. Each test runs in a netns of its own.

use std::net::Ipv4Addr;
use std::time::Duration;
use weft_kernel::nft::*;

fn v4(s: &str) -> Value {
    Value::ipv4(s.parse::<Ipv4Addr>().unwrap())
}

fn svc_key(ip: &str, proto: u8, port: u16) -> Value {
    Value::concat([v4(ip), Value::proto(proto), Value::port(port)])
}

/// A table with one of everything weft's proxy and policy engine use.
fn everything() -> Ruleset {
    let mut rs = Ruleset::new(Table::new(Family::Inet, "weft-rt"));
    let services = Set::vmap("services", &[KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService]).with_comment("ClusterIPs");
    let dnat = Set::map("dnat-targets", &[KeyType::Integer32], &[KeyType::Ipv4Addr, KeyType::InetService]);
    let nets = Set::new("pod-cidrs", &[KeyType::Ipv4Addr]).with_flags(SetFlags { interval: true, ..Default::default() });
    let ranges = Set::new("allowed", &[KeyType::Ipv4Addr, KeyType::InetService]).with_flags(SetFlags { interval: true, ..Default::default() });
    let affinity = Set::new("affinity", &[KeyType::Ipv4Addr])
        .with_flags(SetFlags { dynamic: true, timeout: true, ..Default::default() })
        .with_timeout(Duration::from_secs(10800));
    let fixed = Set::new("node-ports", &[KeyType::InetService]).with_flags(SetFlags { constant: true, ..Default::default() });
    let marks = Set::new("marks", &[KeyType::Mark]).with_flags(SetFlags { timeout: true, ..Default::default() });
    let ifaces = Set::new("ifaces", &[KeyType::IfName]);
    rs.chain(Chain::base("nat-prerouting", ChainType::Nat, Hook::Prerouting, priority::DSTNAT))
        .chain(Chain::base("nat-output", ChainType::Nat, Hook::Output, priority::DSTNAT))
        .chain(Chain::base("nat-postrouting", ChainType::Nat, Hook::Postrouting, priority::SRCNAT))
        .chain(Chain::base("filter-forward", ChainType::Filter, Hook::Forward, priority::FILTER).with_policy(Policy::Drop).with_comment("policy"))
        .chain(Chain::base("mangle", ChainType::Route, Hook::Output, priority::MANGLE))
        .chain(Chain::regular("services"))
        .chain(Chain::regular("svc-a").with_comment("default/a:http"))
        .chain(Chain::regular("svc-b"))
        .chain(Chain::regular("reject-chain"))
        .set(services.clone(), vec![
            Element::verdict(svc_key("10.96.0.1", 6, 80), Verdict::Goto("svc-a".into())).with_comment("default/a"),
            Element::verdict(svc_key("10.96.0.2", 17, 53), Verdict::Jump("svc-b".into())),
            Element::verdict(svc_key("10.96.0.3", 6, 443), Verdict::Drop),
        ])
        .set(dnat.clone(), vec![
            Element::mapping(Value::u32(0), Value::concat([v4("10.244.1.2"), Value::port(8080)])),
            Element::mapping(Value::u32(1), Value::concat([v4("10.244.2.2"), Value::port(8080)])),
        ])
        .set(nets.clone(), vec![
            Element::range(v4("10.244.0.0"), v4("10.244.255.255")),
            Element::new(v4("192.0.2.1")),
            Element::range(v4("198.51.100.0"), v4("198.51.100.127")),
        ])
        .set(ranges.clone(), vec![
            Element::range(Value::concat([v4("10.0.0.0"), Value::port(80)]), Value::concat([v4("10.0.0.255"), Value::port(90)])),
            Element::new(Value::concat([v4("10.1.0.1"), Value::port(53)])),
        ])
        .set(affinity.clone(), vec![])
        .set(fixed.clone(), vec![Element::new(Value::port(30080)), Element::new(Value::port(30443))])
        .set(marks.clone(), vec![Element::new(Value::u32(0x4000)).with_timeout(Duration::from_secs(60))])
        .set(ifaces.clone(), vec![Element::new(Value::ifname("eth0"))]);
    let r = |chain: &str, exprs: Vec<Expr>| Rule::new(chain, exprs);
    rs.rule(r("nat-prerouting", vec![Expr::jump("services")]).with_comment("services"))
        .rule(r("nat-output", vec![Expr::jump("services")]))
        .rule(r("services", [Expr::ipv4_service_key(), vec![Expr::vmap("services", Reg::R1)]].concat()))
        .rule(r("services", [Expr::fib_daddr_is_local(), vec![Expr::th_dport(Reg::R1), Expr::in_set("node-ports", Reg::R1), Expr::counter(), Expr::accept()]].concat()))
        .rule(r("svc-a", vec![
            Expr::Ct { key: CtKey::ProtoDst, dir: Some(CtDir::Original), dreg: Reg::R2 },
            Expr::Numgen { dreg: Reg::R1, kind: NumgenKind::Random, modulus: 2, offset: 0 },
            Expr::map("dnat-targets", Reg::R1, Reg::R1),
            Expr::dnat(NatFamily::Ipv4, Reg::R1, Some(Reg::r32(1))),
        ]))
        .rule(r("svc-a", vec![Expr::ip_saddr(Reg::R1), Expr::update_set("affinity", Reg::R1, Some(Duration::from_secs(600))), Expr::load(Reg::R1, v4("10.244.1.2")), Expr::load(Reg::R2, Value::port(8080)), Expr::Nat {
            kind: NatKind::Dnat, family: NatFamily::Ipv4, addr: Some(Reg::R1), addr_max: None, proto: Some(Reg::R2), proto_max: None, flags: NatFlags::PERSISTENT,
        }]))
        .rule(r("svc-b", vec![Expr::Numgen { dreg: Reg::R1, kind: NumgenKind::Inc, modulus: 3, offset: 1 }, Expr::Range { sreg: Reg::R1, negate: false, from: Value::u32(1), to: Value::u32(2) }, Expr::ret()]))
        .rule(r("svc-b", vec![Expr::Limit { rate: 10, per: Duration::from_secs(60), burst: 5, kind: LimitKind::Packets, invert: true }, Expr::Log { prefix: Some("svc-b: ".into()), to: LogTo::Syslog { level: 4, flags: 0 } }, Expr::drop()]))
        .rule(r("svc-b", vec![Expr::Log { prefix: None, to: LogTo::Group { group: 5, snaplen: 128 } }, Expr::verdict(Verdict::Continue)]))
        .rule(r("reject-chain", vec![Expr::l4proto(Reg::R1), Expr::cmp_eq(Reg::R1, Value::proto(6)), Expr::reject(Reject::TcpReset)]))
        .rule(r("reject-chain", vec![Expr::reject(Reject::Icmpx(IcmpxCode::PortUnreachable))]))
        .rule(r("filter-forward", [Expr::ct_state_any(ct_state::ESTABLISHED | ct_state::RELATED), vec![Expr::accept()]].concat()))
        .rule(r("filter-forward", vec![Expr::ip_saddr(Reg::R1), Expr::not_in_set("pod-cidrs", Reg::R1), Expr::ip_daddr(Reg::r32(0)), Expr::th_dport(Reg::r32(1)), Expr::in_set("allowed", Reg::R1), Expr::goto("reject-chain")]))
        .rule(r("filter-forward", vec![Expr::meta(MetaKey::IifName, Reg::R1), Expr::in_set("ifaces", Reg::R1), Expr::Cmp { sreg: Reg::R1, op: CmpOp::Gte, data: Value::ifname("a") }, Expr::accept()]))
        .rule(r("filter-forward", [Expr::only_ipv4(), vec![Expr::reject(Reject::Icmp(3))]].concat()))
        .rule(r("nat-postrouting", [Expr::ct_status_any(ct_status::DNAT), vec![Expr::masquerade()]].concat()))
        .rule(r("nat-postrouting", vec![Expr::load(Reg::R1, Value::port(30000)), Expr::load(Reg::R2, Value::port(40000)), Expr::Masquerade { flags: NatFlags::FULLY_RANDOM, proto: Some(Reg::R1), proto_max: Some(Reg::R2) }]))
        .rule(r("mangle", vec![Expr::Meta { key: MetaKey::Mark, dreg: Reg::R1 }, Expr::in_set("marks", Reg::R1), Expr::load(Reg::R1, Value::u32(0x10)), Expr::MetaSet { key: MetaKey::Mark, sreg: Reg::R1 }, Expr::CtSet { key: CtKey::Mark, sreg: Reg::R1 }]))
        .rule(r("filter-forward", vec![Expr::Fib { flags: FibFlags::SADDR | FibFlags::IIF, result: FibResult::Oif, dreg: Reg::R1 }, Expr::cmp_eq(Reg::R1, Value::u32(0)), Expr::Bitwise { sreg: Reg::R1, dreg: Reg::R2, mask: Value::u32(0xff), xor: Value::u32(1) }, Expr::accept()]))
        // Hairpin: `ip saddr ^ ip daddr == 0`, a boolean op between two registers (Linux 6.13+).
        .rule(r("nat-postrouting", [Expr::only_ipv4(), vec![Expr::ip_saddr(Reg::R1), Expr::ip_daddr(Reg::R2), Expr::Bitwise2 { op: BoolOp::Xor, sreg: Reg::R1, sreg2: Reg::R2, dreg: Reg::R1, len: 4 }, Expr::cmp_eq(Reg::R1, Value::u32(0)), Expr::masquerade()]].concat()));
    rs
}

#[test]
fn every_object_and_expression_kind_reads_back_equal() {
    weft_testns::run("nft_every_kind_round_trips", |_| {
        let mut nft = Nft::current().unwrap();
        let want = everything();
        nft.commit(Batch::new().add_ruleset(&want)).unwrap();
        let got = nft.ruleset(&want.table_ref()).unwrap().expect("table exists");
        let (got, want) = (got.canonical(), want.canonical());
        assert_eq!(got.table, want.table);
        assert_eq!(got.chains, want.chains);
        for ((gs, ge), (ws, we)) in got.sets.iter().zip(&want.sets) {
            assert_eq!(gs, ws);
            assert_eq!(ge, we, "elements of {}", ws.name);
        }
        for (g, w) in got.rules.iter().zip(&want.rules) {
            assert_eq!(g, w);
        }
        assert_eq!(got, want);
        // Handles come back from the kernel, so rules can be addressed.
        let read = nft.ruleset(&want.table_ref()).unwrap().unwrap();
        assert!(read.rules.iter().all(|r| r.handle.is_some()) && read.table.handle.is_some());
        // Replacing the ruleset with itself is atomic and leaves it equal.
        nft.commit(Batch::new().replace_ruleset(&everything())).unwrap();
        assert_eq!(nft.ruleset(&want.table_ref()).unwrap().unwrap().canonical(), want);
    });
}

#[test]
fn other_families_and_dormant_tables_round_trip() {
    weft_testns::run("nft_families_round_trip", |_| {
        let mut nft = Nft::current().unwrap();
        let mut ip6 = Ruleset::new(Table::new(Family::Ip6, "weft6"));
        let svc6 = Set::vmap("services", &[KeyType::Ipv6Addr, KeyType::InetProto, KeyType::InetService]);
        let key = Value::concat([Value::ipv6("fd00:10:96::a".parse().unwrap()), Value::proto(17), Value::port(53)]);
        ip6.chain(Chain::base("out", ChainType::Nat, Hook::Output, priority::DSTNAT))
            .chain(Chain::regular("svc"))
            .set(svc6, vec![Element::verdict(key, Verdict::Goto("svc".into()))])
            .rule(Rule::new("out", [Expr::ipv6_service_key(), vec![Expr::vmap("services", Reg::R1)]].concat()))
            .rule(Rule::new("svc", vec![Expr::load(Reg::R1, Value::ipv6("fd00:10:244::5".parse().unwrap())), Expr::load(Reg::R2, Value::port(5353)), Expr::dnat(NatFamily::Ipv6, Reg::R1, Some(Reg::R2))]));
        let mut dormant = Ruleset::new(Table { dormant: true, ..Table::new(Family::Ip, "sleepy") });
        dormant.chain(Chain::base("in", ChainType::Filter, Hook::Input, 10).with_policy(Policy::Drop));
        let mut nft_b = Batch::new();
        nft_b.add_ruleset(&ip6).add_ruleset(&dormant);
        nft.commit(&nft_b).unwrap();
        assert_eq!(nft.ruleset(&ip6.table_ref()).unwrap().unwrap().canonical(), ip6.canonical());
        assert_eq!(nft.ruleset(&dormant.table_ref()).unwrap().unwrap().canonical(), dormant.canonical());
        let names: Vec<(Family, String)> = nft.tables(None).unwrap().into_iter().map(|t| (t.family, t.name)).collect();
        assert!(names.contains(&(Family::Ip6, "weft6".into())) && names.contains(&(Family::Ip, "sleepy".into())), "{names:?}");
        assert!(nft.tables(Some(Family::Inet)).unwrap().is_empty());
        assert!(nft.ruleset(&TableRef::new(Family::Ip, "weft6")).unwrap().is_none(), "tables are per family");
    });
}

#[test]
fn incremental_updates_change_exactly_what_they_name() {
    weft_testns::run("nft_incremental_updates", |_| {
        let mut nft = Nft::current().unwrap();
        let t = TableRef::new(Family::Ip, "weft-inc");
        let set = Set::vmap("services", &[KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService]);
        let el = |i: u8| Element::verdict(svc_key(&format!("10.96.0.{i}"), 6, 80), Verdict::Goto("svc".into()));
        let mut b = Batch::new();
        b.add_table(&Table::new(Family::Ip, "weft-inc"))
            .add_chain(&t, &Chain::regular("svc"))
            .add_set(&t, &set)
            .add_elements(&t, &set, (1..=5).map(el))
            .add_rule(&t, &Rule::new("svc", vec![Expr::counter(), Expr::accept()]).with_comment("first"))
            .add_rule(&t, &Rule::new("svc", vec![Expr::drop()]).with_comment("last"));
        nft.commit(&b).unwrap();

        // Elements: add two, delete one; `create` of an existing element fails.
        nft.commit(Batch::new().add_elements(&t, &set, [el(6), el(7)]).delete_elements(&t, &set, [el(1)])).unwrap();
        let keys = |nft: &mut Nft| -> Vec<Value> {
            let mut k: Vec<Value> = nft.elements(&t, &set).unwrap().into_iter().map(|e| e.key).collect();
            k.sort();
            k
        };
        assert_eq!(keys(&mut nft), (2..=7).map(|i| el(i).key).collect::<Vec<_>>());
        nft.commit(Batch::new().add_elements(&t, &set, [el(2)])).expect("add of an existing element is fine");
        let err = nft.commit(Batch::new().create_elements(&t, &set, [el(2)])).unwrap_err();
        assert!(err.is_exists() && err.to_string().contains("weft-inc/services"), "{err}");
        let err = nft.commit(Batch::new().create_table(&Table::new(Family::Ip, "weft-inc"))).unwrap_err();
        assert!(err.is_exists() && err.to_string().contains("create table ip weft-inc"), "{err}");
        nft.commit(Batch::new().add_table(&Table::new(Family::Ip, "weft-inc"))).expect("add of an existing table is fine");

        // Rules by handle: insert before, replace, delete.
        let rules = nft.rules(&t, Some("svc")).unwrap();
        let (first, last) = (rules[0].handle.unwrap(), rules[1].handle.unwrap());
        nft.commit(
            Batch::new()
                .insert_rule(&t, &Rule::new("svc", vec![Expr::ret()]).with_comment("top"), Position::Prepend)
                .insert_rule(&t, &Rule::new("svc", vec![Expr::verdict(Verdict::Continue)]).with_comment("middle"), Position::After(first))
                .replace_rule(&t, &Rule::new("svc", vec![Expr::accept()]).with_comment("last, replaced"), last),
        )
        .unwrap();
        let rules = nft.rules(&t, Some("svc")).unwrap();
        let comments: Vec<_> = rules.iter().map(|r| r.comment.clone().unwrap()).collect();
        assert_eq!(comments, ["top", "first", "middle", "last, replaced"]);
        assert_eq!(rules[3].handle, Some(last), "a replaced rule keeps its handle");
        assert_eq!(rules[3].exprs, vec![Expr::accept()]);
        nft.commit(Batch::new().delete_rule(&t, "svc", first)).unwrap();
        assert_eq!(nft.rules(&t, Some("svc")).unwrap().len(), 3);
        let err = nft.commit(Batch::new().delete_rule(&t, "svc", first)).unwrap_err();
        assert!(err.is_not_found() && err.to_string().contains(&format!("delete rule handle {first} in chain ip weft-inc/svc")), "{err}");

        // Flush, then delete objects.
        nft.commit(Batch::new().flush_set(&t, "services").flush_chain(&t, "svc")).unwrap();
        assert!(nft.elements(&t, &set).unwrap().is_empty());
        assert!(nft.rules(&t, None).unwrap().is_empty());
        nft.commit(Batch::new().delete_set(&t, "services").delete_chain(&t, "svc")).unwrap();
        assert!(nft.sets(&t).unwrap().is_empty() && nft.chains(&t).unwrap().is_empty());
        nft.commit(Batch::new().delete_table(&t)).unwrap();
        assert!(nft.table(&t).unwrap().is_none());
        nft.commit(Batch::new().delete_table_if_exists(&t)).expect("deleting a missing table this way is fine");
    });
}

#[test]
fn element_timeouts_count_down_and_set_defaults_apply() {
    weft_testns::run("nft_element_timeouts", |_| {
        let mut nft = Nft::current().unwrap();
        let t = TableRef::new(Family::Inet, "weft-to");
        let set = Set::new("recent", &[KeyType::Ipv4Addr]).with_timeout(Duration::from_secs(300));
        let mut b = Batch::new();
        b.add_table(&Table::new(Family::Inet, "weft-to"))
            .add_set(&t, &set)
            .add_elements(&t, &set, [Element::new(v4("10.0.0.1")), Element::new(v4("10.0.0.2")).with_timeout(Duration::from_secs(30))]);
        nft.commit(&b).unwrap();
        let elems = nft.elements(&t, &set).unwrap();
        let by = |ip: &str| elems.iter().find(|e| e.key == v4(ip)).unwrap().clone();
        assert_eq!(by("10.0.0.1").timeout, None, "the set's default applies");
        assert!(by("10.0.0.1").expires.unwrap() <= Duration::from_secs(300));
        assert!(by("10.0.0.1").expires.unwrap() > Duration::from_secs(30));
        assert_eq!(by("10.0.0.2").timeout, Some(Duration::from_secs(30)));
        assert!(by("10.0.0.2").expires.unwrap() <= Duration::from_secs(30));
        let sets = nft.sets(&t).unwrap();
        assert_eq!(sets[0].timeout, Some(Duration::from_secs(300)));
    });
}

#[test]
fn the_generation_moves_with_each_commit() {
    weft_testns::run("nft_generation", |_| {
        let mut nft = Nft::current().unwrap();
        let g0 = nft.generation().unwrap();
        nft.commit(Batch::new().add_table(&Table::new(Family::Ip, "g"))).unwrap();
        let g1 = nft.generation().unwrap();
        assert_ne!(g0, g1);
        // A batch that expects the current generation commits...
        nft.commit(Batch::new().expect_generation(g1).add_chain(&TableRef::new(Family::Ip, "g"), &Chain::regular("a"))).unwrap();
        // ...one that expects an old one is refused, and changes nothing.
        let err = nft
            .commit(Batch::new().expect_generation(g1).add_chain(&TableRef::new(Family::Ip, "g"), &Chain::regular("b")))
            .unwrap_err();
        assert_eq!(err.kind(), weft_kernel::ErrorKind::Busy, "{err}");
        assert!(err.to_string().contains("re-read"), "{err}");
        let names: Vec<String> = nft.chains(&TableRef::new(Family::Ip, "g")).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["a"]);
    });
}
