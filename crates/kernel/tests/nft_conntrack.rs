//! ctnetlink: a UDP flow shows up as a conntrack entry, and deleting by
//! (protocol, original destination[, port]) removes exactly the matching ones.

use std::net::{IpAddr, UdpSocket};
use weft_kernel::nft::*;

#[test]
fn udp_flows_are_listed_and_deleted_by_destination() {
    weft_testns::run("nft_conntrack_udp", |_| {
        // Conntrack only tracks a netns once a rule there uses it.
        let mut nft = Nft::current().unwrap();
        let t = Table::new(Family::Inet, "weft-ct");
        let mut rs = Ruleset::new(t.clone());
        rs.chain(Chain::base("out", ChainType::Filter, Hook::Output, priority::FILTER))
            .rule(Rule::new("out", [Expr::ct_state_any(ct_state::NEW | ct_state::ESTABLISHED), vec![Expr::counter()]].concat()));
        nft.commit(Batch::new().add_ruleset(&rs)).unwrap();

        let server_a = UdpSocket::bind("127.0.0.1:5353").unwrap();
        let server_b = UdpSocket::bind("127.0.0.1:5354").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for to in ["127.0.0.1:5353", "127.0.0.1:5354"] {
            client.send_to(b"ping", to).unwrap();
        }
        let mut buf = [0u8; 16];
        server_a.recv_from(&mut buf).unwrap();
        server_b.recv_from(&mut buf).unwrap();

        let mut ct = Conntrack::current().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let sport = client.local_addr().unwrap().port();
        let flows = |ct: &mut Conntrack| -> Vec<u16> {
            let mut ports: Vec<u16> = ct
                .list()
                .unwrap()
                .into_iter()
                .filter(|e| e.proto == 17 && e.orig.src == local && e.orig.sport == sport)
                .map(|e| e.orig.dport)
                .collect();
            ports.sort();
            ports
        };
        assert_eq!(flows(&mut ct), [5353, 5354]);
        let entry = ct.list().unwrap().into_iter().find(|e| e.proto == 17 && e.orig.dport == 5353).unwrap();
        assert_eq!((entry.reply.src, entry.reply.sport, entry.reply.dport), (local, 5353, sport));

        // Only the flow to port 5353 goes; TCP filters touch no UDP flow.
        assert_eq!(ct.delete_matching(&CtFilter { proto: 6, dst: local, dport: None }).unwrap(), 0);
        assert_eq!(ct.delete_matching(&CtFilter { proto: 17, dst: local, dport: Some(5353) }).unwrap(), 1);
        assert_eq!(flows(&mut ct), [5354]);
        // Deleting what is already gone is fine; then every flow to the address goes.
        ct.delete(&entry).unwrap();
        assert_eq!(ct.delete_matching(&CtFilter { proto: 17, dst: local, dport: None }).unwrap(), 1);
        assert!(flows(&mut ct).is_empty());
    });
}
