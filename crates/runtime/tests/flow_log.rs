//! The flow recorder with real logged packets: a "node" netns whose nftables table
//! logs policy decisions as the enforcer does (group FLOW_LOG_GROUP, FlowMark
//! prefixes), a policy model, and `flow_log::run` writing the node's JSON lines.

use std::net::UdpSocket;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use weft_kernel::nft::*;
use weft_kernel::{run_in, Handle, Netns};
use weft_policy::flow::FlowRecord;
use weft_policy::plan::{FlowMark, FLOW_LOG_GROUP};
use weft_policy::{Cluster, PodInfo, PodKey};

const CLIENT: &str = "10.244.1.2";
const SERVER: &str = "10.244.2.3";

/// Logs new UDP to the server: port 8080 as denied (and dropped), 8081 as allowed.
fn table() -> Ruleset {
    let mut rs = Ruleset::new(Table::new(Family::Inet, "weft-policy-test"));
    rs.chain(Chain::base("out", ChainType::Filter, Hook::Output, 0));
    for (port, mark) in [(8080u16, FlowMark::IngressDenied), (8081, FlowMark::IngressAllowed)] {
        let mut exprs = Expr::ct_state_any(ct_state::NEW);
        exprs.extend(Expr::only_ipv4());
        exprs.extend([
            Expr::ip_daddr(Reg::R1),
            Expr::cmp_eq(Reg::R1, Value::ipv4(SERVER.parse().unwrap())),
            Expr::l4proto(Reg::R1),
            Expr::cmp_eq(Reg::R1, Value::proto(17)),
            Expr::th_dport(Reg::R1),
            Expr::cmp_eq(Reg::R1, Value::port(port)),
            Expr::Log { prefix: Some(mark.prefix().into()), to: LogTo::Group { group: FLOW_LOG_GROUP, snaplen: 128 } },
        ]);
        if !mark.allowed() {
            exprs.push(Expr::drop());
        }
        rs.rule(Rule::new("out", exprs));
    }
    rs
}

fn model() -> Cluster {
    let mut c = Cluster::new();
    c.set_namespace("x", [("kubernetes.io/metadata.name".to_string(), "x".to_string())].into());
    for (name, ip, app) in [("client", CLIENT, "client"), ("server", SERVER, "server")] {
        c.set_pod(PodInfo {
            key: PodKey { namespace: "x".into(), name: name.into() },
            labels: [("app".to_string(), app.to_string())].into(),
            ips: vec![ip.parse().unwrap()],
            host_network: false,
            node: Some("node-1".into()),
            ports: vec![],
        });
    }
    let np = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "udp-8081", "namespace": "x"},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}},
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}], "ports": [{"port": 8081, "protocol": "UDP"}]}]}
    }))
    .unwrap();
    c.apply_policy(&np).unwrap();
    c
}

fn read(path: &std::path::Path) -> Vec<FlowRecord> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn logged_decisions_become_judged_deduplicated_json_lines() {
    weft_testns::run_async("flow_log_records", |t| async move {
        let node = Netns::create(&t.dir().join("node")).unwrap();
        let h = Handle::open(&node).unwrap();
        let lo = h.link("lo").await.unwrap().index;
        h.set_link_up(lo).await.unwrap();
        for ip in [CLIENT, SERVER] {
            h.add_address(lo, format!("{ip}/32").parse().unwrap()).await.unwrap();
        }
        Nft::open(&node).unwrap().commit(Batch::new().add_ruleset(&table())).unwrap();
        let out = weft_runtime::flow_log::flow_file(&t.dir().join("node-state"), "node-1");
        let recorder = tokio::spawn(weft_runtime::flow_log::run(Netns::open(&t.dir().join("node")).unwrap(), "node-1".into(), Arc::new(RwLock::new(model())), out.clone()));
        // The recorder binds the group first; until then nothing is logged to anyone.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (denied_port, allowed_port) = run_in(&node, || {
            let a = UdpSocket::bind((CLIENT, 0)).unwrap();
            // Unanswered UDP is new on every datagram: two log entries, one record.
            // (A locally sent packet that is dropped fails with EPERM.)
            let _ = a.send_to(b"1", (SERVER, 8080));
            let _ = a.send_to(b"2", (SERVER, 8080));
            let b = UdpSocket::bind((CLIENT, 0)).unwrap();
            b.send_to(b"3", (SERVER, 8081)).unwrap();
            (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while read(&out).len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = read(&out);
        assert_eq!(got.len(), 2, "one record per attempt: {got:#?}");
        let denied = &got[0];
        assert_eq!((denied.verdict.as_str(), denied.direction.as_str(), denied.node.as_str()), ("denied", "ingress", "node-1"));
        assert_eq!((denied.src_pod.as_deref(), denied.dst_pod.as_deref()), (Some("x/client"), Some("x/server")));
        assert_eq!((denied.src_port, denied.dst_port, denied.protocol.as_str()), (Some(denied_port), Some(8080), "UDP"));
        assert_eq!(denied.policies, vec!["x/udp-8081"]);
        let allowed = &got[1];
        assert_eq!((allowed.verdict.as_str(), allowed.src_port, allowed.dst_port), ("allowed", Some(allowed_port), Some(8081)));
        assert_eq!(allowed.policies, vec!["x/udp-8081 ingress[0]"]);
        assert!(!recorder.is_finished(), "the recorder runs until dropped");
        recorder.abort();
    });
}
