//! How pod traffic crosses nodes, and what that costs in MTU. Pure.

use std::fmt;
use std::str::FromStr;

/// The backend for pod traffic between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Calico-style: a route to each other node's pod CIDR via that node's address;
    /// nodes must share an L2 segment (or a router that knows the pod CIDRs).
    #[default]
    Direct,
    /// Flannel-style: pod packets inside VXLAN (VNI 1, UDP 8472) between nodes, over
    /// any IP underlay.
    Vxlan,
}

impl Backend {
    /// Bytes the backend adds to each packet on the underlay: VXLAN wraps the inner
    /// Ethernet frame (14) in VXLAN (8), UDP (8) and an outer IPv4 (20) or IPv6 (40)
    /// header.
    pub fn overhead(self, underlay_v6: bool) -> u32 {
        match self {
            Backend::Direct => 0,
            Backend::Vxlan if underlay_v6 => 70,
            Backend::Vxlan => 50,
        }
    }

    /// The MTU pods get by default: the underlay's minus the backend's overhead, so no
    /// packet a pod sends needs fragmenting on the way.
    pub fn pod_mtu(self, underlay_mtu: u32, underlay_v6: bool) -> u32 {
        underlay_mtu.saturating_sub(self.overhead(underlay_v6))
    }

    /// The GSO size pods get (BIG TCP, `gsoMaxSize`): [`weft_kernel::BIG_TCP_SIZE`]
    /// when the backend is `direct` and the underlay interface already sends
    /// segments that large, else none (the kernel's 64 KiB). A pod's TCP builds
    /// segments for its eth0, which carries traffic to every destination, so the
    /// whole path must take them: a VXLAN device cannot (its outer UDP length is
    /// 16 bits), and an uplink with a smaller limit would make the kernel cut every
    /// segment up in software. weft raises the limit on the underlay it builds in
    /// local mode; on a real node it is the operator's call
    /// (`ip link set <uplink> gso_max_size 262144 gso_ipv4_max_size 262144`).
    pub fn pod_gso_max_size(self, underlay_gso: u32) -> Option<u32> {
        let big = weft_kernel::BIG_TCP_SIZE;
        (self == Backend::Direct && underlay_gso >= big).then_some(big)
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Backend, String> {
        match s {
            "direct" => Ok(Backend::Direct),
            "vxlan" => Ok(Backend::Vxlan),
            _ => Err(format!(
                "unknown backend {s:?}: use \"direct\" (routes via each node, nodes on one L2 segment) or \"vxlan\" (an overlay over any IP underlay)"
            )),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Direct => "direct",
            Backend::Vxlan => "vxlan",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_pods_get_the_full_underlay_mtu_and_vxlan_pods_50_or_70_less() {
        assert_eq!(Backend::Direct.pod_mtu(1500, false), 1500);
        assert_eq!(Backend::Vxlan.pod_mtu(1500, false), 1450);
        assert_eq!(Backend::Vxlan.pod_mtu(1500, true), 1430);
        assert_eq!(Backend::Vxlan.pod_mtu(9000, false), 8950);
    }

    #[test]
    fn big_tcp_only_on_direct_over_an_underlay_that_takes_it() {
        let big = weft_kernel::BIG_TCP_SIZE;
        assert_eq!(Backend::Direct.pod_gso_max_size(big), Some(big));
        assert_eq!(Backend::Direct.pod_gso_max_size(524280), Some(big));
        assert_eq!(Backend::Direct.pod_gso_max_size(65536), None);
        assert_eq!(Backend::Vxlan.pod_gso_max_size(big), None);
    }

    #[test]
    fn backends_parse_by_name_and_an_unknown_one_names_the_choices() {
        assert_eq!("vxlan".parse::<Backend>(), Ok(Backend::Vxlan));
        assert_eq!("direct".parse::<Backend>(), Ok(Backend::Direct));
        assert_eq!(Backend::Vxlan.to_string(), "vxlan");
        let e = "geneve".parse::<Backend>().unwrap_err();
        assert!(e.contains("\"geneve\"") && e.contains("direct") && e.contains("vxlan"), "{e}");
    }
}
