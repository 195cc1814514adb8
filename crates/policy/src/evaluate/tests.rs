//! The semantics of conformance/netpol/README.md section 2, the ten pitfalls and the
//! known mistakes of other implementations, one behaviour per test, on the upstream
//! x/y/z × a/b/c model.

use crate::evaluate::{Query, RuleRef, Side};
use crate::model::fixture::*;
use crate::model::{NamedPort, Protocol};
use serde_json::json;

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;
const SCTP: Protocol = Protocol::Sctp;

fn rule(ns: &str, policy: &str, egress: bool, index: usize) -> RuleRef {
    RuleRef { namespace: ns.into(), policy: policy.into(), egress, index }
}

#[test]
fn without_policies_everything_is_allowed_and_nothing_isolated() {
    let c = xyz();
    expect_matrix(&c, TCP, 80, |_, _| true);
    let v = verdict(&c, "x/a", "y/b", TCP, 80);
    assert_eq!((v.egress, v.ingress), (Side::NotIsolated, Side::NotIsolated));
    assert_eq!(v.src_pod, Some(key("x/a")));
}

#[test]
fn default_deny_ingress_isolates_only_its_namespace_and_only_ingress() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "deny"}, "spec": {"podSelector": {}}}));
    expect_matrix(&c, TCP, 80, |_, to| ns_of(to) != "x");
    let v = verdict(&c, "y/a", "x/b", TCP, 80);
    assert_eq!(v.ingress, Side::Denied { isolated_by: vec![("x".into(), "deny".into())] });
    assert_eq!(v.egress, Side::NotIsolated);
    // x's pods are not egress-isolated: they still reach y.
    assert_eq!(verdict(&c, "x/a", "y/b", TCP, 80).egress, Side::NotIsolated);
}

#[test]
fn policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() {
    let mut c = xyz();
    // Egress rules and no policyTypes: both directions, ingress denies all.
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| match (from, to) {
        ("x/a", "x/b") => true,
        ("x/a", _) => false,
        (_, "x/a") => false,
        _ => true,
    });
}

#[test]
fn policy_types_without_egress_rules_default_to_ingress_only() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "egress": []}}));
    expect_matrix(&c, TCP, 80, |_, to| to != "x/a");
}

#[test]
fn rules_of_a_direction_missing_from_policy_types_are_ignored() {
    let mut c = xyz();
    // Only Egress listed: the ingress rule neither isolates nor allows.
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, _| from != "x/a");
    assert_eq!(verdict(&c, "y/c", "x/a", TCP, 80).ingress, Side::NotIsolated);
}

#[test]
fn an_empty_rule_allows_everything_and_no_rules_deny_everything() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "deny"}, "spec": {"podSelector": {}, "ingress": []}}));
    expect_matrix(&c, TCP, 80, |_, to| ns_of(to) != "x");
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "all"}, "spec": {"podSelector": {}, "ingress": [{}]}}));
    expect_matrix(&c, TCP, 80, |_, _| true);
    expect_matrix(&c, SCTP, 81, |_, _| true);
    let v = verdict(&c, "z/c", "x/a", UDP, 53);
    assert_eq!(v.ingress, Side::Allowed { by: vec![rule("x", "all", false, 0)] });
}

#[test]
fn a_pod_selector_peer_alone_is_local_to_the_policy_namespace() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || from == "x/b");
}

#[test]
fn a_namespace_selector_alone_selects_every_pod_of_matching_namespaces() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "ns", "operator": "In", "values": ["y", "z"]}]}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || ns_of(from) != "x");
}

#[test]
fn pod_and_namespace_selectors_in_one_peer_are_anded_and_across_peers_ored() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "and"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {"matchLabels": {"pod": "b"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || from == "y/b");
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "and"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}, {"podSelector": {"matchLabels": {"pod": "b"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || from == "x/b" || ns_of(from) == "y");
}

#[test]
fn empty_and_null_selectors_differ_in_peers() {
    let mut c = xyz();
    // podSelector {} alone: every pod of the policy's namespace.
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"podSelector": {}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || ns_of(from) == "x");
    // namespaceSelector {} alone: every pod of every namespace.
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}}));
    expect_matrix(&c, TCP, 80, |_, _| true);
    // namespaceSelector {} with podSelector: that pod in every namespace.
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "c"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || from.ends_with("/c"));
}

#[test]
fn not_in_and_does_not_exist_match_objects_without_the_key() {
    let mut c = xyz();
    c.set_pod(pod("y/b", labels(&[("pod", "b"), ("tier", "db")]), serve_ports()));
    c.set_namespace("z", labels(&[("ns", "z"), ("env", "prod")]));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{
            "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
            "podSelector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}}]}]}}));
    // Namespaces x and y lack env (NotIn matches); only y/b has tier.
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || (ns_of(from) != "z" && from != "y/b"));
}

#[test]
fn namespace_selection_uses_labels_and_the_name_label_is_always_there() {
    let mut c = xyz();
    c.set_namespace("y", labels(&[]));
    assert_eq!(c.namespace_labels("y").unwrap().get("kubernetes.io/metadata.name").map(String::as_str), Some("y"));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || ns_of(from) == "y");
}

#[test]
fn policies_add_up_in_any_order() {
    let p1 = json!({"metadata": {"namespace": "x", "name": "from-b"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}});
    let p2 = json!({"metadata": {"namespace": "x", "name": "from-c-81"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "c"}}}], "ports": [{"port": 81}]}]}});
    for order in [[&p1, &p2], [&p2, &p1]] {
        let mut c = xyz();
        for p in order {
            apply(&mut c, p.clone());
        }
        expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || from == "x/b");
        expect_matrix(&c, TCP, 81, |from, to| to != "x/a" || from == "x/b" || from == "x/c");
    }
}

#[test]
fn allowed_lists_every_matching_rule_and_denied_every_isolating_policy() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "b"}, "spec": {
        "podSelector": {}, "ingress": [{"ports": [{"port": 81}]}, {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}}));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "a"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}}));
    let v = verdict(&c, "x/b", "x/a", TCP, 81);
    assert_eq!(v.ingress, Side::Allowed { by: vec![rule("x", "a", false, 0), rule("x", "b", false, 0), rule("x", "b", false, 1)] });
    let out = Query { src: "203.0.113.1".parse().unwrap(), dst: ip(&c, "x/a"), protocol: TCP, port: 80 };
    let v = c.evaluate(&out);
    assert_eq!(v.egress, Side::NotAPod);
    assert_eq!(v.src_pod, None);
    assert_eq!(v.ingress, Side::Denied { isolated_by: vec![("x".into(), "a".into()), ("x".into(), "b".into())] });
}

#[test]
fn both_ends_are_judged_each_by_its_own_namespace() {
    let mut c = xyz();
    // x/a may not send anywhere; y/b admits x/a explicitly: still denied (client side).
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "deny-egress"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"]}}));
    apply(&mut c, json!({"metadata": {"namespace": "y", "name": "allow-x-a"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "b"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "x"}}, "podSelector": {"matchLabels": {"pod": "a"}}}]}]}}));
    let v = verdict(&c, "x/a", "y/b", TCP, 80);
    assert!(v.ingress.allows() && !v.egress.allows() && !v.allowed());
    expect_matrix(&c, TCP, 80, |from, to| from != "x/a" && (to != "y/b" || from == "x/a"));
}

#[test]
fn protocol_defaults_to_tcp_and_an_empty_port_item_is_every_tcp_port() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"ports": [{}]}]}}));
    expect_matrix(&c, TCP, 80, |_, _| true);
    expect_matrix(&c, TCP, 65535, |_, _| true);
    expect_matrix(&c, UDP, 80, |_, to| to != "x/a");
    expect_matrix(&c, SCTP, 80, |_, to| to != "x/a");
}

#[test]
fn a_udp_or_sctp_allow_never_opens_tcp_but_still_isolates() {
    for proto in ["UDP", "SCTP"] {
        let mut c = xyz();
        apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
            "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"ports": [{"protocol": proto, "port": 80}]}]}}));
        expect_matrix(&c, TCP, 80, |_, to| to != "x/a");
        let p = Protocol::parse(proto).unwrap();
        expect_matrix(&c, p, 80, |_, _| true);
        expect_matrix(&c, p, 81, |_, to| to != "x/a");
    }
}

#[test]
fn a_port_item_without_port_is_every_port_of_its_protocol() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"ports": [{"protocol": "UDP"}]}]}}));
    expect_matrix(&c, UDP, 1, |_, _| true);
    expect_matrix(&c, UDP, 81, |_, _| true);
    expect_matrix(&c, TCP, 81, |_, to| to != "x/a");
}

#[test]
fn end_port_is_an_inclusive_range_and_is_never_ignored() {
    for proto in ["TCP", "UDP", "SCTP"] {
        let mut c = xyz();
        apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
            "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"ports": [{"protocol": proto, "port": 81, "endPort": 90}]}]}}));
        let p = Protocol::parse(proto).unwrap();
        for (port, open) in [(80, false), (81, true), (85, true), (90, true), (91, false)] {
            expect_matrix(&c, p, port, |_, to| open || to != "x/a");
        }
    }
}

#[test]
fn a_named_port_allows_its_number_only() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"ports": [{"port": "serve-81-tcp"}]}]}}));
    expect_matrix(&c, TCP, 81, |_, _| true);
    expect_matrix(&c, TCP, 80, |_, to| to != "x/a");
    expect_matrix(&c, UDP, 81, |_, to| to != "x/a");
}

#[test]
fn a_named_port_that_exists_only_for_another_protocol_allows_nothing() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"ports": [{"protocol": "TCP", "port": "serve-81-udp"}, {"port": "no-such-port"}]}]}}));
    for (proto, port) in [(TCP, 81), (UDP, 81), (TCP, 80), (UDP, 80)] {
        expect_matrix(&c, proto, port, |_, to| to != "x/a");
    }
}

#[test]
fn a_named_port_is_resolved_per_destination_pod() {
    let mut c = xyz();
    let web = |port| vec![NamedPort { name: "web".into(), port, protocol: TCP }];
    c.set_pod(pod("x/a", labels(&[("pod", "a"), ("app", "web")]), web(8080)));
    c.set_pod(pod("x/b", labels(&[("pod", "b"), ("app", "web")]), web(9090)));
    c.set_pod(pod("x/c", labels(&[("pod", "c"), ("app", "web")]), vec![]));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": "web"}]}]}}));
    for port in [8080, 9090] {
        expect_matrix(&c, TCP, port, |_, to| ns_of(to) != "x" || (to == "x/a" && port == 8080) || (to == "x/b" && port == 9090));
    }
}

#[test]
fn an_egress_named_port_with_an_empty_to_resolves_on_each_destination() {
    let mut c = xyz();
    c.set_pod(pod("y/b", labels(&[("pod", "b")]), vec![NamedPort { name: "serve-80-tcp".into(), port: 8000, protocol: TCP }]));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
        "egress": [{"ports": [{"port": "serve-80-tcp"}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| from != "x/a" || to != "y/b");
    expect_matrix(&c, TCP, 8000, |from, to| from != "x/a" || to == "y/b");
    // A destination outside the cluster has no named ports.
    let out = Query { src: ip(&c, "x/a"), dst: "203.0.113.7".parse().unwrap(), protocol: TCP, port: 80 };
    assert!(!c.evaluate(&out).allowed());
}

#[test]
fn an_ip_block_matches_pod_addresses_and_except_only_narrows_its_peer() {
    let mut c = xyz();
    let host = format!("{}/32", ip(&c, "y/b"));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "egress-cidr"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": [host.clone()]}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| from != "x/a" || to != "y/b");
    // except is not a deny: another policy allows the excepted address again.
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "allow-host"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": host}}]}]}}));
    expect_matrix(&c, TCP, 80, |_, _| true);
    let outside = Query { src: ip(&c, "x/a"), dst: "10.1.0.1".parse().unwrap(), protocol: TCP, port: 80 };
    assert!(!c.evaluate(&outside).allowed());
}

#[test]
fn ipv4_blocks_never_match_ipv6_addresses() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}));
    let a6 = c.pod(&key("x/a")).unwrap().ips[1];
    let b6 = c.pod(&key("y/b")).unwrap().ips[1];
    assert!(!c.evaluate(&Query { src: b6, dst: a6, protocol: TCP, port: 80 }).allowed());
    assert!(c.evaluate(&query(&c, "y/b", "x/a", TCP, 80)).allowed());
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p6"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": "::/0", "except": ["fd00::2:0/112"]}}]}]}}));
    assert!(!c.evaluate(&Query { src: b6, dst: a6, protocol: TCP, port: 80 }).allowed());
    let c6 = c.pod(&key("z/c")).unwrap().ips[1];
    assert!(c.evaluate(&Query { src: c6, dst: a6, protocol: TCP, port: 80 }).allowed());
}

#[test]
fn host_network_pods_are_neither_selected_nor_pod_peers() {
    let mut c = xyz();
    let mut h = pod("x/h", labels(&[("pod", "a")]), serve_ports());
    h.host_network = true;
    h.ips = vec!["192.168.0.10".parse().unwrap()];
    c.set_pod(h.clone());
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "a"}}}]}],
        "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "a"}}}]}]}}));
    assert_eq!(c.pod_by_ip(h.ips[0]), None);
    let v = c.evaluate(&Query { src: h.ips[0], dst: ip(&c, "x/b"), protocol: TCP, port: 80 });
    assert_eq!(v.egress, Side::NotAPod);
    assert!(matches!(v.ingress, Side::Denied { .. }), "the hostNetwork pod is not a pod peer: {v:?}");
    let v = c.evaluate(&Query { src: ip(&c, "x/a"), dst: h.ips[0], protocol: TCP, port: 80 });
    assert_eq!(v.ingress, Side::NotAPod);
    assert!(!v.egress.allows());
}

#[test]
fn pod_and_namespace_label_changes_take_effect() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}, "podSelector": {"matchLabels": {"role": "client"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |_, to| to != "x/a");
    c.set_namespace("y", labels(&[("ns", "y"), ("team", "blue")]));
    c.set_pod(pod("y/c", labels(&[("pod", "c"), ("role", "client")]), serve_ports()));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || from == "y/c");
    // The target relabelled out of the policy is open again.
    c.set_pod(pod("x/a", labels(&[("pod", "z")]), serve_ports()));
    expect_matrix(&c, TCP, 80, |_, _| true);
}

#[test]
fn policy_update_replaces_and_delete_removes() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}}));
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "c"}}}]}]}}));
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || from == "x/c");
    c.delete_policy("x", "p");
    expect_matrix(&c, TCP, 80, |_, _| true);
}

#[test]
fn deleted_pods_and_namespaces_disappear() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}}));
    let yb = ip(&c, "y/b");
    c.delete_pod(&key("y/b"));
    assert_eq!(c.pod_by_ip(yb), None);
    c.delete_namespace("y");
    assert!(all_pods(&c).iter().all(|p| ns_of(p) != "y"));
    // A namespace named y-2 but labelled ns=y is selected by labels.
    c.set_namespace("y-2", labels(&[("ns", "y")]));
    let mut p = pod("y-2/a", labels(&[("pod", "a")]), serve_ports());
    p.ips = vec!["10.0.7.1".parse().unwrap()];
    c.set_pod(p);
    expect_matrix(&c, TCP, 80, |from, to| ns_of(to) != "x" || ns_of(from) == "y-2");
}

#[test]
fn invalid_policies_are_rejected_naming_the_field_and_change_nothing() {
    let mut c = xyz();
    let good = json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}});
    apply(&mut c, good);
    let bad = |ingress: serde_json::Value| np(json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {"podSelector": {}, "ingress": ingress}}));
    let cases = [
        (json!([{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/33"}}]}]), "spec.ingress[0].from[1].ipBlock.cidr"),
        (json!([{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/16", "11.0.0.0/16"]}}]}]), "spec.ingress[0].from[0].ipBlock.except[1]"),
        (json!([{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]), "spec.ingress[0].from[0].ipBlock.except[0]"),
        (json!([{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["fd00::/64"]}}]}]), "spec.ingress[0].from[0].ipBlock.except[0]"),
        (json!([{}, {"ports": [{"protocol": "ICMP"}]}]), "spec.ingress[1].ports[0].protocol"),
        (json!([{"ports": [{"port": 80, "endPort": 79}]}]), "spec.ingress[0].ports[0].endPort"),
        (json!([{"ports": [{"port": "http", "endPort": 90}]}]), "spec.ingress[0].ports[0].endPort"),
        (json!([{"ports": [{"port": 0}]}]), "spec.ingress[0].ports[0].port"),
        (json!([{"from": [{}]}]), "spec.ingress[0].from[0]"),
        (json!([{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}]}]), "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].operator"),
    ];
    for (ingress, field) in cases {
        let err = c.apply_policy(&bad(ingress.clone())).unwrap_err();
        assert!(err.contains("x/p") && err.contains(&format!("{field}:")), "{ingress}: {err}");
    }
    let err = c.apply_policy(&np(json!({"metadata": {"namespace": "x", "name": "p"}, "spec": {"podSelector": {}, "policyTypes": ["Sideways"]}}))).unwrap_err();
    assert!(err.contains("spec.policyTypes[0]"), "{err}");
    // The previous version is still in force.
    expect_matrix(&c, TCP, 80, |from, to| to != "x/a" || from == "x/b");
}

#[test]
fn explain_names_the_deciding_rules_or_the_isolating_policies() {
    let mut c = xyz();
    apply(&mut c, json!({"metadata": {"namespace": "x", "name": "allow-from-b"}, "spec": {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}], "ports": [{"port": 80}]}]}}));
    let out = crate::explain::explain(&c, &query(&c, "x/b", "x/a", TCP, 80));
    assert!(out.starts_with("x/b (10.0.1.2) -> x/a (10.0.1.1) TCP/80: ALLOWED"), "{out}");
    assert!(out.contains("x/allow-from-b ingress[0]: from podSelector pod=b; ports TCP/80"), "{out}");
    assert!(out.contains("no policy selects the pod for egress"), "{out}");
    let out = crate::explain::explain(&c, &query(&c, "y/c", "x/a", TCP, 80));
    assert!(out.contains("DENIED") && out.contains("isolated for ingress by x/allow-from-b"), "{out}");
    let out = crate::explain::explain(&c, &Query { src: "203.0.113.1".parse().unwrap(), dst: ip(&c, "y/a"), protocol: UDP, port: 53 });
    assert!(out.contains("203.0.113.1 (outside the cluster)") && out.contains("ALLOWED"), "{out}");
}
