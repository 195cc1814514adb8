//! A small ctnetlink client: list conntrack entries and delete the ones that
//! match, so the service proxy can drop stale UDP flows to an endpoint that
//! went away (UDP has no connection to reset).

use super::expr_decode::AttrTable;
use super::msg::{self, bad, nfnl_type, AttrWriter, Decoded};
use super::socket::NfSocket;
use super::sys as c;
use crate::error::{Error, ErrorKind, Result};
use crate::netns::Netns;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One direction of a flow. Ports are 0 for protocols without ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// A conntrack entry: the original and reply tuples of one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtEntry {
    /// IP protocol number (6 TCP, 17 UDP, ...).
    pub proto: u8,
    pub orig: CtTuple,
    pub reply: CtTuple,
    pub zone: u16,
    pub mark: u32,
    /// Status bits (see `ct_status`).
    pub status: u32,
}

/// Which entries [`Conntrack::delete_matching`] removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtFilter {
    pub proto: u8,
    /// Original destination address (the service or endpoint address).
    pub dst: IpAddr,
    /// Original destination port; `None` for any.
    pub dport: Option<u16>,
}

impl CtFilter {
    pub fn matches(&self, e: &CtEntry) -> bool {
        e.proto == self.proto && e.orig.dst == self.dst && self.dport.is_none_or(|p| p == e.orig.dport)
    }
}

/// A ctnetlink connection in one network namespace. Blocking, like [`super::Nft`].
pub struct Conntrack {
    sock: NfSocket,
}

fn ct_type(msg: u16) -> u16 {
    nfnl_type(c::NFNL_SUBSYS_CTNETLINK, msg)
}

fn family_of(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => nix::libc::AF_INET as u8,
        IpAddr::V6(_) => nix::libc::AF_INET6 as u8,
    }
}

impl Conntrack {
    pub fn open(ns: &Netns) -> Result<Conntrack> {
        Ok(Conntrack { sock: NfSocket::open(Some(ns))? })
    }

    pub fn current() -> Result<Conntrack> {
        Ok(Conntrack { sock: NfSocket::open(None)? })
    }

    /// All entries (IPv4 and IPv6).
    pub fn list(&mut self) -> Result<Vec<CtEntry>> {
        let mut out = Vec::new();
        self.sock.dump(ct_type(c::IPCTNL_MSG_CT_GET), 0, &[], "conntrack entries", |m| {
            let (_, attrs) = m.nfgen()?;
            out.push(decode_entry(&AttrTable::parse(attrs)?)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Deletes one entry by its original tuple. An entry already gone is not an error.
    pub fn delete(&mut self, e: &CtEntry) -> Result<()> {
        let mut w = AttrWriter::new();
        encode_tuple(&mut w, c::CTA_TUPLE_ORIG, e.proto, &e.orig);
        if e.zone != 0 {
            w.be16(c::CTA_ZONE, e.zone);
        }
        let what = format!("conntrack entry proto {} {}:{} -> {}:{}", e.proto, e.orig.src, e.orig.sport, e.orig.dst, e.orig.dport);
        match self.sock.request(ct_type(c::IPCTNL_MSG_CT_DELETE), 0, family_of(&e.orig.src), &w.buf, "delete", &what) {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Deletes the entries matching `filter`; returns how many it deleted.
    pub fn delete_matching(&mut self, filter: &CtFilter) -> Result<usize> {
        let doomed: Vec<CtEntry> = self.list()?.into_iter().filter(|e| filter.matches(e)).collect();
        for e in &doomed {
            self.delete(e)?;
        }
        tracing::debug!(count = doomed.len(), ?filter, "deleted conntrack entries");
        Ok(doomed.len())
    }
}

fn encode_tuple(w: &mut AttrWriter, ty: u16, proto: u8, t: &CtTuple) {
    w.nest(ty, |n| {
        n.nest(c::CTA_TUPLE_IP, |ip| match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                ip.bytes(c::CTA_IP_V4_SRC, &s.octets()).bytes(c::CTA_IP_V4_DST, &d.octets());
            }
            (s, d) => {
                ip.bytes(c::CTA_IP_V6_SRC, &v6(s).octets()).bytes(c::CTA_IP_V6_DST, &v6(d).octets());
            }
        });
        n.nest(c::CTA_TUPLE_PROTO, |p| {
            p.u8(c::CTA_PROTO_NUM, proto);
            if matches!(proto, 6 | 17 | 132 | 136) {
                p.be16(c::CTA_PROTO_SRC_PORT, t.sport).be16(c::CTA_PROTO_DST_PORT, t.dport);
            }
        });
    });
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

fn decode_tuple(buf: &[u8]) -> Decoded<(u8, CtTuple)> {
    let t = AttrTable::parse(buf)?;
    let ip = AttrTable::parse(t.need(c::CTA_TUPLE_IP, "tuple addresses")?)?;
    let addr = |v4: u16, v6: u16| -> Decoded<IpAddr> {
        if let Some(b) = ip.get(v4) {
            let o: [u8; 4] = b.try_into().or_else(|_| bad("IPv4 address is not 4 bytes"))?;
            return Ok(IpAddr::V4(Ipv4Addr::from(o)));
        }
        let b = ip.need(v6, "tuple address")?;
        let o: [u8; 16] = b.try_into().or_else(|_| bad("IPv6 address is not 16 bytes"))?;
        Ok(IpAddr::V6(Ipv6Addr::from(o)))
    };
    let p = AttrTable::parse(t.need(c::CTA_TUPLE_PROTO, "tuple protocol")?)?;
    let port = |ty: u16| p.get(ty).map_or(Ok(0), msg::be16);
    Ok((
        msg::u8_of(p.need(c::CTA_PROTO_NUM, "protocol number")?)?,
        CtTuple {
            src: addr(c::CTA_IP_V4_SRC, c::CTA_IP_V6_SRC)?,
            dst: addr(c::CTA_IP_V4_DST, c::CTA_IP_V6_DST)?,
            sport: port(c::CTA_PROTO_SRC_PORT)?,
            dport: port(c::CTA_PROTO_DST_PORT)?,
        },
    ))
}

fn decode_entry(t: &AttrTable<'_>) -> Decoded<CtEntry> {
    let (proto, orig) = decode_tuple(t.need(c::CTA_TUPLE_ORIG, "original tuple")?)?;
    let (_, reply) = decode_tuple(t.need(c::CTA_TUPLE_REPLY, "reply tuple")?)?;
    Ok(CtEntry {
        proto,
        orig,
        reply,
        zone: t.get(c::CTA_ZONE).map_or(Ok(0), msg::be16)?,
        mark: t.opt_u32(c::CTA_MARK)?.unwrap_or(0),
        status: t.opt_u32(c::CTA_STATUS)?.unwrap_or(0),
    })
}

impl From<msg::DecodeError> for Error {
    fn from(e: msg::DecodeError) -> Error {
        Error::invalid("decode", "netlink reply", e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_round_trip_for_both_families() {
        for (src, dst) in [("10.0.0.1", "10.96.0.10"), ("fd00::1", "fd00:10:96::a")] {
            let t = CtTuple { src: src.parse().unwrap(), dst: dst.parse().unwrap(), sport: 40000, dport: 53 };
            let mut w = AttrWriter::new();
            encode_tuple(&mut w, c::CTA_TUPLE_ORIG, 17, &t);
            let (_, inner) = msg::Attrs::new(&w.buf).next().unwrap().unwrap();
            assert_eq!(decode_tuple(inner).unwrap(), (17, t));
        }
    }

    #[test]
    fn filters_match_protocol_destination_and_optional_port() {
        let e = CtEntry {
            proto: 17,
            orig: CtTuple { src: "10.0.0.1".parse().unwrap(), dst: "10.96.0.10".parse().unwrap(), sport: 1, dport: 53 },
            reply: CtTuple { src: "10.244.0.5".parse().unwrap(), dst: "10.0.0.1".parse().unwrap(), sport: 53, dport: 1 },
            zone: 0,
            mark: 0,
            status: 0,
        };
        let f = |proto, dst: &str, dport| CtFilter { proto, dst: dst.parse().unwrap(), dport };
        assert!(f(17, "10.96.0.10", None).matches(&e));
        assert!(f(17, "10.96.0.10", Some(53)).matches(&e));
        assert!(!f(17, "10.96.0.10", Some(54)).matches(&e));
        assert!(!f(6, "10.96.0.10", None).matches(&e));
        assert!(!f(17, "10.244.0.5", None).matches(&e));
    }
}
