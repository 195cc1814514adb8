//! The `weft-cni` binary driven as a container runtime drives it, for every
//! command and error case. Each test runs in its own netns (the "node").

mod common;

use common::*;
use ipnet::IpNet;
use serde_json::{json, Value};
use weft_kernel::{Handle, Netns, Route};

const V4: &str = "10.244.1.0/24";
const V6: &str = "fd00:10:244:1::/64";

#[test]
fn add_formats_the_result_for_each_requested_version() {
    weft_testns::run_async("add_formats_the_result_for_each_requested_version", |t| async move {
        let data = t.dir().join("data");
        for (i, ver) in ["0.3.1", "0.4.0", "1.0.0", "1.1.0"].into_iter().enumerate() {
            let (path, _ns) = pod(t.dir(), &format!("pod{i}"));
            let r = cmd("ADD", &format!("c{i}"), Some(&path), &conf(ver, &[V4], &data));
            let res = r.ok();
            assert_eq!(res["cniVersion"], ver);
            let ip = &res["ips"][0];
            assert_eq!(ip.get("version").is_some(), ver < "1.0.0", "{ver}: {res}");
            assert_eq!(ip["address"], format!("10.244.1.{}/24", i + 2));
            assert_eq!(ip["gateway"], "10.244.1.1");
            assert_eq!(ip["interface"], 1);
            let ifs = res["interfaces"].as_array().unwrap();
            assert!(ifs[0]["name"].as_str().unwrap().starts_with("weft") && ifs[0].get("sandbox").is_none());
            assert_eq!(ifs[1]["name"], "eth0");
            assert_eq!(ifs[1]["sandbox"], path.display().to_string());
            assert!(ifs[1]["mac"].as_str().unwrap().len() == 17);
            assert_eq!(ifs[1].get("mtu").is_some(), ver == "1.1.0");
            assert_eq!(res["routes"][0], json!({"dst": "0.0.0.0/0", "gw": "10.244.1.1"}));
            assert_eq!(res["dns"]["nameservers"], json!(["10.96.0.10"]));
        }
    });
}

#[test]
fn add_v4_v6_and_dual_stack_configure_the_pod_and_the_bridge() {
    weft_testns::run_async("add_v4_v6_and_dual_stack", |t| async move {
        let host = Handle::current().unwrap();
        let cases: [&[&str]; 3] = [&[V4], &[V6], &[V4, V6]];
        for (i, subnets) in cases.into_iter().enumerate() {
            let data = t.dir().join(format!("data{i}"));
            let mut c = conf("1.1.0", subnets, &data);
            c["bridge"] = json!(format!("weftbr{i}"));
            let (path, ns) = pod(t.dir(), &format!("pod{i}"));
            // Distinct ids: the host veth name is per (network, id, ifname).
            let res = cmd("ADD", &format!("c{i}"), Some(&path), &c).ok().clone();

            let bridge = host.link(&format!("weftbr{i}")).await.unwrap();
            assert!(bridge.up);
            let gws: Vec<IpNet> = host.addresses(Some(bridge.index)).await.unwrap().into_iter().map(|a| a.net).collect();
            let veth = host.link(res["interfaces"][0]["name"].as_str().unwrap()).await.unwrap();
            assert_eq!((veth.master, veth.mtu, veth.up, veth.hairpin), (Some(bridge.index), 1450, true, Some(true)));

            let p = Handle::open(&ns).unwrap();
            let eth0 = p.link("eth0").await.unwrap();
            assert_eq!((eth0.up, eth0.mtu), (true, 1450));
            assert_eq!(eth0.mac.unwrap().to_string(), res["interfaces"][1]["mac"].as_str().unwrap());
            assert!(p.link("lo").await.unwrap().up);
            let addrs: Vec<IpNet> = p.addresses(Some(eth0.index)).await.unwrap().into_iter().map(|a| a.net).collect();
            for sub in subnets {
                let v6 = sub.contains(':');
                let a: IpNet = addr_of(&res, v6).parse().unwrap();
                assert!(addrs.contains(&a), "{a} not in {addrs:?}");
                let gw = if v6 { "fd00:10:244:1::1/64" } else { "10.244.1.1/24" };
                assert!(gws.contains(&gw.parse().unwrap()), "{gws:?}");
                let routes = p.routes(v6, Some(254)).await.unwrap();
                assert!(routes.iter().any(|r| r.dst.prefix_len() == 0 && r.gateway == Some(gw.parse::<IpNet>().unwrap().addr())), "{routes:?}");
            }
            assert_eq!(res["ips"].as_array().unwrap().len(), subnets.len());
            // IPv6: eth0's link-local address is the EUI-64 one, and none of its
            // addresses waits on duplicate address detection; the host end has
            // no IPv6 address at all.
            let eth0_addrs = p.addresses(Some(eth0.index)).await.unwrap();
            let ll: IpNet = IpNet::new(eth0.mac.unwrap().ipv6_link_local().into(), 64).unwrap();
            assert!(eth0_addrs.iter().any(|a| a.net == ll), "{eth0_addrs:?}");
            assert!(eth0_addrs.iter().all(|a| !a.tentative), "{eth0_addrs:?}");
            assert_eq!(host.addresses(Some(veth.index)).await.unwrap(), vec![]);
            if subnets.contains(&V6) {
                assert_eq!(weft_kernel::sysctl::read(None, "net/ipv6/conf/all/forwarding").unwrap(), "1");
            } else {
                assert_eq!(weft_kernel::sysctl::read(None, "net/ipv4/ip_forward").unwrap(), "1");
            }
        }
    });
}

#[test]
fn second_add_for_the_same_container_is_refused_and_changes_nothing() {
    weft_testns::run_async("second_add_for_the_same_container", |t| async move {
        let c = conf("1.1.0", &[V4, V6], &t.dir().join("data"));
        let (path, _ns) = pod(t.dir(), "pod");
        let first = cmd("ADD", "c1", Some(&path), &c).ok().clone();
        let again = cmd("ADD", "c1", Some(&path), &c);
        assert_eq!(again.err_code(), 100);
        assert!(again.msg().contains("already attached") && again.msg().contains("10.244.1.2"), "{}", again.msg());
        // The first attachment is intact.
        assert_eq!(cmd("CHECK", "c1", Some(&path), &with_prev(&c, &first)).code, 0);
        // The same netns with another container id: eth0 is taken there.
        let other = cmd("ADD", "c2", Some(&path), &c);
        assert_eq!(other.err_code(), 100);
        assert!(other.msg().contains("eth0 already exists"), "{}", other.msg());
        // ... and c2's addresses were given back.
        let (p3, _n3) = pod(t.dir(), "pod3");
        assert_eq!(addr_of(cmd("ADD", "c3", Some(&p3), &c).ok(), false), "10.244.1.4/24");
    });
}

#[test]
fn del_removes_the_veth_and_frees_addresses_and_is_idempotent() {
    weft_testns::run_async("del_removes_the_veth", |t| async move {
        let host = Handle::current().unwrap();
        let c = conf("1.1.0", &[V4, V6], &t.dir().join("data"));
        let (path, ns) = pod(t.dir(), "pod");
        let res = cmd("ADD", "c1", Some(&path), &c).ok().clone();
        let veth = res["interfaces"][0]["name"].as_str().unwrap().to_string();
        assert!(cmd("DEL", "c1", Some(&path), &with_prev(&c, &res)).ok().is_null());
        assert!(host.link_by_name(&veth).await.unwrap().is_none());
        assert!(Handle::open(&ns).unwrap().link_by_name("eth0").await.unwrap().is_none());
        assert_eq!(reserved(&t.dir().join("data")), Vec::<String>::new());
        // Again, and for something never added, and without CNI_NETNS.
        cmd("DEL", "c1", Some(&path), &c).ok();
        cmd("DEL", "never-added", Some(&path), &c).ok();
        cmd("DEL", "never-added", None, &c).ok();
        // With the pod netns already gone: still cleans up.
        let res = cmd("ADD", "c2", Some(&path), &c).ok().clone();
        let veth = res["interfaces"][0]["name"].as_str().unwrap().to_string();
        drop(ns);
        Netns::remove(&path).unwrap();
        cmd("DEL", "c2", Some(&path), &c).ok();
        assert!(host.link_by_name(&veth).await.unwrap().is_none());
        assert_eq!(reserved(&t.dir().join("data")), Vec::<String>::new());
    });
}

#[test]
fn check_passes_after_add_and_names_what_was_damaged() {
    weft_testns::run_async("check_names_what_was_damaged", |t| async move {
        let host = Handle::current().unwrap();
        let c = conf("1.1.0", &[V4, V6], &t.dir().join("data"));
        let (path, ns) = pod(t.dir(), "pod");
        let res = cmd("ADD", "c1", Some(&path), &c).ok().clone();
        let chk = with_prev(&c, &res);
        assert!(cmd("CHECK", "c1", Some(&path), &chk).ok().is_null());

        let p = Handle::open(&ns).unwrap();
        let eth0 = p.link("eth0").await.unwrap();
        let v4: IpNet = addr_of(&res, false).parse().unwrap();
        p.del_address(eth0.index, v4).await.unwrap();
        let r = cmd("CHECK", "c1", Some(&path), &chk);
        assert_eq!(r.err_code(), 101);
        assert!(r.msg().contains(&format!("address {v4} is missing on eth0")), "{}", r.msg());
        p.add_address(eth0.index, v4).await.unwrap();

        let gw6 = "fd00:10:244:1::1".parse().unwrap();
        p.del_route(&Route::via("::/0".parse().unwrap(), gw6).with_oif(eth0.index)).await.unwrap();
        let r = cmd("CHECK", "c1", Some(&path), &chk);
        assert_eq!(r.err_code(), 101);
        assert!(r.msg().contains("default route ::/0 via fd00:10:244:1::1"), "{}", r.msg());
        assert!(!r.msg().contains("address"), "only the route is damaged: {}", r.msg());

        host.delete_link_by_name(res["interfaces"][0]["name"].as_str().unwrap()).await.unwrap();
        let r = cmd("CHECK", "c1", Some(&path), &chk);
        assert_eq!(r.err_code(), 101);
        assert!(r.msg().contains("host veth") && r.msg().contains("missing") && r.msg().contains("interface eth0 is missing"), "{}", r.msg());

        // CHECK needs prevResult.
        assert_eq!(cmd("CHECK", "c1", Some(&path), &c).err_code(), 7);
    });
}

#[test]
fn gc_frees_attachments_missing_from_the_valid_list_under_both_names() {
    weft_testns::run_async("gc_frees_stale_attachments", |t| async move {
        let host = Handle::current().unwrap();
        for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
            let data = t.dir().join(key.replace('/', "_"));
            let c = conf("1.1.0", &[V4], &data);
            let mut veths = Vec::new();
            for id in ["keep", "stale"] {
                let (path, _ns) = pod(t.dir(), &format!("{}-{id}", data.file_name().unwrap().to_string_lossy()));
                let res = cmd("ADD", id, Some(&path), &c).ok().clone();
                veths.push(res["interfaces"][0]["name"].as_str().unwrap().to_string());
            }
            let mut g = c.clone();
            g[key] = json!([{"containerID": "keep", "ifname": "eth0"}]);
            let r = invoke(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/opt/cni/bin")], &g.to_string());
            assert!(r.ok().is_null());
            assert!(host.link_by_name(&veths[0]).await.unwrap().is_some(), "{key}: kept attachment survives");
            assert!(host.link_by_name(&veths[1]).await.unwrap().is_none(), "{key}: stale veth removed");
            assert_eq!(reserved(&data), vec!["10.244.1.2".to_string()], "{key}");
            // Clean up for the next round (same bridge).
            cmd("DEL", "keep", None, &c).ok();
        }
    });
}

#[test]
fn status_reports_not_available_when_a_subnet_is_full() {
    weft_testns::run_async("status_reports_not_available", |t| async move {
        let c = conf("1.1.0", &["10.9.0.0/30"], &t.dir().join("data"));
        let status = || invoke(&[("CNI_COMMAND", "STATUS"), ("CNI_PATH", "/opt/cni/bin")], &c.to_string());
        assert!(status().ok().is_null());
        let (path, _ns) = pod(t.dir(), "pod");
        cmd("ADD", "c1", Some(&path), &c).ok();
        let r = status();
        assert_eq!(r.err_code(), 50);
        assert!(r.msg().contains("10.9.0.0/30"), "{}", r.msg());
        let (p2, _n2) = pod(t.dir(), "pod2");
        assert_eq!(cmd("ADD", "c2", Some(&p2), &c).err_code(), 102);
    });
}

#[test]
fn version_and_protocol_errors() {
    weft_testns::run("version_and_protocol_errors", |t| {
        let data = t.dir().join("data");
        let r = invoke(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"1.0.0"}"#);
        assert_eq!(r.ok(), &json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}));

        let (path, _ns) = pod(t.dir(), "pod");
        let good = conf("1.1.0", &[V4], &data);
        let r = cmd("ADD", "c1", Some(&path), &json!("x"));
        assert_eq!(r.err_code(), 6);
        let r = invoke(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_IFNAME", "eth0")], "{bad json");
        assert_eq!(r.err_code(), 6);
        // Missing variables are named.
        let r = invoke(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")], &good.to_string());
        assert_eq!(r.err_code(), 4);
        assert!(r.msg().contains("CNI_CONTAINERID") && r.msg().contains("CNI_NETNS"), "{}", r.msg());
        assert_eq!(invoke(&[], &good.to_string()).err_code(), 4);
        assert_eq!(invoke(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "bad id!"), ("CNI_IFNAME", "eth0"), ("CNI_NETNS", "/x")], &good.to_string()).err_code(), 4);
        // Unsupported version: code 1, listing what is supported.
        let r = cmd("ADD", "c1", Some(&path), &conf("0.2.0", &[V4], &data));
        assert_eq!(r.err_code(), 1);
        assert!(r.msg().contains("1.1.0"), "{}", r.msg());
        // Unknown field: code 2 naming it.
        let mut odd = good.clone();
        odd["vxlanID"] = json!(42);
        let r = cmd("ADD", "c1", Some(&path), &odd);
        assert_eq!(r.err_code(), 2);
        assert!(r.msg().contains("vxlanID") && r.msg().contains("42"), "{}", r.msg());
        // Invalid value: code 7.
        let mut bad = good.clone();
        bad["ipam"]["subnets"] = json!(["10.0.0.1/24"]);
        assert_eq!(cmd("ADD", "c1", Some(&path), &bad).err_code(), 7);
        // A netns that does not exist: container unknown.
        assert_eq!(cmd("ADD", "c1", Some(&t.dir().join("gone")), &good).err_code(), 3);
        // Errors are stamped with the requested version.
        let r = cmd("ADD", "c1", Some(&t.dir().join("gone")), &conf("0.4.0", &[V4], &data));
        assert_eq!(r.json["cniVersion"], "0.4.0");
        // Nothing was left allocated by the failures.
        assert_eq!(reserved(&data), Vec::<String>::new());
    });
}

#[test]
fn add_passes_a_previous_plugins_result_through() {
    weft_testns::run("add_passes_prev_result_through", |t| {
        let (path, _ns) = pod(t.dir(), "pod");
        let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "other0"}], "ips": [], "dns": {}});
        let c = with_prev(&conf("1.0.0", &[V4], &t.dir().join("data")), &prev);
        let r = cmd("ADD", "c1", Some(&path), &c);
        let res = r.ok();
        assert_eq!(res["interfaces"][0]["name"], "other0");
        assert_eq!(res["interfaces"].as_array().unwrap().len(), 3);
        assert_eq!(res["ips"][0]["interface"], 2);
    });
}

#[test]
fn twenty_parallel_adds_get_twenty_distinct_addresses() {
    weft_testns::run("twenty_parallel_adds", |t| {
        let c = conf("1.1.0", &[V4, V6], &t.dir().join("data"));
        let pods: Vec<_> = (0..20).map(|i| pod(t.dir(), &format!("pod{i}"))).collect();
        let results: Vec<Value> = std::thread::scope(|s| {
            let handles: Vec<_> = pods
                .iter()
                .enumerate()
                .map(|(i, (path, _))| {
                    let c = &c;
                    s.spawn(move || cmd("ADD", &format!("c{i}"), Some(path), c).ok().clone())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for v6 in [false, true] {
            let mut addrs: Vec<String> = results.iter().map(|r| addr_of(r, v6)).collect();
            addrs.sort();
            addrs.dedup();
            assert_eq!(addrs.len(), 20, "{addrs:?}");
        }
        assert_eq!(reserved(&t.dir().join("data")).len(), 40);
    });
}
