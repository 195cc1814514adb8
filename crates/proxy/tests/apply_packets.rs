//! The applier with real packets: Services and EndpointSlices through ProxyState, the
//! renderer and the applier into a node's netns, and connections through it.

mod common;

use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use weft_kernel::nft::{Conntrack, Nft};
use weft_kernel::Netns;
use weft_proxy::apply::{kernel_objects, Applier};
use weft_proxy::layout;

fn cleanup(t: &weft_testns::TestNs, node: Netns, pods: Netns) {
    drop(node);
    drop(pods);
    Netns::remove(&t.dir().join("node")).unwrap();
    Netns::remove(&t.dir().join("pods")).unwrap();
}

#[test]
fn should_serve_a_basic_endpoint_reject_without_endpoints_and_survive_a_restart_without_rewriting() {
    weft_testns::run_async("proxy_basic_endpoint", |t| async move {
        let (node, pods) = topology(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let servers = [serve(&pods, "10.2.0.2:8080", stop.clone()), serve(&pods, "10.2.0.3:8080", stop.clone())];
        let mut st = state();
        st.apply_service(&service("web", "10.96.0.10", json!({"ports": [{"port": 80, "targetPort": 8080}]})));
        st.apply_slice(&slice("web", &["10.2.0.2", "10.2.0.3"], "TCP", 8080));
        st.apply_service(&service("empty", "10.96.0.11", json!({"ports": [{"port": 80}]})));
        st.flush();
        let mut ap = Applier::open(&node).unwrap();
        let first = ap.resync(&st).unwrap();
        assert!(first.recreated && first.transactions == 1, "{first:?}");
        // What the kernel holds reads back exactly as rendered: a second sync writes nothing.
        assert_eq!(ap.resync(&st).unwrap().weight, 0);

        let out = tokio::task::spawn_blocking(|| {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..64 {
                let (backend, peer) = ask("10.96.0.10:80").expect("connect to the ClusterIP");
                assert_eq!(peer, "10.2.0.1", "traffic from outside the pod network is masqueraded");
                seen.insert(backend);
                if seen.len() == 2 {
                    break;
                }
            }
            let refused = ask("10.96.0.11:80").unwrap_err();
            (seen, refused)
        })
        .await
        .unwrap();
        assert_eq!(out.0.into_iter().collect::<Vec<_>>(), ["10.2.0.2", "10.2.0.3"]);
        assert_eq!(out.1.kind(), std::io::ErrorKind::ConnectionRefused, "no endpoints: rejected at once, {}", out.1);

        // A long-lived connection, then a restart: a new applier over the same table.
        let conn = tokio::task::spawn_blocking(|| {
            let s = std::net::TcpStream::connect_timeout(&"10.96.0.10:80".parse().unwrap(), BOUND).unwrap();
            greeting(&s).unwrap();
            s
        })
        .await
        .unwrap();
        let mut nft = Nft::open(&node).unwrap();
        let gen = nft.generation().unwrap();
        let handles: Vec<_> = nft.chains(&layout::table_ref()).unwrap().into_iter().map(|c| (c.name, c.handle)).collect();
        drop(ap);
        let mut st2 = state();
        st2.replace_all(
            &[service("web", "10.96.0.10", json!({"ports": [{"port": 80, "targetPort": 8080}]})), service("empty", "10.96.0.11", json!({"ports": [{"port": 80}]}))],
            &[slice("web", &["10.2.0.2", "10.2.0.3"], "TCP", 8080)],
        );
        st2.flush();
        let mut ap = Applier::open(&node).unwrap();
        let again = ap.resync(&st2).unwrap();
        assert_eq!((again.weight, again.transactions, again.recreated), (0, 0, false), "a restart rewrites nothing");
        assert_eq!(nft.generation().unwrap(), gen, "not one commit");
        let after: Vec<_> = nft.chains(&layout::table_ref()).unwrap().into_iter().map(|c| (c.name, c.handle)).collect();
        assert_eq!(after, handles);
        let echoed = tokio::task::spawn_blocking(move || {
            use std::io::{BufRead, Write};
            let mut s = conn;
            s.write_all(b"still here\n").unwrap();
            let mut line = String::new();
            std::io::BufReader::new(&s).read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        assert_eq!(echoed, "still here\n");

        // An endpoint goes: one small incremental commit, and nothing else differs.
        st2.apply_slice(&slice("web", &["10.2.0.3"], "TCP", 8080));
        let r = ap.apply(&st2.flush()).unwrap();
        assert_eq!(r.transactions, 1);
        let rs = nft.ruleset(&layout::table_ref()).unwrap().unwrap();
        let mut want = layout::skeleton(st2.node());
        for (k, c) in st2.compiled() {
            want.extend(&ap.objects(k, c));
        }
        assert_eq!(kernel_objects(&rs), want);
        let only: std::collections::BTreeSet<String> = tokio::task::spawn_blocking(|| (0..16).map(|_| ask("10.96.0.10:80").unwrap().0).collect()).await.unwrap();
        assert_eq!(only.into_iter().collect::<Vec<_>>(), ["10.2.0.3"]);

        stop.store(true, Ordering::Relaxed);
        for s in servers {
            s.join().unwrap();
        }
        drop(nft);
        drop(ap);
        cleanup(&t, node, pods);
    });
}

#[test]
fn should_allow_pods_to_hairpin_back_to_themselves_through_services() {
    weft_testns::run_async("proxy_hairpin", |t| async move {
        let (node, pods) = topology(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve(&pods, "10.2.0.2:8080", stop.clone());
        let mut st = state();
        st.apply_service(&service("self", "10.96.0.20", json!({"ports": [{"port": 80, "targetPort": 8080}]})));
        st.apply_slice(&slice("self", &["10.2.0.2"], "TCP", 8080));
        st.flush();
        let mut ap = Applier::open(&node).unwrap();
        ap.resync(&st).unwrap();
        let pods2 = Netns::open(&t.dir().join("pods")).unwrap();
        let (backend, peer) = tokio::task::spawn_blocking(move || ask_from(&pods2, "10.96.0.20:80")).await.unwrap().expect("a pod reaches itself through its service");
        assert_eq!(backend, "10.2.0.2");
        assert_eq!(peer, "10.2.0.1", "hairpin traffic is masqueraded to the node");
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
        drop(ap);
        cleanup(&t, node, pods);
    });
}

#[test]
fn should_have_session_affinity_work_and_forget_clients_of_endpoints_that_went_away() {
    weft_testns::run_async("proxy_affinity", |t| async move {
        let (node, pods) = topology(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let servers = [serve(&pods, "10.2.0.2:8080", stop.clone()), serve(&pods, "10.2.0.3:8080", stop.clone())];
        let mut st = state();
        st.apply_service(&service("sticky", "10.96.0.30", json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}, "ports": [{"port": 80, "targetPort": 8080}]})));
        st.apply_slice(&slice("sticky", &["10.2.0.2", "10.2.0.3"], "TCP", 8080));
        st.flush();
        let mut ap = Applier::open(&node).unwrap();
        ap.resync(&st).unwrap();
        let chosen: std::collections::BTreeSet<String> = tokio::task::spawn_blocking(|| (0..12).map(|_| ask("10.96.0.30:80").unwrap().0).collect()).await.unwrap();
        assert_eq!(chosen.len(), 1, "every connection from one client lands on one endpoint: {chosen:?}");
        let pinned = chosen.into_iter().next().unwrap();
        let mut nft = Nft::open(&node).unwrap();
        let aff = |nft: &mut Nft| -> usize {
            let sets = nft.sets(&layout::table_ref()).unwrap();
            sets.iter().filter(|s| s.name.starts_with("affinity-")).map(|s| nft.elements(&layout::table_ref(), s).unwrap().len()).sum()
        };
        assert_eq!(aff(&mut nft), 1, "the client is remembered");
        // The pinned endpoint goes: its affinity entry goes with it, and the client moves.
        let other = if pinned == "10.2.0.2" { "10.2.0.3" } else { "10.2.0.2" };
        st.apply_slice(&slice("sticky", &[other], "TCP", 8080));
        ap.apply(&st.flush()).unwrap();
        assert_eq!(aff(&mut nft), 0, "the stale affinity entry is deleted");
        let now = tokio::task::spawn_blocking(|| ask("10.96.0.30:80").unwrap().0).await.unwrap();
        assert_eq!(now, other);
        // Switching affinity off keeps the service working and forgets the client.
        st.apply_service(&service("sticky", "10.96.0.30", json!({"ports": [{"port": 80, "targetPort": 8080}]})));
        ap.apply(&st.flush()).unwrap();
        assert_eq!(aff(&mut nft), 0);
        assert_eq!(tokio::task::spawn_blocking(|| ask("10.96.0.30:80").unwrap().0).await.unwrap(), other);
        stop.store(true, Ordering::Relaxed);
        for s in servers {
            s.join().unwrap();
        }
        drop(nft);
        drop(ap);
        cleanup(&t, node, pods);
    });
}

#[test]
fn should_be_able_to_create_a_functioning_node_port_service() {
    weft_testns::run_async("proxy_node_port", |t| async move {
        let (node, pods) = topology(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve(&pods, "10.2.0.3:8080", stop.clone());
        let mut st = state();
        st.apply_service(&service("np", "10.96.0.40", json!({"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]})));
        st.apply_slice(&slice("np", &["10.2.0.3"], "TCP", 8080));
        st.apply_service(&service("np-none", "10.96.0.41", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30081}]})));
        st.flush();
        let mut ap = Applier::open(&node).unwrap();
        ap.resync(&st).unwrap();
        let (ok, refused) = tokio::task::spawn_blocking(|| (ask("10.1.0.1:30080"), ask("10.1.0.1:30081").unwrap_err())).await.unwrap();
        let (backend, peer) = ok.expect("the node port on the node's address");
        assert_eq!((backend.as_str(), peer.as_str()), ("10.2.0.3", "10.2.0.1"));
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
        drop(ap);
        cleanup(&t, node, pods);
    });
}

/// A UDP client socket on the client's address at `port` (one conntrack entry per target).
fn udp_client(port: u16) -> std::net::UdpSocket {
    let sock = std::net::UdpSocket::bind(("10.1.0.2", port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    sock
}

/// Asks `to` from `sock` up to `tries` times; the first answer.
fn ask_udp(sock: &std::net::UdpSocket, to: &str, tries: u32) -> Option<String> {
    let mut buf = [0u8; 64];
    // Replies to earlier retries would answer for the wrong moment: drop them.
    sock.set_nonblocking(true).unwrap();
    while sock.recv_from(&mut buf).is_ok() {}
    sock.set_nonblocking(false).unwrap();
    for _ in 0..tries {
        sock.send_to(b"q", to).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    }
    None
}

#[test]
fn should_flush_stale_udp_conntrack_when_a_cluster_ip_and_node_port_get_endpoints_and_when_one_goes() {
    weft_testns::run_async("proxy_udp_first_endpoints", |t| async move {
        let (node, pods) = topology(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let servers = [serve_udp(&pods, "10.2.0.2:5353", stop.clone()), serve_udp(&pods, "10.2.0.3:5353", stop.clone())];
        let mut st = state();
        let mut ap = Applier::open(&node).unwrap();
        ap.resync(&st).unwrap();
        // Clients ask before the proxy serves the service: the node keeps conntrack entries
        // of those flows without NAT (to the ClusterIP, routed on; to the node port, refused).
        let (to_cluster_ip, to_node_port) = (udp_client(40010), udp_client(40011));
        assert_eq!(ask_udp(&to_cluster_ip, "10.96.0.60:53", 1), None);
        assert_eq!(ask_udp(&to_node_port, "10.1.0.1:30053", 1), None);
        let mut ct = Conntrack::open(&node).unwrap();
        let entries = ct.list().unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(entries.iter().any(|e| e.orig.dst == ip("10.96.0.60")) && entries.iter().any(|e| e.orig.dport == 30053), "stale entries to start from: {entries:?}");

        st.apply_service(&service("dns", "10.96.0.60", json!({"type": "NodePort", "ports": [{"port": 53, "targetPort": 5353, "protocol": "UDP", "nodePort": 30053}]})));
        st.apply_slice(&slice("dns", &["10.2.0.2"], "UDP", 5353));
        ap.apply(&st.flush()).unwrap();
        // The same client sockets (the same flows) now reach the endpoint, through both.
        assert_eq!(ask_udp(&to_cluster_ip, "10.96.0.60:53", 10).as_deref(), Some("10.2.0.2"));
        assert_eq!(ask_udp(&to_node_port, "10.1.0.1:30053", 10).as_deref(), Some("10.2.0.2"));

        // The endpoint is replaced: the node port's flow moves to the new one too.
        st.apply_slice(&slice("dns", &["10.2.0.3"], "UDP", 5353));
        ap.apply(&st.flush()).unwrap();
        assert_eq!(ask_udp(&to_node_port, "10.1.0.1:30053", 10).as_deref(), Some("10.2.0.3"));
        assert_eq!(ask_udp(&to_cluster_ip, "10.96.0.60:53", 10).as_deref(), Some("10.2.0.3"));
        stop.store(true, Ordering::Relaxed);
        for s in servers {
            s.join().unwrap();
        }
        drop(ap);
        cleanup(&t, node, pods);
    });
}

#[test]
fn should_be_able_to_preserve_udp_traffic_when_server_pod_cycles() {
    weft_testns::run_async("proxy_udp_stale", |t| async move {
        let (node, pods) = topology(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let servers = [serve_udp(&pods, "10.2.0.2:5353", stop.clone()), serve_udp(&pods, "10.2.0.3:5353", stop.clone())];
        let mut st = state();
        st.apply_service(&service("dns", "10.96.0.50", json!({"ports": [{"port": 53, "targetPort": 5353, "protocol": "UDP"}]})));
        st.apply_slice(&slice("dns", &["10.2.0.2"], "UDP", 5353));
        st.flush();
        let mut ap = Applier::open(&node).unwrap();
        ap.resync(&st).unwrap();
        // One client socket (one conntrack entry), kept across the endpoint change.
        let sock = udp_client(40000);
        let ask_udp = |sock: &std::net::UdpSocket| ask_udp(sock, "10.96.0.50:53", 10);
        assert_eq!(ask_udp(&sock).as_deref(), Some("10.2.0.2"));
        // The server pod is replaced by one at another address.
        st.apply_slice(&slice("dns", &["10.2.0.3"], "UDP", 5353));
        ap.apply(&st.flush()).unwrap();
        let mut ct = Conntrack::open(&node).unwrap();
        assert!(ct.list().unwrap().iter().all(|e| e.reply.src != "10.2.0.2".parse::<std::net::IpAddr>().unwrap()), "the entry to the gone endpoint is flushed");
        assert_eq!(ask_udp(&sock).as_deref(), Some("10.2.0.3"), "the same client socket reaches the new pod");
        stop.store(true, Ordering::Relaxed);
        for s in servers {
            s.join().unwrap();
        }
        drop(ap);
        cleanup(&t, node, pods);
    });
}

#[test]
fn two_services_claiming_one_external_ip_and_port_leave_it_to_the_first_and_the_sync_goes_through() {
    weft_testns::run_async("proxy_external_ip_conflict", |t| async move {
        let (node, pods) = topology(t.dir()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let servers = [serve(&pods, "10.2.0.2:8080", stop.clone()), serve(&pods, "10.2.0.3:8080", stop.clone())];
        let mut st = state();
        let with_ip = |name: &str, cip: &str| service(name, cip, json!({"externalIPs": ["10.96.9.9"], "ports": [{"port": 80, "targetPort": 8080}]}));
        st.apply_service(&with_ip("a", "10.96.0.60"));
        st.apply_slice(&slice("a", &["10.2.0.2"], "TCP", 8080));
        let mut ap = Applier::open(&node).unwrap();
        ap.resync(&{
            st.flush();
            st
        })
        .unwrap();
        let mut st = {
            let mut s = state();
            s.replace_all(&[with_ip("a", "10.96.0.60")], &[slice("a", &["10.2.0.2"], "TCP", 8080)]);
            s.flush();
            s
        };
        // b claims the same address and port: its own ClusterIP works, the external IP stays a's.
        st.apply_service(&with_ip("b", "10.96.0.61"));
        st.apply_slice(&slice("b", &["10.2.0.3"], "TCP", 8080));
        ap.apply(&st.flush()).expect("a conflicting claim does not fail the transaction");
        let (ext, b) = tokio::task::spawn_blocking(|| (ask("10.96.9.9:80"), ask("10.96.0.61:80"))).await.unwrap();
        let (ext, b) = (ext.expect("a's external IP").0, b.expect("b's ClusterIP").0);
        assert_eq!((ext.as_str(), b.as_str()), ("10.2.0.2", "10.2.0.3"));
        // a goes: its claim is released and b's next change takes the address.
        st.delete_service(&with_ip("a", "10.96.0.60"));
        ap.apply(&st.flush()).unwrap();
        st.apply_service(&service("b", "10.96.0.61", json!({"externalIPs": ["10.96.9.9"], "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": 8080}]})));
        ap.apply(&st.flush()).unwrap();
        let ext = tokio::task::spawn_blocking(|| ask("10.96.9.9:80").unwrap().0).await.unwrap();
        assert_eq!(ext, "10.2.0.3");
        stop.store(true, Ordering::Relaxed);
        for s in servers {
            s.join().unwrap();
        }
        drop(ap);
        cleanup(&t, node, pods);
    });
}
