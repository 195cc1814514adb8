//! Real packets logged by an nftables `log group` rule, received with weft's
//! nfnetlink_log client in the namespace the rule lives in.
//!
//! A "node" netns gets an `inet` table whose output chain logs new UDP flows to port
//! 9999 and new TCP connections to port 9998; traffic on the node's loopback must
//! arrive with the rule's prefix and the exact 5-tuple, other traffic must not.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use weft_kernel::nflog::{LoggedPacket, Nflog};
use weft_kernel::nft::*;
use weft_kernel::{run_in, Handle, Netns};

const GROUP: u16 = 4242;

fn ruleset() -> Ruleset {
    let mut rs = Ruleset::new(Table::new(Family::Inet, "weft-nflog-test"));
    rs.chain(Chain::base("out", ChainType::Filter, Hook::Output, 0));
    for (proto, port, prefix) in [(17u8, 9999u16, "test udp new"), (6, 9998, "test tcp new")] {
        let mut exprs = Expr::ct_state_any(ct_state::NEW);
        exprs.extend([
            Expr::l4proto(Reg::R1),
            Expr::cmp_eq(Reg::R1, Value::proto(proto)),
            Expr::th_dport(Reg::R1),
            Expr::cmp_eq(Reg::R1, Value::port(port)),
            Expr::Log { prefix: Some(prefix.into()), to: LogTo::Group { group: GROUP, snaplen: 128 } },
        ]);
        rs.rule(Rule::new("out", exprs));
    }
    rs
}

/// Receives until `n` packets arrived or 3 s passed.
fn receive(log: &mut Nflog, n: usize) -> Vec<LoggedPacket> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        got.extend(log.recv(Some(Duration::from_millis(100))).unwrap());
    }
    got
}

async fn node(dir: &std::path::Path) -> Netns {
    let node = Netns::create(&dir.join("node")).unwrap();
    let h = Handle::open(&node).unwrap();
    let lo = h.link("lo").await.unwrap().index;
    h.set_link_up(lo).await.unwrap();
    let mut nft = Nft::open(&node).unwrap();
    nft.commit(Batch::new().add_ruleset(&ruleset())).unwrap();
    node
}

#[test]
fn packets_logged_to_a_group_arrive_with_their_prefix_and_five_tuple() {
    weft_testns::run_async("nflog_five_tuple", |t| async move {
        let node = node(t.dir()).await;
        let mut log = Nflog::open(Some(&node), GROUP, 128).unwrap();
        assert_eq!(log.group(), GROUP);
        // The same traffic outside the node's netns must not reach the node's listener.
        let outside = UdpSocket::bind("127.0.0.1:0").unwrap();
        outside.send_to(b"x", "127.0.0.1:9999").unwrap();
        let (udp4, udp6, tcp, ignored) = run_in(&node, || {
            let u4 = UdpSocket::bind("127.0.0.1:0").unwrap();
            u4.send_to(b"one", "127.0.0.1:9999").unwrap();
            let u6 = UdpSocket::bind("[::1]:0").unwrap();
            u6.send_to(b"six", "[::1]:9999").unwrap();
            let server = TcpListener::bind("127.0.0.1:9998").unwrap();
            let mut c = TcpStream::connect_timeout(&"127.0.0.1:9998".parse().unwrap(), Duration::from_secs(2)).unwrap();
            // Data after the handshake is not new: not logged.
            c.write_all(b"data").unwrap();
            let (_conn, _) = server.accept().unwrap();
            let other = UdpSocket::bind("127.0.0.1:0").unwrap();
            other.send_to(b"no rule", "127.0.0.1:9997").unwrap();
            (u4.local_addr().unwrap(), u6.local_addr().unwrap(), c.local_addr().unwrap(), other.local_addr().unwrap())
        })
        .unwrap();
        let got = receive(&mut log, 3);
        // Anything late (a wrongly logged packet) would show up here.
        let late = log.recv(Some(Duration::from_millis(300))).unwrap();
        let tuples: Vec<(String, SocketAddr, SocketAddr, u8)> = got
            .iter()
            .chain(&late)
            .map(|p| {
                let h = p.headers.unwrap_or_else(|| panic!("no headers in {p:?}"));
                let (sp, dp) = h.ports.unwrap();
                (p.prefix.clone().unwrap_or_default(), SocketAddr::new(h.src, sp), SocketAddr::new(h.dst, dp), h.protocol)
            })
            .collect();
        let lo4: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        assert_eq!(
            tuples,
            vec![
                ("test udp new".to_string(), udp4, SocketAddr::new(lo4, 9999), 17),
                ("test udp new".to_string(), udp6, SocketAddr::new(lo6, 9999), 17),
                ("test tcp new".to_string(), tcp, SocketAddr::new(lo4, 9998), 6),
            ],
            "packets of port {} (no rule) must not be logged",
            ignored.port()
        );
        assert_eq!(got.iter().map(|p| (p.group, p.hw_protocol)).collect::<Vec<_>>(), vec![(GROUP, 0x0800), (GROUP, 0x86dd), (GROUP, 0x0800)]);
        assert_eq!(log.overruns(), 0);
    });
}

#[test]
fn a_group_has_one_listener_per_netns_and_the_channel_delivers_to_async_code() {
    weft_testns::run_async("nflog_channel", |t| async move {
        let node = node(t.dir()).await;
        let log = Nflog::open(Some(&node), GROUP, 128).unwrap();
        let second = Nflog::open(Some(&node), GROUP, 128).err().expect("a second listener on the same group must be refused");
        assert!(second.to_string().contains(&format!("nflog group {GROUP}")), "{second}");
        assert!(second.to_string().contains("another socket already listens"), "{second}");
        // Another netns has groups of its own.
        let _here = Nflog::open(None, GROUP, 128).unwrap();
        let mut rx = log.into_channel(16);
        let sent = run_in(&node, || {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.send_to(b"x", "127.0.0.1:9999").unwrap();
            u.local_addr().unwrap()
        })
        .unwrap();
        let p = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await.expect("a logged packet within 3s").expect("channel open").unwrap();
        assert_eq!(p.prefix.as_deref(), Some("test udp new"));
        assert_eq!(p.headers.unwrap().ports, Some((sent.port(), 9999)));
        // Dropping the receiver ends the thread, which releases the group.
        drop(rx);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match Nflog::open(Some(&node), GROUP, 128) {
                Ok(_) => break,
                Err(e) => assert!(Instant::now() < deadline, "the group is still held after the channel closed: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
