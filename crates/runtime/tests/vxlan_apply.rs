//! The vxlan applier with real packets: two node namespaces joined by a veth, each with
//! the device `ensure_device` makes and the entries `converge` writes from the plan.
//! The nodes' overlay gateways (the `.0` addresses the plan puts on each device) ping
//! each other only through the tunnel.

use std::net::IpAddr;
use std::path::Path;
use weft_cni::overlay::{self, DEVICE};
use weft_cni::routes::NodeRoutes;
use weft_kernel::{FdbEntry, Handle, Mac, Netns, Route, VethSpec};
use weft_runtime::underlay::{self, Underlay};
use weft_runtime::vxlan::{self, Changes, Device};
use weft_runtime::NodeConfig;

struct Node {
    name: &'static str,
    path: std::path::PathBuf,
    h: Handle,
    under: Underlay,
    cidr: &'static str,
}

fn node_routes(n: &Node, dev: Device) -> NodeRoutes {
    NodeRoutes { name: n.name.into(), internal_ips: vec![n.under.ip], pod_cidrs: vec![n.cidr.parse().unwrap()], vtep_mac: Some(dev.mac.to_string()) }
}

/// Whether one ping from `from`'s netns to `ip` is answered.
fn ping(from: &Path, ip: &str) -> bool {
    std::process::Command::new("nsenter")
        .arg(format!("--net={}", from.display()))
        .args(["ping", "-c", "1", "-W", "2", ip])
        .output()
        .expect("nsenter ping (util-linux, iputils-ping)")
        .status
        .success()
}

async fn make_nodes(dir: &Path) -> (Node, Node) {
    let (pa, pb) = (dir.join("node-a"), dir.join("node-b"));
    let (a, b) = (Netns::create(&pa).unwrap(), Netns::create(&pb).unwrap());
    let (ha, hb) = (Handle::open(&a).unwrap(), Handle::open(&b).unwrap());
    ha.create_veth(&VethSpec { name: "eth0", peer_name: "eth0", peer_ns: Some(&b), mtu: Some(1500), master: None, up: true, gso_max_size: None }).await.unwrap();
    let mut out = Vec::new();
    for (name, path, h, ip, cidr) in [("node-a", pa, ha, "192.0.2.1", "10.244.0.0/24"), ("node-b", pb, hb, "192.0.2.2", "10.244.1.0/24")] {
        for l in ["lo", "eth0"] {
            let link = h.link(l).await.unwrap();
            h.set_link_up(link.index).await.unwrap();
        }
        let eth0 = h.link("eth0").await.unwrap();
        h.add_address(eth0.index, format!("{ip}/24").parse().unwrap()).await.unwrap();
        let mut cfg = NodeConfig::new(name, dir.join(name));
        cfg.netns = Some(path.clone());
        cfg.addresses = vec![ip.to_string()];
        let under = underlay::find(&h, &cfg).await.unwrap();
        assert_eq!((under.link.name.as_str(), under.ip), ("eth0", ip.parse::<IpAddr>().unwrap()));
        out.push(Node { name, path, h, under, cidr });
    }
    let b = out.pop().unwrap();
    (out.pop().unwrap(), b)
}

async fn converge_both(a: &Node, da: Device, b: &Node, db: Device) -> (Changes, Changes) {
    let nodes = [node_routes(a, da), node_routes(b, db)];
    let pa = overlay::plan(a.name, a.under.ip, &nodes);
    let pb = overlay::plan(b.name, b.under.ip, &nodes);
    (vxlan::converge(&a.h, da, &pa).await.unwrap(), vxlan::converge(&b.h, db, &pb).await.unwrap())
}

#[test]
fn converged_nodes_reach_each_others_gateways_through_the_tunnel_and_follow_changes() {
    weft_testns::run_async("vxlan_apply", |t| async move {
        let (a, b) = make_nodes(t.dir()).await;
        let da = vxlan::ensure_device(&a.h, &a.under, 1450).await.unwrap();
        let db = vxlan::ensure_device(&b.h, &b.under, 1450).await.unwrap();
        // Idempotent: a second call finds the same device with the same MAC.
        assert_eq!(vxlan::ensure_device(&a.h, &a.under, 1450).await.unwrap(), da);
        let info = a.h.vxlan(DEVICE).await.unwrap().unwrap().1.unwrap();
        assert_eq!((info.vni, info.port, info.local, info.underlay, info.learning), (1, 8472, Some(a.under.ip), Some(a.under.link.index), false));

        assert!(!ping(&a.path, "10.244.1.0"), "reachable before any entry was planned");
        let (ca, cb) = converge_both(&a, da, &b, db).await;
        // Address, route, neighbour, FDB entry each.
        assert_eq!((ca.added, ca.failed, cb.added, cb.failed), (4, 0, 4, 0), "{ca:?} {cb:?}");
        assert!(ping(&a.path, "10.244.1.0") && ping(&b.path, "10.244.0.0"));
        assert_eq!(converge_both(&a, da, &b, db).await, (Changes::default(), Changes::default()), "a second pass changes nothing");

        // Entries on the device that the plan does not hold go; others stay.
        let (stray_gw, stray_mac) = ("10.244.9.0".parse::<IpAddr>().unwrap(), Mac([2, 0, 0, 0, 0, 0x99]));
        a.h.replace_route(&Route::via("10.250.0.0/24".parse().unwrap(), stray_gw).with_oif(da.index).onlink()).await.unwrap();
        a.h.add_neighbour(da.index, stray_gw, stray_mac, true).await.unwrap();
        a.h.add_fdb(&FdbEntry { index: da.index, mac: stray_mac, dst: Some("192.0.2.99".parse().unwrap()) }, true).await.unwrap();
        a.h.add_route(&Route::via("10.251.0.0/24".parse().unwrap(), "192.0.2.2".parse().unwrap())).await.unwrap();
        let (ca, _) = converge_both(&a, da, &b, db).await;
        assert_eq!((ca.added, ca.removed), (0, 3), "{ca:?}");
        let routes = a.h.routes(false, None).await.unwrap();
        assert!(!routes.iter().any(|r| r.dst == "10.250.0.0/24".parse().unwrap()));
        assert!(routes.iter().any(|r| r.dst == "10.251.0.0/24".parse().unwrap()), "a route off the device was touched");
        assert!(!a.h.fdb(da.index).await.unwrap().iter().any(|e| e.mac == stray_mac));
        assert!(!a.h.neighbours(Some(da.index)).await.unwrap().iter().any(|n| n.ip == stray_gw));

        // node-b's device is remade (a new MAC): node-a follows it once planned.
        b.h.delete_link(db.index).await.unwrap();
        let db2 = vxlan::ensure_device(&b.h, &b.under, 1450).await.unwrap();
        assert_ne!(db2.mac, db.mac);
        assert!(!ping(&a.path, "10.244.1.0"), "node-a still sends to the old MAC, which node-b no longer has");
        converge_both(&a, da, &b, db2).await;
        assert!(ping(&a.path, "10.244.1.0") && ping(&b.path, "10.244.0.0"));
        let fdb = a.h.fdb(da.index).await.unwrap();
        assert!(fdb.iter().any(|e| e.mac == db2.mac) && !fdb.iter().any(|e| e.mac == db.mac), "{fdb:?}");

        // node-b leaves: node-a drops its route, neighbour and FDB entry.
        let pa = overlay::plan(a.name, a.under.ip, &[node_routes(&a, da)]);
        let c = vxlan::converge(&a.h, da, &pa).await.unwrap();
        assert_eq!((c.added, c.removed), (0, 3), "{c:?}");
        assert!(!ping(&a.path, "10.244.1.0"));
        assert!(a.h.fdb(da.index).await.unwrap().is_empty());

        // A device with other settings (here another VTEP address) is remade.
        let moved = Underlay { ip: "192.0.2.11".parse().unwrap(), ..a.under.clone() };
        a.h.add_address(a.under.link.index, "192.0.2.11/24".parse().unwrap()).await.unwrap();
        let da2 = vxlan::ensure_device(&a.h, &moved, 1400).await.unwrap();
        let (link, info) = a.h.vxlan(DEVICE).await.unwrap().unwrap();
        assert_eq!((info.unwrap().local, link.mtu, link.index), (Some(moved.ip), 1400, da2.index));
        drop((a, b));
    });
}
