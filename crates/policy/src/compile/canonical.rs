//! The canonical form of an [`AllowSet`] and its [`GroupId`]. Two sets that admit the
//! same (peer, protocol, port) tuples through the same `any` peers come out identical:
//! per family and protocol, addresses are cut where the set of allowed ports changes,
//! each piece carries its merged port ranges, and addresses already allowed on every
//! port (`any`) are left out of `ports`. The entries are disjoint, which is also what
//! interval sets in nftables need.

use super::ranges::{merge, to_int, Span};
use crate::model::Protocol;
use crate::plan::{AllowSet, GroupId, PortAllow};
use std::collections::BTreeMap;

/// One allowed tuple before canonicalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortItem {
    pub peer: Span,
    pub protocol: Protocol,
    pub first: u16,
    pub last: u16,
}

/// An exclusive end that may be 2^128: `(true, 0)` sorts after every finite position.
type Pos = (bool, u128);

fn after(last: u128) -> Pos {
    if last == u128::MAX { (true, 0) } else { (false, last + 1) }
}

fn before(pos: Pos) -> u128 {
    if pos.0 { u128::MAX } else { pos.1 - 1 }
}

pub fn canonicalize(any: Vec<Span>, ports: Vec<PortItem>) -> AllowSet {
    let any = merge(any);
    let mut groups: BTreeMap<(bool, Protocol), Vec<PortItem>> = BTreeMap::new();
    for item in ports {
        groups.entry((item.peer.v6, item.protocol)).or_default().push(item);
    }
    let mut out = Vec::new();
    for ((v6, protocol), items) in groups {
        // Events: +1/-1 of a port range (None: an `any` peer) at a position.
        let mut events: Vec<(Pos, i32, Option<(u16, u16)>)> = Vec::with_capacity(items.len() * 2);
        for i in &items {
            events.push(((false, i.peer.first), 1, Some((i.first, i.last))));
            events.push((after(i.peer.last), -1, Some((i.first, i.last))));
        }
        for a in any.iter().filter(|a| a.v6 == v6) {
            events.push(((false, a.first), 1, None));
            events.push((after(a.last), -1, None));
        }
        events.sort();
        let mut active: BTreeMap<(u16, u16), i32> = BTreeMap::new();
        let mut covered = 0;
        // Pieces: start, exclusive end, merged port ranges.
        let mut pieces: Vec<(Pos, Pos, Vec<(u16, u16)>)> = Vec::new();
        let mut k = 0;
        while k < events.len() {
            let pos = events[k].0;
            while k < events.len() && events[k].0 == pos {
                let (_, delta, range) = events[k];
                match range {
                    None => covered += delta,
                    Some(r) => {
                        let n = active.entry(r).or_insert(0);
                        *n += delta;
                        if *n == 0 {
                            active.remove(&r);
                        }
                    }
                }
                k += 1;
            }
            let Some(next) = events.get(k).map(|e| e.0) else { break };
            if covered > 0 || active.is_empty() {
                continue;
            }
            let ports = merge_ports(active.keys().copied());
            match pieces.last_mut() {
                Some((_, end, prev)) if *end == pos && *prev == ports => *end = next,
                _ => pieces.push((pos, next, ports)),
            }
        }
        for (start, end, ranges) in pieces {
            let peer = Span { v6, first: start.1, last: before(end) }.to_range();
            out.extend(ranges.into_iter().map(|(first, last)| PortAllow { peer, protocol, first, last }));
        }
    }
    out.sort();
    AllowSet { any: any.into_iter().map(Span::to_range).collect(), ports: out }
}

fn merge_ports(sorted: impl Iterator<Item = (u16, u16)>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (a, b) in sorted {
        match out.last_mut() {
            Some(prev) if prev.1 == u16::MAX || prev.1 + 1 >= a => prev.1 = prev.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// FNV-1a (64 bit) over a fixed encoding of the set, so an id is stable across
/// restarts, builds and Rust versions.
pub fn group_id(set: &AllowSet) -> GroupId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    let addr = |feed: &mut dyn FnMut(&[u8]), ip: std::net::IpAddr| {
        let (v6, n) = to_int(ip);
        if v6 {
            feed(&[6]);
            feed(&n.to_be_bytes());
        } else {
            feed(&[4]);
            feed(&(n as u32).to_be_bytes());
        }
    };
    feed(b"any");
    for r in &set.any {
        addr(&mut feed, r.first);
        addr(&mut feed, r.last);
    }
    feed(b"ports");
    for p in &set.ports {
        addr(&mut feed, p.peer.first);
        addr(&mut feed, p.peer.last);
        feed(&[p.protocol.number()]);
        feed(&p.first.to_be_bytes());
        feed(&p.last.to_be_bytes());
    }
    GroupId(h)
}

impl AllowSet {
    /// Whether traffic with this peer on `protocol`/`port` is in the set: how the
    /// enforcer's rules must read it.
    pub fn admits(&self, peer: std::net::IpAddr, protocol: Protocol, port: u16) -> bool {
        self.any.iter().any(|r| Span::from_range(*r).contains(peer))
            || self.ports.iter().any(|p| p.protocol == protocol && (p.first..=p.last).contains(&port) && Span::from_range(p.peer).contains(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn host(ip: &str) -> Span {
        Span::host(ip.parse::<IpAddr>().unwrap())
    }

    fn item(peer: Span, protocol: Protocol, first: u16, last: u16) -> PortItem {
        PortItem { peer, protocol, first, last }
    }

    fn admits(set: &AllowSet, ip: &str, protocol: Protocol, port: u16) -> bool {
        set.admits(ip.parse().unwrap(), protocol, port)
    }

    #[test]
    fn equal_content_in_any_order_is_one_canonical_set() {
        let a = canonicalize(
            vec![],
            vec![
                item(host("10.0.0.1"), Protocol::Tcp, 80, 80),
                item(host("10.0.0.2"), Protocol::Tcp, 80, 80),
                item(host("10.0.0.1"), Protocol::Tcp, 81, 90),
                item(host("10.0.0.2"), Protocol::Tcp, 81, 81),
                item(host("10.0.0.2"), Protocol::Tcp, 82, 90),
            ],
        );
        let b = canonicalize(
            vec![],
            vec![
                item(Span { v6: false, first: host("10.0.0.1").first, last: host("10.0.0.2").first }, Protocol::Tcp, 80, 85),
                item(host("10.0.0.2"), Protocol::Tcp, 86, 90),
                item(host("10.0.0.1"), Protocol::Tcp, 84, 90),
            ],
        );
        assert_eq!(a, b);
        assert_eq!(group_id(&a), group_id(&b));
        assert_eq!(a.ports.len(), 1, "{a:?}");
        assert_eq!((a.ports[0].first, a.ports[0].last), (80, 90));
    }

    #[test]
    fn canonical_entries_are_disjoint_and_admit_exactly_the_input() {
        let input = vec![
            item(Span { v6: false, first: host("10.0.0.0").first, last: host("10.0.0.20").first }, Protocol::Tcp, 80, 80),
            item(Span { v6: false, first: host("10.0.0.10").first, last: host("10.0.0.30").first }, Protocol::Tcp, 443, 443),
            item(host("10.0.0.15"), Protocol::Udp, 53, 53),
            item(host("fd00::1"), Protocol::Tcp, 80, 80),
        ];
        let any = vec![host("10.0.0.12")];
        let set = canonicalize(any, input.clone());
        for n in 0..40u32 {
            let ip = format!("10.0.0.{n}");
            for (proto, port) in [(Protocol::Tcp, 80), (Protocol::Tcp, 443), (Protocol::Udp, 53), (Protocol::Tcp, 53)] {
                let want = n == 12 || input.iter().any(|i| i.protocol == proto && i.peer.contains(ip.parse().unwrap()) && (i.first..=i.last).contains(&port));
                assert_eq!(admits(&set, &ip, proto, port), want, "{ip} {proto:?}/{port}");
            }
        }
        assert!(admits(&set, "fd00::1", Protocol::Tcp, 80));
        assert!(!admits(&set, "fd00::2", Protocol::Tcp, 80));
        for (i, a) in set.ports.iter().enumerate() {
            for b in &set.ports[i + 1..] {
                let overlap = a.protocol == b.protocol
                    && Span::from_range(a.peer).v6 == Span::from_range(b.peer).v6
                    && Span::from_range(a.peer).first <= Span::from_range(b.peer).last
                    && Span::from_range(b.peer).first <= Span::from_range(a.peer).last
                    && a.first <= b.last
                    && b.first <= a.last;
                assert!(!overlap, "{a:?} overlaps {b:?}");
            }
            assert!(!Span::from_range(a.peer).contains("10.0.0.12".parse().unwrap()), "any-covered address left in ports: {a:?}");
        }
    }

    #[test]
    fn full_ranges_do_not_overflow() {
        let set = canonicalize(vec![], Span::everything().into_iter().map(|s| item(s, Protocol::Sctp, 0, u16::MAX)).collect());
        assert_eq!(set.ports.len(), 2);
        assert_eq!(set.ports[1].peer.last, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse::<IpAddr>().unwrap());
        let all = canonicalize(Span::everything().to_vec(), vec![item(host("1.2.3.4"), Protocol::Tcp, 1, 1)]);
        assert!(all.ports.is_empty());
        assert_eq!(all.any.len(), 2);
    }
}
