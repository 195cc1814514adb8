//! The node's underlay interface: the one that carries its address between nodes. Its
//! MTU bounds the pods' MTU, and the vxlan backend binds its device to it.

use anyhow::{Context, Result};
use std::net::IpAddr;
use weft_kernel::{Handle, Link, Netns};

use crate::node::NodeConfig;

#[derive(Debug, Clone)]
pub struct Underlay {
    pub link: Link,
    /// The node's address on it (the VTEP address for vxlan).
    pub ip: IpAddr,
}

/// A handle on the node's netns (the agent's own in cluster mode).
pub fn handle(cfg: &NodeConfig) -> Result<Handle> {
    let ns = match &cfg.netns {
        Some(p) => Netns::open(p).with_context(|| format!("node {}: opening its netns {}", cfg.name, p.display()))?,
        None => Netns::current()?,
    };
    Ok(Handle::open(&ns)?)
}

/// The interface holding the node's primary address, or without one configured, the
/// interface of the default route and its first global address.
pub async fn find(h: &Handle, cfg: &NodeConfig) -> Result<Underlay> {
    let addrs = h.addresses(None).await?;
    if let Some(first) = cfg.addresses.first() {
        let ip: IpAddr = first.parse().with_context(|| format!("node {}: address {first:?} (the node's InternalIP) is not an IP address", cfg.name))?;
        let a = addrs.iter().find(|a| a.net.addr() == ip).with_context(|| {
            format!("node {}: no interface in the node's netns has its address {ip}: give the node an InternalIP that one of its interfaces holds", cfg.name)
        })?;
        let link = h.link_by_index(a.index).await?.with_context(|| format!("node {}: the interface #{} holding {ip} went away", cfg.name, a.index))?;
        return Ok(Underlay { link, ip });
    }
    for v6 in [false, true] {
        let default = h.routes(v6, Some(weft_kernel::MAIN_TABLE)).await?.into_iter().find(|r| r.dst.prefix_len() == 0 && r.oif.is_some());
        let Some(oif) = default.and_then(|r| r.oif) else { continue };
        let global = addrs.iter().find(|a| a.index == oif && a.net.addr().is_ipv6() == v6 && is_global(a.net.addr()));
        if let (Some(link), Some(a)) = (h.link_by_index(oif).await?, global) {
            return Ok(Underlay { link, ip: a.net.addr() });
        }
    }
    anyhow::bail!("node {}: no address given and no default route with an addressed interface: set the node's InternalIP (NodeConfig.addresses) to the address pods cross nodes over", cfg.name)
}

fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_loopback() && !a.is_link_local(),
        IpAddr::V6(a) => !a.is_loopback() && (a.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// What the pods' links on this node get: the configured MTU, else the underlay's
/// minus the backend's overhead; and BIG TCP when the backend and the underlay allow
/// it (`Backend::pod_gso_max_size`).
pub async fn pod_links(cfg: &NodeConfig) -> Result<(u32, Option<u32>)> {
    let h = handle(cfg)?;
    let u = match (find(&h, cfg).await, cfg.pod_mtu) {
        (Ok(u), _) => u,
        // A configured MTU needs no underlay; BIG TCP stays off without one.
        (Err(_), Some(m)) => return Ok((m, None)),
        (Err(e), None) => return Err(e),
    };
    let mtu = cfg.pod_mtu.unwrap_or_else(|| cfg.backend.pod_mtu(u.link.mtu, u.ip.is_ipv6()));
    Ok((mtu, cfg.backend.pod_gso_max_size(u.link.gso_size())))
}
