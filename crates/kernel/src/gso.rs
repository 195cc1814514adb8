//! GSO/GRO size limits: BIG TCP.
//!
//! A TCP sender builds segments as large as the GSO limit of the device its route
//! leaves by (64 KiB by default). Every hop after that (veth, bridge, routing,
//! netfilter, conntrack) costs about the same per segment whatever its size, so
//! raising the limit along a whole path to 256 KiB cuts that per-byte work fourfold.
//! The limit must hold on *every* device the segment is sent through: a device
//! with a smaller one makes the kernel cut the segment in software into MTU-sized
//! packets, which is far slower than never raising it. Tunnels cannot carry such
//! segments either (their outer UDP length field is 16 bits).

use crate::error::{Error, Result};
use crate::handle::Handle;
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::LinkUnspec;

/// The GSO/GRO size weft gives the devices of a path that allows BIG TCP: veth
/// and bridges take up to 512 KiB; a quarter of a megabyte already cuts the
/// per-segment work fourfold.
pub const BIG_TCP_SIZE: u32 = 256 * 1024;

/// IFLA_GSO_MAX_SIZE, IFLA_GRO_MAX_SIZE and their IPv4 forms (IPv4 BIG TCP,
/// Linux 6.3; older kernels ignore those two).
pub(crate) fn gso_attrs(size: u32) -> [LinkAttribute; 4] {
    [
        LinkAttribute::GsoMaxSize(size),
        LinkAttribute::GroMaxSize(size),
        LinkAttribute::GsoIpv4MaxSize(size),
        LinkAttribute::GroIpv4MaxSize(size),
    ]
}

impl Handle {
    /// Sets a link's GSO and GRO size limits, IPv4 and IPv6. `Ok(false)` when the
    /// kernel refuses the size (EINVAL: above the link's TSO limit, such as a
    /// bridge without ports, or a kernel before 5.19).
    pub async fn set_gso_max_size(&self, index: u32, size: u32) -> Result<bool> {
        let mut msg = LinkUnspec::new_with_index(index).build();
        msg.attributes.extend(gso_attrs(size));
        match self.nl().link().set(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e) => {
                let e = Error::from_nl("set GSO/GRO size of", format!("link #{index}"), e);
                if e.errno() == Some(nix::libc::EINVAL) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}
