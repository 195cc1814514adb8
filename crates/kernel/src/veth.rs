//! veth pairs, with the peer created directly inside another netns.
//!
//! Creating the peer in the target netns (IFLA_NET_NS_FD in the peer's
//! message) avoids a create-then-move, during which the peer would briefly
//! carry a temporary name in the host netns.

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::netns::Netns;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use std::os::fd::AsRawFd;

/// One veth pair to create, from the side of the netns the handle is in.
#[derive(Debug, Clone, Default)]
pub struct VethSpec<'a> {
    /// Name of the end in this netns.
    pub name: &'a str,
    /// Name of the other end (in `peer_ns`, or here).
    pub peer_name: &'a str,
    /// Where the other end goes; `None` keeps it here.
    pub peer_ns: Option<&'a Netns>,
    /// MTU of both ends.
    pub mtu: Option<u32>,
    /// Bridge to attach this end to.
    pub master: Option<u32>,
    /// Bring this end up. The peer stays down: asking for it to come up in
    /// the same request fails with ENOTCONN when it lands in another netns,
    /// so bring it up from a handle in that netns.
    pub up: bool,
    /// GSO/GRO size limit of both ends (BIG TCP, see [`crate::BIG_TCP_SIZE`]);
    /// `None` keeps the kernel's 64 KiB. A kernel that refuses it (before 5.19)
    /// gets the pair without it.
    pub gso_max_size: Option<u32>,
}

impl Handle {
    /// Creates the pair in one request. Fails with `Exists` if either name is
    /// taken in its netns.
    pub async fn create_veth(&self, spec: &VethSpec<'_>) -> Result<()> {
        match self.add_veth(spec, spec.gso_max_size).await {
            Err(e) if spec.gso_max_size.is_some() && e.errno() == Some(nix::libc::EINVAL) => {
                tracing::debug!(veth = spec.name, %e, "the kernel refuses the GSO size: making the pair without it");
                self.add_veth(spec, None).await
            }
            done => done,
        }
    }

    async fn add_veth(&self, spec: &VethSpec<'_>, gso: Option<u32>) -> Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes.push(LinkAttribute::IfName(spec.peer_name.to_string()));
        if let Some(mtu) = spec.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(ns) = spec.peer_ns {
            peer.attributes.push(LinkAttribute::NetNsFd(ns.as_fd_raw()));
        }
        if let Some(size) = gso {
            peer.attributes.extend(crate::gso::gso_attrs(size));
        }

        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(spec.name.to_string()));
        if let Some(mtu) = spec.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(master) = spec.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        if let Some(size) = gso {
            msg.attributes.extend(crate::gso::gso_attrs(size));
        }
        if spec.up {
            msg.header.flags |= LinkFlags::Up;
            msg.header.change_mask |= LinkFlags::Up;
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.nl().link().add(msg).execute().await.map_err(|e| {
            let where_ = spec.peer_ns.map(|n| format!(" in {}", n.describe())).unwrap_or_default();
            Error::from_nl(
                "create",
                format!("veth {} (peer {}{where_})", spec.name, spec.peer_name),
                e,
            )
        })
    }
}

impl Netns {
    pub(crate) fn as_fd_raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.as_fd().as_raw_fd()
    }
}
