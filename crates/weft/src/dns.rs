//! `weft up`'s cluster DNS: one DNS server per node, listening on the node's address
//! (port 53 for DNS, 9153 for metrics and health) inside the node's netns, like a
//! hostNetwork DaemonSet, and published as the endpoints of `kube-system/kube-dns`.
//!
//! All nodes' listeners share one zone and one cache in this process: a node is a
//! netns of the same machine, so N copies of the zone would only cost memory, while the
//! sockets per node keep each node's traffic local (the proxy sends 10.96.0.10 to them).

use crate::nodes::Topology;
use anyhow::{Context, Result};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use weft_dns::{config, Config, Dns, Listen, Running, ServerSpec};

pub const DNS_PORT: u16 = 53;
pub const METRICS_PORT: u16 = 9153;

/// Starts the servers, the watchers and the endpoints publication. The servers stop
/// when the returned handles drop; the watchers run as `tasks`.
pub async fn start(client: kube::Client, topology: &Topology, domain: &str, upstreams: &[String], tasks: &mut tokio::task::JoinSet<Result<()>>) -> Result<Vec<Running>> {
    let upstreams: Vec<SocketAddr> = if upstreams.is_empty() {
        config::resolv_conf_servers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    } else {
        config::parse_servers(&upstreams.join(" ")).map_err(|e| anyhow::anyhow!("--dns-upstreams: {e}"))?
    };
    let dns: Arc<Dns> = Dns::new(Config::new(domain, upstreams));
    let mut running = vec![];
    for n in &topology.nodes {
        let spec = ServerSpec {
            netns: Some(n.netns.clone()),
            listen: vec![Listen { dns: SocketAddr::new(IpAddr::V4(n.ip), DNS_PORT), http: Some(SocketAddr::new(IpAddr::V4(n.ip), METRICS_PORT)) }],
            udp_sockets: 0,
        };
        running.push(weft_dns::server::start(dns.clone(), &spec).with_context(|| format!("starting the DNS server of {}", n.name))?);
    }
    tasks.spawn(weft_dns::watch::run(client.clone(), dns));
    let ips: Vec<IpAddr> = topology.nodes.iter().map(|n| IpAddr::V4(n.ip)).collect();
    weft_dns::publish::publish(client, &ips).await.context("publishing the kube-dns endpoints")?;
    Ok(running)
}
