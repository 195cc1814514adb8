//! Real packets: pods attached by the `weft-cni` binary reach each other over
//! the bridge, on IPv4 and IPv6; and the in-process API does the same inside
//! a node netns of its own, as the local runtime uses it.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use weft_cni::{AttachRequest, NetConfig};
use weft_kernel::{run_in, Handle, Netns};

/// A TCP round trip from `client` to `server_ip:port` in `server`.
fn tcp_round_trip(server: &Netns, server_ip: IpAddr, client: &Netns, port: u16) {
    // A socket stays in the netns it was made in, whichever thread uses it.
    let wildcard: IpAddr = if server_ip.is_ipv6() { "::".parse().unwrap() } else { "0.0.0.0".parse().unwrap() };
    let listener = run_in(server, || TcpListener::bind(SocketAddr::new(wildcard, port))).unwrap().unwrap();
    let accept = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong").unwrap();
        (buf, peer)
    });
    let mut c = run_in(client, || TcpStream::connect_timeout(&SocketAddr::new(server_ip, port), Duration::from_secs(5)))
        .unwrap()
        .unwrap_or_else(|e| panic!("connect to {server_ip}:{port}: {e}"));
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"ping").unwrap();
    let mut reply = [0u8; 4];
    c.read_exact(&mut reply).unwrap();
    let (got, _peer) = accept.join().unwrap();
    assert_eq!((&got, &reply), (b"ping", b"pong"));
}

#[test]
fn two_pods_on_the_bridge_talk_tcp_over_v4_and_v6() {
    weft_testns::run_async("two_pods_talk_tcp", |t| async move {
        let c = conf("1.1.0", &["10.244.1.0/24", "fd00:10:244:1::/64"], &t.dir().join("data"));
        let (pa, a) = pod(t.dir(), "a");
        let (pb, b) = pod(t.dir(), "b");
        let ra = cmd("ADD", "a", Some(&pa), &c).ok().clone();
        cmd("ADD", "b", Some(&pb), &c).ok();
        for v6 in [false, true] {
            let ip: ipnet::IpNet = addr_of(&ra, v6).parse().unwrap();
            tcp_round_trip(&a, ip.addr(), &b, 8080);
        }
        // The gateway on the bridge answers too (the node reaches its pods).
        let host = Netns::current().unwrap();
        tcp_round_trip(&a, "10.244.1.2".parse().unwrap(), &host, 8081);
        // Hairpin (a pod reaching itself via a service) needs NAT, which the
        // proxy adds later; here the port flag is what can be checked.
        let h = Handle::current().unwrap();
        let veth = h.link(ra["interfaces"][0]["name"].as_str().unwrap()).await.unwrap();
        assert_eq!(h.hairpin(veth.index).await.unwrap(), Some(true));
    });
}

#[test]
fn in_process_attach_works_inside_a_node_netns() {
    weft_testns::run_async("in_process_attach_in_node_netns", |t| async move {
        let node_path = t.dir().join("node1");
        let node = Netns::create(&node_path).unwrap();
        let conf = NetConfig::new(
            "weft",
            vec!["10.244.2.0/24".parse().unwrap(), "fd00:10:244:2::/64".parse().unwrap()],
            t.dir().join("state"),
        )
        .unwrap();
        let mut pods = Vec::new();
        for name in ["x", "y"] {
            let path = t.dir().join(name);
            let ns = Netns::create(&path).unwrap();
            let mut req = AttachRequest::new(name, "eth0", Some(path.clone()));
            req.host_netns = Some(node_path.clone());
            let res = weft_cni::attach(&req, &conf).await.unwrap();
            pods.push((req, ns, res));
        }
        // The bridge is in the node netns, not in the test's.
        assert!(Handle::current().unwrap().link_by_name("weft0").await.unwrap().is_none());
        assert!(Handle::open(&node).unwrap().link_by_name("weft0").await.unwrap().is_some());
        assert_eq!(weft_kernel::sysctl::read(Some(&node), "net/ipv4/ip_forward").unwrap(), "1");
        let x_ip = pods[0].2.ips[0].address.addr();
        tcp_round_trip(&pods[0].1, x_ip, &pods[1].1, 9000);
        weft_cni::check(&pods[0].0, &conf, &pods[0].2).await.unwrap();
        weft_cni::gc(&conf, &[pods[1].0.attachment.clone()], Some(&node_path)).await.unwrap();
        let err = weft_cni::check(&pods[0].0, &conf, &pods[0].2).await.unwrap_err();
        assert_eq!(err.code, weft_cni::code::CHECK_FAILED, "{err}");
        weft_cni::detach(&pods[1].0, &conf).await.unwrap();
        assert!(Handle::open(&pods[1].1).unwrap().link_by_name("eth0").await.unwrap().is_none());
    });
}

/// (rx packets, rx bytes) of `dev` in `ns`, from /proc/net/dev as seen by a
/// thread inside it.
fn rx_counters(ns: &Netns, dev: &str) -> (u64, u64) {
    let text = run_in(ns, || std::fs::read_to_string("/proc/thread-self/net/dev")).unwrap().unwrap();
    let line = text.lines().find(|l| l.trim_start().starts_with(&format!("{dev}:"))).unwrap_or_else(|| panic!("{dev} not in {text}"));
    let f: Vec<u64> = line.split(':').nth(1).unwrap().split_whitespace().map(|v| v.parse().unwrap()).collect();
    (f[1], f[0])
}

#[test]
fn big_tcp_segments_cross_the_bridge_whole() {
    weft_testns::run_async("big_tcp_segments_cross_the_bridge", |t| async move {
        let big = weft_kernel::BIG_TCP_SIZE;
        let node_path = t.dir().join("node");
        let node = Netns::create(&node_path).unwrap();
        let mut conf = NetConfig::new("weft", vec!["10.244.3.0/24".parse().unwrap()], t.dir().join("state")).unwrap();
        conf.gso_max_size = Some(big);
        let mut pods = Vec::new();
        for name in ["x", "y"] {
            let path = t.dir().join(name);
            let ns = Netns::create(&path).unwrap();
            let mut req = AttachRequest::new(name, "eth0", Some(path.clone()));
            req.host_netns = Some(node_path.clone());
            let res = weft_cni::attach(&req, &conf).await.unwrap();
            pods.push((ns, res));
        }
        let h = Handle::open(&node).unwrap();
        assert_eq!(h.link("weft0").await.unwrap().gso_size(), big, "the bridge is raised once it has a port");
        let x_host = pods[0].1.interfaces[0].name.clone();
        assert_eq!(h.link(&x_host).await.unwrap().gso_size(), big);
        assert_eq!(Handle::open(&pods[0].0).unwrap().link("eth0").await.unwrap().gso_size(), big);

        // 32 MiB from x to y: x's TCP hands its eth0 segments over 64 KiB, and they
        // reach the bridge whole: on x's host end, packets average well over the
        // 64 KiB (plus headers) that no segment exceeds without BIG TCP.
        let y_ip = pods[1].1.ips[0].address.addr();
        let listener = run_in(&pods[1].0, || TcpListener::bind("0.0.0.0:9100")).unwrap().unwrap();
        let sink = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut n = 0u64;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match s.read(&mut buf).unwrap() {
                    0 => return n,
                    k => n += k as u64,
                }
            }
        });
        let before = rx_counters(&node, &x_host);
        let mut c = run_in(&pods[0].0, || TcpStream::connect_timeout(&SocketAddr::new(y_ip, 9100), Duration::from_secs(5))).unwrap().unwrap();
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..32 {
            c.write_all(&chunk).unwrap();
        }
        drop(c);
        assert_eq!(sink.join().unwrap(), 32 << 20);
        let after = rx_counters(&node, &x_host);
        let (packets, bytes) = (after.0 - before.0, after.1 - before.1);
        assert!(bytes >= 32 << 20, "{bytes} bytes");
        assert!(bytes / packets > 96 * 1024, "{packets} packets for {bytes} bytes: no segment over 64 KiB crossed the bridge port");
    });
}
