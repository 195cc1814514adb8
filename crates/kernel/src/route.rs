//! Unicast routes: add, replace, delete, list.

use crate::addr::family;
use crate::error::{Error, Result};
use crate::handle::Handle;
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::AddressFamily;
use std::fmt;
use std::net::IpAddr;

/// The main routing table.
pub const MAIN_TABLE: u32 = RouteHeader::RT_TABLE_MAIN as u32;

/// A unicast route. `Route::via(dst, gw)` and `Route::dev(dst, index)` cover
/// the usual shapes; set the other fields as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    pub table: u32,
    /// Treat the gateway as on-link even if no address covers it (overlays).
    pub onlink: bool,
    pub metric: Option<u32>,
}

impl Route {
    pub fn via(dst: IpNet, gateway: IpAddr) -> Route {
        Route {
            dst,
            gateway: Some(gateway),
            oif: None,
            table: MAIN_TABLE,
            onlink: false,
            metric: None,
        }
    }

    pub fn dev(dst: IpNet, oif: u32) -> Route {
        Route {
            dst,
            gateway: None,
            oif: Some(oif),
            table: MAIN_TABLE,
            onlink: false,
            metric: None,
        }
    }

    pub fn with_oif(mut self, oif: u32) -> Route {
        self.oif = Some(oif);
        self
    }

    pub fn onlink(mut self) -> Route {
        self.onlink = true;
        self
    }

    pub fn in_table(mut self, table: u32) -> Route {
        self.table = table;
        self
    }

    fn message(&self) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family(self.dst.addr());
        m.header.destination_prefix_length = self.dst.prefix_len();
        m.header.protocol = RouteProtocol::Static;
        m.header.kind = RouteType::Unicast;
        m.header.scope = if self.gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if self.table > 255 {
            m.header.table = RouteHeader::RT_TABLE_UNSPEC;
            m.attributes.push(RouteAttribute::Table(self.table));
        } else {
            m.header.table = self.table as u8;
        }
        if self.onlink {
            m.header.flags |= RouteFlags::Onlink;
        }
        if self.dst.prefix_len() > 0 {
            m.attributes
                .push(RouteAttribute::Destination(self.dst.network().into()));
        }
        if let Some(gw) = self.gateway {
            m.attributes.push(RouteAttribute::Gateway(gw.into()));
        }
        if let Some(oif) = self.oif {
            m.attributes.push(RouteAttribute::Oif(oif));
        }
        if let Some(metric) = self.metric {
            m.attributes.push(RouteAttribute::Priority(metric));
        }
        m
    }

    fn from_message(m: &RouteMessage) -> Option<Route> {
        if m.header.kind != RouteType::Unicast {
            return None;
        }
        let mut dst_ip = None;
        let mut r = Route {
            dst: IpNet::default(),
            gateway: None,
            oif: None,
            table: m.header.table as u32,
            onlink: m.header.flags.contains(RouteFlags::Onlink),
            metric: None,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(d) => dst_ip = ip_of(d),
                RouteAttribute::Gateway(g) => r.gateway = ip_of(g),
                RouteAttribute::Oif(o) => r.oif = Some(*o),
                RouteAttribute::Table(t) => r.table = *t,
                RouteAttribute::Priority(p) => r.metric = Some(*p),
                _ => {}
            }
        }
        let dst_ip = dst_ip.unwrap_or(match m.header.address_family {
            AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        });
        r.dst = IpNet::new(dst_ip, m.header.destination_prefix_length).ok()?;
        Some(r)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route {}", self.dst)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(oif) = self.oif {
            write!(f, " dev #{oif}")?;
        }
        if self.table != MAIN_TABLE {
            write!(f, " table {}", self.table)?;
        }
        Ok(())
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl Handle {
    /// Adds a route; fails with `Exists` if an equal one is there.
    pub async fn add_route(&self, route: &Route) -> Result<()> {
        self.nl()
            .route()
            .add(route.message())
            .execute()
            .await
            .map_err(|e| Error::from_nl("add", route.to_string(), e))
    }

    /// Adds a route or replaces the one with the same destination and table.
    pub async fn replace_route(&self, route: &Route) -> Result<()> {
        self.nl()
            .route()
            .add(route.message())
            .replace()
            .execute()
            .await
            .map_err(|e| Error::from_nl("replace", route.to_string(), e))
    }

    pub async fn del_route(&self, route: &Route) -> Result<()> {
        self.nl()
            .route()
            .del(route.message())
            .execute()
            .await
            .map_err(|e| Error::from_nl("delete", route.to_string(), e))
    }

    /// Unicast routes of one family (`v6`), in `table` (all tables if `None`).
    pub async fn routes(&self, v6: bool, table: Option<u32>) -> Result<Vec<Route>> {
        let mut m = RouteMessage::default();
        m.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let msgs: Vec<RouteMessage> = self
            .nl()
            .route()
            .get(m)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_nl("list", "routes", e))?;
        Ok(msgs
            .iter()
            .filter_map(Route::from_message)
            .filter(|r| table.is_none_or(|t| r.table == t))
            .collect())
    }
}
