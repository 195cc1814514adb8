//! Linux bridges and their ports' hairpin mode.

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::link::Mac;
use netlink_packet_route::link::{InfoBridgePort, InfoPortData, LinkMessage};
use rtnetlink::{LinkBridge, LinkBridgePort};

impl Handle {
    /// Creates a bridge, up. STP stays off, so ports forward at once.
    /// A fixed `mac` keeps the bridge's address from changing as ports come and
    /// go (by default it takes the lowest port MAC). With `netfilter`, IPv4 and
    /// IPv6 frames it bridges between its ports go through the inet netfilter
    /// hooks (IFLA_BR_NF_CALL_IPTABLES/IP6TABLES), whatever the netns's
    /// `bridge-nf-call-*` sysctls say: NetworkPolicy judges pods on one bridge
    /// there. Without, they never do (a plain switch), which saves every frame
    /// the hooks' work.
    pub async fn create_bridge(&self, name: &str, mac: Option<Mac>, mtu: Option<u32>, netfilter: bool) -> Result<()> {
        let mut b = LinkBridge::new(name).nf_call_iptables(netfilter).nf_call_ip6tables(netfilter);
        if let Some(mac) = mac {
            b = b.address(mac.0.to_vec());
        }
        if let Some(mtu) = mtu {
            b = b.mtu(mtu);
        }
        self.nl()
            .link()
            .add(b.build())
            .execute()
            .await
            .map_err(|e| Error::from_nl("create", format!("bridge {name}"), e))
    }

    /// Sets hairpin mode on a bridge port (IFLA_BRPORT_MODE), so a frame can
    /// leave through the port it came in on: needed for a pod to reach itself
    /// through a service address.
    pub async fn set_hairpin(&self, port_index: u32, on: bool) -> Result<()> {
        self.change_port(port_index, "set hairpin on", LinkBridgePort::new(port_index).hairpin(on).build()).await
    }

    async fn change_port(&self, port_index: u32, op: &'static str, msg: LinkMessage) -> Result<()> {
        self.nl()
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(|e| Error::from_nl(op, format!("bridge port #{port_index}"), e))
    }

    /// Sets up a new bridge port in one request: its hairpin mode (as
    /// [`Handle::set_hairpin`]) and no IPv6 address generation (as
    /// [`Handle::set_ipv6_addr_gen_none`]): a bridge port needs no address of its
    /// own, and a link-local one would cost a route in the node's table and DAD
    /// and MLD traffic. Call before the port first has carrier. Without IPv6 in
    /// the kernel, only the hairpin mode is set.
    pub async fn setup_bridge_port(&self, port_index: u32, hairpin: bool) -> Result<()> {
        let msg = |ipv6: bool| {
            let mut m = LinkBridgePort::new(port_index).hairpin(hairpin).build();
            if ipv6 {
                m.attributes.push(crate::link::ipv6_addr_gen_none());
            }
            m
        };
        match self.change_port(port_index, "set up", msg(true)).await {
            Err(e) if e.errno() == Some(nix::libc::EAFNOSUPPORT) => self.change_port(port_index, "set up", msg(false)).await,
            done => done,
        }
    }

    /// Whether hairpin mode is on for a bridge port; `None` if it is no port.
    pub async fn hairpin(&self, port_index: u32) -> Result<Option<bool>> {
        Ok(self.link_by_index(port_index).await?.and_then(|l| l.hairpin))
    }
}

pub(crate) fn hairpin_of(data: &InfoPortData) -> Option<bool> {
    match data {
        InfoPortData::BridgePort(attrs) => attrs.iter().find_map(|a| match a {
            InfoBridgePort::HairpinMode(on) => Some(*on),
            _ => None,
        }),
        _ => None,
    }
}
