use super::*;
use crate::model::{Labels, PodInfo, PodKey};
use std::time::UNIX_EPOCH;

fn key(src: &str, dst: &str, protocol: u8, sport: u16, dport: u16) -> FlowKey {
    FlowKey { src: src.parse().unwrap(), dst: dst.parse().unwrap(), protocol, src_port: Some(sport), dst_port: Some(dport) }
}

fn pod_key(ns: &str, name: &str) -> PodKey {
    PodKey { namespace: ns.into(), name: name.into() }
}

fn rule(ns: &str, policy: &str, egress: bool, index: usize) -> RuleRef {
    RuleRef { namespace: ns.into(), policy: policy.into(), egress, index }
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[test]
fn an_allowed_ingress_record_names_every_rule_that_allows_it() {
    let v = Verdict {
        src_pod: Some(pod_key("x", "a")),
        dst_pod: Some(pod_key("y", "b")),
        egress: Side::NotIsolated,
        ingress: Side::Allowed { by: vec![rule("y", "allow-a", false, 0), rule("y", "web", false, 2)] },
    };
    let r = FlowRecord::new("node-2", FlowMark::IngressAllowed, at(1_700_000_000_250), &key("10.244.1.2", "10.244.2.3", 6, 40000, 80), Some(&v));
    assert_eq!(r.direction, Direction::Ingress);
    assert_eq!(r.verdict, FlowVerdict::Allowed);
    assert_eq!(r.policies, vec!["y/allow-a ingress[0]", "y/web ingress[2]"]);
    assert_eq!((r.src_pod.as_deref(), r.dst_pod.as_deref()), (Some("x/a"), Some("y/b")));
    assert_eq!(r.time, "2023-11-14T22:13:20.250Z");
    assert_eq!(r.protocol, "TCP");
}

#[test]
fn a_denied_egress_record_names_the_policies_that_isolate_the_source() {
    let v = Verdict {
        src_pod: Some(pod_key("x", "a")),
        dst_pod: None,
        egress: Side::Denied { isolated_by: vec![("x".into(), "default-deny".into()), ("x".into(), "only-dns".into())] },
        // The other side's judgement does not matter for an egress record.
        ingress: Side::Allowed { by: vec![rule("y", "p", false, 0)] },
    };
    let r = FlowRecord::new("node-1", FlowMark::EgressDenied, at(0), &key("10.244.1.2", "192.0.2.1", 17, 5353, 53), Some(&v));
    assert_eq!((r.direction, r.verdict), (Direction::Egress, FlowVerdict::Denied));
    assert_eq!(r.policies, vec!["x/default-deny", "x/only-dns"]);
    assert_eq!(r.dst_pod, None);
    assert_eq!(r.protocol, "UDP");
}

#[test]
fn a_model_that_no_longer_agrees_with_the_logged_verdict_names_no_policy() {
    let v = Verdict { src_pod: None, dst_pod: Some(pod_key("y", "b")), egress: Side::NotAPod, ingress: Side::Allowed { by: vec![rule("y", "p", false, 0)] } };
    let k = key("10.0.0.1", "10.244.2.3", 6, 1, 80);
    assert!(FlowRecord::new("n", FlowMark::IngressDenied, at(0), &k, Some(&v)).policies.is_empty());
    let not_isolated = Verdict { ingress: Side::NotIsolated, ..v };
    assert!(FlowRecord::new("n", FlowMark::IngressAllowed, at(0), &k, Some(&not_isolated)).policies.is_empty());
    let none = FlowRecord::new("n", FlowMark::IngressDenied, at(0), &k, None);
    assert!(none.policies.is_empty() && none.src_pod.is_none() && none.dst_pod.is_none());
}

#[test]
fn records_are_json_lines_with_lowercase_enums_and_null_pods() {
    let r = FlowRecord::new("node-1", FlowMark::EgressDenied, at(1_000), &key("10.0.0.1", "10.0.0.2", 132, 7, 9), None);
    let line = serde_json::to_string(&r).unwrap();
    assert!(!line.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["time"], "1970-01-01T00:00:01.000Z");
    assert_eq!(v["direction"], "egress");
    assert_eq!(v["verdict"], "denied");
    assert_eq!(v["protocol"], "SCTP");
    assert_eq!(v["src_pod"], serde_json::Value::Null);
    assert_eq!(v["dst_port"], 9);
    assert_eq!(serde_json::from_str::<FlowRecord>(&line).unwrap(), r);
}

#[test]
fn the_text_line_shows_pods_with_their_addresses_and_the_deciding_policies() {
    let v = Verdict {
        src_pod: Some(pod_key("default", "client")),
        dst_pod: Some(pod_key("default", "web")),
        egress: Side::NotIsolated,
        ingress: Side::Denied { isolated_by: vec![("default".into(), "deny-all".into())] },
    };
    let r = FlowRecord::new("node-2", FlowMark::IngressDenied, at(1_700_000_000_250), &key("10.244.1.2", "10.244.2.3", 6, 40000, 80), Some(&v));
    assert_eq!(r.text(), "2023-11-14T22:13:20.250Z node-2 ingress denied TCP default/client(10.244.1.2):40000 -> default/web(10.244.2.3):80 by default/deny-all");
    let icmp = FlowKey { src: "fd00::1".parse().unwrap(), dst: "fd00::2".parse().unwrap(), protocol: 58, src_port: None, dst_port: None };
    let r = FlowRecord::new("node-1", FlowMark::EgressAllowed, at(0), &icmp, None);
    assert_eq!(r.text(), "1970-01-01T00:00:00.000Z node-1 egress allowed ICMPv6 [fd00::1] -> [fd00::2]");
}

#[test]
fn times_are_utc_with_milliseconds_across_leap_days_and_centuries() {
    assert_eq!(rfc3339_millis(at(0)), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339_millis(at(1_709_164_800_007)), "2024-02-29T00:00:00.007Z");
    assert_eq!(rfc3339_millis(at(951_868_799_999)), "2000-02-29T23:59:59.999Z");
    assert_eq!(rfc3339_millis(at(4_102_444_800_000)), "2100-01-01T00:00:00.000Z");
    // Text order is time order.
    assert!(rfc3339_millis(at(999)) < rfc3339_millis(at(1_000)));
}

#[test]
fn only_tcp_udp_and_sctp_packets_with_a_port_are_policy_queries() {
    let q = key("10.0.0.1", "10.0.0.2", 17, 1000, 53).query().unwrap();
    assert_eq!((q.protocol, q.port), (Protocol::Udp, 53));
    assert_eq!(FlowKey { dst_port: None, ..key("10.0.0.1", "10.0.0.2", 6, 1, 2) }.query(), None);
    assert_eq!(key("10.0.0.1", "10.0.0.2", 1, 0, 0).query(), None);
    assert_eq!(protocol_name(1), "ICMP");
    assert_eq!(protocol_name(47), "47");
}

#[test]
fn the_deduper_records_a_retransmitted_attempt_once_per_window() {
    let mut d = Deduper::new();
    let t0 = Instant::now();
    let k = key("10.244.1.2", "10.244.2.3", 6, 40000, 80);
    assert!(d.admit(k, FlowMark::EgressDenied, t0));
    // SYN retransmits at 1 s: suppressed.
    assert!(!d.admit(k, FlowMark::EgressDenied, t0 + Duration::from_secs(1)));
    // The other side's mark, and another source port, are other records.
    assert!(d.admit(k, FlowMark::IngressDenied, t0 + Duration::from_secs(1)));
    assert!(d.admit(FlowKey { src_port: Some(40001), ..k }, FlowMark::EgressDenied, t0 + Duration::from_secs(1)));
    // After the window (counted from the recorded one) it is recorded again.
    assert!(d.admit(k, FlowMark::EgressDenied, t0 + Duration::from_millis(2_000)));
    assert!(!d.admit(k, FlowMark::EgressDenied, t0 + Duration::from_millis(3_999)));
}

#[test]
fn the_deduper_forgets_attempts_older_than_the_window() {
    let mut d = Deduper::new();
    let t0 = Instant::now();
    for port in 0..100 {
        assert!(d.admit(key("10.0.0.1", "10.0.0.2", 6, port, 80), FlowMark::EgressAllowed, t0));
    }
    assert_eq!(d.len(), 100);
    assert!(d.admit(key("10.0.0.1", "10.0.0.2", 6, 1, 81), FlowMark::EgressAllowed, t0 + Duration::from_secs(3)));
    assert_eq!(d.len(), 1);
}

fn pod(ns: &str, name: &str, labels: &[(&str, &str)], ip: &str, node: &str) -> PodInfo {
    PodInfo {
        key: pod_key(ns, name),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Labels>(),
        ips: vec![ip.parse().unwrap()],
        host_network: false,
        node: Some(node.into()),
        ports: vec![],
    }
}

/// The model in the loop (needs weft-policy's model and evaluator).
fn cluster() -> Cluster {
    let mut c = Cluster::new();
    c.set_namespace("default", [("kubernetes.io/metadata.name".to_string(), "default".to_string())].into());
    c.set_pod(pod("default", "client", &[("app", "client")], "10.244.1.2", "node-1"));
    c.set_pod(pod("default", "web", &[("app", "web")], "10.244.2.3", "node-2"));
    let np = |v: serde_json::Value| serde_json::from_value(v).unwrap();
    c.apply_policy(&np(serde_json::json!({
        "metadata": {"name": "web-from-client", "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": 80}]}]}
    })))
    .unwrap();
    c
}

#[test]
fn judged_records_name_the_rule_from_the_model_for_allowed_and_the_policy_for_denied() {
    let c = cluster();
    let allowed = FlowRecord::judge(&c, "node-2", FlowMark::IngressAllowed, at(0), &key("10.244.1.2", "10.244.2.3", 6, 40000, 80));
    assert_eq!(allowed.policies, vec!["default/web-from-client ingress[0]"]);
    assert_eq!((allowed.src_pod.as_deref(), allowed.dst_pod.as_deref()), (Some("default/client"), Some("default/web")));
    let denied = FlowRecord::judge(&c, "node-2", FlowMark::IngressDenied, at(0), &key("10.244.1.2", "10.244.2.3", 6, 40000, 81));
    assert_eq!(denied.policies, vec!["default/web-from-client"]);
    // ICMP is not a query, but its pods are still named.
    let icmp = FlowKey { src: "10.244.1.2".parse().unwrap(), dst: "10.244.2.3".parse().unwrap(), protocol: 1, src_port: None, dst_port: None };
    let r = FlowRecord::judge(&c, "node-2", FlowMark::IngressDenied, at(0), &icmp);
    assert_eq!((r.src_pod.as_deref(), r.dst_pod.as_deref(), r.policies.len()), (Some("default/client"), Some("default/web"), 0));
}
