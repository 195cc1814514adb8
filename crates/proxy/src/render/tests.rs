use super::*;
use crate::endpoints::Endpoint;
use crate::plan::{compile, NodeContext};

fn node() -> NodeContext {
    NodeContext { node_name: "node-0".into(), pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()], masquerade_all: false }
}

fn port() -> ServicePort {
    crate::service::example_port()
}

fn ep(ip: &str, local: bool) -> Endpoint {
    Endpoint { ip: ip.parse().unwrap(), port: 8080, ready: true, serving: true, terminating: false, local }
}

fn render(p: &ServicePort, eps: &[Endpoint], id: u32) -> Objects {
    service(p, &compile(p, eps, &node()), id)
}

fn target(ip: &str) -> Value {
    target_value(&Target { addr: ip.parse().unwrap(), port: 8080 })
}

#[test]
fn a_plain_cluster_ip_is_two_map_lookups_and_no_chain_of_its_own() {
    let o = render(&port(), &[ep("10.244.0.1", true), ep("10.244.1.2", false)], 70);
    assert!(o.chains.is_empty(), "{:?}", o.chains.keys());
    let e = &o.elements["service-dispatch"][&service_key("10.96.0.20".parse().unwrap(), Proto::Tcp, 80)];
    assert_eq!(e.data, Some(nft::Data::Value(Value::concat([Value::u32(70), Value::u32(2)]))));
    assert_eq!(dispatch_id(&e.data), Some(70), "the id is recoverable from the element");
    let eps = &o.elements["endpoints-v4"];
    assert_eq!(eps[&endpoint_key(70, 0)].data, Some(nft::Data::Value(target("10.244.0.1"))));
    assert_eq!(eps[&endpoint_key(70, 1)].data, Some(nft::Data::Value(target("10.244.1.2"))));
    // The shared chain for two endpoints: masquerade unless from pods, then pick a slot.
    let s = layout::skeleton(&node());
    let two = &s.chains["balance-v4-2"].rules;
    assert!(two[0].iter().any(|e| matches!(e, Expr::Range { negate: true, .. })) && two[0].last() == Some(&Expr::jump(layout::MARK_FOR_MASQUERADE)));
    assert!(two[1].contains(&Expr::Numgen { dreg: Reg::r32(6), kind: nft::NumgenKind::Random, modulus: 2, offset: 0 }), "{two:?}");
    assert!(two[1].contains(&Expr::map("endpoints-v4", Reg::r32(5), Reg::R3)));
    assert!(matches!(two[1].last(), Some(Expr::Nat { family: NatFamily::Ipv4, .. })));
    assert_eq!(s.elements["balance-by-count-v4"][&Value::u32(2)].data, Some(nft::Data::Verdict(nft::Verdict::Goto("balance-v4-2".into()))));
}

#[test]
fn a_cluster_ip_with_affinity_has_its_chain_and_its_endpoints_sit_in_the_shard_of_its_id() {
    let p = ServicePort { affinity_seconds: Some(60), ..port() };
    let o = render(&p, &[ep("10.244.0.1", true), ep("10.244.1.2", false)], 70);
    let ips = &o.elements["service-ips"];
    assert_eq!(ips.len(), 1);
    let e = &ips[&service_key("10.96.0.20".parse().unwrap(), Proto::Tcp, 80)];
    assert_eq!(e.data, Some(nft::Data::Verdict(nft::Verdict::Goto("svc-ns/web/tcp/http".into()))));
    // 70 mod 64 = shard 6, slots 0 and 1.
    let shard = &o.elements["endpoints-v4-6"];
    assert_eq!(shard[&endpoint_key(70, 0)].data, Some(nft::Data::Value(target("10.244.0.1"))));
    assert_eq!(shard[&endpoint_key(70, 1)].data, Some(nft::Data::Value(target("10.244.1.2"))));
    let svc = &o.chains["svc-ns/web/tcp/http"];
    assert_eq!(svc.chain.comment.as_deref(), Some("70"), "the id is recoverable from the chain");
    let balance = svc.rules.last().unwrap();
    assert!(balance.contains(&Expr::Numgen { dreg: Reg::r32(6), kind: nft::NumgenKind::Random, modulus: 2, offset: 0 }), "{balance:?}");
    assert!(balance.contains(&Expr::map("endpoints-v4-6", Reg::r32(5), Reg::R3)));
    assert!(matches!(balance.last(), Some(Expr::Nat { family: NatFamily::Ipv4, .. })));
    assert_eq!(o.chains.len(), 1);
}

#[test]
fn local_policy_endpoints_take_slots_after_the_cluster_ones_and_remember_clients_apart() {
    let mut p = port();
    p.node_port = 30080;
    p.external_local = true;
    p.affinity_seconds = Some(30);
    let o = render(&p, &[ep("10.244.0.1", true), ep("10.244.1.2", false)], 3);
    let local = &o.chains["local-ns/web/tcp/http"].rules;
    let svc = &o.chains["svc-ns/web/tcp/http"].rules;
    // local- sorts before svc-: it is the first balance rule, slots 0..1; svc- gets 1..3.
    assert!(local[1].contains(&Expr::Numgen { dreg: Reg::r32(6), kind: nft::NumgenKind::Random, modulus: 1, offset: 0 }));
    assert!(svc.last().unwrap().contains(&Expr::Numgen { dreg: Reg::r32(6), kind: nft::NumgenKind::Random, modulus: 2, offset: 1 }));
    assert_eq!(o.elements["endpoints-v4-3"].len(), 3);
    // Affinity: looked up first, with a key per policy chain.
    assert!(local[0].contains(&Expr::load(Reg::r32(0), Value::u32(affinity_id(3, 0)))));
    assert!(svc[svc.len() - 2].contains(&Expr::load(Reg::r32(0), Value::u32(affinity_id(3, 1)))));
    assert!(local[0].iter().any(|e| matches!(e, Expr::Dynset { set, timeout: Some(t), .. } if set == "affinity-v4-3" && t.as_secs() == 30)));
    assert_eq!(o.elements["service-nodeports"].len(), 1);
}

#[test]
fn no_endpoints_reject_through_the_reject_chain_and_local_policy_drops() {
    let o = render(&port(), &[], 1);
    let e = o.elements["reject-services"].values().next().unwrap();
    assert_eq!(e.data, None, "a plain set element: no verdict for the kernel to validate");
    assert!(o.chains.is_empty() && !o.elements.contains_key("service-ips") && !o.elements.contains_key("no-endpoint-services"));
    let check = &layout::skeleton(&node()).chains["service-endpoints-check"].rules;
    assert!(check[0].contains(&Expr::in_set("reject-services", Reg::R1)) && check[0].last() == Some(&Expr::goto(layout::REJECT_CHAIN)));
    let mut p = port();
    p.internal_local = true;
    let o = render(&p, &[ep("10.244.1.2", false)], 1);
    let e = o.elements["no-endpoint-services"].values().next().unwrap();
    assert_eq!(e.data, Some(nft::Data::Verdict(nft::Verdict::Drop)));
}

#[test]
fn an_ipv6_port_uses_the_ipv6_maps_and_nat_family() {
    let mut p = port();
    p.family = Family::V6;
    p.cluster_ip = "fd00:10:96::20".parse().unwrap();
    let o = render(&p, &[ep("fd00:10:244::5", true)], 2);
    assert_eq!(o.elements["service-dispatch-v6"].len(), 1);
    assert_eq!(o.elements["endpoints-v6"].len(), 1);
    p.affinity_seconds = Some(10);
    let o = render(&p, &[ep("fd00:10:244::5", true)], 2);
    assert_eq!(o.elements["service-ips-v6"].len(), 1);
    assert_eq!(o.elements["endpoints-v6-2"].len(), 1);
    let balance = o.chains["svc-ns/web/tcp/http/v6"].rules.last().unwrap();
    assert!(matches!(balance.last(), Some(Expr::Nat { family: NatFamily::Ipv6, proto: Some(r), .. }) if *r == Reg::r32(12)));
}

#[test]
fn the_source_range_firewall_returns_for_allowed_sources_and_drops_the_rest() {
    let mut p = port();
    p.load_balancer_ips = vec!["10.99.1.5".parse().unwrap()];
    p.source_ranges = vec!["10.99.0.0/24".parse().unwrap()];
    let o = render(&p, &[ep("10.244.1.2", false)], 1);
    let fw = &o.chains["fw-ns/web/tcp/http"].rules;
    assert_eq!(fw.len(), 2);
    assert!(fw[0].contains(&Expr::Range { sreg: Reg::R1, negate: false, from: Value::ip("10.99.0.0".parse().unwrap()), to: Value::ip("10.99.0.255".parse().unwrap()) }));
    assert_eq!(fw[1], vec![Expr::drop()]);
    assert_eq!(o.elements["firewall-ips"].len(), 1);
}

#[test]
fn the_skeleton_masquerades_hairpin_and_marked_traffic_and_keeps_node_ports_off_loopback() {
    let s = layout::skeleton(&node());
    let masq = &s.chains[layout::MASQUERADING].rules;
    assert!(masq[0].iter().any(|e| matches!(e, Expr::Bitwise2 { op: nft::BoolOp::Xor, len: 4, .. })));
    assert!(masq[1].iter().any(|e| matches!(e, Expr::Bitwise2 { len: 16, .. })));
    let services = &s.chains[layout::SERVICES].rules;
    assert_eq!(services.len(), 6, "dispatch, service-ips and node ports, per family");
    assert!(services[4].contains(&Expr::cmp_neq(Reg::R1, Value::ipv4([127, 0, 0, 0].into()))));
    assert!(s.chains.values().all(|c| c.chain.base.is_none() || c.rules.len() <= 2));
}
