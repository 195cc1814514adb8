//! Address ranges as integers: a CIDR minus its excepts, pod addresses, and the merge
//! of overlapping or adjacent ranges. Both families live in one type but never mix.

use crate::plan::IpRange;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An inclusive range of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub v6: bool,
    pub first: u128,
    pub last: u128,
}

pub fn to_int(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u32::from(a) as u128),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

pub fn to_ip(v6: bool, n: u128) -> IpAddr {
    if v6 { IpAddr::V6(Ipv6Addr::from(n)) } else { IpAddr::V4(Ipv4Addr::from(n as u32)) }
}

impl Span {
    pub fn host(ip: IpAddr) -> Span {
        let (v6, n) = to_int(ip);
        Span { v6, first: n, last: n }
    }

    pub fn net(net: &IpNet) -> Span {
        let (v6, first) = to_int(net.network());
        let (_, last) = to_int(net.broadcast());
        Span { v6, first, last }
    }

    /// Every address of both families.
    pub fn everything() -> [Span; 2] {
        [Span { v6: false, first: 0, last: u32::MAX as u128 }, Span { v6: true, first: 0, last: u128::MAX }]
    }

    pub fn to_range(self) -> IpRange {
        IpRange { first: to_ip(self.v6, self.first), last: to_ip(self.v6, self.last) }
    }

    pub fn from_range(r: IpRange) -> Span {
        let (v6, first) = to_int(r.first);
        Span { v6, first, last: to_int(r.last).1 }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, n) = to_int(ip);
        v6 == self.v6 && self.first <= n && n <= self.last
    }
}

/// Sorted, with overlapping and adjacent ranges of a family joined.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(prev) if prev.v6 == s.v6 && (prev.last == u128::MAX || prev.last + 1 >= s.first) => prev.last = prev.last.max(s.last),
            _ => out.push(s),
        }
    }
    out
}

/// `cidr` without the `except` ranges.
pub fn block(cidr: &IpNet, except: &[IpNet]) -> Vec<Span> {
    let whole = Span::net(cidr);
    let holes = merge(except.iter().map(Span::net).filter(|e| e.v6 == whole.v6).collect());
    let mut out = Vec::new();
    let mut next = Some(whole.first);
    for h in holes {
        let Some(start) = next else { break };
        if h.last < start || h.first > whole.last {
            continue;
        }
        if h.first > start {
            out.push(Span { v6: whole.v6, first: start, last: h.first - 1 });
        }
        next = if h.last >= whole.last { None } else { Some(h.last + 1) };
    }
    if let Some(start) = next {
        out.push(Span { v6: whole.v6, first: start, last: whole.last });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(a: &str, b: &str) -> Span {
        let (v6, first) = to_int(a.parse().unwrap());
        Span { v6, first, last: to_int(b.parse().unwrap()).1 }
    }

    #[test]
    fn a_block_minus_its_excepts() {
        let cidr: IpNet = "10.0.0.0/8".parse().unwrap();
        let except: Vec<IpNet> = vec!["10.1.0.0/16".parse().unwrap(), "10.0.0.0/24".parse().unwrap(), "10.1.2.0/24".parse().unwrap()];
        assert_eq!(block(&cidr, &except), vec![span("10.0.1.0", "10.0.255.255"), span("10.2.0.0", "10.255.255.255")]);
        let tail: Vec<IpNet> = vec!["10.255.0.0/16".parse().unwrap()];
        assert_eq!(block(&cidr, &tail), vec![span("10.0.0.0", "10.254.255.255")]);
        let v6: IpNet = "::/0".parse().unwrap();
        let hole: Vec<IpNet> = vec!["ffff::/16".parse().unwrap()];
        assert_eq!(block(&v6, &hole), vec![span("::", "fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]);
    }

    #[test]
    fn merge_joins_adjacent_and_overlapping_but_not_families() {
        let spans = vec![
            span("10.0.0.2", "10.0.0.2"),
            span("10.0.0.1", "10.0.0.1"),
            span("10.0.0.4", "10.0.0.9"),
            span("10.0.0.5", "10.0.0.6"),
            span("::", "::1"),
            Span::everything()[1],
        ];
        assert_eq!(merge(spans), vec![span("10.0.0.1", "10.0.0.2"), span("10.0.0.4", "10.0.0.9"), Span::everything()[1]]);
    }
}
