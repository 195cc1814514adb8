//! Links, addresses, routes, bridges, veths, vxlan and FDB entries, each in a
//! throwaway netns.

use ipnet::IpNet;
use std::net::IpAddr;
use weft_kernel::{FdbEntry, Handle, Mac, Netns, Route, VethSpec, VxlanSpec};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn veth_peer_lands_in_the_other_netns_attached_to_a_bridge_with_hairpin() {
    weft_testns::run_async("veth_peer_lands_in_the_other_netns", |t| async move {
        let path = t.dir().join("pod");
        let pod = Netns::create(&path).unwrap();
        let host = Handle::current().unwrap();
        let mac = Mac([0x02, 0, 0, 0, 0, 1]);
        host.create_bridge("br-test", Some(mac), Some(1400), true).await.unwrap();
        let br = host.link("br-test").await.unwrap();
        assert_eq!((br.kind.as_deref(), br.mac, br.mtu, br.up), (Some("bridge"), Some(mac), 1400, true));

        host.create_veth(&VethSpec {
            name: "vh0",
            peer_name: "eth0",
            peer_ns: Some(&pod),
            mtu: Some(1400),
            master: Some(br.index),
            up: true,
            gso_max_size: Some(weft_kernel::BIG_TCP_SIZE),
        })
        .await
        .unwrap();
        let vh = host.link("vh0").await.unwrap();
        assert_eq!((vh.master, vh.mtu, vh.up), (Some(br.index), 1400, true));
        let big = weft_kernel::BIG_TCP_SIZE;
        assert_eq!(vh.gso_size(), big, "{vh:?}");
        // The bridge takes BIG TCP only now that it has a port.
        assert!(br.gso_size() < big);
        assert!(host.set_gso_max_size(br.index, big).await.unwrap());
        assert_eq!(host.link("br-test").await.unwrap().gso_size(), big);
        assert!(!host.set_gso_max_size(br.index, 4 << 20).await.unwrap(), "over the TSO limit is refused");
        assert!(host.link_by_name("eth0").await.unwrap().is_none());
        host.set_hairpin(vh.index, true).await.unwrap();
        assert_eq!(host.hairpin(vh.index).await.unwrap(), Some(true));

        let inpod = Handle::open(&pod).unwrap();
        let eth0 = inpod.link("eth0").await.unwrap();
        assert_eq!((eth0.kind.as_deref(), eth0.mtu, eth0.up), (Some("veth"), 1400, false));
        assert_eq!(eth0.gso_size(), big);
        inpod.set_link_up(eth0.index).await.unwrap();
        assert!(inpod.link("eth0").await.unwrap().up);

        // Same name again collides, and the error says so.
        let err = host
            .create_veth(&VethSpec { name: "vh0", peer_name: "eth0", peer_ns: Some(&pod), ..Default::default() })
            .await
            .unwrap_err();
        assert!(err.is_exists(), "{err}");
        assert!(err.to_string().contains("vh0"), "{err}");

        // Deleting the host end removes the pod end too.
        assert!(host.delete_link_by_name("vh0").await.unwrap());
        assert!(inpod.link_by_name("eth0").await.unwrap().is_none());
        assert!(!host.delete_link_by_name("vh0").await.unwrap());
        drop((inpod, pod));
        Netns::remove(&path).unwrap();
    });
}

#[test]
fn addresses_and_routes_round_trip() {
    weft_testns::run_async("addresses_and_routes_round_trip", |_t| async move {
        let h = Handle::current().unwrap();
        h.create_bridge("br1", None, None, true).await.unwrap();
        let br = h.link("br1").await.unwrap();
        for a in ["10.9.0.1/24", "fd00:9::1/64"] {
            h.add_address(br.index, net(a)).await.unwrap();
        }
        h.ensure_address(br.index, net("10.9.0.1/24")).await.unwrap();
        assert!(h.add_address(br.index, net("10.9.0.1/24")).await.unwrap_err().is_exists());
        let got: Vec<IpNet> = h.addresses(Some(br.index)).await.unwrap().into_iter().map(|a| a.net).collect();
        assert!(got.contains(&net("10.9.0.1/24")) && got.contains(&net("fd00:9::1/64")), "{got:?}");

        let gw: IpAddr = "10.9.0.254".parse().unwrap();
        let r = Route::via(net("10.77.0.0/16"), gw);
        h.add_route(&r).await.unwrap();
        assert!(h.add_route(&r).await.unwrap_err().is_exists());
        h.replace_route(&Route::via(net("10.77.0.0/16"), "10.9.0.253".parse().unwrap())).await.unwrap();
        h.add_route(&Route::dev(net("10.78.0.0/16"), br.index).in_table(100)).await.unwrap();
        h.add_route(&Route::via(net("10.79.0.0/16"), "192.0.2.1".parse().unwrap()).with_oif(br.index).onlink())
            .await
            .unwrap();
        let main = h.routes(false, Some(254)).await.unwrap();
        assert!(main.iter().any(|r| r.dst == net("10.77.0.0/16") && r.gateway == Some("10.9.0.253".parse().unwrap())), "{main:?}");
        assert!(main.iter().any(|r| r.dst == net("10.79.0.0/16") && r.onlink));
        let t100 = h.routes(false, Some(100)).await.unwrap();
        assert_eq!(t100.len(), 1, "{t100:?}");
        h.del_route(&t100[0]).await.unwrap();
        assert!(h.del_route(&t100[0]).await.unwrap_err().is_not_found());

        h.del_address(br.index, net("10.9.0.1/24")).await.unwrap();
        assert!(h.del_address(br.index, net("10.9.0.1/24")).await.unwrap_err().is_not_found());
        h.set_link_down(br.index).await.unwrap();
        h.set_link_mtu(br.index, 1300).await.unwrap();
        let br = h.link("br1").await.unwrap();
        assert_eq!((br.up, br.mtu), (false, 1300));
    });
}

#[test]
fn vxlan_with_static_fdb_and_neighbours() {
    weft_testns::run_async("vxlan_with_static_fdb_and_neighbours", |_t| async move {
        let h = Handle::current().unwrap();
        h.create_bridge("under0", None, None, false).await.unwrap();
        let under = h.link("under0").await.unwrap();
        h.add_address(under.index, net("192.0.2.10/24")).await.unwrap();
        h.create_vxlan(&VxlanSpec {
            name: "weft.vx",
            vni: 1,
            local: "192.0.2.10".parse().unwrap(),
            port: 8472,
            underlay: Some(under.index),
            learning: false,
            mtu: Some(1450),
            mac: Some(Mac([0x02, 1, 2, 3, 4, 5])),
            up: true,
        })
        .await
        .unwrap();
        let vx = h.link("weft.vx").await.unwrap();
        assert_eq!(vx.kind.as_deref(), Some("vxlan"));
        let (link, info) = h.vxlan("weft.vx").await.unwrap().unwrap();
        assert_eq!((link.index, link.mtu, link.mac), (vx.index, 1450, Some(Mac([0x02, 1, 2, 3, 4, 5]))));
        let info = info.expect("vxlan settings");
        assert_eq!(
            info,
            weft_kernel::VxlanInfo { vni: 1, local: Some("192.0.2.10".parse().unwrap()), port: 8472, underlay: Some(under.index), learning: false }
        );
        assert!(h.vxlan("under0").await.unwrap().unwrap().1.is_none(), "a bridge has no vxlan settings");
        assert!(h.vxlan("nope0").await.unwrap().is_none());
        let entry = FdbEntry {
            index: vx.index,
            mac: Mac([0x02, 9, 9, 9, 9, 9]),
            dst: Some("192.0.2.20".parse().unwrap()),
        };
        h.add_fdb(&entry, false).await.unwrap();
        h.add_fdb(&entry, true).await.unwrap();
        let fdb = h.fdb(vx.index).await.unwrap();
        assert!(fdb.contains(&entry), "{fdb:?}");
        for gw in ["10.244.1.0", "fd00:10:244:1::"] {
            h.add_neighbour(vx.index, gw.parse().unwrap(), entry.mac, true).await.unwrap();
        }
        let mut got: Vec<_> = h.neighbours(Some(vx.index)).await.unwrap().into_iter().filter(|n| n.permanent).map(|n| (n.ip, n.mac)).collect();
        got.sort();
        assert_eq!(got, vec![("10.244.1.0".parse().unwrap(), Some(entry.mac)), ("fd00:10:244:1::".parse().unwrap(), Some(entry.mac))]);
        assert!(h.neighbours(Some(under.index)).await.unwrap().iter().all(|n| !n.permanent));
        for gw in ["10.244.1.0", "fd00:10:244:1::"] {
            h.del_neighbour(vx.index, gw.parse().unwrap()).await.unwrap();
        }
        assert!(h.neighbours(Some(vx.index)).await.unwrap().iter().all(|n| !n.permanent));
        h.del_fdb(&entry).await.unwrap();
        assert!(!h.fdb(vx.index).await.unwrap().contains(&entry));
        h.set_link_master(vx.index, Some(under.index)).await.unwrap_or(());
        h.delete_link(vx.index).await.unwrap();
    });
}
