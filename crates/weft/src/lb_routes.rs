//! LoadBalancer and external IPs, reachable from the host side of `weft up` (the
//! namespace it runs in) the way a cloud load balancer makes them reachable: a /32 route
//! per address via a node that can serve it. For `externalTrafficPolicy: Local` that is a
//! node whose healthCheckNodePort answers 200 (a node with a local endpoint), as a cloud
//! health check would pick; otherwise any node. The routes go through the host side's
//! veth, so they go with it at `weft down`.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;
use weft_kernel::{Handle, Route};

/// One address to route: where it comes from and which nodes may take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub ip: Ipv4Addr,
    /// The healthCheckNodePort to ask, for externalTrafficPolicy Local.
    pub health_port: Option<u16>,
}

/// The addresses a service makes reachable from outside (IPv4: the underlay is IPv4).
pub fn wanted(s: &Service) -> Vec<Wanted> {
    let Some(spec) = &s.spec else { return vec![] };
    let lb = spec.type_.as_deref() == Some("LoadBalancer");
    let local = spec.external_traffic_policy.as_deref() == Some("Local") && (lb || spec.type_.as_deref() == Some("NodePort"));
    let health_port = spec.health_check_node_port.filter(|p| local && *p > 0).map(|p| p as u16);
    let ingress = s.status.as_ref().and_then(|st| st.load_balancer.as_ref()).and_then(|l| l.ingress.as_ref());
    let lb_ips = ingress.into_iter().flatten().filter(|_| lb).filter_map(|i| i.ip.as_deref());
    let external = spec.external_ips.iter().flatten().map(String::as_str);
    let mut out: Vec<Wanted> = lb_ips.chain(external).filter_map(|ip| ip.parse().ok()).map(|ip| Wanted { ip, health_port }).collect();
    out.sort_by_key(|w| w.ip);
    out.dedup_by_key(|w| w.ip);
    out
}

/// Address → the node IP to route it through: the first healthy node when a health
/// port is given (else the first node: it drops what it cannot serve), the first node
/// otherwise. Pure; `healthy(node, port)` is the probe.
pub fn plan(wants: &[Wanted], nodes: &[Ipv4Addr], mut healthy: impl FnMut(Ipv4Addr, u16) -> bool) -> BTreeMap<Ipv4Addr, Ipv4Addr> {
    let mut out = BTreeMap::new();
    let Some(first) = nodes.first() else { return out };
    for w in wants {
        let via = match w.health_port {
            Some(port) => nodes.iter().copied().find(|n| healthy(*n, port)).unwrap_or(*first),
            None => *first,
        };
        out.entry(w.ip).or_insert(via);
    }
    out
}

/// A cloud-style health check: `GET /` answered with 200, within a short bound.
fn probe(node: Ipv4Addr, port: u16) -> bool {
    let bound = Duration::from_millis(500);
    let Ok(mut s) = TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(node), port), bound) else { return false };
    let _ = s.set_read_timeout(Some(bound));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: weft\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

pub async fn run(client: kube::Client, nodes: Vec<Ipv4Addr>) -> anyhow::Result<()> {
    let h = Handle::current()?;
    let (store, writer) = reflector::store::<Service>();
    let stream = reflector::reflector(writer, watcher::watcher(Api::<Service>::all(client), Default::default()).default_backoff()).touched_objects();
    futures::pin_mut!(stream);
    let mut installed: BTreeMap<Ipv4Addr, Ipv4Addr> = BTreeMap::new();
    // Health changes with endpoints, which no Service event announces: look again often.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            next = stream.next() => match next {
                None => return Ok(()),
                Some(Err(e)) => { tracing::debug!(%e, "watching services for load-balancer routes"); continue }
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => {}
        }
        let wants: Vec<Wanted> = store.state().iter().flat_map(|s| wanted(s)).collect();
        let nodes2 = nodes.clone();
        let want = tokio::task::spawn_blocking(move || plan(&wants, &nodes2, probe)).await?;
        for (ip, via) in &want {
            if installed.get(ip) == Some(via) {
                continue;
            }
            let r = Route::via(ipnet::IpNet::new(IpAddr::V4(*ip), 32)?, IpAddr::V4(*via));
            match h.replace_route(&r).await {
                Ok(()) => tracing::info!(%ip, %via, "load-balancer address routed through a node"),
                Err(e) => tracing::warn!(%ip, %via, %e, "routing a load-balancer address"),
            }
        }
        for (ip, via) in &installed {
            if !want.contains_key(ip) {
                let _ = h.del_route(&Route::via(ipnet::IpNet::new(IpAddr::V4(*ip), 32)?, IpAddr::V4(*via))).await;
            }
        }
        installed = want;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn load_balancer_and_external_ips_are_wanted_with_the_health_port_for_local_policy() {
        let s = svc(serde_json::json!({"metadata": {"name": "a"}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000, "externalIPs": ["10.99.2.1"], "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.99.1.5"}, {"ip": "fd00::1"}]}}}));
        assert_eq!(wanted(&s), vec![Wanted { ip: "10.99.1.5".parse().unwrap(), health_port: Some(32000) }, Wanted { ip: "10.99.2.1".parse().unwrap(), health_port: Some(32000) }]);
        let cluster = svc(serde_json::json!({"metadata": {"name": "b"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}, "status": {"loadBalancer": {"ingress": [{"ip": "10.99.1.6"}]}}}));
        assert!(wanted(&cluster).is_empty(), "a ClusterIP service's stale status is not routed");
    }

    #[test]
    fn local_policy_routes_through_a_healthy_node_and_cluster_policy_through_any() {
        let nodes: Vec<Ipv4Addr> = vec!["10.99.0.2".parse().unwrap(), "10.99.0.3".parse().unwrap()];
        let wants = vec![Wanted { ip: "10.99.1.5".parse().unwrap(), health_port: Some(32000) }, Wanted { ip: "10.99.1.6".parse().unwrap(), health_port: None }];
        let p = plan(&wants, &nodes, |n, port| port == 32000 && n == nodes[1]);
        assert_eq!(p[&wants[0].ip], nodes[1]);
        assert_eq!(p[&wants[1].ip], nodes[0]);
        let none = plan(&wants, &nodes, |_, _| false);
        assert_eq!(none[&wants[0].ip], nodes[0], "no healthy node: the first one, which drops");
    }
}
