use super::*;

fn node() -> NodeContext {
    NodeContext {
        node_name: "node-0".into(),
        pod_cidrs: vec![
            "10.244.0.0/16".parse().unwrap(),
            "fd00:10:244::/56".parse().unwrap(),
        ],
        masquerade_all: false,
    }
}

fn port() -> ServicePort {
    crate::service::example_port()
}

fn ep(last: u8, local: bool) -> Endpoint {
    Endpoint {
        ip: format!("10.244.{}.{last}", if local { 0 } else { 1 })
            .parse()
            .unwrap(),
        port: 8080,
        ready: true,
        serving: true,
        terminating: false,
        local,
    }
}

fn balance(eps: &[Endpoint], affinity_seconds: Option<u32>) -> Rule {
    Rule::Balance {
        endpoints: eps
            .iter()
            .map(|e| Target {
                addr: e.ip,
                port: e.port,
            })
            .collect(),
        affinity_seconds,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_cluster_ip_balances_over_every_ready_endpoint() {
    let eps = [ep(1, true), ep(2, false)];
    let r = compile(&port(), &eps, &node());
    assert_eq!(
        r.service_ips,
        vec![(
            ip("10.96.0.20"),
            Proto::Tcp,
            80,
            Verdict::Goto("svc-ns/web/tcp/http".into())
        )]
    );
    let svc = &r.chains["svc-ns/web/tcp/http"];
    assert!(
        matches!(&svc[0], Rule::MasqueradeUnlessFromPods { daddr, port: 80, pod_cidrs, .. } if *daddr == ip("10.96.0.20") && pod_cidrs.len() == 1)
    );
    assert_eq!(svc[1], balance(&[ep(1, true), ep(2, false)], None));
    assert_eq!(r.chains.len(), 1, "no chain per endpoint: {:?}", r.chains.keys());
    assert!(r.no_endpoint_ips.is_empty() && r.nodeports.is_empty());
}

#[test]
fn no_endpoints_rejects_at_once() {
    let r = compile(&port(), &[], &node());
    assert!(r.service_ips.is_empty() && r.chains.is_empty());
    assert_eq!(
        r.no_endpoint_ips,
        vec![(ip("10.96.0.20"), Proto::Tcp, 80, Verdict::Reject)]
    );
}

#[test]
fn not_ready_endpoints_are_not_used() {
    let mut e = ep(1, true);
    e.ready = false;
    e.serving = false;
    let r = compile(&port(), &[e], &node());
    assert_eq!(r.no_endpoint_ips.len(), 1);
}

#[test]
fn terminating_endpoints_serve_only_when_nothing_else_does() {
    let mut t = ep(9, false);
    t.ready = false;
    t.terminating = true;
    let r = compile(&port(), &[t.clone(), ep(1, false)], &node());
    assert_eq!(r.chains["svc-ns/web/tcp/http"][1], balance(&[ep(1, false)], None));
    let r = compile(&port(), &[t.clone()], &node());
    assert_eq!(r.chains["svc-ns/web/tcp/http"][1], balance(&[t], None));
}

#[test]
fn session_affinity_pins_clients_per_endpoint() {
    let mut p = port();
    p.affinity_seconds = Some(60);
    let eps = [ep(1, true), ep(2, false)];
    let r = compile(&p, &eps, &node());
    let svc = &r.chains["svc-ns/web/tcp/http"];
    assert_eq!(svc[1], balance(&eps, Some(60)));
}

#[test]
fn a_node_port_with_cluster_policy_masquerades() {
    let mut p = port();
    p.node_port = 30080;
    let r = compile(&p, &[ep(1, false)], &node());
    assert_eq!(
        r.nodeports,
        vec![(
            Proto::Tcp,
            30080,
            Verdict::Goto("ext-ns/web/tcp/http".into())
        )]
    );
    assert_eq!(
        r.chains["ext-ns/web/tcp/http"],
        vec![Rule::Masquerade, Rule::Goto("svc-ns/web/tcp/http".into())]
    );
}

#[test]
fn external_local_without_local_endpoints_drops_outside_traffic_but_serves_pods_and_the_node() {
    let mut p = port();
    p.node_port = 30080;
    p.external_local = true;
    p.load_balancer_ips = vec![ip("10.99.1.5")];
    p.health_check_node_port = 32100;
    let r = compile(&p, &[ep(1, false)], &node());
    assert_eq!(
        r.no_endpoint_nodeports,
        vec![(Proto::Tcp, 30080, Verdict::Drop)]
    );
    assert_eq!(
        r.no_endpoint_ips,
        vec![(ip("10.99.1.5"), Proto::Tcp, 80, Verdict::Drop)]
    );
    let ext = &r.chains["ext-ns/web/tcp/http"];
    assert_eq!(
        ext,
        &vec![
            Rule::GotoIfFromPods {
                pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
                chain: "svc-ns/web/tcp/http".into()
            },
            Rule::MasqueradeIfFromNode,
            Rule::GotoIfFromNode {
                chain: "svc-ns/web/tcp/http".into()
            },
        ]
    );
    assert_eq!(r.health_check, Some((32100, 0)));
    // With a local endpoint, outside traffic goes to it, unmasqueraded.
    let r = compile(&p, &[ep(1, false), ep(2, true)], &node());
    assert!(r.no_endpoint_nodeports.is_empty());
    assert_eq!(
        r.chains["ext-ns/web/tcp/http"].last(),
        Some(&Rule::Goto("local-ns/web/tcp/http".into()))
    );
    assert_eq!(
        r.chains["local-ns/web/tcp/http"],
        vec![balance(&[ep(2, true)], None)]
    );
    assert_eq!(r.health_check, Some((32100, 1)));
}

#[test]
fn internal_local_drops_when_nothing_is_local_and_rejects_when_nothing_at_all() {
    let mut p = port();
    p.internal_local = true;
    let r = compile(&p, &[ep(1, false)], &node());
    assert_eq!(
        r.no_endpoint_ips,
        vec![(ip("10.96.0.20"), Proto::Tcp, 80, Verdict::Drop)]
    );
    let r = compile(&p, &[ep(1, true)], &node());
    assert_eq!(
        r.service_ips[0].3,
        Verdict::Goto("local-ns/web/tcp/http".into())
    );
    let r = compile(&p, &[], &node());
    assert_eq!(r.no_endpoint_ips[0].3, Verdict::Reject);
}

#[test]
fn load_balancer_source_ranges_firewall_the_lb_address_only() {
    let mut p = port();
    p.node_port = 30080;
    p.load_balancer_ips = vec![ip("10.99.1.5")];
    p.external_ips = vec![ip("10.99.2.1")];
    p.source_ranges = vec!["10.99.0.0/24".parse().unwrap()];
    let r = compile(&p, &[ep(1, false)], &node());
    assert_eq!(
        r.firewall_ips,
        vec![(
            ip("10.99.1.5"),
            Proto::Tcp,
            80,
            Verdict::Goto("fw-ns/web/tcp/http".into())
        )]
    );
    assert_eq!(
        r.chains["fw-ns/web/tcp/http"],
        vec![Rule::DropUnlessFrom(vec!["10.99.0.0/24".parse().unwrap()])]
    );
    let captured: Vec<IpAddr> = r.service_ips.iter().map(|s| s.0).collect();
    assert_eq!(
        captured,
        vec![ip("10.96.0.20"), ip("10.99.2.1"), ip("10.99.1.5")]
    );
}

#[test]
fn masquerade_all_masquerades_pod_traffic_too() {
    let mut n = node();
    n.masquerade_all = true;
    let r = compile(&port(), &[ep(1, true)], &n);
    assert_eq!(
        r.chains["svc-ns/web/tcp/http"][0],
        Rule::MasqueradeTo {
            daddr: ip("10.96.0.20"),
            proto: Proto::Tcp,
            port: 80
        }
    );
}

#[test]
fn an_unnamed_port_is_named_by_its_number() {
    let mut p = port();
    p.name.port = String::new();
    assert_eq!(cluster_chain(&p), "svc-ns/web/tcp/p80");
}

#[test]
fn the_ipv6_port_of_a_dual_stack_service_has_chains_of_its_own() {
    let mut p = port();
    p.family = Family::V6;
    p.cluster_ip = ip("fd00:10:96::20");
    assert_eq!(cluster_chain(&p), "svc-ns/web/tcp/http/v6");
    assert_ne!(cluster_chain(&p), cluster_chain(&port()));
}
