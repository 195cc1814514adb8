//! A node between a client and "pods", for the proxy's applier with real packets.
//!
//! ```text
//!  test netns (client)        node netns                      pods netns
//!  c0 10.1.0.2 ─── veth ─── r0 10.1.0.1   r1 10.2.0.1 ─── veth ─── p0 10.2.0.2, 10.2.0.3
//! ```
//! The pods have no route back to the client: only masqueraded connections complete,
//! so a test sees masquerading as a connection that works.
#![allow(dead_code)]

use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weft_kernel::{run_in, sysctl, Handle, Netns, Route, VethSpec};
use weft_proxy::{NodeContext, ProxyState};

pub const BOUND: Duration = Duration::from_secs(5);

pub async fn topology(dir: &std::path::Path) -> (Netns, Netns) {
    let node = Netns::create(&dir.join("node")).unwrap();
    let pods = Netns::create(&dir.join("pods")).unwrap();
    let here = Handle::current().unwrap();
    let n = Handle::open(&node).unwrap();
    let p = Handle::open(&pods).unwrap();
    here.create_veth(&VethSpec { name: "c0", peer_name: "r0", peer_ns: Some(&node), up: true, ..Default::default() }).await.unwrap();
    n.create_veth(&VethSpec { name: "r1", peer_name: "p0", peer_ns: Some(&pods), up: true, ..Default::default() }).await.unwrap();
    let c0 = here.link("c0").await.unwrap().index;
    here.add_address(c0, "10.1.0.2/24".parse().unwrap()).await.unwrap();
    here.add_route(&Route::via("0.0.0.0/0".parse().unwrap(), "10.1.0.1".parse().unwrap())).await.unwrap();
    for (h, name) in [(&n, "lo"), (&p, "lo")] {
        let l = h.link(name).await.unwrap().index;
        h.set_link_up(l).await.unwrap();
    }
    let r0 = n.link("r0").await.unwrap().index;
    let r1 = n.link("r1").await.unwrap().index;
    n.set_link_up(r0).await.unwrap();
    n.add_address(r0, "10.1.0.1/24".parse().unwrap()).await.unwrap();
    n.add_address(r1, "10.2.0.1/24".parse().unwrap()).await.unwrap();
    // Service addresses route towards the pods, as a node's default route would take them.
    n.add_route(&Route::via("10.96.0.0/16".parse().unwrap(), "10.2.0.2".parse().unwrap())).await.unwrap();
    sysctl::enable_ip_forward(Some(&node)).unwrap();
    let p0 = p.link("p0").await.unwrap().index;
    p.set_link_up(p0).await.unwrap();
    p.add_address(p0, "10.2.0.2/24".parse().unwrap()).await.unwrap();
    p.add_address(p0, "10.2.0.3/24".parse().unwrap()).await.unwrap();
    p.add_route(&Route::via("10.96.0.0/16".parse().unwrap(), "10.2.0.1".parse().unwrap())).await.unwrap();
    (node, pods)
}

pub fn node_context() -> NodeContext {
    NodeContext { node_name: "node-0".into(), pod_cidrs: vec!["10.2.0.0/24".parse().unwrap()], masquerade_all: false }
}

pub fn state() -> ProxyState {
    ProxyState::new(node_context())
}

/// A Service from a few fields.
pub fn service(name: &str, cluster_ip: &str, spec: serde_json::Value) -> k8s_openapi::api::core::v1::Service {
    let mut s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "ns", "name": name}, "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip]}});
    for (k, v) in spec.as_object().unwrap() {
        s["spec"][k] = v.clone();
    }
    serde_json::from_value(s).unwrap()
}

/// An EndpointSlice with ready endpoints on `node-0` (local) at `ips`, port `port`.
pub fn slice(svc: &str, ips: &[&str], proto: &str, port: u16) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let eps: Vec<_> = ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true, "serving": true, "terminating": false}, "nodeName": "node-0"})).collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": "ns", "name": format!("{svc}-1"), "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "ports": [{"name": "", "port": port, "protocol": proto}], "endpoints": eps
    }))
    .unwrap()
}

/// A TCP server on `addr` in `ns` answering each connection with "<its address> <peer
/// address>" and then echoing lines, until `stop` is set.
pub fn serve(ns: &Netns, addr: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = run_in(ns, || TcpListener::bind(addr)).unwrap().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, peer)) => {
                    let _ = writeln!(s, "{} {}", addr.ip(), peer.ip());
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                        let mut r = BufReader::new(s.try_clone().unwrap());
                        let mut line = String::new();
                        while !stop.load(Ordering::Relaxed) {
                            line.clear();
                            match r.read_line(&mut line) {
                                Ok(0) => break,
                                Ok(_) => {
                                    let _ = s.write_all(line.as_bytes());
                                }
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => break,
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// A UDP server on `addr` in `ns` answering each datagram with its own address.
pub fn serve_udp(ns: &Netns, addr: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let addr: SocketAddr = addr.parse().unwrap();
    let sock = run_in(ns, || UdpSocket::bind(addr)).unwrap().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((_, peer)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(addr.ip().to_string().as_bytes(), peer);
            }
        }
    })
}

/// Connects to `to` and returns the server's greeting: (backend, peer it saw).
pub fn ask(to: &str) -> std::io::Result<(String, String)> {
    let s = TcpStream::connect_timeout(&to.parse().unwrap(), BOUND)?;
    greeting(&s)
}

pub fn greeting(s: &TcpStream) -> std::io::Result<(String, String)> {
    s.set_read_timeout(Some(BOUND))?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    let mut parts = line.split_whitespace().map(str::to_string);
    Ok((parts.next().unwrap_or_default(), parts.next().unwrap_or_default()))
}

/// Connects from inside `ns` (a pod) to `to`.
pub fn ask_from(ns: &Netns, to: &str) -> std::io::Result<(String, String)> {
    let s = run_in(ns, || TcpStream::connect_timeout(&to.parse().unwrap(), BOUND)).unwrap()?;
    greeting(&s)
}
