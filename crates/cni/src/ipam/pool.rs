//! Which addresses of a subnet may be handed out, and which one is next.
//! Pure: the caller says which addresses are taken.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Give up scanning after this many taken addresses in a row: only a huge,
/// nearly full IPv6 range could get here, and an error beats a stall.
const MAX_SCAN: u128 = 1 << 20;

/// A node's pod subnet. The first address is the network (never handed
/// out), the second the gateway on the bridge; IPv4 also keeps the last
/// (broadcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    subnet: IpNet,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl Pool {
    pub fn new(subnet: IpNet) -> Pool {
        Pool { subnet: subnet.trunc() }
    }

    pub fn subnet(&self) -> IpNet {
        self.subnet
    }

    pub fn is_v6(&self) -> bool {
        self.subnet.addr().is_ipv6()
    }

    fn addr_at(&self, n: u128) -> IpAddr {
        match self.subnet {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }

    fn network(&self) -> u128 {
        to_u128(self.subnet.network())
    }

    /// The gateway: the first address after the network address.
    pub fn gateway(&self) -> IpAddr {
        self.addr_at(self.network() + 1)
    }

    /// The gateway with the subnet's prefix, as it goes on the bridge.
    pub fn gateway_net(&self) -> IpNet {
        IpNet::new(self.gateway(), self.subnet.prefix_len()).expect("prefix fits")
    }

    fn first(&self) -> u128 {
        self.network() + 2
    }

    fn last(&self) -> u128 {
        let top = to_u128(self.subnet.broadcast());
        if self.is_v6() { top } else { top - 1 }
    }

    /// How many addresses can be handed out.
    pub fn size(&self) -> u128 {
        self.last() - self.first() + 1
    }

    /// Whether `ip` may be handed out (inside the subnet, not reserved).
    pub fn is_allocatable(&self, ip: IpAddr) -> bool {
        if ip.is_ipv6() != self.is_v6() {
            return false;
        }
        let n = to_u128(ip);
        (self.first()..=self.last()).contains(&n)
    }

    /// The next allocatable address after `last` (round-robin, so a freed
    /// address is not reused at once), skipping those `taken` says are taken.
    pub fn next_free(&self, last: Option<IpAddr>, mut taken: impl FnMut(IpAddr) -> bool) -> Option<IpAddr> {
        let (first, end) = (self.first(), self.last());
        let start = match last {
            Some(ip) if self.is_allocatable(ip) && to_u128(ip) < end => to_u128(ip) + 1,
            _ => first,
        };
        let span = self.size().min(MAX_SCAN);
        let mut n = start;
        for _ in 0..span {
            let ip = self.addr_at(n);
            if !taken(ip) {
                return Some(ip);
            }
            n = if n >= end { first } else { n + 1 };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn pool(s: &str) -> Pool {
        Pool::new(s.parse().unwrap())
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_never_hands_out_network_gateway_or_broadcast() {
        let p = pool("10.244.1.0/24");
        assert_eq!(p.gateway(), ip("10.244.1.1"));
        assert_eq!(p.gateway_net().to_string(), "10.244.1.1/24");
        assert_eq!(p.size(), 253);
        for bad in ["10.244.1.0", "10.244.1.1", "10.244.1.255", "10.244.2.2", "fd00::2"] {
            assert!(!p.is_allocatable(ip(bad)), "{bad}");
        }
        assert!(p.is_allocatable(ip("10.244.1.2")) && p.is_allocatable(ip("10.244.1.254")));
        let mut taken = HashSet::new();
        while let Some(a) = p.next_free(None, |a| taken.contains(&a)) {
            assert!(p.is_allocatable(a));
            assert!(taken.insert(a));
        }
        assert_eq!(taken.len(), 253);
    }

    #[test]
    fn v6_skips_network_and_gateway() {
        let p = pool("fd00:10:244:1::/64");
        assert_eq!(p.gateway(), ip("fd00:10:244:1::1"));
        assert_eq!(p.next_free(None, |_| false), Some(ip("fd00:10:244:1::2")));
        assert!(p.is_allocatable(ip("fd00:10:244:1:ffff:ffff:ffff:ffff")));
        assert!(!p.is_allocatable(ip("fd00:10:244:1::1")));
        assert!(!p.is_allocatable(ip("10.0.0.2")));
    }

    #[test]
    fn allocation_is_round_robin_after_the_last_one_and_wraps() {
        let p = pool("10.0.0.0/29"); // .2 .. .6
        assert_eq!(p.next_free(Some(ip("10.0.0.3")), |_| false), Some(ip("10.0.0.4")));
        assert_eq!(p.next_free(Some(ip("10.0.0.6")), |_| false), Some(ip("10.0.0.2")));
        assert_eq!(p.next_free(Some(ip("10.0.0.5")), |a| a == ip("10.0.0.6")), Some(ip("10.0.0.2")));
        assert_eq!(p.next_free(Some(ip("192.168.0.1")), |_| false), Some(ip("10.0.0.2")));
        assert_eq!(p.next_free(None, |_| true), None);
    }

    #[test]
    fn smallest_subnets_still_have_room() {
        assert_eq!(pool("10.0.0.0/30").size(), 1);
        assert_eq!(pool("fd00::/126").size(), 2);
    }
}
