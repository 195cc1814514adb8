//! Network interfaces: look up, list, set up/down, MTU, master, MAC, delete.

use crate::error::{Error, Result};
use crate::handle::Handle;
use futures::TryStreamExt;
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::LinkUnspec;
use std::fmt;
use std::net::Ipv6Addr;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl Mac {
    /// The IPv6 link-local address the kernel would derive from this MAC
    /// (modified EUI-64, RFC 4291 appendix A): fe80::, then the MAC with the
    /// universal/local bit flipped and ff:fe in the middle.
    pub fn ipv6_link_local(&self) -> Ipv6Addr {
        let m = self.0;
        let mut a = [0u8; 16];
        a[0] = 0xfe;
        a[1] = 0x80;
        a[8..16].copy_from_slice(&[m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]);
        Ipv6Addr::from(a)
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Mac, String> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in out.iter_mut() {
            let p = parts.next().ok_or_else(|| format!("bad MAC address {s:?}"))?;
            *b = u8::from_str_radix(p, 16).map_err(|_| format!("bad MAC address {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("bad MAC address {s:?}"));
        }
        Ok(Mac(out))
    }
}

/// What weft needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// "veth", "bridge", "vxlan", ... (None for e.g. loopback).
    pub kind: Option<String>,
    pub mtu: u32,
    pub mac: Option<Mac>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Index of the bridge (or other master) this is a port of.
    pub master: Option<u32>,
    /// Bridge port hairpin mode, when this is a bridge port.
    pub hairpin: Option<bool>,
    /// The largest GSO segment the kernel sends through it (IFLA_GSO_MAX_SIZE),
    /// and for IPv4 (IFLA_GSO_IPV4_MAX_SIZE; `None` before Linux 6.3).
    pub gso_max_size: u32,
    pub gso_ipv4_max_size: Option<u32>,
}

impl Link {
    /// The GSO size that holds for both IPv4 and IPv6 segments (before Linux
    /// 6.3, IPv4 segments never exceed 64 KiB).
    pub fn gso_size(&self) -> u32 {
        self.gso_ipv4_max_size.unwrap_or(65536).min(self.gso_max_size)
    }

    pub(crate) fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mtu: 0,
            mac: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            master: None,
            hairpin: None,
            gso_max_size: 0,
            gso_ipv4_max_size: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::GsoMaxSize(s) => link.gso_max_size = *s,
                LinkAttribute::GsoIpv4MaxSize(s) => link.gso_ipv4_max_size = Some(*s),
                LinkAttribute::Address(a) if a.len() == 6 => {
                    let mut m = [0u8; 6];
                    m.copy_from_slice(a);
                    link.mac = Some(Mac(m));
                }
                LinkAttribute::Controller(c) if *c != 0 => link.master = Some(*c),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                            LinkInfo::PortData(data) => {
                                link.hairpin = crate::bridge::hairpin_of(data).or(link.hairpin)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE = none } }.
pub(crate) fn ipv6_addr_gen_none() -> LinkAttribute {
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)])])
}

fn describe(index: u32) -> String {
    format!("link #{index}")
}

/// A lookup's answer: the link, `None` when the kernel says there is none.
fn found(got: std::result::Result<Option<LinkMessage>, rtnetlink::Error>, object: impl FnOnce() -> String) -> Result<Option<Link>> {
    match got {
        Ok(msg) => Ok(msg.as_ref().map(Link::from_message)),
        Err(e) => {
            let e = Error::from_nl("get", object(), e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

impl Handle {
    /// The link named `name`, or `None` if there is none in this netns.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        let got = self
            .nl()
            .link()
            .get()
            .match_name(name)
            .execute()
            .try_next()
            .await;
        found(got, || format!("link {name}"))
    }

    /// The link with index `index`, or `None`.
    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let got = self
            .nl()
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_next()
            .await;
        found(got, || describe(index))
    }

    /// Like [`Handle::link_by_name`], but a missing link is an error.
    pub async fn link(&self, name: &str) -> Result<Link> {
        self.link_by_name(name).await?.ok_or_else(|| {
            Error::new(
                "find",
                format!("link {name}"),
                std::io::Error::from_raw_os_error(nix::libc::ENODEV),
            )
        })
    }

    /// All links in this netns.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let msgs: Vec<LinkMessage> = self
            .nl()
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_nl("list", "links", e))?;
        Ok(msgs.iter().map(Link::from_message).collect())
    }

    pub async fn set_link_up(&self, index: u32) -> Result<()> {
        self.set(index, "set up", LinkUnspec::new_with_index(index).up().build()).await
    }

    /// Brings up the link named `name` (one request, no lookup first).
    pub async fn set_link_up_by_name(&self, name: &str) -> Result<()> {
        self.nl()
            .link()
            .set(LinkUnspec::new_with_name(name).up().build())
            .execute()
            .await
            .map_err(|e| Error::from_nl("set up", format!("link {name}"), e))
    }

    pub async fn set_link_down(&self, index: u32) -> Result<()> {
        self.set(index, "set down", LinkUnspec::new_with_index(index).down().build()).await
    }

    pub async fn set_link_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        self.set(index, "set MTU of", LinkUnspec::new_with_index(index).mtu(mtu).build()).await
    }

    pub async fn set_link_mac(&self, index: u32, mac: Mac) -> Result<()> {
        self.set(index, "set MAC of", LinkUnspec::new_with_index(index).address(mac.0.to_vec()).build())
            .await
    }

    /// Stops the kernel from making IPv6 addresses for this link by itself
    /// (IFLA_INET6_ADDR_GEN_MODE none): no automatic link-local address, so none of
    /// the duplicate address detection, MLD reports and router solicitations that
    /// come with one. It covers what is generated from now on, so call it before
    /// the link first has carrier. `Ok(false)` when the kernel has no IPv6.
    pub async fn set_ipv6_addr_gen_none(&self, index: u32) -> Result<bool> {
        let mut msg = LinkUnspec::new_with_index(index).build();
        msg.attributes.push(ipv6_addr_gen_none());
        match self.set(index, "turn IPv6 address generation off on", msg).await {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(nix::libc::EAFNOSUPPORT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Makes `index` a port of `master` (a bridge), or detaches it with `None`.
    pub async fn set_link_master(&self, index: u32, master: Option<u32>) -> Result<()> {
        let b = LinkUnspec::new_with_index(index);
        let b = match master {
            Some(m) => b.controller(m),
            None => b.nocontroller(),
        };
        self.set(index, "set master of", b.build()).await
    }

    async fn set(&self, index: u32, op: &'static str, msg: LinkMessage) -> Result<()> {
        self.nl()
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| Error::from_nl(op, describe(index), e))
    }

    /// Deletes a link (for a veth, both ends go).
    pub async fn delete_link(&self, index: u32) -> Result<()> {
        self.nl()
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| Error::from_nl("delete", describe(index), e))
    }

    /// Deletes the link named `name`; `Ok(false)` if there was none.
    pub async fn delete_link_by_name(&self, name: &str) -> Result<bool> {
        let Some(link) = self.link_by_name(name).await? else {
            return Ok(false);
        };
        match self.delete_link(link.index).await {
            Ok(()) => Ok(true),
            // Raced with another delete (e.g. the peer's netns went away).
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_is_the_modified_eui64_of_the_mac() {
        let mac: Mac = "02:42:ac:11:00:02".parse().unwrap();
        assert_eq!(mac.ipv6_link_local(), "fe80::42:acff:fe11:2".parse::<Ipv6Addr>().unwrap());
        let mac: Mac = "52:54:00:12:34:56".parse().unwrap();
        assert_eq!(mac.ipv6_link_local(), "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap());
    }
}
