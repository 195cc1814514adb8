//! VXLAN devices for the overlay between nodes.

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::link::Mac;
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
