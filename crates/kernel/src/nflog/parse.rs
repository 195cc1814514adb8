//! The bytes of nfnetlink_log: NFULNL_MSG_PACKET messages (nlmsghdr + nfgenmsg +
//! attributes) and the IP/L4 headers at the start of the copied packet. Pure: no
//! sockets here, so every branch is tested with hand-built messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const NFNL_SUBSYS_ULOG: u8 = 4;
pub(crate) const NFULNL_MSG_PACKET: u16 = 0;
pub(crate) const NFULNL_MSG_CONFIG: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
#[cfg(test)]
const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_HDRLEN: usize = 16;
const NFGEN_HDRLEN: usize = 4;

const NFULA_PACKET_HDR: u16 = 1;
const NFULA_MARK: u16 = 2;
const NFULA_TIMESTAMP: u16 = 3;
const NFULA_IFINDEX_INDEV: u16 = 4;
const NFULA_IFINDEX_OUTDEV: u16 = 5;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;

/// One packet a `log group` rule copied to us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedPacket {
    /// The nflog group it was logged to (nfgenmsg res_id).
    pub group: u16,
    /// The rule's `log prefix`, without the trailing NUL.
    pub prefix: Option<String>,
    /// The link-layer protocol (ethertype: 0x0800 IPv4, 0x86dd IPv6), from NFULA_PACKET_HDR.
    pub hw_protocol: u16,
    /// The netfilter hook the rule ran in (0 prerouting .. 4 postrouting).
    pub hook: u8,
    pub mark: Option<u32>,
    /// When the packet arrived, if the kernel stamped it (often not for local traffic).
    pub timestamp: Option<SystemTime>,
    pub indev: Option<u32>,
    pub outdev: Option<u32>,
    /// The addresses and ports of the copied packet; None when the copy is too short
    /// or not IP.
    pub headers: Option<PacketHeaders>,
}

/// What the flow recorder needs of a packet: its 5-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketHeaders {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IP protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6, ...).
    pub protocol: u8,
    /// Source and destination port, for TCP, UDP, UDP-Lite, DCCP and SCTP; None for
    /// other protocols and for non-first fragments.
    pub ports: Option<(u16, u16)>,
}

/// A message that does not follow the format, with where it broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One netlink message of a datagram.
pub(crate) struct Msg<'a> {
    pub ty: u16,
    pub seq: u32,
    /// After the nlmsghdr (nfgenmsg + attributes, or the nlmsgerr of an error).
    pub body: &'a [u8],
}

/// Splits a datagram into its netlink messages.
pub(crate) fn messages(buf: &[u8]) -> Result<Vec<Msg<'_>>, ParseError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(ParseError(format!("netlink message length {len} with {} bytes left", rest.len())));
        }
        let ty = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
        let seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
        out.push(Msg { ty, seq, body: &rest[NLMSG_HDRLEN..len] });
        rest = &rest[align4(len).min(rest.len())..];
    }
    Ok(out)
}

/// The errno of an NLMSG_ERROR message (0 for an ack).
pub(crate) fn error_code(body: &[u8]) -> Result<i32, ParseError> {
    let b: [u8; 4] = body.get(0..4).and_then(|b| b.try_into().ok()).ok_or_else(|| ParseError("netlink error message shorter than its code".into()))?;
    Ok(-i32::from_ne_bytes(b))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The packets of one datagram (messages of other types are skipped).
pub fn parse_datagram(buf: &[u8]) -> Result<Vec<LoggedPacket>, ParseError> {
    let mut out = Vec::new();
    for m in messages(buf)? {
        if m.ty == nfnl_type(NFULNL_MSG_PACKET) {
            out.push(parse_packet(m.body)?);
        }
    }
    Ok(out)
}

pub(crate) fn nfnl_type(msg: u16) -> u16 {
    ((NFNL_SUBSYS_ULOG as u16) << 8) | msg
}

/// One NFULNL_MSG_PACKET body: nfgenmsg, then attributes.
pub fn parse_packet(body: &[u8]) -> Result<LoggedPacket, ParseError> {
    if body.len() < NFGEN_HDRLEN {
        return Err(ParseError(format!("nflog packet message of {} bytes, shorter than its nfgenmsg", body.len())));
    }
    let group = u16::from_be_bytes([body[2], body[3]]);
    let mut p = LoggedPacket { group, prefix: None, hw_protocol: 0, hook: 0, mark: None, timestamp: None, indev: None, outdev: None, headers: None };
    let mut rest = &body[NFGEN_HDRLEN..];
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return Err(ParseError(format!("nflog attribute {ty} of length {len} with {} bytes left", rest.len())));
        }
        let v = &rest[4..len];
        let short = |want: usize| if v.len() < want { Err(ParseError(format!("nflog attribute {ty} has {} bytes, needs {want}", v.len()))) } else { Ok(()) };
        match ty {
            NFULA_PACKET_HDR => {
                short(3)?;
                p.hw_protocol = u16::from_be_bytes([v[0], v[1]]);
                p.hook = v[2];
            }
            NFULA_MARK => {
                short(4)?;
                p.mark = Some(be32(v));
            }
            NFULA_TIMESTAMP => {
                short(16)?;
                let sec = u64::from_be_bytes(v[0..8].try_into().unwrap());
                let usec = u64::from_be_bytes(v[8..16].try_into().unwrap());
                p.timestamp = UNIX_EPOCH.checked_add(Duration::from_secs(sec) + Duration::from_micros(usec));
            }
            NFULA_IFINDEX_INDEV => {
                short(4)?;
                p.indev = Some(be32(v));
            }
            NFULA_IFINDEX_OUTDEV => {
                short(4)?;
                p.outdev = Some(be32(v));
            }
            NFULA_PAYLOAD => p.headers = parse_headers(v),
            NFULA_PREFIX => {
                let s = v.split(|b| *b == 0).next().unwrap_or_default();
                p.prefix = Some(String::from_utf8_lossy(s).into_owned());
            }
            _ => {}
        }
        rest = &rest[align4(len).min(rest.len())..];
    }
    Ok(p)
}

fn be32(v: &[u8]) -> u32 {
    u32::from_be_bytes(v[0..4].try_into().unwrap())
}

/// The 5-tuple at the start of an IPv4 or IPv6 packet (the version nibble says which).
pub fn parse_headers(pkt: &[u8]) -> Option<PacketHeaders> {
    match pkt.first()? >> 4 {
        4 => parse_ipv4(pkt),
        6 => parse_ipv6(pkt),
        _ => None,
    }
}

fn parse_ipv4(pkt: &[u8]) -> Option<PacketHeaders> {
    let ihl = ((pkt.first()? & 0x0f) as usize) * 4;
    if ihl < 20 || pkt.len() < 20 {
        return None;
    }
    let frag_offset = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x1fff;
    let protocol = pkt[9];
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]).into();
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]).into();
    let ports = if frag_offset == 0 { ports(protocol, pkt.get(ihl..)?) } else { None };
    Some(PacketHeaders { src, dst, protocol, ports })
}

fn parse_ipv6(pkt: &[u8]) -> Option<PacketHeaders> {
    if pkt.len() < 40 {
        return None;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[8..24]).unwrap()).into();
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[24..40]).unwrap()).into();
    let mut next = pkt[6];
    let mut at = 40;
    let mut first_fragment = true;
    // Extension headers before the transport header (RFC 8200 section 4).
    loop {
        match next {
            0 | 43 | 60 => {
                let h = pkt.get(at..at + 2)?;
                next = h[0];
                at += (h[1] as usize + 1) * 8;
            }
            44 => {
                let h = pkt.get(at..at + 4)?;
                next = h[0];
                first_fragment = u16::from_be_bytes([h[2], h[3]]) >> 3 == 0;
                at += 8;
            }
            51 => {
                let h = pkt.get(at..at + 2)?;
                next = h[0];
                at += (h[1] as usize + 2) * 4;
            }
            _ => break,
        }
    }
    let ports = if first_fragment { pkt.get(at..).and_then(|l4| ports(next, l4)) } else { None };
    Some(PacketHeaders { src, dst, protocol: next, ports })
}

/// Source and destination port: the first four bytes of every protocol that has them.
fn ports(protocol: u8, l4: &[u8]) -> Option<(u16, u16)> {
    match protocol {
        6 | 17 | 33 | 132 | 136 if l4.len() >= 4 => Some((u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, v: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(v);
        a.resize(align4(a.len()), 0);
        a
    }

    fn message(ty: u16, group: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = attrs.concat();
        let len = NLMSG_HDRLEN + NFGEN_HDRLEN + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[2, 0]);
        m.extend_from_slice(&group.to_be_bytes());
        m.extend_from_slice(&body);
        m
    }

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        p
    }

    fn ipv6(next: u8, src: Ipv6Addr, dst: Ipv6Addr, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, next, 64];
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(rest);
        p
    }

    const TCP_SYN_PORTS: [u8; 8] = [0xc3, 0x50, 0x00, 0x50, 0, 0, 0, 1];

    #[test]
    fn a_tcp_packet_message_gives_prefix_group_hook_and_five_tuple() {
        let payload = ipv4(6, [10, 244, 1, 2], [10, 244, 2, 3], &TCP_SYN_PORTS);
        let msg = message(
            nfnl_type(NFULNL_MSG_PACKET),
            0x5746,
            &[attr(NFULA_PACKET_HDR, &[0x08, 0x00, 1, 0]), attr(NFULA_PREFIX, b"weft-policy egress denied\0"), attr(NFULA_IFINDEX_INDEV, &7u32.to_be_bytes()), attr(NFULA_PAYLOAD, &payload)],
        );
        let got = parse_datagram(&msg).unwrap();
        assert_eq!(got.len(), 1);
        let p = &got[0];
        assert_eq!(p.group, 0x5746);
        assert_eq!(p.prefix.as_deref(), Some("weft-policy egress denied"));
        assert_eq!((p.hw_protocol, p.hook, p.indev, p.outdev), (0x0800, 1, Some(7), None));
        assert_eq!(p.headers, Some(PacketHeaders { src: "10.244.1.2".parse().unwrap(), dst: "10.244.2.3".parse().unwrap(), protocol: 6, ports: Some((50000, 80)) }));
    }

    #[test]
    fn several_messages_in_one_datagram_are_all_returned_and_other_types_skipped() {
        let udp = ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &[0, 53, 0x13, 0x88, 0, 8, 0, 0]);
        let mut dgram = message(nfnl_type(NFULNL_MSG_PACKET), 1, &[attr(NFULA_PAYLOAD, &udp)]);
        dgram.extend(message(NLMSG_DONE, 0, &[]));
        dgram.extend(message(nfnl_type(NFULNL_MSG_PACKET), 1, &[attr(NFULA_PREFIX, b"b\0"), attr(NFULA_MARK, &9u32.to_be_bytes())]));
        let got = parse_datagram(&dgram).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].headers.unwrap().ports, Some((53, 5000)));
        assert_eq!(got[0].prefix, None);
        assert_eq!((got[1].prefix.as_deref(), got[1].mark, got[1].headers), (Some("b"), Some(9), None));
    }

    #[test]
    fn the_timestamp_is_seconds_and_microseconds_since_the_epoch() {
        let mut ts = 1_700_000_000u64.to_be_bytes().to_vec();
        ts.extend_from_slice(&250_000u64.to_be_bytes());
        let p = parse_packet(&message(0, 3, &[attr(NFULA_TIMESTAMP, &ts)])[NLMSG_HDRLEN..]).unwrap();
        assert_eq!(p.timestamp, Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)));
    }

    #[test]
    fn a_truncated_attribute_is_an_error_that_says_which() {
        let mut msg = message(nfnl_type(NFULNL_MSG_PACKET), 1, &[attr(NFULA_PACKET_HDR, &[8, 0, 1, 0])]);
        // Claim 40 bytes for the attribute.
        msg[NLMSG_HDRLEN + NFGEN_HDRLEN] = 40;
        let e = parse_datagram(&msg).unwrap_err();
        assert!(e.0.contains("attribute 1 of length 40"), "{e}");
        let short = message(nfnl_type(NFULNL_MSG_PACKET), 1, &[attr(NFULA_IFINDEX_INDEV, &[1, 2])]);
        assert!(parse_datagram(&short).unwrap_err().0.contains("attribute 4 has 2 bytes, needs 4"));
        let mut bad_len = message(nfnl_type(NFULNL_MSG_PACKET), 1, &[]);
        bad_len[0] = 200;
        assert!(parse_datagram(&bad_len).is_err());
    }

    #[test]
    fn ipv6_ports_are_found_behind_extension_headers() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = ("fd00:10:244::2".parse().unwrap(), "fd00:10:244:1::3".parse().unwrap());
        // Hop-by-hop (8 bytes) then destination options (16 bytes) then SCTP.
        let mut rest = vec![60, 0, 0, 0, 0, 0, 0, 0];
        rest.extend_from_slice(&[132, 1]);
        rest.extend_from_slice(&[0; 14]);
        rest.extend_from_slice(&[0x1f, 0x90, 0, 81, 0, 0, 0, 0]);
        let h = parse_headers(&ipv6(0, a, b, &rest)).unwrap();
        assert_eq!(h, PacketHeaders { src: a.into(), dst: b.into(), protocol: 132, ports: Some((8080, 81)) });
        let plain = parse_headers(&ipv6(17, a, b, &[0, 1, 0, 2, 0, 8, 0, 0])).unwrap();
        assert_eq!((plain.protocol, plain.ports), (17, Some((1, 2))));
    }

    #[test]
    fn fragments_after_the_first_and_icmp_have_no_ports() {
        let mut frag = ipv4(17, [1, 1, 1, 1], [2, 2, 2, 2], &[0, 1, 0, 2]);
        frag[7] = 10;
        assert_eq!(parse_headers(&frag).unwrap().ports, None);
        let icmp = parse_headers(&ipv4(1, [1, 1, 1, 1], [2, 2, 2, 2], &[8, 0, 0, 0])).unwrap();
        assert_eq!((icmp.protocol, icmp.ports), (1, None));
        let (a, b): (Ipv6Addr, Ipv6Addr) = ("::1".parse().unwrap(), "::2".parse().unwrap());
        let later = parse_headers(&ipv6(44, a, b, &[6, 0, 0, 0x08, 0, 0, 0, 1, 0, 80, 0, 81])).unwrap();
        assert_eq!((later.protocol, later.ports), (6, None));
    }

    #[test]
    fn copies_too_short_for_the_ip_header_have_no_headers() {
        assert_eq!(parse_headers(&[0x45, 0, 0]), None);
        assert_eq!(parse_headers(&[0x60; 20]), None);
        assert_eq!(parse_headers(&[]), None);
        // The L4 header cut off: addresses, but no ports.
        let h = parse_headers(&ipv4(6, [1, 1, 1, 1], [2, 2, 2, 2], &[0, 1])).unwrap();
        assert_eq!((h.protocol, h.ports), (6, None));
    }
}
