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
