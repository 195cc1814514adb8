//! VXLAN devices for the overlay between nodes.

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::link::{Link, Mac};
use futures::TryStreamExt;
use netlink_packet_route::link::{InfoData, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::LinkVxlan;
use std::net::IpAddr;

/// A VXLAN device. Learning is off by default: weft programs the FDB and
/// neighbour entries itself from the node list, as flannel does.
#[derive(Debug, Clone)]
pub struct VxlanSpec<'a> {
    pub name: &'a str,
    pub vni: u32,
    /// This node's underlay address (the tunnel source).
    pub local: IpAddr,
    /// UDP destination port (4789 is the IANA port; Linux defaults to 8472).
    pub port: u16,
    /// Underlay device index to bind to.
    pub underlay: Option<u32>,
    pub learning: bool,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub up: bool,
}

impl Handle {
    pub async fn create_vxlan(&self, spec: &VxlanSpec<'_>) -> Result<()> {
        let mut b = LinkVxlan::new(spec.name, spec.vni)
            .port(spec.port)
            .learning(spec.learning);
        b = match spec.local {
            IpAddr::V4(a) => b.local(a),
            IpAddr::V6(a) => b.local6(a),
        };
        if let Some(dev) = spec.underlay {
            b = b.dev(dev);
        }
        if let Some(mtu) = spec.mtu {
            b = b.mtu(mtu);
        }
        if let Some(mac) = spec.mac {
            b = b.address(mac.0.to_vec());
        }
        if spec.up {
            b = b.up();
        }
        self.nl()
            .link()
            .add(b.build())
            .execute()
            .await
            .map_err(|e| Error::from_nl("create", format!("vxlan {} (vni {})", spec.name, spec.vni), e))
    }
}

/// What a VXLAN device was made with, as the kernel reports it (`ip -d link`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VxlanInfo {
    pub vni: u32,
    pub local: Option<IpAddr>,
    pub port: u16,
    pub underlay: Option<u32>,
    pub learning: bool,
}

impl VxlanInfo {
    fn from_message(msg: &LinkMessage) -> Option<VxlanInfo> {
        let infos = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(i) => Some(i),
            _ => None,
        })?;
        let data = infos.iter().find_map(|i| match i {
            LinkInfo::Data(InfoData::Vxlan(d)) => Some(d),
            _ => None,
        })?;
        let mut v = VxlanInfo::default();
        for a in data {
            match a {
                InfoVxlan::Id(id) => v.vni = *id,
                InfoVxlan::Local(a) => v.local = Some(IpAddr::V4(*a)),
                InfoVxlan::Local6(a) => v.local = Some(IpAddr::V6(*a)),
                InfoVxlan::Port(p) => v.port = *p,
                InfoVxlan::Link(l) if *l != 0 => v.underlay = Some(*l),
                InfoVxlan::Learning(l) => v.learning = *l,
                _ => {}
            }
        }
        Some(v)
    }
}

impl Handle {
    /// The VXLAN device named `name` and its settings; `None` if there is no link by
    /// that name, `Some((link, None))` if the link is not a VXLAN device.
    pub async fn vxlan(&self, name: &str) -> Result<Option<(Link, Option<VxlanInfo>)>> {
        let got = self.nl().link().get().match_name(name).execute().try_next().await;
        match got {
            Ok(Some(msg)) => Ok(Some((Link::from_message(&msg), VxlanInfo::from_message(&msg)))),
            Ok(None) => Ok(None),
            Err(e) => {
                let e = Error::from_nl("get", format!("link {name}"), e);
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }
}
