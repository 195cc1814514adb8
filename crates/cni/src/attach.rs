//! ADD: give a pod its interface on the node bridge.
//!
//! Order: addresses first (so a second ADD is refused before touching the
//! kernel), then bridge, then one veth request that creates both ends (the
//! pod end directly in the pod netns, under its final name) and enslaves the
//! host end; then the host end's port setup (hairpin, no IPv6 link-local of
//! its own), then addresses and routes inside the pod. Any failure undoes what
//! was done.

use crate::bridge::{self, Node};
use crate::config::NetConfig;
use crate::error::{code, CniError};
use crate::ipam::{self, Lease};
use crate::names;
use crate::request::AttachRequest;
use crate::result::{CniResult, Interface, IpConfig, RouteConfig};
use ipnet::IpNet;
use weft_kernel::{Handle, Netns, Route, VethSpec};

pub async fn attach(req: &AttachRequest, conf: &NetConfig) -> Result<CniResult, CniError> {
    req.attachment.validate()?;
    let node = Node::open(req.host_netns.as_deref())?;
    attach_on(&node, req, conf).await
}

/// ADD through an open connection to the node netns (`req.host_netns` is not
/// looked at).
pub async fn attach_on(node: &Node, req: &AttachRequest, conf: &NetConfig) -> Result<CniResult, CniError> {
    req.attachment.validate()?;
    let netns_path = req.netns.as_deref().ok_or_else(|| {
        CniError::new(code::INVALID_ENV, "CNI_NETNS is required for ADD")
    })?;
    let pod_ns = open_pod_netns(netns_path)?;

    let leases = ipam::blocking(|| ipam::allocate(conf, &req.attachment))?;
    let host_veth = names::host_veth(&conf.name, &req.attachment.container_id, &req.attachment.ifname);
    match plumb(req, conf, node, &pod_ns, &host_veth, &leases).await {
        Ok(result) => Ok(result),
        Err(e) => {
            // Undo: the veth (both ends) and the addresses.
            let _ = node.handle.delete_link_by_name(&host_veth).await;
            let _ = ipam::blocking(|| ipam::release(conf, &req.attachment));
            Err(e)
        }
    }
}

/// Traffic routed into the bridge (from other nodes, or the node itself) is sent
/// through the bridge device, so it needs the pods' GSO size too. An empty bridge
/// refuses it (its TSO limit is 64 KiB until a port is added), so it is raised once
/// the first port is in; later ADDs find it done and send nothing.
async fn raise_bridge_gso(h: &weft_kernel::Handle, bridge: &weft_kernel::Link, size: u32) -> Result<(), CniError> {
    if bridge.gso_size() >= size {
        return Ok(());
    }
    if !h.set_gso_max_size(bridge.index, size).await? {
        tracing::warn!(bridge = %bridge.name, size, "the kernel refuses this GSO size on the bridge: segments routed to pods will be cut in software; lower or drop gsoMaxSize");
    }
    Ok(())
}

pub(crate) fn open_pod_netns(path: &std::path::Path) -> Result<Netns, CniError> {
    Netns::open(path).map_err(|e| {
        let c = if e.is_not_found() { code::UNKNOWN_CONTAINER } else { code::INVALID_ENV };
        CniError::new(c, format!("cannot use CNI_NETNS {}: {e}", path.display()))
    })
}

async fn plumb(
    req: &AttachRequest,
    conf: &NetConfig,
    node: &Node,
    pod_ns: &Netns,
    host_veth: &str,
    leases: &[Lease],
) -> Result<CniResult, CniError> {
    let bridge = bridge::ensure(node, conf).await?;
    let ifname = req.attachment.ifname.as_str();
    node.handle
        .create_veth(&VethSpec {
            name: host_veth,
            peer_name: ifname,
            peer_ns: Some(pod_ns),
            mtu: Some(conf.mtu),
            master: Some(bridge.index),
            up: true,
            gso_max_size: conf.gso_max_size,
        })
        .await
        .map_err(|e| {
            if e.is_exists() {
                CniError::new(
                    code::ALREADY_ATTACHED,
                    format!(
                        "interface {ifname} already exists in {} (or host veth {host_veth} exists): {e}",
                        pod_ns.path().map(|p| p.display().to_string()).unwrap_or_default()
                    ),
                )
            } else {
                e.into()
            }
        })?;

    // The host end gets carrier when the pod end comes up; set it up before that,
    // so it never makes an IPv6 link-local address (see setup_bridge_port).
    let h = &node.handle;
    let host_link = h.link(host_veth).await?;
    h.setup_bridge_port(host_link.index, conf.hairpin).await?;
    if let Some(size) = conf.gso_max_size {
        raise_bridge_gso(h, &bridge, size).await?;
    }
    let pod_link = configure_pod(pod_ns, ifname, conf.mtu, leases).await?;

    let sandbox = req
        .netns
        .as_ref()
        .map(|p| p.display().to_string());
    Ok(CniResult {
        interfaces: vec![
            Interface {
                name: host_link.name,
                mac: host_link.mac.map(|m| m.to_string()),
                sandbox: None,
                mtu: Some(host_link.mtu),
            },
            Interface {
                name: pod_link.name,
                mac: pod_link.mac.map(|m| m.to_string()),
                sandbox,
                mtu: Some(pod_link.mtu),
            },
        ],
        ips: leases
            .iter()
            .map(|l| IpConfig {
                address: l.address,
                gateway: Some(l.gateway),
                interface: Some(1),
            })
            .collect(),
        routes: leases
            .iter()
            .map(|l| RouteConfig {
                dst: default_route(l.address),
                gw: Some(l.gateway),
            })
            .collect(),
        dns: conf.dns.clone(),
    })
}

pub(crate) fn default_route(addr: IpNet) -> IpNet {
    match addr {
        IpNet::V4(_) => "0.0.0.0/0".parse().expect("valid"),
        IpNet::V6(_) => "::/0".parse().expect("valid"),
    }
}

/// Inside the pod: loopback up, addresses (IPv6 ones without duplicate address
/// detection, link-local included), eth0 up, default route(s) via the bridge
/// gateway(s).
///
/// The kernel's own link-local address would be tentative for a while and its
/// DAD probe would be flooded to every port of the bridge; instead address
/// generation is off and the same EUI-64 link-local address is added with
/// IFA_F_NODAD, all over netlink (no /proc write, no extra thread).
async fn configure_pod(
    pod_ns: &Netns,
    ifname: &str,
    mtu: u32,
    leases: &[Lease],
) -> Result<weft_kernel::Link, CniError> {
    let h = Handle::open(pod_ns)?;
    let mut link = h.link(ifname).await?;
    let ipv6 = h.set_ipv6_addr_gen_none(link.index).await?;
    h.set_link_up_by_name("lo").await?;
    let link_local = link.mac.filter(|_| ipv6).map(|m| IpNet::new(m.ipv6_link_local().into(), 64).expect("prefix fits"));
    for a in leases.iter().map(|l| l.address).chain(link_local) {
        h.add_address(link.index, a).await?;
    }
    h.set_link_up(link.index).await?;
    for l in leases {
        let r = Route::via(default_route(l.address), l.gateway).with_oif(link.index);
        h.add_route(&r).await?;
    }
    link.up = true;
    if link.mtu != mtu {
        h.set_link_mtu(link.index, mtu).await?;
        link.mtu = mtu;
    }
    Ok(link)
}
