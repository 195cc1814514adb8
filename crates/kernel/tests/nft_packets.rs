//! Real packets through rulesets written with the nft client: a
//! ClusterIP-like service proxy on a "node" between a client and two
//! backends.
//!
//! ```text
//!  test netns (client)        router netns (the node)          backends netns
//!  c0 10.1.0.2 ─── veth ─── r0 10.1.0.1   r1 10.2.0.1 ─── veth ─── b0 10.2.0.2, 10.2.0.3
//! ```
//! The router DNATs service VIPs in prerouting (verdict map keyed on
//! `ip daddr . meta l4proto . th dport`, numgen among endpoint chains),
//! rejects services without endpoints in forward, and masquerades DNATed
//! flows in postrouting. The backends have no route back to the client, so
//! only masqueraded connections can complete.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weft_kernel::nft::*;
use weft_kernel::{run_in, sysctl, Handle, Netns, Route, VethSpec};

const CONNECT_BOUND: Duration = Duration::from_secs(5);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn svc(vip: &str, port: u16) -> Value {
    Value::concat([Value::ipv4(ip(vip)), Value::proto(6), Value::port(port)])
}

async fn topology(dir: &std::path::Path) -> (Netns, Netns) {
    let router = Netns::create(&dir.join("router")).unwrap();
    let backends = Netns::create(&dir.join("backends")).unwrap();
    let here = Handle::current().unwrap();
    let r = Handle::open(&router).unwrap();
    let b = Handle::open(&backends).unwrap();
    here.create_veth(&VethSpec { name: "c0", peer_name: "r0", peer_ns: Some(&router), up: true, ..Default::default() }).await.unwrap();
    r.create_veth(&VethSpec { name: "r1", peer_name: "b0", peer_ns: Some(&backends), up: true, ..Default::default() }).await.unwrap();
    let c0 = here.link("c0").await.unwrap().index;
    here.add_address(c0, "10.1.0.2/24".parse().unwrap()).await.unwrap();
    here.add_route(&Route::via("0.0.0.0/0".parse().unwrap(), "10.1.0.1".parse().unwrap())).await.unwrap();
    let r0 = r.link("r0").await.unwrap().index;
    let r1 = r.link("r1").await.unwrap().index;
    r.set_link_up(r0).await.unwrap();
    r.add_address(r0, "10.1.0.1/24".parse().unwrap()).await.unwrap();
    r.add_address(r1, "10.2.0.1/24".parse().unwrap()).await.unwrap();
    // Service VIPs are routed towards the backends' side, as a node's default route would.
    r.add_route(&Route::via("10.96.0.0/16".parse().unwrap(), "10.2.0.2".parse().unwrap())).await.unwrap();
    sysctl::enable_ip_forward(Some(&router)).unwrap();
    let b0 = b.link("b0").await.unwrap().index;
    b.set_link_up(b0).await.unwrap();
    b.add_address(b0, "10.2.0.2/24".parse().unwrap()).await.unwrap();
    b.add_address(b0, "10.2.0.3/24".parse().unwrap()).await.unwrap();
    (router, backends)
}

/// A TCP server on `addr` in `ns` answering each connection with
/// "<its address> <peer address>", until `stop` is set.
fn serve(ns: &Netns, addr: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = run_in(ns, || TcpListener::bind(addr)).unwrap().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, peer)) => {
                    let _ = writeln!(s, "{} {}", addr.ip(), peer.ip());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// Connects to `to` and returns the server's answer: (backend, peer it saw).
fn ask(to: &str) -> std::io::Result<(String, String)> {
    let mut s = TcpStream::connect_timeout(&to.parse().unwrap(), CONNECT_BOUND)?;
    s.set_read_timeout(Some(CONNECT_BOUND))?;
    let mut line = String::new();
    BufReader::new(&mut s).read_line(&mut line)?;
    let mut parts = line.split_whitespace().map(str::to_string);
    Ok((parts.next().unwrap_or_default(), parts.next().unwrap_or_default()))
}

fn proxy_ruleset() -> Ruleset {
    let services = Set::vmap("services", &[KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService]);
    let no_endpoints = Set::vmap("no-endpoints", &[KeyType::Ipv4Addr, KeyType::InetProto, KeyType::InetService]);
    let web_eps = Set::vmap("svc-web-endpoints", &[KeyType::Integer32]);
    let sticky_eps = Set::vmap("svc-sticky-endpoints", &[KeyType::Integer32]);
    let affinity = |n: u8| {
        Set::new(&format!("affinity-{n}"), &[KeyType::Ipv4Addr])
            .with_flags(SetFlags { dynamic: true, timeout: true, ..Default::default() })
            .with_timeout(Duration::from_secs(10800))
    };
    let mut rs = Ruleset::new(Table::new(Family::Inet, "weft-proxy"));
    rs.chain(Chain::base("nat-prerouting", ChainType::Nat, Hook::Prerouting, priority::DSTNAT))
        .chain(Chain::base("nat-postrouting", ChainType::Nat, Hook::Postrouting, priority::SRCNAT))
        .chain(Chain::base("filter-forward", ChainType::Filter, Hook::Forward, priority::FILTER))
        .chain(Chain::regular("reject-chain"))
        .chain(Chain::regular("svc-web"))
        .chain(Chain::regular("svc-sticky"));
    for ep in 1..=2u8 {
        rs.chain(Chain::regular(&format!("ep-{ep}"))).chain(Chain::regular(&format!("sticky-ep-{ep}")));
    }
    let goto = |c: &str| Verdict::Goto(c.to_string());
    rs.set(services, vec![
        Element::verdict(svc("10.96.0.10", 80), goto("svc-web")),
        Element::verdict(svc("10.96.0.12", 80), goto("svc-sticky")),
    ])
    .set(no_endpoints, vec![Element::verdict(svc("10.96.0.11", 80), goto("reject-chain"))])
    .set(web_eps, vec![Element::verdict(Value::u32(0), goto("ep-1")), Element::verdict(Value::u32(1), goto("ep-2"))])
    .set(sticky_eps, vec![Element::verdict(Value::u32(0), goto("sticky-ep-1")), Element::verdict(Value::u32(1), goto("sticky-ep-2"))])
    .set(affinity(1), vec![])
    .set(affinity(2), vec![]);
    let key_vmap = |set: &str| [Expr::only_ipv4(), Expr::ipv4_service_key(), vec![Expr::vmap(set, Reg::R1)]].concat();
    let dnat_to = |addr: &str| vec![Expr::load(Reg::R1, Value::ipv4(ip(addr))), Expr::load(Reg::R2, Value::port(8080)), Expr::dnat(NatFamily::Ipv4, Reg::R1, Some(Reg::R2))];
    rs.rule(Rule::new("nat-prerouting", key_vmap("services")).with_comment("ClusterIPs"))
        .rule(Rule::new("filter-forward", key_vmap("no-endpoints")))
        .rule(Rule::new("reject-chain", vec![Expr::counter(), Expr::reject(Reject::Icmpx(IcmpxCode::PortUnreachable))]))
        .rule(Rule::new("svc-web", vec![Expr::numgen_random(Reg::R1, 2), Expr::vmap("svc-web-endpoints", Reg::R1)]))
        .rule(Rule::new("ep-1", dnat_to("10.2.0.2")))
        .rule(Rule::new("ep-2", dnat_to("10.2.0.3")))
        .rule(Rule::new("nat-postrouting", [Expr::ct_status_any(ct_status::DNAT), vec![Expr::masquerade()]].concat()));
    // sessionAffinity: ClientIP: a client seen by an endpoint sticks to it.
    for ep in 1..=2u8 {
        rs.rule(Rule::new("svc-sticky", vec![Expr::ip_saddr(Reg::R1), Expr::in_set(&format!("affinity-{ep}"), Reg::R1), Expr::goto(&format!("sticky-ep-{ep}"))]));
    }
    rs.rule(Rule::new("svc-sticky", vec![Expr::numgen_random(Reg::R1, 2), Expr::vmap("svc-sticky-endpoints", Reg::R1)]));
    for (ep, addr) in [(1u8, "10.2.0.2"), (2, "10.2.0.3")] {
        let mut exprs = vec![Expr::ip_saddr(Reg::R1), Expr::update_set(&format!("affinity-{ep}"), Reg::R1, None)];
        exprs.extend(dnat_to(addr));
        rs.rule(Rule::new(&format!("sticky-ep-{ep}"), exprs));
    }
    rs
}

#[test]
fn cluster_ip_dnat_spreads_over_backends_rejects_without_endpoints_and_masquerades() {
    weft_testns::run_async("nft_cluster_ip_packets", |t| async move {
        let (router, backends) = topology(t.dir()).await;
        let rs = proxy_ruleset();
        let mut nft = Nft::open(&router).unwrap();
        nft.commit(Batch::new().add_ruleset(&rs)).unwrap();
        assert_eq!(nft.ruleset(&rs.table_ref()).unwrap().unwrap().canonical(), rs.canonical());

        let max_tries = 64;
        let stop = Arc::new(AtomicBool::new(false));
        let servers = [serve(&backends, "10.2.0.2:8080", stop.clone()), serve(&backends, "10.2.0.3:8080", stop.clone())];
        let outcome = tokio::task::spawn_blocking(move || {
            // Both endpoints get traffic, and each saw the router's address (masquerade).
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..max_tries {
                let (backend, peer) = ask("10.96.0.10:80").expect("connect to the ClusterIP");
                assert_eq!(peer, "10.2.0.1", "the backend sees the masqueraded source");
                seen.insert(backend);
                if seen.len() == 2 {
                    break;
                }
            }
            // No endpoints: refused at once by the ICMP port-unreachable from the reject rule.
            let refused = ask("10.96.0.11:80").unwrap_err();
            // Affinity: every connection to the sticky service lands on one backend.
            let sticky: std::collections::BTreeSet<String> = (0..8).map(|_| ask("10.96.0.12:80").expect("connect to the sticky service").0).collect();
            (seen, refused, sticky)
        })
        .await
        .unwrap();
        let (seen, refused, sticky) = outcome;
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["10.2.0.2", "10.2.0.3"]);
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
        assert_eq!(sticky.len(), 1, "{sticky:?}");

        // The reject rule counted the refused SYN.
        let rejects = nft.rules(&rs.table_ref(), Some("reject-chain")).unwrap();
        assert!(matches!(rejects[0].exprs[0], Expr::Counter { packets, .. } if packets >= 1), "{:?}", rejects[0].exprs);
        // The dynset put the client into the affinity set of the chosen endpoint, with the set's timeout.
        let ep = if sticky.contains("10.2.0.2") { 1 } else { 2 };
        let set = nft.sets(&rs.table_ref()).unwrap().into_iter().find(|s| s.name == format!("affinity-{ep}")).unwrap();
        let elems = nft.elements(&rs.table_ref(), &set).unwrap();
        assert_eq!(elems.iter().map(|e| e.key.clone()).collect::<Vec<_>>(), vec![Value::ipv4(ip("10.1.0.2"))]);
        assert!(elems[0].expires.unwrap() <= Duration::from_secs(10800) && elems[0].expires.unwrap() > Duration::from_secs(10000));
        let other = nft.sets(&rs.table_ref()).unwrap().into_iter().find(|s| s.name == format!("affinity-{}", 3 - ep)).unwrap();
        assert!(nft.elements(&rs.table_ref(), &other).unwrap().is_empty());

        // Moving the service to "no endpoints" is one incremental commit; new connections are refused.
        let services = rs.sets.iter().find(|(s, _)| s.name == "services").unwrap().0.clone();
        let none = rs.sets.iter().find(|(s, _)| s.name == "no-endpoints").unwrap().0.clone();
        let web = svc("10.96.0.10", 80);
        nft.commit(
            Batch::new()
                .delete_elements(&rs.table_ref(), &services, [Element::new(web.clone())])
                .add_elements(&rs.table_ref(), &none, [Element::verdict(web, Verdict::Goto("reject-chain".into()))]),
        )
        .unwrap();
        let err = tokio::task::spawn_blocking(|| ask("10.96.0.10:80").unwrap_err()).await.unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");

        drop(nft);
        stop.store(true, Ordering::Relaxed);
        for s in servers {
            s.join().unwrap();
        }
        drop(router);
        drop(backends);
        Netns::remove(&t.dir().join("router")).unwrap();
        Netns::remove(&t.dir().join("backends")).unwrap();
    });
}
