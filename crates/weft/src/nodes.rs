//! Local mode's nodes: each node is a network namespace with one address on a shared
//! underlay (a bridge in an underlay namespace of weft's own), and the namespace where
//! `weft up` runs (the host side) reaches every node through a veth into that bridge.
//!
//! ```text
//!  host netns ── wft<id> ═ host ─┐
//!                                ├── ul0 (bridge, underlay netns)
//!  node-1 netns ── eth0 ═ n1 ────┤
//!  node-2 netns ── eth0 ═ n2 ────┘
//! ```
//!
//! The underlay is the cluster's physical network: a plain switch (no netfilter
//! hooks on its bridge) whose links all take BIG TCP segments.
//!
//! Everything is named from the state dir, so instances never collide, and all of it
//! dies with the namespaces under `DIR/netns`, which `weft down` removes.

use anyhow::{Context, Result};
use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use weft_kernel::{sysctl, Handle, Netns, Route, VethSpec, BIG_TCP_SIZE};

/// The plan: names and addresses, pure.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub netns_dir: PathBuf,
    /// The host side's veth, unique per state dir.
    pub host_link: String,
    pub host_ip: Ipv4Addr,
    pub underlay: Ipv4Net,
    pub mtu: u32,
    pub nodes: Vec<NodePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    pub name: String,
    pub ip: Ipv4Addr,
    pub netns: PathBuf,
    /// The node's port on the underlay bridge.
    pub port: String,
}

/// The underlay bridge, inside the underlay netns.
const BRIDGE: &str = "ul0";
/// The peer of the host side's veth, inside the underlay netns.
const HOST_PORT: &str = "host";

impl Topology {
    pub fn plan(state_dir: &Path, underlay: Ipv4Net, nodes: u32, mtu: u32) -> Result<Topology> {
        let hosts = underlay.hosts().count() as u32;
        anyhow::ensure!(hosts > nodes, "--underlay-cidr {underlay} has room for {} nodes, not {nodes}: pick a larger range", hosts.saturating_sub(1));
        let base = u32::from(underlay.network());
        let netns_dir = state_dir.join("netns");
        Ok(Topology {
            host_link: format!("wft{}", instance_id(state_dir)),
            host_ip: Ipv4Addr::from(base + 1),
            underlay,
            mtu,
            nodes: (1..=nodes)
                .map(|i| NodePlan { name: crate::up::node_name(i), ip: Ipv4Addr::from(base + 1 + i), netns: netns_dir.join(format!("node-{i}")), port: format!("n{i}") })
                .collect(),
            netns_dir,
        })
    }

    fn underlay_ns(&self) -> PathBuf {
        self.netns_dir.join("underlay")
    }

    /// Makes (or, after a restart, finds) the underlay and every node. Idempotent.
    pub async fn apply(&self) -> Result<()> {
        std::fs::create_dir_all(&self.netns_dir).with_context(|| format!("creating {}", self.netns_dir.display()))?;
        let ul = open_or_create(&self.underlay_ns())?;
        let ulh = Handle::open(&ul)?;
        up_loopback(&ulh).await?;
        if ulh.link_by_name(BRIDGE).await?.is_none() {
            ulh.create_bridge(BRIDGE, None, Some(self.mtu), false).await?;
        }
        let bridge = ulh.link(BRIDGE).await?;
        ulh.set_link_up(bridge.index).await?;

        // The host side: its veth, address and nothing else (no route beyond the subnet).
        let host = Handle::current()?;
        if host.link_by_name(&self.host_link).await?.is_none() || ulh.link_by_name(HOST_PORT).await?.is_none() {
            let _ = host.delete_link_by_name(&self.host_link).await;
            let _ = ulh.delete_link_by_name(HOST_PORT).await;
            host.create_veth(&VethSpec { name: &self.host_link, peer_name: HOST_PORT, peer_ns: Some(&ul), mtu: Some(self.mtu), master: None, up: true, gso_max_size: Some(BIG_TCP_SIZE) }).await?;
        }
        let hl = host.link(&self.host_link).await?;
        host.set_link_up(hl.index).await?;
        host.ensure_address(hl.index, IpNet::new(IpAddr::V4(self.host_ip), self.underlay.prefix_len())?).await?;
        let hp = ulh.link(HOST_PORT).await?;
        ulh.set_link_master(hp.index, Some(bridge.index)).await?;
        ulh.set_link_up(hp.index).await?;

        for n in &self.nodes {
            self.apply_node(n, &ul, &ulh, bridge.index).await.with_context(|| format!("setting up {}", n.name))?;
        }
        // The underlay takes BIG TCP segments end to end (every veth is made with
        // them); the bridge can take them only once it has ports. Pods use them
        // with the `direct` backend (`Backend::pod_gso_max_size`).
        if ulh.link(BRIDGE).await?.gso_size() < BIG_TCP_SIZE && !ulh.set_gso_max_size(bridge.index, BIG_TCP_SIZE).await? {
            tracing::warn!("the kernel refuses BIG TCP on the underlay bridge: pods keep 64 KiB segments");
        }
        Ok(())
    }

    async fn apply_node(&self, n: &NodePlan, ul: &Netns, ulh: &Handle, bridge: u32) -> Result<()> {
        let _ = ul;
        let ns = open_or_create(&n.netns)?;
        let h = Handle::open(&ns)?;
        up_loopback(&h).await?;
        if h.link_by_name("eth0").await?.is_none() || ulh.link_by_name(&n.port).await?.is_none() {
            let _ = h.delete_link_by_name("eth0").await;
            let _ = ulh.delete_link_by_name(&n.port).await;
            ulh.create_veth(&VethSpec { name: &n.port, peer_name: "eth0", peer_ns: Some(&ns), mtu: Some(self.mtu), master: Some(bridge), up: true, gso_max_size: Some(BIG_TCP_SIZE) }).await?;
        }
        let port = ulh.link(&n.port).await?;
        ulh.set_link_master(port.index, Some(bridge)).await?;
        ulh.set_link_up(port.index).await?;
        let eth0 = h.link("eth0").await?;
        h.set_link_up(eth0.index).await?;
        h.ensure_address(eth0.index, IpNet::new(IpAddr::V4(n.ip), self.underlay.prefix_len())?).await?;
        // Out of the cluster goes through the host side, as a node's default gateway.
        let default = Route::via("0.0.0.0/0".parse().unwrap(), IpAddr::V4(self.host_ip));
        h.replace_route(&default).await?;
        sysctl::enable_ip_forward(Some(&ns))?;
        sysctl::enable_ipv6_forwarding(Some(&ns))?;
        Ok(())
    }

    /// Removes every namespace (and with them every link) under the state dir.
    pub fn teardown(netns_dir: &Path) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(netns_dir) else { return Ok(()) };
        for e in entries.flatten() {
            Netns::remove(&e.path()).with_context(|| format!("removing netns {}", e.path().display()))?;
        }
        let _ = std::fs::remove_dir(netns_dir);
        Ok(())
    }
}

/// Deletes the host side's veth of the instance on `state_dir`, if it is there.
pub fn remove_host_link(state_dir: &Path) -> Result<()> {
    let name = format!("wft{}", instance_id(state_dir));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let h = Handle::current()?;
        h.delete_link_by_name(&name).await?;
        Ok::<_, anyhow::Error>(())
    })
}

fn open_or_create(path: &Path) -> Result<Netns> {
    if path.exists() {
        if let Ok(ns) = Netns::open(path) {
            return Ok(ns);
        }
        // A file left without its mount (the machine rebooted): start afresh.
        let _ = std::fs::remove_file(path);
    }
    Ok(Netns::create(path)?)
}

async fn up_loopback(h: &Handle) -> Result<()> {
    let lo = h.link("lo").await?;
    h.set_link_up(lo.index).await?;
    Ok(())
}

/// Six hex digits from the state dir's canonical path: the instance's mark on the one
/// kernel object that lives outside its namespaces.
pub fn instance_id(state_dir: &Path) -> String {
    let p = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    // FNV-1a: stable across Rust versions, unlike DefaultHasher.
    let mut h: u32 = 0x811c9dc5;
    for b in p.as_os_str().as_encoded_bytes() {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    format!("{:06x}", h & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_consecutive_addresses_after_the_host_side() {
        let t = Topology::plan(Path::new("/tmp/x"), "10.99.0.0/24".parse().unwrap(), 3, 1500).unwrap();
        assert_eq!(t.host_ip, Ipv4Addr::new(10, 99, 0, 1));
        let ips: Vec<_> = t.nodes.iter().map(|n| n.ip.to_string()).collect();
        assert_eq!(ips, ["10.99.0.2", "10.99.0.3", "10.99.0.4"]);
        assert_eq!(t.nodes[1].name, "node-2");
        assert!(t.host_link.len() <= 15 && t.host_link.starts_with("wft"));
    }

    #[test]
    fn too_small_an_underlay_is_refused_with_the_flag_named() {
        let e = Topology::plan(Path::new("/tmp/x"), "10.99.0.0/30".parse().unwrap(), 3, 1500).unwrap_err();
        assert!(e.to_string().contains("--underlay-cidr"), "{e}");
    }

    #[test]
    fn instances_on_different_dirs_get_different_host_links() {
        assert_ne!(instance_id(Path::new("/tmp/a")), instance_id(Path::new("/tmp/b")));
    }
}
