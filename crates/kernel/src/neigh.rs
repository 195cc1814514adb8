//! Neighbour (ARP/NDP) entries and bridge FDB entries, which the VXLAN overlay
//! programs statically instead of learning them.

use crate::addr::family;
use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::link::Mac;
use futures::TryStreamExt;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::AddressFamily;
use std::net::IpAddr;

/// A forwarding entry on a VXLAN (or bridge) device: frames for `mac` go to
/// the remote tunnel endpoint `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub index: u32,
    pub mac: Mac,
    pub dst: Option<IpAddr>,
}

/// A neighbour (ARP/NDP) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub index: u32,
    pub ip: IpAddr,
    /// None for an entry still being resolved (or failed).
    pub mac: Option<Mac>,
    /// NUD_PERMANENT: set by hand or by weft, never aged out.
    pub permanent: bool,
}

fn neigh_addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

impl Handle {
    /// A permanent neighbour entry: `ip` is at `mac` on link `index`.
    pub async fn add_neighbour(&self, index: u32, ip: IpAddr, mac: Mac, replace: bool) -> Result<()> {
        let mut req = self
            .nl()
            .neighbours()
            .add(index, ip)
            .link_layer_address(&mac.0)
            .state(NeighbourState::Permanent);
        if replace {
            req = req.replace();
        }
        req.execute()
            .await
            .map_err(|e| Error::from_nl("add", format!("neighbour {ip} ({mac}) on link #{index}"), e))
    }

    pub async fn del_neighbour(&self, index: u32, ip: IpAddr) -> Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = family(ip);
        m.header.ifindex = index;
        m.attributes.push(NeighbourAttribute::Destination(neigh_addr(ip)));
        self.nl()
            .neighbours()
            .del(m)
            .execute()
            .await
            .map_err(|e| Error::from_nl("delete", format!("neighbour {ip} on link #{index}"), e))
    }

    /// IPv4 and IPv6 neighbour entries, of link `index` only if given.
    pub async fn neighbours(&self, index: Option<u32>) -> Result<Vec<Neighbour>> {
        let mut out = Vec::new();
        // One dump per family: an AF_UNSPEC dump would also return bridge FDB entries.
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let msgs: Vec<NeighbourMessage> = self
                .nl()
                .neighbours()
                .get()
                .set_address_family(fam)
                .execute()
                .try_collect()
                .await
                .map_err(|e| Error::from_nl("list", "neighbours", e))?;
            for m in msgs.iter().filter(|m| index.is_none_or(|i| m.header.ifindex == i)) {
                let mut ip = None;
                let mut mac = None;
                for a in &m.attributes {
                    match a {
                        NeighbourAttribute::Destination(d) => ip = ip_of(d),
                        NeighbourAttribute::LinkLayerAddress(l) => mac = mac_of(l),
                        _ => {}
                    }
                }
                if let Some(ip) = ip {
                    out.push(Neighbour {
                        index: m.header.ifindex,
                        ip,
                        mac,
                        permanent: m.header.state == NeighbourState::Permanent,
                    });
                }
            }
        }
        Ok(out)
    }

    /// A permanent FDB entry on the device itself (NTF_SELF), as `bridge fdb
    /// add <mac> dev <vxlan> dst <ip> self permanent` would make.
    pub async fn add_fdb(&self, entry: &FdbEntry, replace: bool) -> Result<()> {
        let mut req = self
            .nl()
            .neighbours()
            .add_bridge(entry.index, &entry.mac.0)
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent);
        if let Some(dst) = entry.dst {
            req = req.destination(dst);
        }
        if replace {
            req = req.replace();
        }
        req.execute()
            .await
            .map_err(|e| Error::from_nl("add", describe_fdb(entry), e))
    }

    pub async fn del_fdb(&self, entry: &FdbEntry) -> Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = entry.index;
        m.header.flags = NeighbourFlags::Own;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(entry.mac.0.to_vec()));
        if let Some(dst) = entry.dst {
            m.attributes.push(NeighbourAttribute::Destination(neigh_addr(dst)));
        }
        self.nl()
            .neighbours()
            .del(m)
            .execute()
            .await
            .map_err(|e| Error::from_nl("delete", describe_fdb(entry), e))
    }

    /// FDB entries of one device.
    pub async fn fdb(&self, index: u32) -> Result<Vec<FdbEntry>> {
        let msgs: Vec<NeighbourMessage> = self
            .nl()
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_nl("list", "fdb entries", e))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.ifindex == index)
            .filter_map(|m| {
                let mut mac = None;
                let mut dst = None;
                for a in &m.attributes {
                    match a {
                        NeighbourAttribute::LinkLayerAddress(l) => mac = mac_of(l),
                        NeighbourAttribute::Destination(d) => dst = ip_of(d),
                        _ => {}
                    }
                }
                Some(FdbEntry {
                    index,
                    mac: mac?,
                    dst,
                })
            })
            .collect())
    }
}

fn mac_of(l: &[u8]) -> Option<Mac> {
    Some(Mac(<[u8; 6]>::try_from(l).ok()?))
}

/// AF_BRIDGE dumps carry NDA_DST as raw bytes; the length tells the family.
fn ip_of(d: &NeighbourAddress) -> Option<IpAddr> {
    match d {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(*a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        NeighbourAddress::Other(b) => match b.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(b.as_slice()).ok()?)),
            16 => Some(IpAddr::from(<[u8; 16]>::try_from(b.as_slice()).ok()?)),
            _ => None,
        },
        _ => None,
    }
}

fn describe_fdb(e: &FdbEntry) -> String {
    match e.dst {
        Some(dst) => format!("fdb entry {} dst {dst} on link #{}", e.mac, e.index),
        None => format!("fdb entry {} on link #{}", e.mac, e.index),
    }
}
