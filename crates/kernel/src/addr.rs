//! IPv4 and IPv6 interface addresses.

use crate::error::{Error, Result};
use crate::handle::Handle;
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::AddressFamily;
use std::net::IpAddr;

/// An address on an interface, with its prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub net: IpNet,
    /// IPv6 duplicate address detection has not finished: the address is not
    /// usable yet.
    pub tentative: bool,
}

impl Handle {
    /// Adds `net` (address and prefix) to a link. IPv6 addresses skip duplicate
    /// address detection (IFA_F_NODAD): weft's IPAM already guarantees
    /// uniqueness, and DAD would hold the address "tentative" for ~2 s.
    /// Fails with `Exists` if it is already there.
    pub async fn add_address(&self, index: u32, net: IpNet) -> Result<()> {
        self.add_addr(index, net, false).await
    }

    /// Like [`Handle::add_address`], but succeeds if it is already there.
    pub async fn ensure_address(&self, index: u32, net: IpNet) -> Result<()> {
        self.add_addr(index, net, true).await
    }

    async fn add_addr(&self, index: u32, net: IpNet, replace: bool) -> Result<()> {
        let mut req = self.nl().address().add(index, net.addr(), net.prefix_len());
        if net.addr().is_ipv6() {
            let m = req.message_mut();
            m.header.flags |= AddressHeaderFlags::Nodad;
            m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        if replace {
            req = req.replace();
        }
        req.execute()
            .await
            .map_err(|e| Error::from_nl("add", format!("address {net} on link #{index}"), e))
    }

    /// Removes `net` from a link.
    pub async fn del_address(&self, index: u32, net: IpNet) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = family(net.addr());
        msg.header.prefix_len = net.prefix_len();
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(net.addr()));
        msg.attributes.push(AddressAttribute::Address(net.addr()));
        self.nl()
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(|e| Error::from_nl("delete", format!("address {net} on link #{index}"), e))
    }

    /// Addresses in this netns, of one link or of all.
    pub async fn addresses(&self, index: Option<u32>) -> Result<Vec<Address>> {
        let mut req = self.nl().address().get();
        if let Some(i) = index {
            req = req.set_link_index_filter(i);
        }
        let msgs: Vec<AddressMessage> = req
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_nl("list", "addresses", e))?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the
                // peer on point-to-point links); IPv6 only sends IFA_ADDRESS.
                let ip = m
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        AddressAttribute::Local(ip) => Some(*ip),
                        _ => None,
                    })
                    .or_else(|| {
                        m.attributes.iter().find_map(|a| match a {
                            AddressAttribute::Address(ip) => Some(*ip),
                            _ => None,
                        })
                    })?;
                let net = IpNet::new(ip, m.header.prefix_len).ok()?;
                let tentative = m.header.flags.contains(AddressHeaderFlags::Tentative)
                    || m.attributes.iter().any(|a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Tentative)));
                Some(Address {
                    index: m.header.index,
                    net,
                    tentative,
                })
            })
            .collect())
    }
}

pub(crate) fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}
