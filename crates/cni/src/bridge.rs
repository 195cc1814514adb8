//! The node side: a handle into the node's netns and its bridge, made on
//! first use with the gateway address(es), up, forwarding on.

use crate::config::NetConfig;
use crate::error::{code, CniError};
use crate::ipam::{pools, Pool};
use crate::names;
use std::path::Path;
use weft_kernel::{sysctl, Handle, Link, Netns};

/// The netns that holds the bridge, and a connection into it.
pub struct Node {
    /// `None`: the calling thread's netns.
    pub ns: Option<Netns>,
    pub handle: Handle,
}

impl Node {
    pub fn open(host_netns: Option<&Path>) -> Result<Node, CniError> {
        match host_netns {
            None => Ok(Node {
                ns: None,
                handle: Handle::current()?,
            }),
            Some(p) => {
                let ns = Netns::open(p).map_err(|e| {
                    CniError::new(code::INVALID_CONFIG, format!("cannot use the node netns: {e}"))
                })?;
                let handle = Handle::open(&ns)?;
                Ok(Node { ns: Some(ns), handle })
            }
        }
    }
}

/// Returns the bridge, creating and configuring it if needed. Safe against
/// concurrent ADDs: whoever loses the create race just uses the winner's.
pub async fn ensure(node: &Node, conf: &NetConfig) -> Result<Link, CniError> {
    let h = &node.handle;
    let pools = pools(conf);
    let mut created = false;
    let bridge = match h.link_by_name(&conf.bridge).await? {
        Some(b) => b,
        None => {
            let gw = pools.first().map(|p| p.gateway().to_string()).unwrap_or_default();
            let mac = names::bridge_mac(&conf.name, &conf.bridge, &gw);
            match h.create_bridge(&conf.bridge, Some(mac), Some(conf.mtu), true).await {
                Ok(()) => created = true,
                Err(e) if e.is_exists() => {}
                Err(e) => return Err(e.into()),
            }
            h.link(&conf.bridge).await?
        }
    };
    if bridge.kind.as_deref() != Some("bridge") {
        return Err(CniError::invalid_config(format!(
            "bridge {:?} exists but is a {} device, not a bridge: pick another \"bridge\" name",
            conf.bridge,
            bridge.kind.as_deref().unwrap_or("plain")
        )));
    }
    // Checked on every ADD so a half-made bridge (a crashed ADD) heals; a
    // read, so the common case takes no write lock in the kernel.
    let have: Vec<_> = h.addresses(Some(bridge.index)).await?.into_iter().map(|a| a.net).collect();
    for p in &pools {
        if !have.contains(&p.gateway_net()) {
            h.ensure_address(bridge.index, p.gateway_net()).await?;
        }
    }
    if !bridge.up {
        h.set_link_up(bridge.index).await?;
    }
    if created {
        enable_forwarding(node, &pools)?;
    }
    Ok(bridge)
}

fn enable_forwarding(node: &Node, pools: &[Pool]) -> Result<(), CniError> {
    let ns = node.ns.as_ref();
    if pools.iter().any(|p| !p.is_v6()) {
        sysctl::enable_ip_forward(ns)?;
    }
    if pools.iter().any(|p| p.is_v6()) {
        sysctl::enable_ipv6_forwarding(ns)?;
    }
    Ok(())
}
