//! The enforcer with real packets: hand-made node plans applied to a node's netns, and
//! TCP/UDP connections between "pods" on the node's bridge.
//!
//! ```text
//!  node netns: br0 10.244.0.1/24 fd00:10:244::1/64, a server on 10.244.0.1:9000
//!     ├── veth ── p1 10.244.0.2  fd00:10:244::2
//!     ├── veth ── p2 10.244.0.3  fd00:10:244::3
//!     ├── veth ── p3 10.244.0.4  fd00:10:244::4
//!     └── veth ── p4 10.244.0.5  fd00:10:244::5
//! ```
//! Every pod serves TCP and UDP on ports 80, 81, 8003 and 8006 (IPv4 and IPv6). The
//! node's `bridge-nf-call-ip*tables` sysctls are off: the bridge's own option (set when
//! it is created) is what sends bridged pod traffic through the policy table.
//! SCTP is not probed: this kernel has no SCTP sockets (`socket(.., IPPROTO_SCTP)`
//! fails with EPROTONOSUPPORT), so SCTP is covered by the render tests only.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weft_kernel::nft::Nft;
use weft_kernel::{run_in, sysctl, Handle, Netns, Route, VethSpec};
use weft_policy::apply::PolicyApplier;
use weft_policy::render;
use weft_policy::{AllowSet, GroupId, IpRange, NodePlan, PortAllow, Protocol};

/// How long a connection that policy drops is given before it counts as blocked.
const BLOCKED_AFTER: Duration = Duration::from_millis(1000);
const PORTS: [u16; 4] = [80, 81, 8003, 8006];
const NODE_PORT: u16 = 9000;

struct Lab {
    node: Netns,
    pods: Vec<Netns>,
    stop: Arc<AtomicBool>,
    servers: Vec<std::thread::JoinHandle<()>>,
    dir: std::path::PathBuf,
}

fn v4(pod: usize) -> String {
    format!("10.244.0.{}", pod + 1)
}

fn v6(pod: usize) -> String {
    format!("fd00:10:244::{}", pod + 1)
}

async fn lab(dir: &std::path::Path) -> Lab {
    let node = Netns::create(&dir.join("node")).unwrap();
    let n = Handle::open(&node).unwrap();
    let lo = n.link("lo").await.unwrap().index;
    n.set_link_up(lo).await.unwrap();
    n.create_bridge("br0", None, None, true).await.unwrap();
    let br = n.link("br0").await.unwrap().index;
    sysctl::set_accept_dad(Some(&node), "br0", false).unwrap();
    n.add_address(br, "10.244.0.1/24".parse().unwrap()).await.unwrap();
    n.add_address(br, "fd00:10:244::1/64".parse().unwrap()).await.unwrap();
    n.set_link_up(br).await.unwrap();
    sysctl::enable_ip_forward(Some(&node)).unwrap();
    sysctl::enable_ipv6_forwarding(Some(&node)).unwrap();
    // Only the bridge's own nf_call option may send bridged frames through the hooks.
    sysctl::write(Some(&node), "net/bridge/bridge-nf-call-iptables", "0").unwrap();
    sysctl::write(Some(&node), "net/bridge/bridge-nf-call-ip6tables", "0").unwrap();
    let mut pods = Vec::new();
    for i in 1..=4 {
        let ns = Netns::create(&dir.join(format!("p{i}"))).unwrap();
        let host = format!("veth{i}");
        n.create_veth(&VethSpec { name: &host, peer_name: "eth0", peer_ns: Some(&ns), up: true, master: Some(br), ..Default::default() }).await.unwrap();
        let p = Handle::open(&ns).unwrap();
        sysctl::set_accept_dad(Some(&ns), "eth0", false).unwrap();
        for name in ["lo", "eth0"] {
            let l = p.link(name).await.unwrap().index;
            p.set_link_up(l).await.unwrap();
        }
        let eth0 = p.link("eth0").await.unwrap().index;
        p.add_address(eth0, format!("{}/24", v4(i)).parse().unwrap()).await.unwrap();
        p.add_address(eth0, format!("{}/64", v6(i)).parse().unwrap()).await.unwrap();
        p.add_route(&Route::via("0.0.0.0/0".parse().unwrap(), "10.244.0.1".parse().unwrap())).await.unwrap();
        p.add_route(&Route::via("::/0".parse().unwrap(), "fd00:10:244::1".parse().unwrap())).await.unwrap();
        pods.push(ns);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut servers: Vec<_> = pods.iter().map(|ns| serve(ns, &PORTS, stop.clone())).collect();
    servers.push(serve(&node, &[NODE_PORT], stop.clone()));
    Lab { node, pods, stop, servers, dir: dir.to_path_buf() }
}

impl Lab {
    fn pod(&self, i: usize) -> &Netns {
        &self.pods[i - 1]
    }

    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.servers {
            s.join().unwrap();
        }
        drop(self.node);
        drop(self.pods);
        Netns::remove(&self.dir.join("node")).unwrap();
        for i in 1..=4 {
            Netns::remove(&self.dir.join(format!("p{i}"))).unwrap();
        }
    }
}

/// TCP (echoing lines) and UDP (echoing datagrams) on `[::]:port` (both families).
fn serve(ns: &Netns, ports: &[u16], stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (tcp, udp) = run_in(ns, || {
        let tcp: Vec<TcpListener> = ports.iter().map(|p| TcpListener::bind(("::", *p)).unwrap()).collect();
        let udp: Vec<UdpSocket> = ports.iter().map(|p| UdpSocket::bind(("::", *p)).unwrap()).collect();
        (tcp, udp)
    })
    .unwrap();
    std::thread::spawn(move || {
        for l in &tcp {
            l.set_nonblocking(true).unwrap();
        }
        for u in &udp {
            u.set_nonblocking(true).unwrap();
        }
        let mut buf = [0u8; 256];
        while !stop.load(Ordering::Relaxed) {
            for l in &tcp {
                if let Ok((s, _)) = l.accept() {
                    let stop = stop.clone();
                    std::thread::spawn(move || echo(s, stop));
                }
            }
            for u in &udp {
                if let Ok((n, peer)) = u.recv_from(&mut buf) {
                    let _ = u.send_to(&buf[..n], peer);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

fn echo(s: TcpStream, stop: Arc<AtomicBool>) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                let _ = w.write_all(line.as_bytes());
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Whether a TCP connection from `ns` to `ip:port` is established.
fn tcp(ns: &Netns, ip: &str, port: u16) -> bool {
    let to = addr(ip, port);
    run_in(ns, || TcpStream::connect_timeout(&to, BLOCKED_AFTER)).unwrap().is_ok()
}

/// Whether a UDP datagram from `ns` to `ip:port` gets its echo back.
fn udp(ns: &Netns, ip: &str, port: u16) -> bool {
    let to = addr(ip, port);
    run_in(ns, || -> std::io::Result<bool> {
        let s = UdpSocket::bind(if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
        s.set_read_timeout(Some(BLOCKED_AFTER))?;
        s.send_to(b"ping", to)?;
        let mut buf = [0u8; 16];
        Ok(s.recv_from(&mut buf).map(|(n, _)| &buf[..n] == b"ping").unwrap_or(false))
    })
    .unwrap()
    .unwrap()
}

/// A long-lived connection that says whether it still carries data.
struct Conn(TcpStream);

impl Conn {
    fn open(ns: &Netns, ip: &str, port: u16) -> Conn {
        let to = addr(ip, port);
        let s = run_in(ns, || TcpStream::connect_timeout(&to, BLOCKED_AFTER)).unwrap().expect("the long-lived connection opens");
        s.set_read_timeout(Some(BLOCKED_AFTER)).unwrap();
        let c = Conn(s);
        assert!(c.alive("hello"), "the long-lived connection echoes");
        c
    }

    fn alive(&self, word: &str) -> bool {
        let mut w = &self.0;
        if writeln!(w, "{word}").is_err() {
            return false;
        }
        let mut line = String::new();
        BufReader::new(&self.0).read_line(&mut line).is_ok() && line.trim() == word
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn span(a: &str, b: &str) -> IpRange {
    IpRange { first: ip(a), last: ip(b) }
}

fn one(a: &str) -> IpRange {
    span(a, a)
}

fn allow(peer: IpRange, protocol: Protocol, first: u16, last: u16) -> PortAllow {
    PortAllow { peer, protocol, first, last }
}

/// A plan: `(address, group)` per direction and the groups' allow sets.
fn plan(ingress: &[(String, u64)], egress: &[(String, u64)], groups: Vec<(u64, AllowSet)>) -> NodePlan {
    NodePlan {
        ingress: ingress.iter().map(|(a, g)| (ip(a), GroupId(*g))).collect(),
        egress: egress.iter().map(|(a, g)| (ip(a), GroupId(*g))).collect(),
        groups: groups.into_iter().map(|(g, a)| (GroupId(g), a)).collect(),
    }
}

#[test]
fn ingress_isolation_allows_only_the_listed_peers_protocols_and_ports() {
    weft_testns::run_async("policy_ingress", |t| async move {
        let lab = lab(t.dir()).await;
        // Before any plan, everything flows.
        assert!(tcp(lab.pod(2), &v4(1), 80));
        // p1: TCP 80 from p2, UDP 81 from p2, TCP 8000-8005 from p3, all from p4's address range.
        let g = AllowSet {
            any: vec![span("10.244.0.5", "10.244.0.5")],
            ports: vec![
                allow(one(&v4(2)), Protocol::Tcp, 80, 80),
                allow(one(&v4(2)), Protocol::Udp, 81, 81),
                allow(one(&v4(3)), Protocol::Tcp, 8000, 8005),
            ],
        };
        let p = plan(&[(v4(1), 1)], &[], vec![(1, g)]);
        let mut ap = PolicyApplier::open(&lab.node).unwrap();
        let first = ap.apply(&p).unwrap();
        assert!(first.read_back && first.transactions == 1, "{first:?}");
        // What the kernel holds reads back exactly as rendered.
        let again = ap.resync(&p).unwrap();
        assert_eq!((again.weight, again.transactions), (0, 0), "{again:?}");

        assert!(tcp(lab.pod(2), &v4(1), 80), "allowed peer and port");
        assert!(!tcp(lab.pod(2), &v4(1), 81), "a UDP allow does not open TCP");
        assert!(udp(lab.pod(2), &v4(1), 81), "the UDP allow");
        assert!(!udp(lab.pod(2), &v4(1), 80), "a TCP allow does not open UDP");
        assert!(!tcp(lab.pod(3), &v4(1), 80), "another peer on an allowed port");
        assert!(tcp(lab.pod(3), &v4(1), 8003), "inside the endPort range");
        assert!(!tcp(lab.pod(3), &v4(1), 8006), "past the endPort range");
        assert!(tcp(lab.pod(4), &v4(1), 8006) && udp(lab.pod(4), &v4(1), 80), "a peer allowed on every port");
        assert!(tcp(lab.pod(3), &v4(2), 81), "pods that are not isolated are untouched");
        assert!(tcp(&lab.node, &v4(1), 81), "the node reaches its pods (probes) whatever the policy");
        // p1 is isolated for ingress only: its own connections and their replies flow.
        assert!(tcp(lab.pod(1), &v4(3), 81), "replies to the isolated pod's own connections");
        assert!(udp(lab.pod(1), &v4(3), 81), "UDP replies too");
        lab.finish();
    });
}

#[test]
fn egress_isolation_judges_destinations_including_the_node_and_ranges_to_the_top() {
    weft_testns::run_async("policy_egress", |t| async move {
        let lab = lab(t.dir()).await;
        let g = AllowSet { any: vec![one(&v4(2))], ports: vec![allow(span("0.0.0.0", "255.255.255.255"), Protocol::Tcp, 8003, 8003)] };
        let p = plan(&[], &[(v4(1), 7)], vec![(7, g)]);
        let mut ap = PolicyApplier::open(&lab.node).unwrap();
        ap.apply(&p).unwrap();
        assert!(tcp(lab.pod(1), &v4(2), 81) && udp(lab.pod(1), &v4(2), 80), "a destination allowed on every port");
        assert!(!tcp(lab.pod(1), &v4(3), 80), "egress deny");
        assert!(tcp(lab.pod(1), &v4(3), 8003), "an ipBlock of everything on one port");
        assert!(!tcp(lab.pod(1), "10.244.0.1", NODE_PORT), "the node is a destination like any other");
        assert!(tcp(lab.pod(3), &v4(1), 80), "connections to the egress-isolated pod are not judged by its egress");

        // Allow everything in one range that runs to the top of the address space.
        let open = plan(&[], &[(v4(1), 8)], vec![(8, AllowSet { any: vec![span("10.0.0.0", "255.255.255.255")], ports: vec![] })]);
        ap.apply(&open).unwrap();
        assert!(tcp(lab.pod(1), "10.244.0.1", NODE_PORT) && tcp(lab.pod(1), &v4(3), 80));
        lab.finish();
    });
}

#[test]
fn ipv6_pods_are_judged_and_still_find_their_neighbours() {
    weft_testns::run_async("policy_ipv6", |t| async move {
        let lab = lab(t.dir()).await;
        let g = AllowSet { any: vec![], ports: vec![allow(one(&v6(3)), Protocol::Tcp, 80, 80)] };
        let p = plan(&[(v6(1), 3)], &[(v6(1), 3)], vec![(3, g)]);
        let mut ap = PolicyApplier::open(&lab.node).unwrap();
        ap.apply(&p).unwrap();
        // No packet has gone between the pods yet: neighbour discovery happens under policy.
        assert!(tcp(lab.pod(3), &v6(1), 80), "allowed IPv6 peer");
        assert!(!tcp(lab.pod(2), &v6(1), 80), "another IPv6 peer");
        assert!(!tcp(lab.pod(3), &v6(1), 81), "another port");
        assert!(tcp(lab.pod(2), &v4(1), 81), "the pod's IPv4 address is not isolated by its IPv6 entry");
        assert!(tcp(lab.pod(1), &v6(3), 80), "egress to the same peer and port (the group is used both ways)");
        assert!(!tcp(lab.pod(1), &v6(4), 80), "egress elsewhere");
        lab.finish();
    });
}

#[test]
fn reapplying_changes_behaviour_keeps_allowed_connections_and_a_restart_rewrites_nothing() {
    weft_testns::run_async("policy_reapply", |t| async move {
        let lab = lab(t.dir()).await;
        let from2 = |port: u16| AllowSet { any: vec![], ports: vec![allow(one(&v4(2)), Protocol::Tcp, port, port)] };
        let a = plan(&[(v4(1), 1), (v4(4), 1)], &[], vec![(1, from2(80))]);
        let mut ap = PolicyApplier::open(&lab.node).unwrap();
        ap.apply(&a).unwrap();
        assert!(tcp(lab.pod(2), &v4(1), 80) && !tcp(lab.pod(2), &v4(1), 81));
        let conn = Conn::open(lab.pod(2), &v4(1), 80);

        // The same plan again: nothing written; the connection lives.
        assert_eq!(ap.apply(&a).unwrap().transactions, 0);
        assert!(conn.alive("same"));

        // A changed plan where the connection stays allowed: p1 moves to a group that
        // allows 80 and 81; p4 keeps the old group.
        let b = plan(&[(v4(1), 2), (v4(4), 1)], &[], vec![(1, from2(80)), (2, AllowSet { any: vec![], ports: vec![allow(one(&v4(2)), Protocol::Tcp, 80, 81)] })]);
        let r = ap.apply(&b).unwrap();
        assert_eq!(r.transactions, 1, "one atomic transaction: {r:?}");
        assert!(!r.read_back);
        assert!(tcp(lab.pod(2), &v4(1), 81), "the new plan allows 81");
        assert!(!tcp(lab.pod(2), &v4(4), 81), "p4 still has the old group");
        assert!(conn.alive("changed"), "an established, still-allowed connection survives a re-apply");

        // The incremental applies left the table exactly as a full render says.
        let mut nft = Nft::open(&lab.node).unwrap();
        let have = render::Objects::from_ruleset(&nft.ruleset(&render::table_ref()).unwrap().unwrap());
        assert_eq!(have, render::render(&b).unwrap());

        // Restart: the applier goes away; the table stays in force meanwhile.
        let gen = nft.generation().unwrap();
        let handles: Vec<_> = nft.chains(&render::table_ref()).unwrap().into_iter().map(|c| (c.name, c.handle)).collect();
        drop(ap);
        assert!(!tcp(lab.pod(3), &v4(1), 80), "still isolated with no applier");
        assert!(conn.alive("restarting"));
        let mut ap = PolicyApplier::open(&lab.node).unwrap();
        let r = ap.apply(&b).unwrap();
        assert!(r.read_back && !r.replaced && r.transactions == 0 && r.weight == 0, "a restart rewrites nothing: {r:?}");
        assert_eq!(nft.generation().unwrap(), gen, "not one commit");
        let after: Vec<_> = nft.chains(&render::table_ref()).unwrap().into_iter().map(|c| (c.name, c.handle)).collect();
        assert_eq!(after, handles);
        assert!(conn.alive("restarted"));

        // Everything isolated goes away: the pods are open again, the table stays.
        ap.apply(&NodePlan::default()).unwrap();
        assert!(tcp(lab.pod(3), &v4(1), 80));
        let left = nft.ruleset(&render::table_ref()).unwrap().expect("the table is kept");
        assert_eq!(left.chains.len(), 2, "only the base chains: {:?}", left.chains.iter().map(|c| &c.name).collect::<Vec<_>>());
        lab.finish();
    });
}

#[test]
fn a_large_change_cut_into_phases_ends_where_one_transaction_would() {
    weft_testns::run_async("policy_phases", |t| async move {
        let lab = lab(t.dir()).await;
        // 300 disjoint peers per group, so each apply weighs far more than the part size.
        let many = |port: u16| AllowSet { any: vec![], ports: (0..300u32).map(|i| allow(one(&format!("10.9.{}.{}", i / 100, (i % 100) * 2 + 1)), Protocol::Tcp, port, port)).chain([allow(one(&v4(2)), Protocol::Tcp, port, port)]).collect() };
        let a = plan(&[(v4(1), 1)], &[], vec![(1, many(80))]);
        let b = plan(&[(v4(1), 2)], &[], vec![(2, many(81))]);
        let mut ap = PolicyApplier::open(&lab.node).unwrap().with_part_weight(50);
        let ra = ap.apply(&a).unwrap();
        assert!(ra.transactions > 2, "{ra:?}");
        assert!(tcp(lab.pod(2), &v4(1), 80) && !tcp(lab.pod(2), &v4(1), 81));
        let rb = ap.apply(&b).unwrap();
        assert!(rb.transactions > 2, "{rb:?}");
        assert!(!tcp(lab.pod(2), &v4(1), 80) && tcp(lab.pod(2), &v4(1), 81));
        let mut nft = Nft::open(&lab.node).unwrap();
        let have = render::Objects::from_ruleset(&nft.ruleset(&render::table_ref()).unwrap().unwrap());
        assert_eq!(have, render::render(&b).unwrap());
        lab.finish();
    });
}
